//! Values that stay data in shell commands (issue 11). At load time, every placeholder of
//! a `run` or `rollback` template is given its shell context (an unquoted word, '...',
//! "...", `$(...)` or backquotes, a here-document, an assignment) by following the
//! template's text, through every branch of its `{{#if}}` and `{{#each}}` blocks, with a
//! small lexer of our own ([`lexer`]); a placeholder where no quoting keeps a value data
//! (a nested `sh -c` script, `eval`, the remote command of `ssh`, `${...}`, a context the
//! lexer does not know) is an error `check` reports, located. At run time the rendered
//! command is followed again with each value still marked, and each value is written for
//! the context it landed in ([`quote`]).

mod lexer;
mod programs;
mod quote;

use std::collections::HashSet;

use handlebars::template::{Template, TemplateElement};

pub use lexer::{Context, Slot};
use lexer::{Lexer, Refusal};
pub(crate) use quote::mark;

use super::template::{Problem, offset_of};

/// Shells whose quoting the analysis follows: POSIX sh and the shells that read it the
/// same way for everything the analysis accepts (the property test runs them all).
pub const KNOWN_SHELLS: &[&str] = &["sh", "bash", "dash"];

/// Shells a runbook can name, and what runs commands for them.
pub const NAMED_SHELLS: &[(&str, &[&str])] = &[
    ("sh", &["/bin/sh", "-c"]),
    ("bash", &["bash", "-euo", "pipefail", "-c"]),
];

/// The program a step's commands run with; each command is its last argument.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Shell {
    /// The program and its options.
    pub argv: Vec<String>,
    /// Whether the quoting analysis knows this shell ([`KNOWN_SHELLS`]).
    #[serde(skip)]
    pub known: bool,
}

impl Default for Shell {
    /// `/bin/sh -c`.
    fn default() -> Self {
        Shell::from_argv(vec!["/bin/sh".into(), "-c".into()])
    }
}

impl Shell {
    /// A shell a runbook names (`"bash"`), if it is one of [`NAMED_SHELLS`].
    pub fn named(name: &str) -> Option<Shell> {
        NAMED_SHELLS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, argv)| Shell::from_argv(argv.iter().map(|a| a.to_string()).collect()))
    }

    /// A shell given as its program and options.
    pub fn from_argv(argv: Vec<String>) -> Shell {
        let mut shell = Shell { argv, known: false };
        shell.known = KNOWN_SHELLS.contains(&shell.program());
        shell
    }

    /// Whether a command run with this shell can be held at its start until a line comes
    /// on its stdin (`read` first, the command after it on the same line): a known shell
    /// whose only options are `-c` last and `-e`, `-u`, `-o pipefail` before it. Another
    /// option (`-x` would show the `read`, `-l` would run a profile first) or another
    /// program is started only once it may run.
    pub fn can_hold(&self) -> bool {
        let [program, options @ .., last] = self.argv.as_slice() else {
            return false;
        };
        // `-e`, `-eu`, `-euo` (with `pipefail` after it).
        let plain = |o: &str| {
            o.len() > 1 && o.starts_with('-') && o[1..].chars().all(|c| "euo".contains(c))
        };
        self.known
            && program.rsplit('/').next() == Some(self.program())
            && last.strip_suffix('c').is_some_and(|o| o == "-" || plain(o))
            && options.iter().all(|a| plain(a) || a == "pipefail")
    }

    /// The program's name, seen through `env`: `/usr/bin/env bash -c` is `bash`.
    pub fn program(&self) -> &str {
        fn base(a: &str) -> &str {
            a.rsplit('/').next().unwrap_or(a)
        }
        let mut words = self.argv.iter();
        let Some(first) = words.next() else {
            return "";
        };
        if base(first) == "env"
            && let Some(w) = words.find(|a| !a.starts_with('-') && !a.contains('='))
        {
            return base(w);
        }
        base(first)
    }
}

/// Shortest secret (or line of one, or quoted form) searched for in text: a shorter one
/// would hide every `0` or `no` on screen, and a value that merely contains it would go
/// through the environment for nothing.
pub const SECRET_SEARCH_MIN: usize = 4;

/// The environment variable that carries secret param `name` to a command.
pub fn secret_variable(name: &str) -> String {
    format!("RUNBOOK_SECRET_{}", name.to_ascii_uppercase())
}

/// Most combinations of branches followed through one template.
const MAX_STATES: usize = 64;

/// A rendered command: its text, and the environment variables its references name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    pub text: String,
    pub env: Vec<(String, String)>,
}

/// The problems of a `run` or `rollback` template run with `shell`: every `{{x}}` that no
/// quoting can keep data where it stands. A template without such values is not looked at.
pub fn check(text: &str, shell: &Shell) -> Vec<Problem> {
    match Template::compile(text) {
        Ok(tpl) => check_compiled(&tpl, text, shell),
        Err(_) => Vec::new(),
    }
}

/// [`check`] of a template already compiled from `text`.
pub fn check_compiled(tpl: &Template, text: &str, shell: &Shell) -> Vec<Problem> {
    if !has_values(tpl) {
        return Vec::new();
    }
    if !shell.known {
        return unknown_shell(tpl, text, shell);
    }
    let mut walk = Walk {
        text,
        problems: Vec::new(),
        seen: HashSet::new(),
        too_many: false,
    };
    let ends = walk.walk(tpl, vec![Lexer::default()]);
    let mut unfinished = None;
    for mut end in ends {
        if let Err(what) = end.finish() {
            unfinished.get_or_insert(what);
        }
        // What came after a value can refuse it too (`echo {{x}} | sh`).
        for (offset, r) in end.late() {
            walk.refuse(*offset, r);
        }
    }
    if let Some(what) = unfinished {
        walk.report(
            0,
            text.chars().next().map_or(1, char::len_utf8),
            format!("the command's quoting cannot be followed to its end ({what}), so the values in it cannot be checked"),
            programs::SAFE_WAYS,
        );
    }
    if walk.too_many {
        walk.report(
            0,
            1,
            format!("the command has more than {MAX_STATES} combinations of {{{{#if}}}} branches to follow; split it"),
            "split the command into steps, or move the choice into the shell (if [ \"$X\" = a ]; then ...)",
        );
    }
    walk.problems
}

/// Every `{{x}}` of a command run by a shell whose quoting the analysis does not know.
fn unknown_shell(tpl: &Template, text: &str, shell: &Shell) -> Vec<Problem> {
    fn offsets(tpl: &Template, text: &str, out: &mut Vec<usize>) {
        for (el, at) in tpl.elements.iter().zip(&tpl.mapping) {
            match el {
                TemplateElement::Expression(_) => out.push(offset_of(text, at.0, at.1)),
                TemplateElement::HelperBlock(b) => {
                    for t in b.template.iter().chain(&b.inverse) {
                        offsets(t, text, out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut at = Vec::new();
    offsets(tpl, text, &mut at);
    at.into_iter()
        .map(|offset| Problem {
            offset,
            len: text[offset..].find("}}").map_or(2, |e| e + 2),
            message: format!(
                "a value cannot be inserted into a command for `{}`, whose quoting the analysis does not know (it knows {})",
                shell.program(),
                KNOWN_SHELLS.join(", ")
            ),
            help: Some(
                "give the value to the command through `env` (env = { NAME = \"{{x}}\" }) and read the variable as that shell does, or, on purpose, insert it raw with {{{x}}}".into(),
            ),
        })
        .collect()
}

/// Whether the template inserts any value with `{{x}}` (not `{{{x}}}`).
fn has_values(tpl: &Template) -> bool {
    tpl.elements.iter().any(|e| match e {
        TemplateElement::Expression(_) => true,
        TemplateElement::HelperBlock(b) => {
            b.template.as_ref().is_some_and(has_values)
                || b.inverse.as_ref().is_some_and(has_values)
        }
        _ => false,
    })
}

struct Walk<'t> {
    text: &'t str,
    problems: Vec<Problem>,
    seen: HashSet<(usize, String)>,
    too_many: bool,
}

impl Walk<'_> {
    fn report(&mut self, offset: usize, len: usize, message: String, help: &str) {
        if self.seen.insert((offset, message.clone())) {
            self.problems.push(Problem {
                offset,
                len,
                message,
                help: Some(help.into()),
            });
        }
    }

    /// Follows `tpl` from each of `states`; the states it can end in.
    fn walk(&mut self, tpl: &Template, mut states: Vec<Lexer>) -> Vec<Lexer> {
        for (el, at) in tpl.elements.iter().zip(&tpl.mapping) {
            match el {
                TemplateElement::RawString(s) => {
                    for st in &mut states {
                        st.text(s);
                    }
                }
                TemplateElement::Expression(_) | TemplateElement::HtmlExpression(_) => {
                    let raw = matches!(el, TemplateElement::HtmlExpression(_));
                    let offset = offset_of(self.text, at.0, at.1);
                    let mut refusals = Vec::new();
                    for st in &mut states {
                        if let Err(r) = st.hole(raw, offset) {
                            refusals.push(r);
                        }
                    }
                    for r in refusals {
                        self.refuse(offset, &r);
                    }
                }
                TemplateElement::HelperBlock(b) => {
                    let body = |w: &mut Self, from: Vec<Lexer>| match &b.template {
                        Some(t) => w.walk(t, from),
                        None => from,
                    };
                    let mut out = body(self, states.clone());
                    out.extend(match &b.inverse {
                        Some(t) => self.walk(t, states.clone()),
                        None => states.clone(),
                    });
                    if b.name.as_name() == Some("each") {
                        // Any number of times: follow the body until no new state comes.
                        let mut known: HashSet<Lexer> = out.iter().cloned().collect();
                        let mut frontier = out.clone();
                        for _ in 0..8 {
                            let next: Vec<Lexer> = body(self, frontier)
                                .into_iter()
                                .filter(|s| known.insert(s.clone()))
                                .collect();
                            if next.is_empty() {
                                break;
                            }
                            out.extend(next.iter().cloned());
                            frontier = next;
                        }
                    }
                    states = dedup(out);
                    if states.len() > MAX_STATES {
                        self.too_many = true;
                        states.truncate(MAX_STATES);
                    }
                }
                _ => {}
            }
        }
        states
    }

    fn refuse(&mut self, offset: usize, r: &Refusal) {
        let tag = self.text[offset..]
            .find("}}")
            .map(|end| {
                let end = end + 2 + usize::from(self.text[offset + end + 2..].starts_with('}'));
                &self.text[offset..offset + end]
            })
            .unwrap_or("{{...}}");
        let message = format!("`{tag}` cannot stay data here: {}", r.explain());
        self.report(offset, tag.len(), message, r.help());
    }
}

fn dedup(states: Vec<Lexer>) -> Vec<Lexer> {
    let mut seen = HashSet::new();
    states
        .into_iter()
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

/// The command from its rendered text, in which every `{{x}}` value is still marked:
/// each value written for its context. `reference` names the environment variable that is
/// to carry a value instead of the command line (a secret), if any.
pub fn finish(marked: &str, reference: &dyn Fn(&str) -> Option<String>) -> Result<Command, String> {
    let pieces = quote::pieces(marked);
    if !pieces.iter().any(|p| matches!(p, quote::Piece::Value(_))) {
        return Ok(Command {
            text: marked.to_string(),
            env: Vec::new(),
        });
    }
    let mut lexer = Lexer::default();
    let mut out = Command::default();
    for (id, piece) in pieces.into_iter().enumerate() {
        match piece {
            quote::Piece::Text(t) => {
                lexer.text(t);
                out.text.push_str(t);
            }
            quote::Piece::Value(v) => {
                let slot = lexer.hole(false, id).map_err(|r| {
                    format!(
                        "a value cannot stay data where it lands in the command: {}",
                        r.explain()
                    )
                })?;
                // One variable per value: a name already holding another value gets a number.
                let name = reference(&v).map(|base| {
                    let mut name = base.clone();
                    let mut n = 1;
                    while out.env.iter().any(|(k, val)| *k == name && *val != v) {
                        n += 1;
                        name = format!("{base}_{n}");
                    }
                    name
                });
                out.text.push_str(&quote::quote(&v, &slot, name.as_deref()));
                if let Some(name) = name
                    && out.env.iter().all(|(n, _)| *n != name)
                {
                    out.env.push((name, v));
                }
            }
        }
    }
    lexer
        .finish()
        .map_err(|what| format!("the command's quoting cannot be followed to its end ({what})"))?;
    if let Some((_, r)) = lexer.late().first() {
        return Err(format!(
            "a value cannot stay data where it lands in the command: {}",
            r.explain()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
