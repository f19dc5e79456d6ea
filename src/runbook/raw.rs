//! The first pass over a runbook file: TOML syntax, then the shape of every table (known
//! keys, types, durations, enumerations), all with spans and with every error collected.
//!
//! serde's derive stops at the first error, so this walks `toml`'s spanned `DeTable` tree
//! by hand instead.

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
}

#[derive(Debug, Default)]
pub struct RawRunbook {
    pub title: Option<String>,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub service: Option<String>,
    pub tags: Vec<String>,
    pub timeout: Option<Duration>,
    pub lock: bool,
    pub params: Vec<RawParam>,
    pub steps: Vec<RawStep>,
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
    /// `hosts`: the span of the whole value, and one template per string in it.
    pub hosts: Option<Loc<Vec<TemplateSite>>>,
    pub batch: Option<Loc<Share>>,
    pub max_failed: Option<Loc<Share>>,
}

const TOP_KEYS: &[&str] = &["runbook", "params", "step"];
const RUNBOOK_KEYS: &[&str] = &[
    "title",
    "description",
    "owner",
    "service",
    "tags",
    "timeout",
    "lock",
];
const PARAM_KEYS: &[&str] = &[
    "description",
    "required",
    "default",
    "pattern",
    "env",
    "secret",
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

    fn string(&mut self, t: &DeTable<'_>, key: &str) -> Option<Loc<String>> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Loc {
                value: s.to_string(),
                span: v.span(),
            }),
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
                DeValue::String(s) => out.push(Loc {
                    value: s.to_string(),
                    span: item.span(),
                }),
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

    fn template(&mut self, t: &DeTable<'_>, key: &str) -> Option<TemplateSite> {
        let s = self.string(t, key)?;
        Some(self.site(key.to_string(), s))
    }

    /// A template site; when the file holds the text verbatim (no escapes), positions
    /// inside the template map exactly onto the file.
    fn site(&self, field: String, s: Loc<String>) -> TemplateSite {
        let verbatim_at = self
            .source
            .get(s.span.clone())
            .and_then(|raw| raw.find(s.value.as_str()))
            .filter(|_| !s.value.is_empty())
            .map(|i| s.span.start + i);
        TemplateSite {
            field,
            text: s.value,
            span: s.span,
            verbatim_at,
        }
    }

    fn param(
        &mut self,
        name: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Value<'_>,
    ) -> Option<RawParam> {
        let what = format!("[params.{}]", name.get_ref());
        let t = self.table(value, &what)?;
        self.unknown_keys(t, PARAM_KEYS, &format!("in {what}"), "");
        let default = match t.get("default") {
            None => None,
            Some(v) => match v.get_ref() {
                DeValue::String(s) => Some(s.to_string()),
                DeValue::Integer(i) => Some(i.as_str().to_string()),
                DeValue::Float(f) => Some(f.as_str().to_string()),
                DeValue::Boolean(b) => Some(b.to_string()),
                _ => {
                    self.type_err(v, "default", "a string or a number");
                    None
                }
            }
            .map(|value| Loc {
                value,
                span: v.span(),
            }),
        };
        Some(RawParam {
            name: Loc {
                value: name.get_ref().to_string(),
                span: name.span(),
            },
            description: self.string(t, "description").map(|l| l.value),
            required: self.boolean(t, "required").is_some_and(|l| l.value),
            default,
            pattern: self.string(t, "pattern"),
            env: self.string(t, "env"),
            secret: self.boolean(t, "secret").is_some_and(|l| l.value),
        })
    }

    fn step(&mut self, item: &Value<'_>) -> Option<RawStep> {
        let t = self.table(item, "each [[step]]")?;
        // The span of an array-of-tables entry covers its header line.
        let header = item.span();
        let id = match self.string(t, "id") {
            Some(id) => id,
            None => {
                if t.get("id").is_none() {
                    self.err(
                        header.clone(),
                        "this step has no `id`",
                        Some("add id = \"short-name\""),
                    );
                }
                return None;
            }
        };
        let place = format!("in step `{}`", id.value);
        self.unknown_keys(t, STEP_KEYS, &place, "");
        let on_failure_raw = self.string(t, "on_failure");
        let on_failure_span = on_failure_raw.as_ref().map(|s| s.span.clone());
        let on_failure = match on_failure_raw {
            None => OnFailure::Abort,
            Some(s) => match s.value.as_str() {
                "abort" => OnFailure::Abort,
                "continue" => OnFailure::Continue,
                "prompt" => OnFailure::Prompt,
                other => {
                    self.enum_err(
                        s.span,
                        "on_failure",
                        other,
                        &["abort", "continue", "prompt"],
                    );
                    OnFailure::Abort
                }
            },
        };
        let milestone = self
            .string(t, "milestone")
            .and_then(|s| match s.value.as_str() {
                "mitigated" => Some((Milestone::Mitigated, s.span.clone())),
                "resolved" => Some((Milestone::Resolved, s.span.clone())),
                other => {
                    self.enum_err(s.span, "milestone", other, &["mitigated", "resolved"]);
                    None
                }
            });
        let retries = t.get("retries").and_then(|v| match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if (0..=MAX_RETRIES).contains(&n) => Some(Loc {
                    value: n as u32,
                    span: v.span(),
                }),
                _ => {
                    self.err(
                        v.span(),
                        format!("`retries` must be between 0 and {MAX_RETRIES}"),
                        None,
                    );
                    None
                }
            },
            _ => {
                self.type_err(v, "retries", "a whole number");
                None
            }
        });
        let retry_backoff = t.get("retry_backoff").and_then(|v| {
            let n = match v.get_ref() {
                DeValue::Integer(i) => i.as_str().parse::<f64>().ok(),
                DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
                _ => {
                    self.type_err(v, "retry_backoff", "a number");
                    return None;
                }
            };
            match n {
                Some(n) if (1.0..=10.0).contains(&n) => Some(Loc {
                    value: n,
                    span: v.span(),
                }),
                _ => {
                    self.err(
                        v.span(),
                        "`retry_backoff` must be a number from 1.0 (fixed delay) to 10.0",
                        None,
                    );
                    None
                }
            }
        });
        let mut env = Vec::new();
        if let Some(v) = t.get("env")
            && let Some(et) = self.table(v, "`env`")
        {
            for (k, val) in et {
                match val.get_ref() {
                    DeValue::String(s) => {
                        let key = Loc {
                            value: k.get_ref().to_string(),
                            span: k.span(),
                        };
                        let text = Loc {
                            value: s.to_string(),
                            span: val.span(),
                        };
                        let site = self.site(format!("env.{}", k.get_ref()), text);
                        env.push((key, site));
                    }
                    other => self.err(
                        val.span(),
                        format!("env values must be strings, found {}", other.type_str()),
                        Some("quote it: NAME = \"5\""),
                    ),
                }
            }
        }
        let hosts = self.hosts(t);
        let batch = self.share(t, "batch", 1);
        let max_failed = self.share(t, "max_failed", 0);
        Some(RawStep {
            header,
            title: self.string(t, "title").map(|l| l.value),
            run: self.template(t, "run"),
            manual: self.template(t, "manual"),
            needs: self.string_array(t, "needs"),
            when: self.template(t, "when"),
            confirm: self.boolean(t, "confirm"),
            timeout: self.duration(t, "timeout"),
            retries,
            retry_delay: self.duration(t, "retry_delay"),
            retry_backoff,
            on_failure,
            on_failure_span,
            capture: self.string(t, "capture"),
            ask: self.string(t, "ask"),
            env,
            dir: self.template(t, "dir"),
            readonly: self.boolean(t, "readonly"),
            rollback: self.template(t, "rollback"),
            milestone,
            hosts,
            batch,
            max_failed,
            id,
        })
    }

    /// `hosts`: one string (a template) or an array of them.
    fn hosts(&mut self, t: &DeTable<'_>) -> Option<Loc<Vec<TemplateSite>>> {
        let v = t.get("hosts")?;
        let sites = match v.get_ref() {
            DeValue::String(s) => {
                let text = Loc {
                    value: s.to_string(),
                    span: v.span(),
                };
                vec![self.site("hosts".into(), text)]
            }
            DeValue::Array(_) => self
                .string_array(t, "hosts")?
                .into_iter()
                .map(|l| self.site("hosts".into(), l))
                .collect(),
            _ => {
                self.type_err(v, "hosts", "a string or an array of strings");
                return None;
            }
        };
        if sites
            .iter()
            .all(|s| super::hosts::words(&s.text).next().is_none())
        {
            self.err(
                v.span(),
                "`hosts` names no host",
                Some("list host names or `@group`s: hosts = [\"web-1\", \"web-2\"] or hosts = \"{{web_hosts}}\""),
            );
            return None;
        }
        Some(Loc {
            value: sites,
            span: v.span(),
        })
    }

    /// `batch` or `max_failed`: a whole number of at least `min`, or a percentage `"25%"`.
    fn share(&mut self, t: &DeTable<'_>, key: &str, min: u32) -> Option<Loc<Share>> {
        let v = t.get(key)?;
        let share = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .map(Share::Count),
            DeValue::String(s) => Share::parse(s),
            _ => {
                self.type_err(v, key, "a whole number or a percentage such as \"25%\"");
                return None;
            }
        };
        let ok = match share {
            Some(Share::Count(n)) => n >= min && n as usize <= super::hosts::MAX_HOSTS,
            Some(Share::Percent(p)) => p >= min && p <= 100,
            None => false,
        };
        match share {
            Some(value) if ok => Some(Loc {
                value,
                span: v.span(),
            }),
            _ => {
                let what = if min == 0 { "0" } else { "1" };
                self.err(
                    v.span(),
                    format!(
                        "`{key}` must be a whole number from {what} to {} or a percentage from {what}% to 100%",
                        super::hosts::MAX_HOSTS
                    ),
                    None,
                );
                None
            }
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
