//! Secret values never reach the terminal, the log or a report: every text that leaves
//! the executor goes through a [`Masker`], which knows every form a secret takes in output,
//! and output is split so that a secret arriving across two reads, or across the cut of a
//! long line, is still seen whole. (Commands never hold a secret: it reaches them through
//! their environment, see `crate::runbook::shell`.)

use std::borrow::Cow;

pub use crate::runbook::shell::SECRET_SEARCH_MIN;

pub const MASK: &str = "***";

#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Every form of every secret, longest first, so a form that contains another is
    /// masked whole.
    secrets: Vec<String>,
}

/// The forms a secret takes in output: as it is; each line of a multi-line value (a PEM
/// key printed line by line, or a line at a time); quoted for a shell, as `set -x` and
/// `printf %q` write it (`'it'\''s'`, `it\'s`); escaped in a JSON string. Forms shorter than
/// [`SECRET_SEARCH_MIN`] are not searched for: they would hide every `0` or `no` on screen.
pub fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_string()];
    if secret.contains('\n') {
        out.extend(secret.lines().map(|l| l.trim_end_matches('\r').to_string()));
    }
    out.push(secret.replace('\'', r"'\''"));
    let mut backslashed = String::with_capacity(secret.len() * 2);
    for c in secret.chars() {
        if !(c.is_ascii_alphanumeric() || "_./:=+@%,-".contains(c) || !c.is_ascii()) {
            backslashed.push('\\');
        }
        backslashed.push(c);
    }
    out.push(backslashed);
    if let Ok(json) = serde_json::to_string(secret) {
        out.push(json[1..json.len() - 1].to_string());
    }
    out.retain(|f| f.len() >= SECRET_SEARCH_MIN);
    out
}

impl Masker {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().flat_map(|s| forms(&s)).collect();
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
    /// Feeds bytes; hands what is ready to `emit`, masked: whole lines, or a bounded piece
    /// of a line too long to wait for; at most one piece per call. Lines are copied only
    /// when they finish a line an earlier call left unfinished.
    pub fn push(&mut self, bytes: &[u8], masker: &Masker, mut emit: impl FnMut(&[u8])) {
        let Some(last) = memchr::memrchr(b'\n', bytes) else {
            self.pending.extend_from_slice(bytes);
            if self.pending.len() > MAX_PIECE {
                // Mask first, then cut: a secret that ends in this piece is masked whole, and
                // one that may go on in the next read lies wholly in the tail held back.
                if let Cow::Owned(masked) = masker.mask_bytes(&self.pending) {
                    self.pending = masked;
                }
                let cut = self.pending.len().saturating_sub(masker.holdback());
                let cut = char_boundary_before(&self.pending, cut);
                if cut > 0 {
                    emit(&self.pending[..cut]);
                    self.pending.drain(..cut);
                }
            }
            return;
        };
        if self.pending.is_empty() {
            emit(&masker.mask_bytes(&bytes[..=last]));
        } else {
            // One piece (one write to the terminal, one record) for the line's start and
            // the lines after it, at the cost of one copy into a buffer that is kept.
            self.pending.extend_from_slice(&bytes[..=last]);
            emit(&masker.mask_bytes(&self.pending));
            self.pending.clear();
        }
        self.pending.extend_from_slice(&bytes[last + 1..]);
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

    /// What one push hands on, all pieces together; `None` when nothing.
    fn push(s: &mut LineSplitter, bytes: &[u8], m: &Masker) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        s.push(bytes, m, |piece| {
            out.get_or_insert_default().extend_from_slice(piece);
        });
        out
    }

    #[test]
    fn a_line_finished_by_a_read_comes_out_whole_with_the_lines_after_it() {
        let m = Masker::new(["hunter2".to_string()]);
        let mut s = LineSplitter::default();
        let mut pieces: Vec<Vec<u8>> = Vec::new();
        let mut feed = |s: &mut LineSplitter, bytes: &[u8]| {
            s.push(bytes, &m, |p| pieces.push(p.to_vec()));
        };
        feed(&mut s, b"one\ntw");
        feed(&mut s, b"o hun");
        feed(&mut s, b"ter2\nthree\nfour hunter2\nfi");
        assert_eq!(s.finish(&m).as_deref(), Some(&b"fi"[..]));
        let pieces: Vec<&str> = pieces
            .iter()
            .map(|p| std::str::from_utf8(p).unwrap_or("?"))
            .collect();
        assert_eq!(pieces, ["one\n", "two ***\nthree\nfour ***\n"]);
    }

    #[test]
    fn any_cut_of_a_stream_gives_back_the_same_lines() {
        let m = Masker::new(["hunter2".to_string()]);
        let text = b"alpha\nbeta hunter2 gamma\n\ndelta hunter2\nepsilon";
        let masked = b"alpha\nbeta *** gamma\n\ndelta ***\nepsilon";
        for a in 0..text.len() {
            for b in a..text.len() {
                let mut s = LineSplitter::default();
                let mut out = Vec::new();
                for part in [&text[..a], &text[a..b], &text[b..]] {
                    s.push(part, &m, |p| {
                        assert!(p.ends_with(b"\n"), "a piece that is not whole lines: {p:?}");
                        out.extend_from_slice(p);
                    });
                }
                out.extend(s.finish(&m).unwrap_or_default());
                assert_eq!(out, masked, "cut at {a} and {b}");
            }
        }
    }

    #[test]
    fn masks_secrets_split_across_reads() {
        let m = Masker::new(["hunter2".to_string()]);
        let mut s = LineSplitter::default();
        assert_eq!(push(&mut s, b"password: hun", &m), None);
        assert_eq!(
            push(&mut s, b"ter2\nnext", &m).as_deref(),
            Some(&b"password: ***\n"[..])
        );
        assert_eq!(s.finish(&m).as_deref(), Some(&b"next"[..]));
    }

    #[test]
    fn whole_lines_are_masked_on_the_fast_path_too() {
        let m = Masker::new(["hunter2".to_string()]);
        let mut s = LineSplitter::default();
        assert_eq!(
            push(&mut s, b"a hunter2\nb hun", &m).as_deref(),
            Some(&b"a ***\n"[..])
        );
        assert_eq!(
            push(&mut s, b"ter2\n", &m).as_deref(),
            Some(&b"b ***\n"[..])
        );
        assert_eq!(s.finish(&m), None);
    }

    #[test]
    fn long_lines_without_secrets_are_emitted_in_pieces() {
        let m = Masker::default();
        let mut s = LineSplitter::default();
        // A character split across two reads is never cut in half.
        let data = "€".repeat(MAX_PIECE);
        let (a, b) = data.as_bytes().split_at(MAX_PIECE * 3 / 2 + 1);
        let mut out = push(&mut s, a, &m).unwrap_or_default();
        assert!(std::str::from_utf8(&out).is_ok());
        out.extend_from_slice(&push(&mut s, b, &m).unwrap_or_default());
        out.extend(s.finish(&m).unwrap_or_default());
        assert_eq!(out, data.as_bytes());
        // Bytes that are not UTF-8 pass through unchanged.
        let mut s = LineSplitter::default();
        assert_eq!(
            push(&mut s, b"\xff\xfe\n", &m).as_deref(),
            Some(&b"\xff\xfe\n"[..])
        );
    }

    #[test]
    fn a_secret_that_ends_just_past_the_cut_is_masked_whole() {
        let m = Masker::new(["hunter2-long".to_string()]);
        for before in MAX_PIECE - 14..MAX_PIECE + 3 {
            let mut s = LineSplitter::default();
            let mut data = vec![b'x'; before];
            data.extend_from_slice(b"hunter2-long");
            let mut all = push(&mut s, &data, &m).unwrap_or_default();
            all.extend_from_slice(&push(&mut s, b"yy\n", &m).unwrap_or_default());
            all.extend(s.finish(&m).unwrap_or_default());
            assert!(all.ends_with(b"x***yy\n"), "{before}");
            assert_eq!(all.len(), before + 6, "{before}");
        }
    }

    #[test]
    fn every_form_of_a_secret_is_masked_and_short_ones_are_not_searched() {
        let pem = "-----BEGIN KEY-----\nMIIBVgIBADANBgkq\nhkiG9w0BAQEF\n==\n-----END KEY-----";
        let m = Masker::new([pem.to_string(), "it's $x".to_string(), "0".to_string()]);
        assert_eq!(m.mask("MIIBVgIBADANBgkq"), "***");
        assert_eq!(m.mask("a hkiG9w0BAQEF b"), "a *** b");
        assert_eq!(m.mask(pem), "***");
        assert_eq!(m.mask("== and 0"), "== and 0");
        assert_eq!(m.mask("+ echo 'it'\\''s $x'"), "+ echo '***'");
        assert_eq!(m.mask("it\\'s\\ \\$x"), "***");
        assert_eq!(m.mask(r#"{"k":"it's $x"}"#), r#"{"k":"***"}"#);
    }

    #[test]
    fn a_quiet_unfinished_line_is_flushed_but_not_half_a_secret() {
        let m = Masker::new(["hunter2".to_string()]);
        let mut s = LineSplitter::default();
        assert_eq!(push(&mut s, b"waiting for replica...", &m), None);
        assert_eq!(s.flush(&m).as_deref(), Some(&b"waiting for replica..."[..]));
        assert_eq!(s.flush(&m), None);
        // `hun` could be the start of the secret: it waits for what follows.
        assert_eq!(push(&mut s, b" password hun", &m), None);
        assert_eq!(s.flush(&m).as_deref(), Some(&b" password "[..]));
        assert_eq!(
            push(&mut s, b"ter2 ok\n", &m).as_deref(),
            Some(&b"*** ok\n"[..])
        );
        // Half a character waits for its other half.
        assert_eq!(push(&mut s, &"50% €".as_bytes()[..6], &m), None);
        assert_eq!(s.flush(&m).as_deref(), Some(&b"50% "[..]));
        assert_eq!(s.finish(&m).as_deref(), Some(&"€".as_bytes()[..2]));
    }

    #[test]
    fn long_lines_are_emitted_in_pieces_without_splitting_a_secret() {
        let m = Masker::new(["secret".to_string()]);
        let mut s = LineSplitter::default();
        let mut data = vec![b'x'; MAX_PIECE];
        data.extend_from_slice(b"secr");
        let mut all = push(&mut s, &data, &m).unwrap_or_default();
        all.extend_from_slice(&push(&mut s, b"et\n", &m).unwrap_or_default());
        all.extend(s.finish(&m).unwrap_or_default());
        assert!(all.ends_with(b"xx***\n"));
    }
}
