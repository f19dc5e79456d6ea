//! Text for a terminal of a given width: wrapped at words, each line's indentation kept on
//! the lines it wraps into (and a command's continuation lines under its text).

/// The terminal's width in columns (80 when it cannot be told).
pub(crate) fn width() -> usize {
    let (_, cols) = console::Term::stderr().size();
    if cols == 0 { 80 } else { usize::from(cols) }
}

/// `text` wrapped at words to `width` columns.
pub(crate) fn wrap(text: &str, width: usize) -> String {
    let width = width.max(20);
    let mut out = String::with_capacity(text.len() + 16);
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        if console::measure_text_width(line) <= width {
            out.push_str(line);
            continue;
        }
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        // `$ command`, `- item`, `| output`: the wrapped part goes under the text.
        let hang = ["$ ", "- ", "* ", "| "]
            .iter()
            .find(|p| body.starts_with(**p))
            .map_or(0, |p| p.len());
        let sub = format!("{indent}{}", " ".repeat(hang));
        let opts = textwrap::Options::new(width)
            .initial_indent(indent)
            .subsequent_indent(&sub)
            // A path or a URL is copied whole: it overflows rather than breaks.
            .break_words(false);
        let lines = textwrap::wrap(body, opts);
        out.push_str(&lines.join("\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_words_and_keeps_the_indentation() {
        let text = "    Power off the old primary from the console and check that it no longer answers.\nshort";
        assert_eq!(
            wrap(text, 40),
            "    Power off the old primary from the\n    console and check that it no longer\n    answers.\nshort"
        );
        assert_eq!(
            wrap(
                "     $ psql -h db-2 -Atc 'select now() - pg_last_xact_replay_timestamp()'",
                40
            ),
            "     $ psql -h db-2 -Atc 'select now() -\n       pg_last_xact_replay_timestamp()'"
        );
    }
}
