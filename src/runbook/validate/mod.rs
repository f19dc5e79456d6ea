//! The second pass: names, references between steps, the graph, and templates. Every
//! problem becomes a located diagnostic; nothing stops at the first one.

mod alert;
mod steps;
mod templates;

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use super::diagnostic::{Diagnostic, LineIndex, did_you_mean};
use super::hosts::{Fleet, Groups, HOST_VAR, Share};
use super::raw::{Loc, RawAlert, RawRunbook, RawShell, RawStep, TemplateSite};
use super::{Action, AlertSpec, Param, Runbook, Shell, Step, graph, shell, template};

/// Variables every template can use, set by the executor.
pub const BUILTIN_VARS: &[&str] = &["run_id", "runbook", "dry_run"];

/// A step id: `[a-z0-9][a-z0-9_-]*`. (Checked by hand: compiling a regex for it cost a
/// tenth of a one-step run's start.)
fn is_step_id(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

/// A variable (or label) name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_var_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

pub fn validate(
    raw: RawRunbook,
    source: &str,
    path: &Path,
    name: &str,
    sha256: String,
    groups: Option<&Groups>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Runbook> {
    let mut v = Validator {
        diags,
        lines: LineIndex::new(source),
        suggestions_left: SUGGESTIONS,
    };
    if raw.steps.len() > MAX_STEPS {
        let at = raw.steps[MAX_STEPS].header.clone();
        v.err_help(
            at,
            format!(
                "the runbook has {} steps; at most {MAX_STEPS} are accepted",
                raw.steps.len()
            ),
            "split it into several runbooks",
        );
        return None;
    }
    let params = v.params(&raw);
    let alert = raw.alert.as_ref().map(|a| v.alert(a, &raw));
    let param_names: HashMap<&str, usize> = raw
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.value.as_str(), i))
        .collect();
    let ids = v.step_ids(&raw.steps);
    v.step_shapes(&raw.steps);
    v.fleets(&raw, groups);
    let vars = v.provided_vars(&raw.steps, &param_names);
    if vars.len() > MAX_VARIABLES {
        let at = raw.steps[vars[MAX_VARIABLES].step].header.clone();
        v.err(
            at,
            format!(
                "the runbook captures or asks {} variables; at most {MAX_VARIABLES} are accepted",
                vars.len()
            ),
        );
        return None;
    }
    let needs = v.needs(&raw.steps, &ids);
    let default_shell = raw
        .shell
        .as_ref()
        .and_then(|s| v.shell(s))
        .unwrap_or_default();
    let shells: Vec<Shell> = raw
        .steps
        .iter()
        .map(|s| {
            s.shell
                .as_ref()
                .and_then(|sh| v.shell(sh))
                .unwrap_or_else(|| default_shell.clone())
        })
        .collect();

    let order = match graph::order(&needs) {
        Ok(order) => Some(order),
        Err(cycles) => {
            for cycle in cycles {
                v.cycle(&raw.steps, &cycle);
            }
            None
        }
    };
    // Without an order (a cycle), templates are still checked for syntax and unknown names.
    // Each param, and whether it is secret.
    let param_secret: HashMap<&str, bool> = raw
        .params
        .iter()
        .map(|p| (p.name.value.as_str(), p.secret))
        .collect();
    v.templates(
        &raw.steps,
        order.as_deref(),
        &needs,
        &vars,
        &param_secret,
        &shells,
    );

    let order = order?;
    if !v.diags.is_empty() {
        return None;
    }
    let title = raw.title.clone()?;
    let lines = v.lines;
    let mut steps: Vec<Step> = raw
        .steps
        .into_iter()
        .zip(needs)
        .zip(shells)
        .map(|((s, need_indices), shell)| finish_step(s, need_indices, shell, &lines))
        .collect();
    let ids: Vec<String> = steps.iter().map(|s| s.id.clone()).collect();
    for s in &mut steps {
        s.needs = s.need_indices.iter().map(|&i| ids[i].clone()).collect();
    }
    Some(Runbook {
        name: name.to_string(),
        path: path.to_path_buf(),
        sha256,
        title,
        description: raw.description,
        owner: raw.owner,
        service: raw.service,
        tags: raw.tags,
        timeout: raw.timeout,
        lock: raw.lock,
        shell: default_shell,
        params,
        steps,
        order,
        alert,
        groups: Groups::default(),
    })
}

fn finish_step(s: RawStep, need_indices: Vec<usize>, shell: Shell, lines: &LineIndex) -> Step {
    let action = match (s.run, s.manual) {
        (Some(r), _) => Action::Run(r.text),
        (None, Some(m)) => Action::Manual(m.text),
        (None, None) => Action::Manual(String::new()),
    };
    Step {
        title: s.title.unwrap_or_else(|| s.id.value.clone()),
        id: s.id.value,
        action,
        needs: Vec::new(),
        need_indices,
        when: s.when.map(|t| t.text),
        confirm: s.confirm.is_some_and(|c| c.value),
        timeout: s.timeout.map(|t| t.value),
        retries: s.retries.map_or(0, |r| r.value),
        retry_delay: s.retry_delay.map(|d| d.value),
        retry_backoff: s.retry_backoff.map_or(2.0, |b| b.value),
        on_failure: s.on_failure,
        capture: s.capture.map(|c| c.value),
        ask: s.ask.map(|a| a.value),
        env: s.env.into_iter().map(|(k, v)| (k.value, v.text)).collect(),
        dir: s.dir.map(|d| d.text),
        readonly: s.readonly.is_some_and(|r| r.value),
        rollback: s.rollback.map(|r| r.text),
        milestone: s.milestone.map(|(m, _)| m),
        shell,
        fleet: s.hosts.map(|h| Fleet {
            hosts: h.value.into_iter().map(|t| t.text).collect(),
            batch: s.batch.map(|b| b.value),
            max_failed: s.max_failed.map_or(Share::Count(0), |m| m.value),
        }),
        line: lines.line(s.header.start),
    }
}

/// A variable that a step provides (`capture` or `ask`).
struct Provided {
    name: String,
    step: usize,
}

struct Validator<'d> {
    diags: &'d mut Vec<Diagnostic>,
    lines: LineIndex,
    suggestions_left: usize,
}

/// How many errors get a did-you-mean.
const SUGGESTIONS: usize = 100;
/// Most steps in one runbook: far beyond any real one, and a bound on the graph's memory.
pub const MAX_STEPS: usize = 50_000;
/// Most captured and asked variables in one runbook, for the same reason.
pub const MAX_VARIABLES: usize = 5_000;

impl Validator<'_> {
    fn err(&mut self, span: Range<usize>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, msg));
    }

    fn err_help(&mut self, span: Range<usize>, msg: impl Into<String>, help: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, msg).with_help(help));
    }

    /// A did-you-mean, for the first [`SUGGESTIONS`] errors only: each one compares against
    /// every name, so a file of thousands of bad references stays linear.
    fn suggest<'a>(
        &mut self,
        word: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'a str> {
        if self.suggestions_left == 0 {
            return None;
        }
        self.suggestions_left -= 1;
        did_you_mean(word, candidates)
    }

    fn var_name(&mut self, l: &Loc<String>, what: &str) -> bool {
        if !is_var_name(&l.value) {
            self.err_help(
                l.span.clone(),
                format!("{what} `{}` is not a valid variable name", l.value),
                "use letters, digits and underscores, not starting with a digit",
            );
            return false;
        }
        if BUILTIN_VARS.contains(&l.value.as_str()) {
            self.err_help(
                l.span.clone(),
                format!(
                    "{what} `{}` would hide the built-in variable of that name",
                    l.value
                ),
                format!(
                    "the built-in variables are {}; choose another name",
                    BUILTIN_VARS.join(", ")
                ),
            );
            return false;
        }
        true
    }

    /// A `shell` resolved: a name it knows, or a program and its options.
    fn shell(&mut self, raw: &Loc<RawShell>) -> Option<Shell> {
        match &raw.value {
            RawShell::Named(name) => {
                let shell = Shell::named(name);
                if shell.is_none() {
                    // No did-you-mean: a near name (zsh, sh) is another shell, not a typo.
                    let names: Vec<&str> = shell::NAMED_SHELLS.iter().map(|(n, _)| *n).collect();
                    self.err_help(
                        raw.span.clone(),
                        format!("`shell` cannot be \"{name}\""),
                        format!(
                            "the named shells are {} (bash runs with -euo pipefail); any other is given as its program and options, to which the command is added last: shell = [\"{name}\", \"-c\"]",
                            names.join(", ")
                        ),
                    );
                }
                shell
            }
            RawShell::Argv(argv) if argv.first().is_none_or(|p| p.trim().is_empty()) => {
                self.err_help(
                    raw.span.clone(),
                    "`shell` names no program",
                    "give the program and its options, to which the command is added last: shell = [\"bash\", \"-c\"]",
                );
                None
            }
            RawShell::Argv(argv) => Some(Shell::from_argv(argv.clone())),
        }
    }

    fn params(&mut self, raw: &RawRunbook) -> Vec<Param> {
        let mut out = Vec::new();
        for p in &raw.params {
            self.var_name(&p.name, "param");
            if p.required
                && let Some(d) = &p.default
            {
                self.err_help(
                    d.span.clone(),
                    format!(
                        "param `{}` is required and also has a default",
                        p.name.value
                    ),
                    "drop `required = true` or the default",
                );
            }
            if let Some(env) = &p.env
                && !is_var_name(&env.value)
            {
                self.err(
                    env.span.clone(),
                    format!("`{}` is not a valid environment variable name", env.value),
                );
            }
            let mut pattern_ok = None;
            if let Some(pat) = &p.pattern {
                match super::whole(&pat.value) {
                    Ok(re) => pattern_ok = Some(re),
                    Err(e) => {
                        let msg = e.to_string();
                        let last = msg.lines().last().unwrap_or("invalid").trim();
                        let last = last.strip_prefix("error: ").unwrap_or(last);
                        self.err(
                            pat.span.clone(),
                            format!("`pattern` is not a valid regular expression: {last}"),
                        );
                    }
                }
            }
            if let (Some(re), Some(d)) = (&pattern_ok, &p.default)
                && !re.is_match(&d.value)
            {
                self.err(
                    d.span.clone(),
                    format!(
                        "the default of param `{}` does not match its pattern `{}`",
                        p.name.value,
                        p.pattern.as_ref().map_or("", |l| l.value.as_str())
                    ),
                );
            }
            out.push(Param {
                name: p.name.value.clone(),
                description: p.description.clone(),
                required: p.required,
                default: p.default.as_ref().map(|d| d.value.clone()),
                pattern: p.pattern.as_ref().map(|p| p.value.clone()),
                env: p.env.as_ref().map(|e| e.value.clone()),
                secret: p.secret,
                from_label: p.from_label.as_ref().map(|l| l.value.clone()),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{is_step_id, is_var_name};

    #[test]
    fn ids_and_names_are_checked_by_their_character_classes() {
        for ok in ["a", "0", "db-failover", "step_2", "9-a_b"] {
            assert!(is_step_id(ok), "{ok}");
        }
        for bad in ["", "-a", "_a", "A", "a b", "a.b", "é", "a\n", "a$"] {
            assert!(!is_step_id(bad), "{bad:?}");
        }
        for ok in ["a", "_", "A_1", "snake_Case9"] {
            assert!(is_var_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "ä", "a\n"] {
            assert!(!is_var_name(bad), "{bad:?}");
        }
    }
}
