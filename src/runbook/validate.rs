//! The second pass: names, references between steps, the graph, and templates. Every
//! problem becomes a located diagnostic; nothing stops at the first one.

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

    fn step_ids<'a>(&mut self, steps: &'a [RawStep]) -> HashMap<&'a str, usize> {
        let mut ids: HashMap<&str, usize> = HashMap::with_capacity(steps.len());
        for (i, s) in steps.iter().enumerate() {
            let id = &s.id;
            if !is_step_id(&id.value) {
                self.err_help(
                    id.span.clone(),
                    format!("step id `{}` is not valid", id.value),
                    "ids are lowercase letters, digits, `-` and `_`, starting with a letter or digit",
                );
            }
            if let Some(&first) = ids.get(id.value.as_str()) {
                let line = self.lines.line(steps[first].id.span.start);
                self.diags.push(
                    Diagnostic::new(id.span.clone(), format!("duplicate step id `{}`", id.value))
                        .with_help(format!(
                            "first used on line {line}; step ids must be unique"
                        )),
                );
            } else {
                ids.insert(id.value.as_str(), i);
            }
        }
        ids
    }

    fn step_shapes(&mut self, steps: &[RawStep]) {
        for s in steps {
            let id = &s.id.value;
            match (&s.run, &s.manual) {
                (Some(r), Some(_)) => self.err_help(
                    r.span.clone(),
                    format!("step `{id}` has both `run` and `manual`"),
                    "a step is either automated (`run`) or done by a person (`manual`); split it in two",
                ),
                (None, None) => self.err_help(
                    s.id.span.clone(),
                    format!("step `{id}` has neither `run` nor `manual`"),
                    "add run = \"command\" for an automated step, or manual = \"instructions\"",
                ),
                _ => {}
            }
            if s.manual.is_some() && s.run.is_none() {
                let run_only: [(&str, Option<Range<usize>>); 10] = [
                    ("capture", s.capture.as_ref().map(|l| l.span.clone())),
                    ("confirm", s.confirm.as_ref().map(|l| l.span.clone())),
                    ("timeout", s.timeout.as_ref().map(|l| l.span.clone())),
                    ("retries", s.retries.as_ref().map(|l| l.span.clone())),
                    (
                        "retry_delay",
                        s.retry_delay.as_ref().map(|l| l.span.clone()),
                    ),
                    (
                        "retry_backoff",
                        s.retry_backoff.as_ref().map(|l| l.span.clone()),
                    ),
                    ("readonly", s.readonly.as_ref().map(|l| l.span.clone())),
                    ("rollback", s.rollback.as_ref().map(|l| l.span.clone())),
                    ("dir", s.dir.as_ref().map(|l| l.span.clone())),
                    ("shell", s.shell.as_ref().map(|l| l.span.clone())),
                ];
                for (key, span) in run_only {
                    if let Some(span) = span {
                        self.err(
                            span,
                            format!(
                                "`{key}` applies only to `run` steps, and step `{id}` is manual"
                            ),
                        );
                    }
                }
                if let Some((k, _)) = s.env.first() {
                    self.err(
                        k.span.clone(),
                        format!("`env` applies only to `run` steps, and step `{id}` is manual"),
                    );
                }
            }
            if s.run.is_some()
                && let Some(ask) = &s.ask
            {
                self.err_help(
                    ask.span.clone(),
                    format!("`ask` applies only to manual steps, and step `{id}` runs a command"),
                    "use `capture` to keep a command's output",
                );
            }
            let no_retries = s.retries.as_ref().is_none_or(|r| r.value == 0);
            for (key, span) in [
                (
                    "retry_delay",
                    s.retry_delay.as_ref().map(|l| l.span.clone()),
                ),
                (
                    "retry_backoff",
                    s.retry_backoff.as_ref().map(|l| l.span.clone()),
                ),
            ] {
                if let Some(span) = span.filter(|_| no_retries && s.run.is_some()) {
                    self.err_help(
                        span,
                        format!("step `{id}` sets `{key}` but makes no retries"),
                        "add retries = N (extra attempts after a failure), or remove it",
                    );
                }
            }
            if s.run.is_none()
                && let Some(span) = &s.on_failure_span
            {
                self.err(
                    span.clone(),
                    format!("`on_failure` applies only to `run` steps, and step `{id}` is manual"),
                );
            }
            for (k, _) in &s.env {
                if !is_var_name(&k.value) {
                    self.err(
                        k.span.clone(),
                        format!("`{}` is not a valid environment variable name", k.value),
                    );
                }
            }
        }
        self.milestones(steps);
    }

    /// Steps with `hosts`: only automated ones; `batch` and `max_failed` only with `hosts`;
    /// literal host names and groups checked; `host` not taken by a param or a variable.
    fn fleets(&mut self, raw: &RawRunbook, groups: Option<&Groups>) {
        for s in &raw.steps {
            let id = &s.id.value;
            match &s.hosts {
                Some(h) if s.run.is_none() => self.err_help(
                    h.span.clone(),
                    format!("`hosts` applies only to `run` steps, and step `{id}` is manual"),
                    "a person does a manual step once; list the hosts in its instructions",
                ),
                Some(h) => {
                    for site in &h.value {
                        super::hosts::check_literal(
                            &site.text,
                            site.span.clone(),
                            site.verbatim_at,
                            groups,
                            self.diags,
                        );
                    }
                }
                None => {
                    for (key, l) in [("batch", &s.batch), ("max_failed", &s.max_failed)] {
                        if let Some(l) = l {
                            self.err_help(
                                l.span.clone(),
                                format!("step `{id}` sets `{key}` but has no `hosts`"),
                                "add hosts = [...] to run the step on each host, or remove it",
                            );
                        }
                    }
                }
            }
        }
        if !raw.steps.iter().any(|s| s.hosts.is_some()) {
            return;
        }
        let taken = raw
            .params
            .iter()
            .map(|p| (&p.name, "param"))
            .chain(
                raw.steps
                    .iter()
                    .filter_map(|s| s.capture.as_ref().map(|c| (c, "capture"))),
            )
            .chain(
                raw.steps
                    .iter()
                    .filter_map(|s| s.ask.as_ref().map(|a| (a, "ask"))),
            );
        for (l, what) in taken {
            if l.value == HOST_VAR {
                self.diags.push(
                    Diagnostic::new(
                        l.span.clone(),
                        format!("{what} `{HOST_VAR}` would be hidden by the host name in steps with `hosts`"),
                    )
                    .with_help("choose another name"),
                );
            }
        }
    }

    /// Each milestone marks one instant of the incident, so at most one step may set it.
    fn milestones(&mut self, steps: &[RawStep]) {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for s in steps {
            let Some((m, span)) = &s.milestone else {
                continue;
            };
            if let Some(first) = seen.insert(m.as_str(), &s.id.value) {
                self.err_help(
                    span.clone(),
                    format!(
                        "milestone `{}` is already set by step `{first}`",
                        m.as_str()
                    ),
                    "a milestone marks one moment of the incident; keep it on one step",
                );
            }
        }
    }

    /// Checks capture and ask names and returns every provided variable.
    fn provided_vars(&mut self, steps: &[RawStep], params: &HashMap<&str, usize>) -> Vec<Provided> {
        let mut out: Vec<Provided> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, s) in steps.iter().enumerate() {
            for (what, l) in [("capture", &s.capture), ("ask", &s.ask)] {
                let Some(l) = l else { continue };
                if !self.var_name(l, what) {
                    continue;
                }
                if params.contains_key(l.value.as_str()) {
                    self.err_help(
                        l.span.clone(),
                        format!(
                            "{what} `{}` clashes with the param of the same name",
                            l.value
                        ),
                        "rename the variable or the param",
                    );
                    continue;
                }
                if let Some(&other) = seen.get(&l.value) {
                    self.err_help(
                        l.span.clone(),
                        format!(
                            "variable `{}` is already provided by step `{}`",
                            l.value, steps[other].id.value
                        ),
                        "each captured or asked variable needs its own name",
                    );
                    continue;
                }
                seen.insert(l.value.clone(), i);
                out.push(Provided {
                    name: l.value.clone(),
                    step: i,
                });
            }
        }
        out
    }

    fn needs(&mut self, steps: &[RawStep], ids: &HashMap<&str, usize>) -> Vec<Vec<usize>> {
        let mut out = Vec::with_capacity(steps.len());
        for (i, s) in steps.iter().enumerate() {
            let Some(list) = &s.needs else {
                out.push(if i == 0 { vec![] } else { vec![i - 1] });
                continue;
            };
            let mut resolved: Vec<usize> = Vec::with_capacity(list.len());
            for n in list {
                match ids.get(n.value.as_str()) {
                    Some(&j) if j == i => self.err(
                        n.span.clone(),
                        format!("step `{}` needs itself", s.id.value),
                    ),
                    Some(&j) if resolved.contains(&j) => self.err(
                        n.span.clone(),
                        format!("`{}` is listed twice in `needs`", n.value),
                    ),
                    Some(&j) => resolved.push(j),
                    None => {
                        let help = match self.suggest(&n.value, ids.keys().copied()) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => {
                                "`needs` lists the ids of other steps in this runbook".to_string()
                            }
                        };
                        self.err_help(
                            n.span.clone(),
                            format!("no step has the id `{}`", n.value),
                            help,
                        );
                    }
                }
            }
            out.push(resolved);
        }
        out
    }

    fn cycle(&mut self, steps: &[RawStep], cycle: &[usize]) {
        let names: Vec<&str> = cycle.iter().map(|&i| steps[i].id.value.as_str()).collect();
        let mut path = names.join(" -> ");
        path.push_str(" -> ");
        path.push_str(names[0]);
        let first = &steps[cycle[0]];
        let next = cycle.get(1).copied().unwrap_or(cycle[0]);
        // Point at the `needs` entry that closes the cycle's first edge, else the step's id.
        let span = first
            .needs
            .as_ref()
            .and_then(|list| list.iter().find(|n| n.value == steps[next].id.value))
            .map(|n| n.span.clone())
            .unwrap_or_else(|| first.id.span.clone());
        self.err_help(
            span,
            format!("dependency cycle: {path}"),
            "each step waits for the one after it in this list; remove one of these `needs`",
        );
    }

    fn templates(
        &mut self,
        steps: &[RawStep],
        order: Option<&[usize]>,
        needs: &[Vec<usize>],
        vars: &[Provided],
        params: &HashMap<&str, bool>,
        shells: &[Shell],
    ) {
        let var_index: HashMap<&str, usize> = vars
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect();
        let mut provides = vec![Vec::new(); steps.len()];
        for (vi, p) in vars.iter().enumerate() {
            provides[p.step].push(vi);
        }
        let avail = order.map(|order| graph::available(order, needs, &provides, vars.len()));
        let mut known: Vec<&str> = params.keys().copied().collect();
        known.extend(BUILTIN_VARS);
        known.extend(vars.iter().map(|p| p.name.as_str()));

        for (i, s) in steps.iter().enumerate() {
            let sites = s
                .run
                .iter()
                .chain(&s.manual)
                .chain(&s.when)
                .chain(&s.dir)
                .chain(&s.rollback)
                .chain(s.env.iter().map(|(_, t)| t))
                .chain(s.hosts.iter().flat_map(|h| &h.value));
            for site in sites {
                // `{{host}}` is each host's name, in every template of a step with `hosts`
                // but `hosts` itself.
                let host_known = s.hosts.is_some() && site.field != "hosts";
                // Text without `{{` is one raw string to handlebars: it reads no variable
                // and puts no value in a shell command. Most commands are such text, and
                // compiling the first template costs a one-step run a tenth of a
                // millisecond. (A `when` must hold an expression: it is always checked.)
                if site.field != "when" && template::is_plain(&site.text) {
                    continue;
                }
                let refs = match template::analyse_compiled(&site.text) {
                    Ok((tpl, refs)) => {
                        if site.field == "when" {
                            self.problems(site, template::condition_problems(&site.text));
                        }
                        if site.field == "run" || site.field == "rollback" {
                            self.problems(
                                site,
                                shell::check_compiled(&tpl, &site.text, &shells[i]),
                            );
                        }
                        refs
                    }
                    Err(problems) => {
                        self.problems(site, problems);
                        continue;
                    }
                };
                for r in refs {
                    let name = r.name.as_str();
                    if site.field == "hosts" && params.get(name) == Some(&true) {
                        self.err_help(
                            at(site, r.offset, name.len()),
                            format!("`hosts` uses the secret param `{name}`"),
                            "host names are written to the log and shown on screen; they cannot be secret",
                        );
                    }
                    if host_known && site.field != "when" && params.get(name) == Some(&true) {
                        self.err_help(
                            at(site, r.offset, name.len()),
                            format!("a step with `hosts` cannot use the secret param `{name}`"),
                            "its command goes to each host in ssh's command line, which every local user can read; use the secret in a local step, or keep it on the hosts (in a file the command reads)",
                        );
                    }
                    if params.contains_key(name)
                        || BUILTIN_VARS.contains(&name)
                        || (host_known && name == HOST_VAR)
                    {
                        continue;
                    }
                    let span = at(site, r.offset, name.len());
                    match var_index.get(name) {
                        Some(_) if avail.is_none() => {}
                        Some(&vi) if avail.as_ref().is_some_and(|a| a[i].contains(vi)) => {}
                        // A rollback runs after its own step succeeded, so it may use that step's capture.
                        Some(&vi) if site.field == "rollback" && vars[vi].step == i => {}
                        Some(&vi) => {
                            let provider = &steps[vars[vi].step].id.value;
                            let help = if vars[vi].step == i {
                                format!("a step cannot use its own `{name}` before it has run")
                            } else {
                                format!(
                                    "`{name}` comes from step `{provider}`, which does not always run before `{}`; add \"{provider}\" to its `needs`",
                                    s.id.value
                                )
                            };
                            self.err_help(
                                span,
                                format!(
                                    "`{name}` is not set when step `{}` runs ({})",
                                    s.id.value, site.field
                                ),
                                help,
                            );
                        }
                        None => {
                            let help = match self.suggest(name, known.iter().copied()) {
                                _ if name == HOST_VAR && s.hosts.is_some() => {
                                    "`hosts` is rendered once for the step, before any host is known".into()
                                }
                                _ if name == HOST_VAR => {
                                    "`host` is set in steps with `hosts`, to each host's name".into()
                                }
                                Some(k) => format!("did you mean `{k}`?"),
                                None => "define it under [params], or set it with `capture` or `ask` in an earlier step".into(),
                            };
                            self.err_help(
                                span,
                                format!("unknown variable `{name}` in `{}`", site.field),
                                help,
                            );
                        }
                    }
                }
            }
        }
    }
}

impl Validator<'_> {
    /// Problems found inside a template, located in the file.
    fn problems(&mut self, site: &TemplateSite, problems: Vec<template::Problem>) {
        for p in problems {
            let mut d = Diagnostic::new(at(site, p.offset, p.len), p.message);
            if let Some(h) = p.help {
                d = d.with_help(h);
            }
            self.diags.push(d);
        }
    }
}

/// The file span of a position inside a template: exact when the text is verbatim in the
/// file or its escapes could be followed, else the whole value.
fn at(site: &TemplateSite, offset: usize, len: usize) -> Range<usize> {
    match (site.verbatim_at, &site.positions) {
        (Some(base), _) => base + offset..base + offset + len,
        (None, Some(p)) => match (p.get(offset), p.get(offset + len)) {
            (Some(&a), Some(&b)) => a..b.max(a + 1),
            _ => site.span.clone(),
        },
        (None, None) => site.span.clone(),
    }
}

impl Validator<'_> {
    /// `[alert]` and the params' `from_label`: label names Prometheus could send, and a
    /// `match` that names at least one label (an empty one would match every alert).
    fn alert(&mut self, a: &RawAlert, raw: &RawRunbook) -> AlertSpec {
        let mut matchers = Vec::new();
        match &a.matchers {
            None => self.err_help(
                a.span.clone(),
                "[alert] has no `match`",
                "add match = { alertname = \"...\" }: the labels an alert must have to start this runbook",
            ),
            Some(m) if m.value.is_empty() => self.err_help(
                m.span.clone(),
                "`match` is empty, so it would match every alert",
                "name at least one label, such as alertname = \"...\"",
            ),
            Some(m) => {
                for (k, v) in &m.value {
                    self.label_name(k, "`match`");
                    matchers.push((k.value.clone(), v.value.clone()));
                }
            }
        }
        for p in &raw.params {
            if let Some(l) = &p.from_label {
                self.label_name(l, "`from_label`");
            }
        }
        AlertSpec {
            matchers,
            diagnose: a.diagnose.as_ref().is_some_and(|d| d.value),
        }
    }

    fn label_name(&mut self, l: &Loc<String>, what: &str) {
        if !is_var_name(&l.value) {
            self.err_help(
                l.span.clone(),
                format!("{what}: `{}` is not a Prometheus label name", l.value),
                "label names are letters, digits and underscores, not starting with a digit",
            );
        }
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
