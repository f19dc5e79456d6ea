//! Secret values never reach the terminal, the log or a report: every text that leaves
//! the executor goes through a [`Masker`], and output is split so that a secret arriving
//! across two reads is still seen whole.

use std::borrow::Cow;

pub const MASK: &str = "***";

#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

impl Masker {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Masker { secrets }
    }

    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), MASK));
            }
        }
        out
    }

    /// [`Masker::mask`] for raw output, which need not be UTF-8.
    pub fn mask_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out = Cow::Borrowed(bytes);
        for s in &self.secrets {
            let finder = memchr::memmem::Finder::new(s.as_bytes());
            if finder.find(&out).is_none() {
                continue;
            }
            let mut replaced = Vec::with_capacity(out.len());
            let mut last = 0;
            for at in finder.find_iter(&out) {
                replaced.extend_from_slice(&out[last..at]);
                replaced.extend_from_slice(MASK.as_bytes());
                last = at + s.len();
            }
            replaced.extend_from_slice(&out[last..]);
            out = Cow::Owned(replaced);
        }
        out
    }

    /// How many bytes at the end of `bytes` could be the start of a secret: held back
    /// from an unfinished line shown early, so a secret is never shown in two halves.
    pub fn partial_secret(&self, bytes: &[u8]) -> usize {
        self.secrets
            .iter()
            .filter_map(|s| {
                let s = s.as_bytes();
                (1..s.len().min(bytes.len() + 1))
                    .rev()
                    .find(|&n| bytes.ends_with(&s[..n]))
            })
            .max()
            .unwrap_or(0)
    }

    /// Bytes to hold back at the end of an unfinished line so a secret split across reads
    /// is not emitted in two halves.
    pub fn holdback(&self) -> usize {
        self.secrets
            .first()
            .map_or(0, |s| s.len().saturating_sub(1))
    }
}

/// Turns a byte stream into masked pieces: whole lines when they come, and long unfinished
/// lines in bounded pieces that keep a tail back (for a secret split across reads) and never
/// end inside a UTF-8 character. The bytes are passed on as they are, UTF-8 or not.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

/// Longest piece of an unfinished line emitted at once.
const MAX_PIECE: usize = 64 * 1024;

/// `cut`, or the start of the UTF-8 character that `cut` would split.
fn char_boundary_before(bytes: &[u8], cut: usize) -> usize {
    let is_continuation = |b: u8| (b & 0xC0) == 0x80;
    let mut lead = cut;
    while lead > 0 && cut - lead < 4 && is_continuation(bytes[lead - 1]) {
        lead -= 1;
    }
    let Some(start) = lead.checked_sub(1) else {
        return cut;
    };
    let len = match bytes[start] {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    };
    if start + len > cut { start } else { cut }
}

impl LineSplitter {
    /// Feeds bytes; returns bytes ready to emit, if any.
    pub fn push<'a>(&mut self, bytes: &'a [u8], masker: &Masker) -> Option<Cow<'a, [u8]>> {
        // The common case, a read that ends in a newline with nothing pending: its lines go
        // out without being copied (unless a secret has to be masked in them).
        if self.pending.is_empty()
            && let Some(i) = memchr::memrchr(b'\n', bytes)
        {
            self.pending.extend_from_slice(&bytes[i + 1..]);
            return Some(masker.mask_bytes(&bytes[..=i]));
        }
        // Only the new bytes can hold a newline that was not there before.
        let old = self.pending.len();
        self.pending.extend_from_slice(bytes);
        let cut = match memchr::memrchr(b'\n', &self.pending[old..]) {
            Some(i) => old + i + 1,
            None if self.pending.len() > MAX_PIECE => {
                let cut = self.pending.len().saturating_sub(masker.holdback());
                char_boundary_before(&self.pending, cut)
            }
            None => return None,
        };
        if cut == 0 {
            return None;
        }
        let rest = self.pending.split_off(cut);
        let piece = std::mem::replace(&mut self.pending, rest);
        Some(Cow::Owned(masker.mask_bytes(&piece).into_owned()))
    }

    /// The unfinished line so far, for output that went quiet without a newline (`waiting
    /// for replica...`, a progress bar): all of it but what could be the start of a
    /// secret, and never half a UTF-8 character.
    pub fn flush(&mut self, masker: &Masker) -> Option<Vec<u8>> {
        let keep = masker.partial_secret(&self.pending);
        let cut = char_boundary_before(&self.pending, self.pending.len() - keep);
        if cut == 0 {
            return None;
        }
        let rest = self.pending.split_off(cut);
        let piece = std::mem::replace(&mut self.pending, rest);
        Some(masker.mask_bytes(&piece).into_owned())
    }

    /// What is left at the end of the stream.
    pub fn finish(&mut self, masker: &Masker) -> Option<Vec<u8>> {
        if self.pending.is_empty() {
            return None;
        }
        let piece = std::mem::take(&mut self.pending);
        Some(masker.mask_bytes(&piece).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secrets_split_across_reads() {
        let m = Masker::new(["hunter2".to_string()]);
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"password: hun", &m), None);
        assert_eq!(
            s.push(b"ter2\nnext", &m).as_deref(),
            Some(&b"password: ***\n"[..])
        );
        assert_eq!(s.finish(&m).as_deref(), Some(&b"next"[..]));
    }

    #[test]
    fn whole_lines_are_masked_on_the_fast_path_too() {
        let m = Masker::new(["hunter2".to_string()]);
        let mut s = LineSplitter::default();
        assert_eq!(
            s.push(b"a hunter2\nb hun", &m).as_deref(),
            Some(&b"a ***\n"[..])
        );
        assert_eq!(s.push(b"ter2\n", &m).as_deref(), Some(&b"b ***\n"[..]));
        assert_eq!(s.finish(&m), None);
    }

    #[test]
    fn long_lines_without_secrets_are_emitted_in_pieces() {
        let m = Masker::default();
        let mut s = LineSplitter::default();
        // A character split across two reads is never cut in half.
        let data = "€".repeat(MAX_PIECE);
        let (a, b) = data.as_bytes().split_at(MAX_PIECE * 3 / 2 + 1);
        let mut out = s.push(a, &m).unwrap_or_default().into_owned();
        assert!(std::str::from_utf8(&out).is_ok());
        out.extend_from_slice(&s.push(b, &m).unwrap_or_default());
        out.extend(s.finish(&m).unwrap_or_default());
        assert_eq!(out, data.as_bytes());
        // Bytes that are not UTF-8 pass through unchanged.
        let mut s = LineSplitter::default();
        assert_eq!(
            s.push(b"\xff\xfe\n", &m).as_deref(),
            Some(&b"\xff\xfe\n"[..])
        );
    }

    #[test]
    fn a_quiet_unfinished_line_is_flushed_but_not_half_a_secret() {
        let m = Masker::new(["hunter2".to_string()]);
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"waiting for replica...", &m), None);
        assert_eq!(s.flush(&m).as_deref(), Some(&b"waiting for replica..."[..]));
        assert_eq!(s.flush(&m), None);
        // `hun` could be the start of the secret: it waits for what follows.
        assert_eq!(s.push(b" password hun", &m), None);
        assert_eq!(s.flush(&m).as_deref(), Some(&b" password "[..]));
        assert_eq!(s.push(b"ter2 ok\n", &m).as_deref(), Some(&b"*** ok\n"[..]));
        // Half a character waits for its other half.
        assert_eq!(s.push(&"50% €".as_bytes()[..6], &m), None);
        assert_eq!(s.flush(&m).as_deref(), Some(&b"50% "[..]));
        assert_eq!(s.finish(&m).as_deref(), Some(&"€".as_bytes()[..2]));
    }

    #[test]
    fn long_lines_are_emitted_in_pieces_without_splitting_a_secret() {
        let m = Masker::new(["secret".to_string()]);
        let mut s = LineSplitter::default();
        let mut data = vec![b'x'; MAX_PIECE];
        data.extend_from_slice(b"secr");
        let mut all = s.push(&data, &m).unwrap_or_default().into_owned();
        all.extend_from_slice(&s.push(b"et\n", &m).unwrap_or_default());
        all.extend(s.finish(&m).unwrap_or_default());
        assert!(all.ends_with(b"xx***\n"));
    }
}
