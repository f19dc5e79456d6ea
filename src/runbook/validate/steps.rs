//! The steps among themselves: unique ids, one action each and the keys it allows, fleet
//! steps' hosts, milestones, and `needs` (missing steps, cycles).

use super::*;

impl Validator<'_> {
    pub(super) fn step_ids<'a>(&mut self, steps: &'a [RawStep]) -> HashMap<&'a str, usize> {
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

    pub(super) fn step_shapes(&mut self, steps: &[RawStep]) {
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
    pub(super) fn fleets(&mut self, raw: &RawRunbook, groups: Option<&Groups>) {
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
                        crate::runbook::hosts::check_literal(
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

    pub(super) fn needs(
        &mut self,
        steps: &[RawStep],
        ids: &HashMap<&str, usize>,
    ) -> Vec<Vec<usize>> {
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

    pub(super) fn cycle(&mut self, steps: &[RawStep], cycle: &[usize]) {
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
}
