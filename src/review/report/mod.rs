//! `runbook report`: the command, and the context every report format is rendered from.
//!
//! A report is a postmortem draft of one run, in the shape of the Google SRE postmortem
//! template. Every fact in it comes from the run's log, and from earlier logs of the same
//! runbook to say which steps were slower than usual; what only people know (impact, root
//! causes, trigger, lessons) is left to them with a one-line prompt each. One context,
//! [`Report`], feeds every format: the Handlebars templates in `templates/` (embedded in the
//! binary), a team's own template (`--template`), and `--format json`, which prints the
//! context itself. Nothing is rendered again from the runbook: secrets are already `***` in
//! the log, and the report never holds more than the log does. The runbook file is read
//! only when it is byte for byte the one that ran, for step titles and `readonly` flags.
//!
//! The parts: [`facts`] (what happened), [`actions`] (what to do about it), [`chart`] (the
//! timeline picture) and [`render`] (templates and escaping).

mod actions;
mod chart;
mod facts;
mod render;

use std::path::Path;

use serde::Serialize;

use super::{load_all, load_one};
use crate::cli::{ReportArgs, ReportFormat};
use crate::commands::print;
use crate::error::{Error, exit};
use crate::event::{Kind, Mode};
use crate::format::{self, millis, stamp};
use crate::log::run::Run;
use crate::runbook::Runbook;
use chart::Chart;
use facts::Facts;

/// Version of the report context, for teams' own templates and JSON readers.
const REPORT_SCHEMA: u32 = 1;

pub(crate) fn report(log_dir: &Path, args: &ReportArgs) -> Result<u8, Error> {
    let format = match (args.format, args.template.as_deref()) {
        (Some(ReportFormat::Json), Some(_)) => {
            return Err(Error::TemplateWithJson);
        }
        (Some(f), _) => f,
        (None, Some(t)) if looks_like_html(t) => ReportFormat::Html,
        (None, _) => ReportFormat::Markdown,
    };
    // Read the team's template first: a typo in its path should not wait for the logs.
    let custom = match args.template.as_deref() {
        Some(path) => Some((
            path,
            std::fs::read_to_string(path).map_err(|source| Error::Path {
                action: "read template",
                path: path.to_path_buf(),
                source,
            })?,
        )),
        None => None,
    };
    let run = load_one(log_dir, &args.run)?;
    let earlier: Vec<Run> = load_all(log_dir)?
        .into_iter()
        .filter(|r| {
            r.runbook == run.runbook
                && r.mode == run.mode
                && r.run_id != run.run_id
                && r.started < run.started
        })
        .collect();
    let runbook = same_runbook(&run);
    let context = build(&run, &earlier, runbook.as_ref());
    let mut text = match (format, &custom) {
        (ReportFormat::Json, _) => serde_json::to_string_pretty(&context)
            .map_err(|e| Error::Output(std::io::Error::other(e)))?,
        (_, Some((path, source))) => {
            render::render(format, &path.display().to_string(), source, &context).map_err(
                |problem| Error::Template {
                    name: path.display().to_string(),
                    problem,
                },
            )?
        }
        (ReportFormat::Markdown, None) => {
            render::render(format, "report.md.hbs", render::MARKDOWN, &context)
                .map_err(|e| Error::Internal(format!("the shipped markdown template: {e}")))?
        }
        (ReportFormat::Html, None) => {
            render::render(format, "report.html.hbs", render::HTML, &context)
                .map_err(|e| Error::Internal(format!("the shipped html template: {e}")))?
        }
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    // A report file is read in terminals and editors too: what a run recorded is shown,
    // never obeyed (JSON escapes it itself).
    let shown = match format {
        ReportFormat::Json => format::Shown::Json,
        _ => format::Shown::Text,
    };
    let text = format::visible(&text, shown).into_owned();
    match args.output.as_deref() {
        Some(path) => {
            std::fs::write(path, text).map_err(|source| Error::Path {
                action: "write",
                path: path.to_path_buf(),
                source,
            })?;
            let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            eprintln!(
                "wrote the {} report of run {} to {}",
                match format {
                    ReportFormat::Markdown => "markdown",
                    ReportFormat::Html => "html",
                    ReportFormat::Json => "json",
                },
                run.run_id,
                shown.display()
            );
        }
        None => print(&text)?,
    }
    Ok(exit::OK)
}

fn looks_like_html(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    name.ends_with(".html") || name.ends_with(".htm") || name.contains(".html.")
}

/// The runbook file that ran, if it is still there unchanged.
fn same_runbook(run: &Run) -> Option<Runbook> {
    let rb = crate::runbook::load(Path::new(&run.runbook_path), &run.runbook).ok()?;
    (rb.sha256 == run.runbook_sha256).then_some(rb)
}

/// Everything a report template can use; `--format json` prints it as is.
#[derive(Debug, Serialize)]
struct Report {
    report_schema: u32,
    generated_by: String,
    title: String,
    /// Day the run started (UTC), `YYYY-MM-DD`.
    date: String,
    /// Always `draft`: people finish it.
    status: &'static str,
    /// A dry run: a drill, not an incident.
    rehearsal: bool,
    mode: Mode,
    incident: Option<String>,
    operators: Vec<String>,
    operators_text: String,
    run: RunFacts,
    summary: Summary,
    detection: Detection,
    timeline: Vec<TimelineRow>,
    /// The last lines of output of the steps that failed, timed out or are in doubt.
    failed_output: Vec<FailedOutput>,
    resolution: Resolution,
    action_items: Vec<ActionItem>,
    comparison: Comparison,
    /// The Gantt-style picture of the steps, laid out for an SVG.
    chart: Chart,
}

#[derive(Debug, Serialize)]
struct RunFacts {
    id: String,
    runbook: String,
    runbook_title: String,
    runbook_path: String,
    /// `unchanged`: the runbook file is the one that ran (titles and `readonly` come from
    /// it); `changed` or `missing`: only the log is used.
    runbook_file: &'static str,
    host: String,
    version: String,
    log_path: String,
    started: String,
    started_at: String,
    finished: Option<String>,
    finished_at: Option<String>,
    /// `succeeded`, `failed`, `aborted`, `interrupted`, or `unfinished`.
    outcome: &'static str,
    /// The outcome for people: a rehearsal "finished" (with the read-only checks that
    /// failed), it never "succeeded".
    outcome_text: String,
    reason: Option<String>,
    duration_ms: Option<i64>,
    duration: Option<String>,
    resumed: Vec<Resumed>,
    /// The log's last line was cut short by a crash.
    torn: bool,
}

#[derive(Debug, Serialize)]
struct Resumed {
    at: String,
    operator: String,
}

#[derive(Debug, Serialize)]
struct Summary {
    /// One paragraph: what ran, how it ended, how long it took.
    text: String,
    steps: usize,
    succeeded: usize,
    failed: usize,
    skipped: usize,
    dry_run: usize,
    aborted: usize,
    in_doubt: usize,
    /// Steps the run never reached (no record of them), in run order.
    not_reached: Vec<String>,
    manual_steps: usize,
    rollbacks: usize,
    retried: usize,
    /// Time spent waiting on people: manual steps, confirmations and failure prompts.
    people_wait_ms: i64,
    people_wait: String,
    /// `people_wait` as a share of the run, in percent.
    people_share: Option<u32>,
}

#[derive(Debug, Serialize)]
struct Detection {
    detected: bool,
    detected_at: Option<String>,
    time_to_engage_ms: Option<i64>,
    time_to_engage: Option<String>,
    mitigated_at: Option<String>,
    /// What marked mitigation: `the mitigated milestone of step X` or `the run's successful end`.
    mitigated_by: Option<String>,
    time_to_mitigate_ms: Option<i64>,
    time_to_mitigate: Option<String>,
    resolved_at: Option<String>,
    /// The alert the response started from (`exec --alert`).
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<DetectedBy>,
}

/// The alert that detected the incident, for the Detection section.
#[derive(Debug, Serialize)]
struct DetectedBy {
    name: String,
    id: String,
    status: String,
    /// The alert's labels other than `alertname`, as `k=v, k=v`.
    labels: String,
    /// Its `summary` annotation, else its `description`.
    summary: Option<String>,
    started_at: String,
    /// Where Prometheus shows the rule's expression; only http(s) links are kept.
    generator_url: Option<String>,
    /// The diagnostic rehearsal run before anyone engaged.
    diagnostic_run: Option<String>,
}

/// One line of the response timeline: detection, start, each step, milestones, the end.
#[derive(Debug, Serialize)]
struct TimelineRow {
    /// `detected`, `run_started`, `step`, `rollback`, `milestone`, `resumed`, `run_finished`.
    event: &'static str,
    /// Clock time (UTC), `HH:MM:SS`, with the day when it is not the report's date.
    at: String,
    ts: String,
    /// From the start of the run: `+1m 3s`, or `-12m 0s` for the detection.
    offset: String,
    offset_ms: i64,
    step: Option<String>,
    /// The step's title, or what happened for the other events.
    what: String,
    kind: Option<Kind>,
    status: Option<String>,
    /// The step failed, timed out, was aborted or is in doubt.
    bad: bool,
    duration_ms: Option<u64>,
    duration: Option<String>,
    attempts: u32,
    answer: Option<String>,
    operator: Option<String>,
    wait: Option<String>,
    value: Option<String>,
    note: Option<String>,
    reason: Option<String>,
    /// answer, value, note and reason in one line, for a table cell.
    details: String,
    /// A fleet step: its hosts by status, those that failed or were unreachable, the
    /// slowest, and every host (absent for other rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    hosts: Option<crate::review::hosts::Hosts>,
}

#[derive(Debug, Serialize)]
struct FailedOutput {
    step: String,
    status: String,
    lines: Vec<String>,
    text: String,
    truncated_bytes: u64,
}

#[derive(Debug, Serialize)]
struct Resolution {
    steps: Vec<ResolutionStep>,
    /// Changes the run left applied: succeeded steps whose rollback did not run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    left_applied: Vec<crate::event::PendingRollback>,
    /// `false` when the runbook file changed since the run: read-only checks cannot be
    /// told apart from changes, and are listed too.
    readonly_known: bool,
}

#[derive(Debug, Serialize)]
struct ResolutionStep {
    step: String,
    title: String,
    kind: Kind,
    rollback: bool,
    at: String,
    offset: String,
    duration: String,
    operator: Option<String>,
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct ActionItem {
    /// `automate`, `failed`, `in_doubt`, `retried`, `skipped`, `slower`.
    kind: &'static str,
    /// The SRE template's action item type: `mitigate`, `prevent`, `process`, `investigate`.
    #[serde(rename = "type")]
    item_type: &'static str,
    step: String,
    text: String,
}

#[derive(Debug, Serialize)]
struct Comparison {
    /// Earlier runs of this runbook in the same mode, which the medians come from.
    earlier_runs: usize,
    mode: Mode,
}

/// Builds the report of `run`; `earlier` are earlier runs of the same runbook and mode, and
/// `runbook` the runbook file when it is byte for byte the one that ran.
fn build(run: &Run, earlier: &[Run], runbook: Option<&Runbook>) -> Report {
    let rehearsal = run.mode == Mode::DryRun;
    let facts = Facts {
        run,
        runbook,
        rehearsal,
    };
    let run_ms = facts.run_ms();
    Report {
        report_schema: REPORT_SCHEMA,
        generated_by: format!("runbook {}", env!("CARGO_PKG_VERSION")),
        title: if rehearsal {
            format!("Rehearsal (dry run): {}", run.title)
        } else {
            format!("Postmortem: {}", run.title)
        },
        date: format::day(run.started),
        status: "draft",
        rehearsal,
        mode: run.mode,
        incident: run.incident.clone(),
        operators: run.operators(),
        operators_text: run.operators().join(", "),
        run: RunFacts {
            id: run.run_id.clone(),
            runbook: run.runbook.clone(),
            runbook_title: run.title.clone(),
            runbook_path: run.runbook_path.clone(),
            runbook_file: if runbook.is_some() {
                "unchanged"
            } else if Path::new(&run.runbook_path).exists() {
                "changed"
            } else {
                "missing"
            },
            host: run.host.clone(),
            version: run.version.clone(),
            log_path: run.log_path.clone(),
            started: crate::event::timestamp(run.started),
            started_at: stamp(run.started),
            finished: run.finished.map(crate::event::timestamp),
            finished_at: run.finished.map(stamp),
            outcome: run.outcome(),
            outcome_text: facts::outcome_text(&facts),
            reason: run.reason.clone(),
            duration_ms: run_ms,
            duration: run_ms.map(millis),
            resumed: run
                .resumed
                .iter()
                .map(|(t, o)| Resumed {
                    at: stamp(*t),
                    operator: o.clone(),
                })
                .collect(),
            torn: run.torn,
        },
        summary: facts::summary(&facts),
        detection: facts::detection(&facts),
        timeline: facts::timeline(&facts),
        failed_output: facts::failed_output(run),
        resolution: facts::resolution(&facts),
        action_items: actions::action_items(&facts, earlier),
        comparison: Comparison {
            earlier_runs: earlier.len(),
            mode: run.mode,
        },
        chart: chart::chart(run),
    }
}
