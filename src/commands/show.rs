//! `runbook show NAME`: a runbook's params and its steps in run order.

use serde::Serialize;

use super::{load, print, print_json};
use crate::config::Config;
use crate::error::{Error, exit};
use crate::format::{self, indented_table, row};
use crate::runbook::{Action, OnFailure, Runbook, Step};

#[derive(Serialize)]
struct ShowJson<'a> {
    #[serde(flatten)]
    runbook: &'a Runbook,
    /// Step ids in run order.
    order: Vec<&'a str>,
}

pub(crate) fn show(config: &Config, name: &str, json: bool) -> Result<u8, Error> {
    let rb = load(config, name)?;
    if json {
        let order = rb.order.iter().map(|&i| rb.steps[i].id.as_str()).collect();
        print_json(&ShowJson {
            runbook: &rb,
            order,
        })?;
    } else {
        print(&render(&rb))?;
    }
    Ok(exit::OK)
}

fn render(rb: &Runbook) -> String {
    let mut out = format!("{}: {}\n", rb.name, rb.title);
    if let Some(d) = &rb.description {
        for line in d.trim().lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    let mut facts = Vec::new();
    if let Some(o) = &rb.owner {
        facts.push(format!("owner: {o}"));
    }
    if let Some(s) = &rb.service {
        facts.push(format!("service: {s}"));
    }
    if !rb.tags.is_empty() {
        facts.push(format!("tags: {}", rb.tags.join(", ")));
    }
    if let Some(t) = rb.timeout {
        facts.push(format!("timeout: {}", format::setting(t)));
    }
    facts.push(format!("lock: {}", if rb.lock { "yes" } else { "no" }));
    out.push_str(&format!(
        "  {}\n  file: {}\n",
        facts.join("  "),
        rb.path.display()
    ));
    if let Some(a) = &rb.alert {
        let labels: Vec<String> = a.matchers.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let diagnose = if a.diagnose {
            ", diagnosed on arrival"
        } else {
            ""
        };
        out.push_str(&format!("  alert: {}{diagnose}\n", labels.join(" ")));
    }

    if !rb.params.is_empty() {
        out.push_str("\nParams:\n");
        let mut rows = vec![row(&["PARAM", "VALUE", "DESCRIPTION"])];
        for p in &rb.params {
            let mut value = Vec::new();
            if p.required {
                value.push("required".to_string());
            }
            if let Some(d) = &p.default {
                value.push(if p.secret {
                    "default ***".into()
                } else {
                    format!("default {d}")
                });
            }
            if let Some(e) = &p.env {
                value.push(format!("env ${e}"));
            }
            if let Some(l) = &p.from_label {
                value.push(format!("label {l}"));
            }
            if let Some(pat) = &p.pattern {
                value.push(format!("pattern {pat}"));
            }
            if p.secret {
                value.push("secret".into());
            }
            rows.push(vec![
                p.name.clone(),
                if value.is_empty() {
                    "-".into()
                } else {
                    value.join(", ")
                },
                p.description.clone().unwrap_or_default(),
            ]);
        }
        out.push_str(&indented_table(&rows));
    }

    out.push_str("\nSteps, in run order:\n");
    let mut rows = vec![row(&["#", "STEP", "KIND", "NEEDS", "DETAILS"])];
    for (n, &i) in rb.order.iter().enumerate() {
        let s = &rb.steps[i];
        rows.push(vec![
            (n + 1).to_string(),
            s.id.clone(),
            s.kind().to_string(),
            if s.needs.is_empty() {
                "-".into()
            } else {
                s.needs.join(", ")
            },
            details(s),
        ]);
    }
    out.push_str(&indented_table(&rows));
    out
}

fn details(s: &Step) -> String {
    let mut d = Vec::new();
    if s.title != s.id {
        d.push(format!("\"{}\"", s.title));
    }
    if let Some(f) = &s.fleet {
        d.push(format!("on hosts {}", f.hosts.join(" ").trim()));
        if let Some(b) = f.batch {
            d.push(format!("batch {}", b.text()));
        }
        d.push(format!("max_failed {}", f.max_failed.text()));
    }
    if let Some(t) = s.timeout {
        d.push(format!("timeout {}", format::setting(t)));
    }
    if !s.is_manual() && s.shell != crate::runbook::Shell::default() {
        d.push(format!("shell {}", s.shell.argv.join(" ")));
    }
    if s.retries > 0 {
        let delay = s
            .retry_delay
            .map(|r| format!(" every {} x{}", format::setting(r), s.retry_backoff))
            .unwrap_or_default();
        d.push(format!("retries {}{delay}", s.retries));
    }
    if let Some(w) = &s.when {
        d.push(format!("when {}", w.trim()));
    }
    if s.confirm {
        d.push("confirm".into());
    }
    if s.readonly {
        d.push("readonly".into());
    }
    match s.on_failure {
        OnFailure::Abort => {}
        OnFailure::Continue => d.push("on failure continue".into()),
        OnFailure::Prompt => d.push("on failure prompt".into()),
    }
    if let Some(c) = &s.capture {
        d.push(format!("capture {c}"));
    }
    if let Some(a) = &s.ask {
        d.push(format!("ask {a}"));
    }
    if s.rollback.is_some() {
        d.push("rollback".into());
    }
    if let Some(m) = s.milestone {
        d.push(format!("milestone {}", m.as_str()));
    }
    if let Action::Manual(_) = s.action
        && d.is_empty()
    {
        d.push("by hand".into());
    }
    d.join(", ")
}
