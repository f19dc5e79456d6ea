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

    /// Bytes to hold back at the end of an unfinished line so a secret split across reads
    /// is not emitted in two halves.
    pub fn holdback(&self) -> usize {
        self.secrets
            .first()
            .map_or(0, |s| s.len().saturating_sub(1))
    }
}

/// Turns a byte stream into masked text pieces: whole lines when they come, and long
/// unfinished lines in bounded pieces (keeping a tail back for secrets).
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

/// Longest piece of an unfinished line emitted at once.
const MAX_PIECE: usize = 64 * 1024;

impl LineSplitter {
    /// Feeds bytes; returns text ready to emit (possibly empty).
    pub fn push(&mut self, bytes: &[u8], masker: &Masker) -> Option<String> {
        self.pending.extend_from_slice(bytes);
        let cut = match self.pending.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if self.pending.len() > MAX_PIECE => {
                let mut cut = self.pending.len().saturating_sub(masker.holdback());
                // Do not split a UTF-8 character.
                while cut > 0 && self.pending.get(cut).is_some_and(|&b| (b & 0xC0) == 0x80) {
                    cut -= 1;
                }
                cut
            }
            None => return None,
        };
        if cut == 0 {
            return None;
        }
        let rest = self.pending.split_off(cut);
        let piece = std::mem::replace(&mut self.pending, rest);
        Some(masker.mask(&String::from_utf8_lossy(&piece)).into_owned())
    }

    /// What is left at the end of the stream.
    pub fn finish(&mut self, masker: &Masker) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let piece = std::mem::take(&mut self.pending);
        Some(masker.mask(&String::from_utf8_lossy(&piece)).into_owned())
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
            Some("password: ***\n")
        );
        assert_eq!(s.finish(&m).as_deref(), Some("next"));
    }

    #[test]
    fn long_lines_without_secrets_are_emitted_in_pieces() {
        let m = Masker::default();
        let mut s = LineSplitter::default();
        let data = "é".repeat(MAX_PIECE);
        let first = s.push(data.as_bytes(), &m).unwrap_or_default();
        assert_eq!(first.len(), data.len());
        assert_eq!(s.finish(&m), None);
    }

    #[test]
    fn long_lines_are_emitted_in_pieces_without_splitting_a_secret() {
        let m = Masker::new(["secret".to_string()]);
        let mut s = LineSplitter::default();
        let mut data = vec![b'x'; MAX_PIECE];
        data.extend_from_slice(b"secr");
        let first = s.push(&data, &m).unwrap_or_default();
        let rest = format!(
            "{}{}",
            s.push(b"et\n", &m).unwrap_or_default(),
            s.finish(&m).unwrap_or_default()
        );
        let all = first + &rest;
        assert!(all.ends_with("xx***\n"), "{}", &all[all.len() - 10..]);
    }
}
