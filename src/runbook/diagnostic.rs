//! Located errors in runbook files, rendered the way rustc and just draw them:
//! `path:line:col: error: message`, then the offending line with a caret under the span.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::format::{Shown, Tone, drives_terminal, paint, visible};

/// One problem found in a runbook file, located by a byte span into its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub span: Range<usize>,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            span,
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The diagnostics of one file together with the text they point into.
#[derive(Debug)]
pub struct Report {
    pub path: PathBuf,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
}

/// Line starts of a text, for finding many offsets' lines in O(log n) each.
pub struct LineIndex(Vec<usize>);

impl LineIndex {
    pub fn new(source: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(
                source
                    .bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        LineIndex(starts)
    }

    /// The 1-based line holding byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset)
    }
}

/// Most diagnostics drawn for one file; the rest are counted.
pub const MAX_SHOWN: usize = 100;

/// A 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let before = &source[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = source[line_start..offset].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Report {
    /// Renders the diagnostics in file order (the first [`MAX_SHOWN`]), with `colour`
    /// choosing ANSI styling.
    pub fn render(&self, colour: bool) -> String {
        let mut out = String::new();
        for d in self.diagnostics.iter().take(MAX_SHOWN) {
            out.push_str(&render_one(&self.path, &self.source, d, colour));
        }
        if self.diagnostics.len() > MAX_SHOWN {
            out.push_str(&format!(
                "{}: ... and {} more errors not shown\n",
                self.path.display(),
                self.diagnostics.len() - MAX_SHOWN
            ));
        }
        out
    }
}

fn render_one(path: &Path, source: &str, d: &Diagnostic, colour: bool) -> String {
    let style = Style(colour);
    let (line, col) = line_col(source, d.span.start);
    let mut out = format!(
        "{}:{line}:{col}: {} {}\n",
        path.display(),
        style.error("error:"),
        style.bold(&visible(&d.message, Shown::Text))
    );
    let start = floor_char_boundary(source, d.span.start.min(source.len()));
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[start..]
        .find('\n')
        .map_or(source.len(), |i| start + i);
    let text = source[line_start..line_end].trim_end_matches('\r');
    // Long lines (a minified file, a huge value) are shown as a window around the caret.
    const WIDTH: usize = 160;
    let chars: Vec<char> = text.chars().map(printable).collect();
    let caret_col = col - 1;
    let from = if caret_col > WIDTH / 2 {
        caret_col - WIDTH / 4
    } else {
        0
    };
    let to = (from + WIDTH).min(chars.len());
    let mut shown: String = chars[from.min(to)..to].iter().collect();
    let mut caret_at = caret_col - from;
    if from > 0 {
        shown.insert_str(0, "...");
        caret_at += 3;
    }
    if to < chars.len() {
        shown.push_str("...");
    }
    let end = floor_char_boundary(source, d.span.end.clamp(start, line_end));
    let caret_len = source[start..end]
        .chars()
        .count()
        .clamp(1, (to + 1).saturating_sub(caret_col).max(1));
    let gutter = line.to_string().len();
    let pad = " ".repeat(gutter);
    out.push_str(&format!("{pad} {}\n", style.blue("|")));
    out.push_str(&format!(
        "{} {} {shown}\n",
        style.blue(&line.to_string()),
        style.blue("|")
    ));
    out.push_str(&format!(
        "{pad} {} {}{}\n",
        style.blue("|"),
        " ".repeat(caret_at),
        style.error(&"^".repeat(caret_len))
    ));
    if let Some(help) = &d.help {
        let help = visible(help, Shown::Text);
        out.push_str(&format!("{pad} {} {help}\n", style.blue("= help:")));
    }
    out
}

/// One column per character: tabs become spaces, anything that could drive the terminal
/// a visible mark.
fn printable(c: char) -> char {
    match c {
        '\t' => ' ',
        c if drives_terminal(c) => '\u{FFFD}',
        c => c,
    }
}

/// The colours of a diagnostic, when colour is on.
struct Style(bool);

impl Style {
    fn error(&self, s: &str) -> String {
        paint(s, Tone::Error, self.0)
    }
    fn bold(&self, s: &str) -> String {
        paint(s, Tone::Strong, self.0)
    }
    fn blue(&self, s: &str) -> String {
        paint(s, Tone::Frame, self.0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

/// The closest candidate to `word`, when it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|&(d, c)| d <= 2.max(c.len() / 4) && d < c.len().max(word.len()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(did_you_mean("neds", ["needs", "when"]), Some("needs"));
        assert_eq!(
            did_you_mean("steps", ["runbook", "params", "step"]),
            Some("step")
        );
        assert_eq!(did_you_mean("zzz", ["needs", "when"]), None);
    }

    #[test]
    fn line_col_counts_characters() {
        let s = "a = 1\nbé = 2\n";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 6), (2, 1));
        assert_eq!(line_col(s, 10), (2, 4));
        let index = LineIndex::new(s);
        assert_eq!(
            [index.line(0), index.line(5), index.line(6), index.line(10)],
            [1, 1, 2, 2]
        );
    }
}
