//! Writing a value into a command so that the shell receives exactly that value, as data,
//! in the context the lexer found for it; and the marks that carry values through
//! Handlebars until their context is known.

use super::lexer::{Context, Slot};

/// A value in rendered text is `MARK_OPEN`, its UTF-8 bytes in hex, `MARK_CLOSE`: two
/// noncharacters, so the value cannot be read as command text before it is quoted. Text
/// that only looks like a mark is at worst read as one more value, that is, as data.
const MARK_OPEN: char = '\u{FDD0}';
const MARK_CLOSE: char = '\u{FDD1}';

/// The escape function of command templates: every `{{x}}` becomes a mark.
pub fn mark(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 2 + 6);
    out.push(MARK_OPEN);
    for b in value.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out.push(MARK_CLOSE);
    out
}

/// A piece of rendered command text: text from the template, or a marked value.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Value(String),
}

/// Splits rendered text at its marks.
pub fn pieces(rendered: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = rendered;
    while let Some(open) = rest.find(MARK_OPEN) {
        let after = &rest[open + MARK_OPEN.len_utf8()..];
        let decoded = after
            .find(MARK_CLOSE)
            .and_then(|close| decode(&after[..close]).map(|v| (close, v)));
        let Some((close, value)) = decoded else {
            // Not a mark after all: text.
            let end = open + MARK_OPEN.len_utf8();
            out.push(Piece::Text(&rest[..end]));
            rest = &rest[end..];
            continue;
        };
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        out.push(Piece::Value(value));
        rest = &after[close + MARK_CLOSE.len_utf8()..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

fn decode(hex: &str) -> Option<String> {
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Characters a value may keep unquoted in a word: nothing a shell reads specially there.
fn plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:=+@%-".contains(&b))
}

/// `value` written for `slot`. `reference` is the name of an environment variable that
/// holds it: then the command holds a reference to it, never the value itself.
pub fn quote(value: &str, slot: &Slot, reference: Option<&str>) -> String {
    let text = match (&slot.context, reference) {
        (Context::Word { .. }, Some(name)) => format!("\"${{{name}}}\""),
        (Context::Word { quote_always }, None) if plain(value) && !quote_always => value.into(),
        (Context::Word { .. }, None) => format!("'{}'", value.replace('\'', r"'\''")),
        (Context::Single, Some(name)) => format!("'\"${{{name}}}\"'"),
        (Context::Single, None) => value.replace('\'', r"'\''"),
        (Context::Double, Some(name)) => format!("${{{name}}}"),
        (Context::Double, None) => backslashed(value, "\\$`\""),
        (Context::HereDoc { .. }, Some(name)) => format!("${{{name}}}"),
        (
            Context::HereDoc {
                delimiter,
                strip_tabs,
                line_open,
            },
            None,
        ) => here_lines(value, delimiter, *strip_tabs, *line_open),
        (Context::Comment, Some(name)) => format!("${name}"),
        (Context::Comment, None) => value.replace(['\n', '\r'], " "),
    };
    match slot.backquotes {
        0 => text,
        // Inside backquotes the shell first removes one `\` before `\`, `` ` `` and `$`.
        _ => backslashed(&text, "\\$`"),
    }
}

/// `value` with a `\` before each of `special`.
fn backslashed(value: &str, special: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if special.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Expands to nothing, even under `set -u`: put in a here-document's raw line before a
/// value, it keeps that line from being read as the delimiter (or losing its leading tabs
/// to `<<-`) while the line the command receives is unchanged.
const LINE_GUARD: &str = "${RUNBOOK+}";

/// A value in an unquoted here-document: `\`, `$` and `` ` `` escaped, and guarded where a
/// raw line could end the document early. The value's first line is guarded when the line
/// so far could still become the delimiter (`line_open`: `EO{{x}}` with `F`); each later
/// line when it starts like the delimiter, starts with a tab under `<<-`, or is the empty
/// end of the value (the template's text follows it). Starting like the delimiter is
/// enough: dash 0.5 also loses a byte at or above 0x80 that follows the start of the
/// delimiter on a line.
fn here_lines(value: &str, delimiter: &str, strip_tabs: bool, line_open: bool) -> String {
    let mut out = String::with_capacity(value.len() + 16);
    let first = delimiter.chars().next();
    let lines: Vec<&str> = value.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let escaped = backslashed(line, "\\$`");
        let risky = if i == 0 {
            line_open
        } else {
            out.push('\n');
            (strip_tabs && line.starts_with('\t'))
                || first.is_some_and(|c| escaped.starts_with(c))
                || (i + 1 == lines.len() && escaped.is_empty())
        };
        if risky {
            out.push_str(LINE_GUARD);
        }
        out.push_str(&escaped);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(context: Context) -> Slot {
        Slot {
            context,
            backquotes: 0,
        }
    }

    #[test]
    fn marks_round_trip_and_strays_stay_text() {
        let text = format!("echo {} x{}", mark("a'b\n€"), mark(""));
        assert_eq!(
            pieces(&text),
            [
                Piece::Text("echo "),
                Piece::Value("a'b\n€".into()),
                Piece::Text(" x"),
                Piece::Value(String::new()),
            ]
        );
        let stray = "a\u{FDD0}zz\u{FDD1}b\u{FDD0}";
        let joined: String = pieces(stray)
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.to_string(),
                Piece::Value(v) => format!("<{v}>"),
            })
            .collect();
        assert_eq!(joined, stray);
    }

    #[test]
    fn each_context_has_its_quoting() {
        let word = slot(Context::Word {
            quote_always: false,
        });
        assert_eq!(quote("db-2", &word, None), "db-2");
        assert_eq!(quote("a b'c", &word, None), r"'a b'\''c'");
        assert_eq!(quote("", &word, None), "''");
        assert_eq!(
            quote("x", &word, Some("RUNBOOK_SECRET_X")),
            "\"${RUNBOOK_SECRET_X}\""
        );
        assert_eq!(quote("it's", &slot(Context::Single), None), r"it'\''s");
        assert_eq!(
            quote("$(id) `x` \\ \"", &slot(Context::Double), None),
            r#"\$(id) \`x\` \\ \""#
        );
        let here = slot(Context::HereDoc {
            delimiter: "EOF".into(),
            strip_tabs: true,
            line_open: true,
        });
        assert_eq!(
            quote("EOF\n\tx\nE", &here, None),
            "${RUNBOOK+}EOF\n${RUNBOOK+}\tx\n${RUNBOOK+}E"
        );
        assert_eq!(quote("a\nb", &slot(Context::Comment), None), "a b");
        let inner = Slot {
            context: Context::Word {
                quote_always: false,
            },
            backquotes: 1,
        };
        assert_eq!(quote("$x\\", &inner, None), r"'\$x\\'");
    }
}
