//! Templates: every `{{value}}` names a param, a builtin or a value a step before it
//! provides, and stays data in the shell command it lands in.

use super::*;

impl Validator<'_> {
    /// Checks capture and ask names and returns every provided variable.
    pub(super) fn provided_vars(
        &mut self,
        steps: &[RawStep],
        params: &HashMap<&str, usize>,
    ) -> Vec<Provided> {
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

    pub(super) fn templates(
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
