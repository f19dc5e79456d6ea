//! `runbook log list` and `runbook log show`: the record of past runs, for people.

use std::path::Path;

use serde::Serialize;

use super::{load_all, load_one};
use crate::cli::StatusFilter;
use crate::commands::{print, print_json};
use crate::error::{Error, exit};
use crate::format::{self, delta, row};
use crate::log::run::Run;

#[derive(Serialize)]
struct ListEntry<'a> {
    run_id: &'a str,
    runbook: &'a str,
    mode: crate::event::Mode,
    operator: &'a str,
    incident: Option<&'a str>,
    started: chrono::DateTime<chrono::Utc>,
    duration_ms: Option<i64>,
    outcome: &'a str,
    log_path: String,
}

pub(crate) fn list(
    log_dir: &Path,
    runbook: Option<&str>,
    status: &[StatusFilter],
    json: bool,
) -> Result<u8, Error> {
    let mut runs = load_all(log_dir)?;
    runs.retain(|r| runbook.is_none_or(|n| r.runbook == n));
    runs.retain(|r| status.is_empty() || status.iter().any(|s| ended(*s, r)));
    runs.reverse();
    if json {
        let entries: Vec<ListEntry> = runs
            .iter()
            .map(|r| ListEntry {
                run_id: &r.run_id,
                runbook: &r.runbook,
                mode: r.mode,
                operator: &r.operator,
                incident: r.incident.as_deref(),
                started: r.started,
                duration_ms: r.duration().map(|d| d.num_milliseconds()),
                outcome: r.outcome(),
                log_path: r.log_path.clone(),
            })
            .collect();
        print_json(&entries)?;
        return Ok(exit::OK);
    }
    if runs.is_empty() {
        print(&format!("no runs in {}\n", log_dir.display()))?;
        return Ok(exit::OK);
    }
    let mut rows = vec![row(&[
        "RUN ID",
        "RUNBOOK",
        "MODE",
        "OPERATOR",
        "INCIDENT",
        "STARTED (UTC)",
        "DURATION",
        "OUTCOME",
    ])];
    for r in &runs {
        rows.push(vec![
            r.run_id.clone(),
            r.runbook.clone(),
            format::mode(r.mode).into(),
            r.operator.clone(),
            r.incident.clone().unwrap_or_else(|| "-".into()),
            format::datetime(r.started),
            r.duration().map_or_else(|| "-".into(), delta),
            r.outcome().into(),
        ]);
    }
    print(&format::table(&rows))?;
    Ok(exit::OK)
}

/// Whether the run ended as `filter` says.
fn ended(filter: StatusFilter, run: &Run) -> bool {
    use crate::event::RunStatus;
    run.status
        == match filter {
            StatusFilter::Succeeded => Some(RunStatus::Succeeded),
            StatusFilter::Failed => Some(RunStatus::Failed),
            StatusFilter::Aborted => Some(RunStatus::Aborted),
            StatusFilter::Interrupted => Some(RunStatus::Interrupted),
            StatusFilter::Unfinished => None,
        }
}

pub(crate) fn show(log_dir: &Path, id: &str) -> Result<u8, Error> {
    let run = load_one(log_dir, id)?;
    print(&render(&run))?;
    Ok(exit::OK)
}

/// Hosts of a fleet step whose last output is shown (the first that failed).
const FAILED_HOST_TAILS: usize = 3;

/// The run as a timeline: each step's start offset, duration, status, attempts, who
/// answered and their note, and the tail of its output when it failed.
fn render(run: &Run) -> String {
    let mut out = format!("run {}  {}: {}\n", run.run_id, run.runbook, run.title);
    let mut facts = vec![
        format!("mode {}", format::mode(run.mode)),
        format!("operator {}", run.operator),
    ];
    facts.push(format!("host {}", run.host));
    if let Some(i) = &run.incident {
        facts.push(format!("incident {i}"));
    }
    out.push_str(&format!("  {}\n", facts.join("  ")));
    out.push_str(&format!("  started {}", format::stamp(run.started)));
    if let (Some(d), Some(engage)) = (run.detected_at, run.time_to_engage()) {
        out.push_str(&format!(
            "  (detected {}, {} before)",
            format::stamp(d),
            delta(engage)
        ));
    }
    out.push('\n');
    if let Some(a) = &run.alert {
        let what = if run.diagnostic {
            "diagnostic rehearsal of alert"
        } else {
            "alert"
        };
        out.push_str(&format!("  {what} {} {} ({})", a.name, a.id, a.status));
        if let Some(d) = &a.diagnostic_run {
            out.push_str(&format!(", rehearsed in run {d}"));
        }
        out.push('\n');
    }
    out.push_str(&format!("  outcome {}", run.outcome()));
    if let Some(d) = run.duration() {
        out.push_str(&format!(" in {}", delta(d)));
    }
    if let Some(r) = &run.reason {
        out.push_str(&format!(": {r}"));
    }
    out.push('\n');
    for m in &run.milestones {
        out.push_str(&format!(
            "  {} at +{} (step {})",
            m.name,
            delta(m.at - run.started),
            m.step
        ));
        if let (Some(ttm), "mitigated") = (run.time_to_mitigate(), m.name.as_str()) {
            out.push_str(&format!(", {} after detection", delta(ttm)));
        }
        out.push('\n');
    }
    for (at, who) in &run.resumed {
        out.push_str(&format!(
            "  resumed at +{} by {who}\n",
            delta(*at - run.started)
        ));
    }
    if run.torn {
        out.push_str("  note: the log's last line was cut short by a crash and is ignored\n");
    }
    out.push('\n');
    let mut rows = vec![row(&["AT", "TOOK", "STATUS", "TRIES", "STEP", "ANSWER"])];
    let mut tails = Vec::new();
    let mut fleets = Vec::new();
    for s in &run.steps {
        let at = s
            .started
            .map_or("-".into(), |t| format!("+{}", delta(t - run.started)));
        let status = match s.status {
            None => "in doubt (started, never finished)",
            st => format::step_status(st),
        };
        let mut answer = Vec::new();
        if let Some(a) = s.response.answer {
            let word = a.as_str().to_string();
            answer.push(match &s.response.operator {
                Some(o) => format!("{word} by {o}"),
                None => word,
            });
        }
        if let Some(w) = s.response.wait_ms.filter(|_| s.response.answer.is_some()) {
            answer.push(format!("after {}", format::millis(w as i64)));
        }
        if let Some(v) = &s.response.value {
            answer.push(format!("value {v:?}"));
        }
        if let Some(n) = &s.response.note {
            answer.push(format!("note: {n}"));
        }
        if let Some(r) = &s.reason {
            answer.push(r.clone());
        }
        let hosts = super::hosts::of(s);
        if let Some(h) = &hosts {
            answer.insert(0, h.headline());
        }
        rows.push(vec![
            at,
            format::millis_or_dash(s.duration_ms.map(|ms| ms as i64)),
            status.to_string(),
            if s.attempts == 0 {
                "-".into()
            } else {
                s.attempts.to_string()
            },
            s.label(),
            answer.join("; "),
        ]);
        let failed = matches!(
            s.status,
            Some(crate::event::StepStatus::Failed | crate::event::StepStatus::TimedOut) | None
        );
        if failed && !s.output_tail.is_empty() {
            tails.push((s.step.clone(), s.output_tail.clone()));
        }
        if let Some(h) = hosts {
            for f in h
                .failed
                .iter()
                .chain(&h.unreachable)
                .take(FAILED_HOST_TAILS)
            {
                if !f.output_tail.is_empty() {
                    tails.push((
                        format!("{} on {}", s.label(), f.host),
                        f.output_tail.clone(),
                    ));
                }
            }
            fleets.push((s.label(), h));
        }
    }
    out.push_str(&format::indented_table(&rows));
    let never = run.not_reached(&[]);
    if !never.is_empty() {
        out.push_str(&format!("  never reached: {}\n", never.join(", ")));
    }
    if !run.not_rolled_back.is_empty() {
        out.push_str("\n  not rolled back (undo by hand if needed, newest first):\n");
        for p in &run.not_rolled_back {
            out.push_str(&format!("    {}: {}\n", p.step, p.command));
        }
    }
    for (label, h) in fleets {
        out.push_str(&format!("\n  hosts of {label}: {}\n", h.headline()));
        for (what, text) in h.lines() {
            out.push_str(&format!("    {what:<12}{text}\n"));
        }
    }
    for (step, tail) in tails {
        out.push_str(&format!("\n  last output of {step}:\n"));
        for l in tail {
            out.push_str(&format!("    | {l}\n"));
        }
    }
    out.push_str(&format!("\n  log {}\n", run.log_path));
    out
}
