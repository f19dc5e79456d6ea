//! `exec --start-at STEP`: the steps STEP needs were done by hand before the run. What they
//! would have captured or been told comes with `--var`, and any such value the steps that
//! will run use but nobody gave is reported before anything runs, not as a template error
//! half-way through.

use crate::error::Error;
use crate::runbook::template::analyse;
use crate::runbook::{Action, Runbook, Step};

use super::plan::Plan;

/// Where a run starts, and the values given for the steps it passes over.
#[derive(Debug, Clone)]
pub(crate) struct StartAt {
    pub step: usize,
    /// Variable -> value, for captures and `ask`s of the skipped steps.
    pub values: Vec<(String, String)>,
}

/// Splits `--var` into params (returned) and values of the steps before `target`; fails
/// naming every value the remaining steps use that nobody gave.
pub(crate) fn split(
    rb: &Runbook,
    plan: &Plan,
    target: usize,
    vars: &[String],
) -> Result<(Vec<String>, StartAt), Error> {
    let skipped = plan.ancestors(target);
    // What the skipped steps would have provided: variable -> the step providing it.
    let provided: Vec<(&str, &str)> = skipped
        .iter()
        .map(|&i| &rb.steps[i])
        .filter_map(|s| {
            s.capture
                .as_deref()
                .or(s.ask.as_deref())
                .map(|v| (v, s.id.as_str()))
        })
        .collect();
    let mut params = Vec::new();
    let mut values = Vec::new();
    for v in vars {
        match v.split_once('=') {
            Some((k, val)) if provided.iter().any(|(p, _)| *p == k) => {
                values.push((k.to_string(), val.to_string()))
            }
            _ => params.push(v.clone()),
        }
    }
    let mut missing = Vec::new();
    for (i, step) in rb.steps.iter().enumerate() {
        if skipped.contains(&i) {
            continue;
        }
        for name in used(step) {
            let Some((_, by)) = provided.iter().find(|(p, _)| *p == name) else {
                continue;
            };
            if values.iter().any(|(k, _)| *k == name) {
                continue;
            }
            match missing
                .iter_mut()
                .find(|(n, _, _): &&mut (String, &str, Vec<String>)| *n == name)
            {
                Some((_, _, users)) => users.push(step.id.clone()),
                None => missing.push((name, *by, vec![step.id.clone()])),
            }
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing
            .iter()
            .map(|(name, by, users)| format!("`{name}` (from {by}, used by {})", users.join(", ")))
            .collect();
        let give: Vec<String> = missing
            .iter()
            .map(|(name, _, _)| format!("--var {name}=VALUE"))
            .collect();
        return Err(Error::Flag {
            flag: "start-at",
            value: rb.steps[target].id.clone(),
            problem: format!(
                "the steps that will run use values that the skipped steps would have provided: {}; give them with {}",
                list.join(", "),
                give.join(" ")
            ),
        });
    }
    Ok((
        params,
        StartAt {
            step: target,
            values,
        },
    ))
}

/// Every variable a step's templates read.
fn used(step: &Step) -> Vec<String> {
    let mut texts: Vec<&str> = Vec::new();
    match &step.action {
        Action::Run(t) | Action::Manual(t) => texts.push(t),
    }
    texts.extend(step.when.as_deref());
    texts.extend(step.rollback.as_deref());
    texts.extend(step.dir.as_deref());
    texts.extend(step.env.iter().map(|(_, v)| v.as_str()));
    let mut names: Vec<String> = Vec::new();
    for t in texts {
        for r in analyse(t).unwrap_or_default() {
            if !names.contains(&r.name) {
                names.push(r.name);
            }
        }
    }
    names
}
