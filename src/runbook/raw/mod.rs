//! The first pass over a runbook file: TOML syntax, then the shape of every table (known
//! keys, types, durations, enumerations), all with spans and with every error collected.
//!
//! serde's derive stops at the first error, so this walks `toml`'s spanned `DeTable` tree
//! by hand instead.

mod alert;
mod step;

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, did_you_mean};
use super::hosts::Share;
use super::{Milestone, OnFailure};

/// Longest duration a runbook may give (a year): far beyond any real timeout, and short enough that
/// adding it to any instant, or multiplying a retry delay, cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(31_557_600);

/// A value with the byte span it came from.
#[derive(Debug, Clone)]
pub struct Loc<T> {
    pub value: T,
    pub span: Range<usize>,
}

/// A string field that is a Handlebars template, with where its text sits in the file.
#[derive(Debug, Clone)]
pub struct TemplateSite {
    pub field: String,
    pub text: String,
    /// Span of the whole TOML value (quotes included).
    pub span: Range<usize>,
    /// File offset of the template's first character, when the file holds the text verbatim
    /// (no escapes), so positions inside the template map exactly onto the file.
    pub verbatim_at: Option<usize>,
    /// Otherwise, for a basic string with escapes: the file offset of every byte of the
    /// text, and of its end.
    pub positions: Option<Vec<usize>>,
}

/// A `shell` as written: a name (`"bash"`) or the program and options to run commands
/// with (`["bash", "-c"]`).
#[derive(Debug, Clone)]
pub enum RawShell {
    Named(String),
    Argv(Vec<String>),
}

#[derive(Debug, Default)]
pub struct RawRunbook {
    pub title: Option<String>,
    pub shell: Option<Loc<RawShell>>,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub service: Option<String>,
    pub tags: Vec<String>,
    pub timeout: Option<Duration>,
    pub lock: bool,
    pub params: Vec<RawParam>,
    pub steps: Vec<RawStep>,
    pub alert: Option<RawAlert>,
}

/// One `label = "value"` of an `[alert] match`.
pub type Matcher = (Loc<String>, Loc<String>);

/// The `[alert]` table: which alerts start this runbook (issue 14).
#[derive(Debug)]
pub struct RawAlert {
    /// The table's span, for errors about it as a whole.
    pub span: Range<usize>,
    /// `match`: label name and value, all to be equal; `None` when absent.
    pub matchers: Option<Loc<Vec<Matcher>>>,
    pub diagnose: Option<Loc<bool>>,
}

#[derive(Debug)]
pub struct RawParam {
    pub name: Loc<String>,
    pub description: Option<String>,
    pub required: bool,
    pub default: Option<Loc<String>>,
    pub pattern: Option<Loc<String>>,
    pub env: Option<Loc<String>>,
    pub secret: bool,
    pub from_label: Option<Loc<String>>,
}

#[derive(Debug)]
pub struct RawStep {
    pub header: Range<usize>,
    pub id: Loc<String>,
    pub title: Option<String>,
    pub run: Option<TemplateSite>,
    pub manual: Option<TemplateSite>,
    pub needs: Option<Vec<Loc<String>>>,
    pub when: Option<TemplateSite>,
    pub confirm: Option<Loc<bool>>,
    pub timeout: Option<Loc<Duration>>,
    pub retries: Option<Loc<u32>>,
    pub retry_delay: Option<Loc<Duration>>,
    pub retry_backoff: Option<Loc<f64>>,
    pub on_failure: OnFailure,
    pub on_failure_span: Option<Range<usize>>,
    pub capture: Option<Loc<String>>,
    pub ask: Option<Loc<String>>,
    pub env: Vec<(Loc<String>, TemplateSite)>,
    pub dir: Option<TemplateSite>,
    pub readonly: Option<Loc<bool>>,
    pub rollback: Option<TemplateSite>,
    pub milestone: Option<(Milestone, Range<usize>)>,
    pub shell: Option<Loc<RawShell>>,
    /// `hosts`: the span of the whole value, and one template per string in it.
    pub hosts: Option<Loc<Vec<TemplateSite>>>,
    pub batch: Option<Loc<Share>>,
    pub max_failed: Option<Loc<Share>>,
}

const TOP_KEYS: &[&str] = &["runbook", "params", "step", "alert"];
const RUNBOOK_KEYS: &[&str] = &[
    "title",
    "description",
    "owner",
    "service",
    "tags",
    "timeout",
    "lock",
    "shell",
];
const PARAM_KEYS: &[&str] = &[
    "description",
    "required",
    "default",
    "pattern",
    "env",
    "secret",
    "from_label",
];
pub const STEP_KEYS: &[&str] = &[
    "id",
    "title",
    "run",
    "manual",
    "needs",
    "when",
    "confirm",
    "timeout",
    "retries",
    "retry_delay",
    "retry_backoff",
    "on_failure",
    "capture",
    "ask",
    "env",
    "dir",
    "readonly",
    "rollback",
    "milestone",
    "shell",
    "hosts",
    "batch",
    "max_failed",
];

/// Files up to this size have every TOML syntax error reported; larger ones the first.
const RECOVER_LIMIT: usize = 256 * 1024;

/// Largest `retries` accepted: more is a loop, not a retry policy.
const MAX_RETRIES: i64 = 100;

/// Parses `source`, pushing every problem found into `diags`. Returns the runbook's shape
/// when the TOML itself parsed, even if some fields were wrong, so later passes can report
/// their own errors too.
pub fn read(source: &str, diags: &mut Vec<Diagnostic>) -> Option<RawRunbook> {
    // Recovery finds every syntax error, at a cost of memory per error: a large file that is
    // not TOML at all would produce millions. Large files get the first error only.
    let (doc, errors) = if source.len() <= RECOVER_LIMIT {
        DeTable::parse_recoverable(source)
    } else {
        match DeTable::parse(source) {
            Ok(doc) => (doc, Vec::new()),
            Err(e) => (toml::Spanned::new(0..0, DeTable::default()), vec![e]),
        }
    };
    if !errors.is_empty() {
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            diags.push(Diagnostic::new(
                span,
                format!("TOML syntax: {}", e.message().trim_end()),
            ));
        }
        return None;
    }
    let mut r = Reader { diags, source };
    let doc = doc.into_inner();
    let mut out = RawRunbook {
        lock: true,
        ..RawRunbook::default()
    };
    r.unknown_keys(&doc, TOP_KEYS, "at the top level", "");

    match doc.get("runbook") {
        None => r.err(
            0..0,
            "missing the [runbook] table",
            Some("start the file with [runbook] and a title = \"...\""),
        ),
        Some(v) => {
            if let Some(t) = r.table(v, "[runbook]") {
                r.unknown_keys(t, RUNBOOK_KEYS, "in [runbook]", "");
                out.title = r.string(t, "title").map(|l| l.value);
                if out.title.is_none() && t.get("title").is_none() {
                    r.err(
                        v.span(),
                        "[runbook] has no `title`",
                        Some("add title = \"what this runbook does\""),
                    );
                }
                out.description = r.string(t, "description").map(|l| l.value);
                out.owner = r.string(t, "owner").map(|l| l.value);
                out.service = r.string(t, "service").map(|l| l.value);
                out.tags = r
                    .string_array(t, "tags")
                    .unwrap_or_default()
                    .into_iter()
                    .map(|l| l.value)
                    .collect();
                out.timeout = r.duration(t, "timeout").map(|l| l.value);
                out.lock = r.boolean(t, "lock").is_none_or(|l| l.value);
                out.shell = r.shell(t);
            }
        }
    }

    if let Some(v) = doc.get("params")
        && let Some(t) = r.table(v, "[params]")
    {
        for (name, value) in t {
            if let Some(p) = r.param(name, value) {
                out.params.push(p);
            }
        }
    }

    if let Some(v) = doc.get("alert") {
        out.alert = r.alert(v);
    }

    // A misspelt `[[steps]]` already has its own did-you-mean; do not also say "no steps".
    let misspelt_step = doc
        .keys()
        .any(|k| k.get_ref() != "step" && did_you_mean(k.get_ref(), ["step"]).is_some());
    match doc.get("step") {
        None if misspelt_step => {}
        None => r.err(
            source.len()..source.len(),
            "the runbook has no steps",
            Some("add at least one [[step]] with an id and a `run` or `manual`"),
        ),
        Some(v) => match v.get_ref() {
            DeValue::Array(items) => {
                for item in items.iter() {
                    if let Some(s) = r.step(item) {
                        out.steps.push(s);
                    }
                }
            }
            other => r.err(
                v.span(),
                format!(
                    "`step` must be an array of tables ([[step]]), found {}",
                    other.type_str()
                ),
                Some("write each step under its own [[step]] header"),
            ),
        },
    }
    Some(out)
}

struct Reader<'d> {
    diags: &'d mut Vec<Diagnostic>,
    source: &'d str,
}

type Value<'i> = Spanned<DeValue<'i>>;

impl Reader<'_> {
    fn err(&mut self, span: Range<usize>, msg: impl Into<String>, help: Option<&str>) {
        let mut d = Diagnostic::new(span, msg);
        if let Some(h) = help {
            d = d.with_help(h);
        }
        self.diags.push(d);
    }

    fn type_err(&mut self, v: &Value<'_>, key: &str, expected: &str) {
        self.err(
            v.span(),
            format!(
                "`{key}` must be {expected}, found {}",
                v.get_ref().type_str()
            ),
            None,
        );
    }

    fn unknown_keys(&mut self, t: &DeTable<'_>, known: &[&str], place: &str, extra_help: &str) {
        for key in t.keys() {
            if known.contains(&key.get_ref().as_ref()) {
                continue;
            }
            let help = match did_you_mean(key.get_ref(), known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("known keys: {}{extra_help}", known.join(", ")),
            };
            self.err(
                key.span(),
                format!("unknown key `{}` {place}", key.get_ref()),
                Some(&help),
            );
        }
    }

    fn table<'a, 'i>(&mut self, v: &'a Value<'i>, what: &str) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.err(
                    v.span(),
                    format!("{what} must be a table, found {}", other.type_str()),
                    None,
                );
                None
            }
        }
    }

    /// Runbook text is shown to people and run by shells: a character that drives a
    /// terminal (ESC, BEL, a carriage return that is not part of a line break, a bidi
    /// override) has no business in it. Newlines and tabs are text.
    fn printable(&mut self, text: &str, span: Range<usize>, key: &str) {
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let line_break = c == '\n' || c == '\t' || (c == '\r' && chars.peek() == Some(&'\n'));
            if crate::format::drives_terminal(c) && !line_break {
                self.err(
                    span,
                    format!("`{key}` holds the control character U+{:04X}", c as u32),
                    Some("runbook text is shown on terminals: write an escape sequence the way the command spells it (printf '\\033[1m'), not as the raw character"),
                );
                return;
            }
        }
    }

    fn string(&mut self, t: &DeTable<'_>, key: &str) -> Option<Loc<String>> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => {
                self.printable(s, v.span(), key);
                Some(Loc {
                    value: s.to_string(),
                    span: v.span(),
                })
            }
            _ => {
                self.type_err(v, key, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, t: &DeTable<'_>, key: &str) -> Option<Loc<bool>> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Loc {
                value: *b,
                span: v.span(),
            }),
            _ => {
                self.type_err(v, key, "true or false");
                None
            }
        }
    }

    fn string_array(&mut self, t: &DeTable<'_>, key: &str) -> Option<Vec<Loc<String>>> {
        let v = t.get(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.type_err(v, key, "an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => {
                    self.printable(s, item.span(), key);
                    out.push(Loc {
                        value: s.to_string(),
                        span: item.span(),
                    })
                }
                other => self.err(
                    item.span(),
                    format!("`{key}` must hold only strings, found {}", other.type_str()),
                    None,
                ),
            }
        }
        Some(out)
    }

    fn duration(&mut self, t: &DeTable<'_>, key: &str) -> Option<Loc<Duration>> {
        let s = self.string(t, key)?;
        match humantime::parse_duration(s.value.trim()) {
            Ok(d) if d.is_zero() => {
                self.err(s.span, format!("`{key}` must be longer than zero"), None);
                None
            }
            Ok(d) if d > MAX_DURATION => {
                self.err(
                    s.span,
                    format!("`{key}` is longer than {}, the longest accepted", humantime::format_duration(MAX_DURATION)),
                    Some("a runbook waits minutes or hours, not years; no timeout at all means no limit"),
                );
                None
            }
            Ok(d) => Some(Loc {
                value: d,
                span: s.span,
            }),
            Err(e) => {
                self.err(
                    s.span,
                    format!("`{key}` is not a duration: {e}"),
                    Some("write durations like \"30s\", \"5m\", \"1h 30m\""),
                );
                None
            }
        }
    }

    fn shell(&mut self, t: &DeTable<'_>) -> Option<Loc<RawShell>> {
        let v = t.get("shell")?;
        let value = match v.get_ref() {
            DeValue::String(s) => RawShell::Named(s.to_string()),
            DeValue::Array(_) => RawShell::Argv(
                self.string_array(t, "shell")?
                    .into_iter()
                    .map(|l| l.value)
                    .collect(),
            ),
            _ => {
                self.type_err(v, "shell", "a shell's name or an array of strings");
                return None;
            }
        };
        Some(Loc {
            value,
            span: v.span(),
        })
    }

    fn template(&mut self, t: &DeTable<'_>, key: &str) -> Option<TemplateSite> {
        let s = self.string(t, key)?;
        Some(self.site(key.to_string(), s))
    }

    /// A template site; when the file holds the text verbatim (no escapes), positions
    /// inside the template map exactly onto the file.
    fn site(&self, field: String, s: Loc<String>) -> TemplateSite {
        let token = self.source.get(s.span.clone());
        let verbatim_at = token
            .and_then(|raw| raw.find(s.value.as_str()))
            .filter(|_| !s.value.is_empty())
            .map(|i| s.span.start + i);
        let positions = match (verbatim_at, token) {
            (None, Some(token)) => escaped_positions(token, s.span.start, &s.value),
            _ => None,
        };
        TemplateSite {
            field,
            text: s.value,
            span: s.span,
            verbatim_at,
            positions,
        }
    }

    fn enum_err(&mut self, span: Range<usize>, key: &str, got: &str, allowed: &[&str]) {
        let help = match did_you_mean(got, allowed.iter().copied()) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => format!("use one of: {}", allowed.join(", ")),
        };
        self.err(span, format!("`{key}` cannot be \"{got}\""), Some(&help));
    }
}

/// For a basic TOML string (`"..."` or `"""..."""`) that holds escapes, which `token`
/// (its text in the file, at `start`) decodes to `value`: the file offset of every byte of
/// the value, and of its end, so that a position inside a template maps onto the file.
fn escaped_positions(token: &str, start: usize, value: &str) -> Option<Vec<usize>> {
    let open = if token.starts_with("\"\"\"") {
        3
    } else if token.starts_with('"') {
        1
    } else {
        return None;
    };
    let mut body_at = open;
    let mut body = token.get(open..token.len().checked_sub(open)?)?;
    // A newline right after the opening """ is not part of the value.
    if open == 3 {
        let skip = if body.starts_with("\r\n") {
            2
        } else {
            usize::from(body.starts_with('\n'))
        };
        body = &body[skip..];
        body_at += skip;
    }
    let mut out = Vec::with_capacity(value.len() + 1);
    let mut decoded = String::with_capacity(value.len());
    let mut chars = body.char_indices().peekable();
    let hex = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, n: usize| {
        let digits: String = (0..n)
            .filter_map(|_| chars.next().map(|(_, c)| c))
            .collect();
        u32::from_str_radix(&digits, 16)
            .ok()
            .and_then(char::from_u32)
    };
    while let Some((i, c)) = chars.next() {
        let at = start + body_at + i;
        let c = if c != '\\' {
            c
        } else {
            match chars.next()?.1 {
                'b' => '\u{8}',
                't' => '\t',
                'n' => '\n',
                'f' => '\u{c}',
                'r' => '\r',
                'e' => '\u{1b}',
                '"' => '"',
                '\\' => '\\',
                'x' => hex(&mut chars, 2)?,
                'u' => hex(&mut chars, 4)?,
                'U' => hex(&mut chars, 8)?,
                // A line-ending backslash: the newline and the blanks after it are dropped.
                w if open == 3 && w.is_whitespace() => {
                    while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                        chars.next();
                    }
                    continue;
                }
                _ => return None,
            }
        };
        decoded.push(c);
        out.extend(std::iter::repeat_n(at, c.len_utf8()));
    }
    out.push(start + token.len() - open);
    (decoded == value).then_some(out)
}
