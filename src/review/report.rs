//! `runbook report`: a postmortem draft of one run, in the shape of the Google SRE
//! postmortem template.
//!
//! Every fact in it comes from the run's log, and from earlier logs of the same runbook to
//! say which steps were slower than usual; what only people know (impact, root causes,
//! trigger, lessons) is left to them with a one-line prompt each. One context, [`Report`],
//! feeds every format: the Handlebars templates in `templates/` (embedded in the binary),
//! a team's own template (`--template`), and `--format json`, which prints the context
//! itself. Nothing is rendered again from the runbook: secrets are already `***` in the log,
//! and the report never holds more than the log does. The runbook file is read only when it
//! is byte for byte the one that ran, for step titles and `readonly` flags.

use std::path::Path;

use chrono::{DateTime, Utc};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason,
};
use serde::Serialize;

use super::{load_all, load_one};
use crate::cli::ReportFormat;
use crate::commands::print;
use crate::error::{Error, exit};
use crate::event::{Answer, Kind, Mode, Phase, StepStatus};
use crate::format::{self, delta, millis, percentile, stamp, step_status};
use crate::log::run::{Run, StepRun};
use crate::runbook::Runbook;

const MARKDOWN: &str = include_str!("../../templates/report.md.hbs");
const HTML: &str = include_str!("../../templates/report.html.hbs");

/// Version of the report context, for teams' own templates and JSON readers.
const REPORT_SCHEMA: u32 = 1;
/// Manual steps named as automation candidates: the longest few, and only those a person
/// spent at least a second on (an instant answer is not worth automating away).
const AUTOMATE_TOP: usize = 3;
const AUTOMATE_MIN_MS: u64 = 1_000;
/// "Slower than its median" means at least this many times the median, and by at least
/// [`SLOWER_MIN_MS`]: a 4ms step that took 9ms is noise, not an action item.
const SLOWER_FACTOR: f64 = 1.5;
const SLOWER_MIN_MS: i64 = 500;

/// What `runbook report` was asked for.
pub struct ReportArgs<'a> {
    /// Run id (or a unique prefix), or `latest`.
    pub run: &'a str,
    /// `None`: markdown, or html for a `--template` whose file name says html.
    pub format: Option<ReportFormat>,
    pub template: Option<&'a Path>,
    pub output: Option<&'a Path>,
}

pub fn report(log_dir: &Path, args: &ReportArgs) -> Result<u8, Error> {
    let format = match (args.format, args.template) {
        (Some(ReportFormat::Json), Some(_)) => {
            return Err(Error::Usage(
                "--template renders text; it cannot be combined with --format json".into(),
            ));
        }
        (Some(f), _) => f,
        (None, Some(t)) if looks_like_html(t) => ReportFormat::Html,
        (None, _) => ReportFormat::Markdown,
    };
    // Read the team's template first: a typo in its path should not wait for the logs.
    let custom = match args.template {
        Some(path) => Some((
            path,
            std::fs::read_to_string(path).map_err(|e| {
                Error::Usage(format!("cannot read template {}: {e}", path.display()))
            })?,
        )),
        None => None,
    };
    let run = load_one(log_dir, args.run)?;
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
        (_, Some((path, source))) => render(format, &path.display().to_string(), source, &context)
            .map_err(|e| Error::Usage(format!("template {}: {e}", path.display())))?,
        (ReportFormat::Markdown, None) => render(format, "report.md.hbs", MARKDOWN, &context)
            .map_err(|e| Error::Usage(format!("shipped markdown template: {e}")))?,
        (ReportFormat::Html, None) => render(format, "report.html.hbs", HTML, &context)
            .map_err(|e| Error::Usage(format!("shipped html template: {e}")))?,
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match args.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| Error::Usage(format!("cannot write {}: {e}", path.display())))?,
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

// ── Rendering ─────────────────────────────────────────────────────────────────────────────

/// Renders `source` with the context: HTML-escaped for html, Markdown-escaped otherwise.
/// Strict: a misspelt name in a template is an error, never an empty cell.
fn render(
    format: ReportFormat,
    name: &str,
    source: &str,
    context: &Report,
) -> Result<String, String> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    if format != ReportFormat::Html {
        hb.register_escape_fn(markdown_escape);
        hb.register_helper("code", Box::new(code_helper));
        hb.register_helper("fence", Box::new(fence_helper));
    }
    hb.register_template_string(name, source).map_err(|e| {
        let at = e
            .pos()
            .map(|(l, c)| format!("line {l}, column {c}: "))
            .unwrap_or_default();
        format!("{at}{}", crate::runbook::template::reason_text(&e))
    })?;
    hb.render(name, context).map_err(|e| {
        let at = match (e.line_no, e.column_no) {
            (Some(l), Some(c)) => format!("line {l}, column {c}: "),
            _ => String::new(),
        };
        let why = match e.reason() {
            RenderErrorReason::MissingVariable(Some(p)) => {
                format!("`{p}` is not in the report context (see --format json)")
            }
            other => other.to_string(),
        };
        format!("{at}{why}")
    })
}

/// `{{x}}` in Markdown: text that cannot open a link, an HTML tag, emphasis, code or a table
/// cell, on one line.
fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '[' | ']' | '<' | '>' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn param_text(h: &Helper, helper: &'static str) -> Result<String, RenderError> {
    let v = h
        .param(0)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex(helper, 0))?;
    Ok(match v.value() {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// The longest run of backticks in `s`, so a fence can be one longer.
fn longest_backticks(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// `{{code x}}`: an inline code span that holds any text (also inside a table cell).
fn code_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let text = param_text(h, "code")?
        .replace(['\r', '\n'], " ")
        .replace('|', "\\|");
    let ticks = "`".repeat(longest_backticks(&text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    out.write(&format!("{ticks}{pad}{text}{pad}{ticks}"))?;
    Ok(())
}

/// `{{fence x}}`: a fenced code block that holds any text.
fn fence_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let text = param_text(h, "fence")?;
    let ticks = "`".repeat(longest_backticks(&text).max(2) + 1);
    let nl = if text.ends_with('\n') { "" } else { "\n" };
    out.write(&format!("{ticks}text\n{text}{nl}{ticks}"))?;
    Ok(())
}

// ── The context ───────────────────────────────────────────────────────────────────────────

/// Everything a report template can use; `--format json` prints it as is.
#[derive(Debug, Serialize)]
pub struct Report {
    pub report_schema: u32,
    pub generated_by: String,
    pub title: String,
    /// Day the run started (UTC), `YYYY-MM-DD`.
    pub date: String,
    /// Always `draft`: people finish it.
    pub status: &'static str,
    /// A dry run: a drill, not an incident.
    pub rehearsal: bool,
    pub mode: Mode,
    pub incident: Option<String>,
    pub operators: Vec<String>,
    pub operators_text: String,
    pub run: RunFacts,
    pub summary: Summary,
    pub detection: Detection,
    pub timeline: Vec<TimelineRow>,
    /// The last lines of output of the steps that failed, timed out or are in doubt.
    pub failed_output: Vec<FailedOutput>,
    pub resolution: Resolution,
    pub action_items: Vec<ActionItem>,
    pub comparison: Comparison,
    /// The Gantt-style picture of the steps, laid out for an SVG.
    pub chart: Chart,
}

#[derive(Debug, Serialize)]
pub struct RunFacts {
    pub id: String,
    pub runbook: String,
    pub runbook_title: String,
    pub runbook_path: String,
    /// `unchanged`: the runbook file is the one that ran (titles and `readonly` come from
    /// it); `changed` or `missing`: only the log is used.
    pub runbook_file: &'static str,
    pub host: String,
    pub version: String,
    pub log_path: String,
    pub started: String,
    pub started_at: String,
    pub finished: Option<String>,
    pub finished_at: Option<String>,
    /// `succeeded`, `failed`, `aborted`, `interrupted`, or `unfinished`.
    pub outcome: &'static str,
    pub reason: Option<String>,
    pub duration_ms: Option<i64>,
    pub duration: Option<String>,
    pub resumed: Vec<Resumed>,
    /// The log's last line was cut short by a crash.
    pub torn: bool,
}

#[derive(Debug, Serialize)]
pub struct Resumed {
    pub at: String,
    pub operator: String,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    /// One paragraph: what ran, how it ended, how long it took.
    pub text: String,
    pub steps: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    pub dry_run: usize,
    pub aborted: usize,
    pub in_doubt: usize,
    pub manual_steps: usize,
    pub rollbacks: usize,
    pub retried: usize,
    /// Time spent waiting on people: manual steps, confirmations and failure prompts.
    pub people_wait_ms: i64,
    pub people_wait: String,
    /// `people_wait` as a share of the run, in percent.
    pub people_share: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct Detection {
    pub detected: bool,
    pub detected_at: Option<String>,
    pub time_to_engage_ms: Option<i64>,
    pub time_to_engage: Option<String>,
    pub mitigated_at: Option<String>,
    /// What marked mitigation: `the mitigated milestone of step X` or `the run's successful end`.
    pub mitigated_by: Option<String>,
    pub time_to_mitigate_ms: Option<i64>,
    pub time_to_mitigate: Option<String>,
    pub resolved_at: Option<String>,
}

/// One line of the response timeline: detection, start, each step, milestones, the end.
#[derive(Debug, Serialize)]
pub struct TimelineRow {
    /// `detected`, `run_started`, `step`, `rollback`, `milestone`, `resumed`, `run_finished`.
    pub event: &'static str,
    /// Clock time (UTC), `HH:MM:SS`, with the day when it is not the report's date.
    pub at: String,
    pub ts: String,
    /// From the start of the run: `+1m 3s`, or `-12m 0s` for the detection.
    pub offset: String,
    pub offset_ms: i64,
    pub step: Option<String>,
    /// The step's title, or what happened for the other events.
    pub what: String,
    pub kind: Option<Kind>,
    pub status: Option<String>,
    /// The step failed, timed out, was aborted or is in doubt.
    pub bad: bool,
    pub duration_ms: Option<u64>,
    pub duration: Option<String>,
    pub attempts: u32,
    pub answer: Option<String>,
    pub operator: Option<String>,
    pub wait: Option<String>,
    pub value: Option<String>,
    pub note: Option<String>,
    pub reason: Option<String>,
    /// answer, value, note and reason in one line, for a table cell.
    pub details: String,
}

#[derive(Debug, Serialize)]
pub struct FailedOutput {
    pub step: String,
    pub status: String,
    pub lines: Vec<String>,
    pub text: String,
    pub truncated_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Resolution {
    pub steps: Vec<ResolutionStep>,
    /// `false` when the runbook file changed since the run: read-only checks cannot be
    /// told apart from changes, and are listed too.
    pub readonly_known: bool,
}

#[derive(Debug, Serialize)]
pub struct ResolutionStep {
    pub step: String,
    pub title: String,
    pub kind: Kind,
    pub rollback: bool,
    pub at: String,
    pub offset: String,
    pub duration: String,
    pub operator: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ActionItem {
    /// `automate`, `failed`, `in_doubt`, `retried`, `skipped`, `slower`.
    pub kind: &'static str,
    /// The SRE template's action item type: `mitigate`, `prevent`, `process`, `investigate`.
    #[serde(rename = "type")]
    pub item_type: &'static str,
    pub step: String,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    /// Earlier runs of this runbook in the same mode, which the medians come from.
    pub earlier_runs: usize,
    pub mode: Mode,
}

// ── Building the context ──────────────────────────────────────────────────────────────────

/// The run, with what the report adds to the log: step titles and `readonly` flags from
/// the runbook file when it is the one that ran, and times written relative to the run.
struct Facts<'a> {
    run: &'a Run,
    runbook: Option<&'a Runbook>,
    rehearsal: bool,
}

impl Facts<'_> {
    fn title(&self, id: &str) -> String {
        self.runbook
            .and_then(|rb| rb.step(id))
            .map_or_else(|| id.to_string(), |s| s.title.clone())
    }

    /// `id (Title)`, or just the id when there is no other title.
    fn named(&self, id: &str) -> String {
        let t = self.title(id);
        if t == id { t } else { format!("{id} ({t})") }
    }

    fn readonly(&self, id: &str) -> bool {
        self.runbook
            .and_then(|rb| rb.step(id))
            .is_some_and(|s| s.readonly)
    }

    /// Clock time, with the day only when it is not the day the run started.
    fn clock(&self, t: DateTime<Utc>) -> String {
        if t.date_naive() == self.run.started.date_naive() {
            format::clock(t)
        } else {
            format::datetime(t)
        }
    }

    /// From the start of the run: `+1m 3s`, or `-5m 0s` before it.
    fn offset(&self, t: DateTime<Utc>) -> String {
        let d = t - self.run.started;
        if d < chrono::Duration::zero() {
            delta(d)
        } else {
            format!("+{}", delta(d))
        }
    }

    fn run_ms(&self) -> Option<i64> {
        self.run.duration().map(|d| d.num_milliseconds())
    }
}

/// Builds the report of `run`; `earlier` are earlier runs of the same runbook and mode, and
/// `runbook` the runbook file when it is byte for byte the one that ran.
pub fn build(run: &Run, earlier: &[Run], runbook: Option<&Runbook>) -> Report {
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
        summary: summary(&facts),
        detection: detection(&facts),
        timeline: timeline(&facts),
        failed_output: failed_output(run),
        resolution: resolution(&facts),
        action_items: action_items(&facts, earlier),
        comparison: Comparison {
            earlier_runs: earlier.len(),
            mode: run.mode,
        },
        chart: chart(run),
    }
}

fn summary(facts: &Facts) -> Summary {
    let run = facts.run;
    let run_ms = facts.run_ms();
    let run_steps: Vec<&StepRun> = run.steps.iter().filter(|s| s.phase == Phase::Run).collect();
    let count = |f: &dyn Fn(&StepRun) -> bool| run_steps.iter().filter(|s| f(s)).count();
    let people_wait_ms = run.people_ms() as i64;
    let summary = Summary {
        text: String::new(),
        steps: run_steps.len(),
        succeeded: count(&|s| s.status == Some(StepStatus::Succeeded)),
        failed: count(&|s| matches!(s.status, Some(StepStatus::Failed | StepStatus::TimedOut))),
        skipped: count(&|s| s.status == Some(StepStatus::Skipped)),
        dry_run: count(&|s| s.status == Some(StepStatus::DryRun)),
        aborted: count(&|s| s.status == Some(StepStatus::Aborted)),
        in_doubt: count(&|s| s.status.is_none()),
        manual_steps: count(&|s| s.kind == Kind::Manual),
        rollbacks: run.steps.len() - run_steps.len(),
        retried: count(&|s| s.attempts > 1),
        people_wait_ms,
        people_wait: millis(people_wait_ms),
        people_share: run_ms.filter(|ms| *ms > 0).map(|ms| {
            ((people_wait_ms as f64 / ms as f64) * 100.0)
                .round()
                .min(100.0) as u32
        }),
    };
    Summary {
        text: summary_text(run, &summary, facts.rehearsal),
        ..summary
    }
}

fn detection(facts: &Facts) -> Detection {
    let run = facts.run;
    let mitigated_milestone = run.milestones.iter().find(|m| m.name == "mitigated");
    // A rehearsal mitigates nothing, even when it reaches its end.
    let mitigated_at = run.mitigated_at().filter(|_| !facts.rehearsal);
    let time_to_mitigate = run.time_to_mitigate().filter(|_| !facts.rehearsal);
    Detection {
        detected: run.detected_at.is_some(),
        detected_at: run.detected_at.map(stamp),
        time_to_engage_ms: run.time_to_engage().map(|d| d.num_milliseconds()),
        time_to_engage: run.time_to_engage().map(delta),
        mitigated_at: mitigated_at.map(stamp),
        mitigated_by: mitigated_at.map(|_| match mitigated_milestone {
            Some(m) => format!("the mitigated milestone of step {}", m.step),
            None => "the run's successful end".to_string(),
        }),
        time_to_mitigate_ms: time_to_mitigate.map(|d| d.num_milliseconds()),
        time_to_mitigate: time_to_mitigate.map(delta),
        resolved_at: run
            .milestones
            .iter()
            .find(|m| m.name == "resolved")
            .map(|m| stamp(m.at)),
    }
}

/// The timeline: the log's order is the order things happened in (a skipped step sits
/// where it was decided), with each milestone right after the step that reached it.
fn timeline(facts: &Facts) -> Vec<TimelineRow> {
    let run = facts.run;
    let row = |event: &'static str, t: DateTime<Utc>, what: String| TimelineRow {
        event,
        at: facts.clock(t),
        ts: crate::event::timestamp(t),
        offset: facts.offset(t),
        offset_ms: (t - run.started).num_milliseconds(),
        step: None,
        what,
        kind: None,
        status: None,
        bad: false,
        duration_ms: None,
        duration: None,
        attempts: 0,
        answer: None,
        operator: None,
        wait: None,
        value: None,
        note: None,
        reason: None,
        details: String::new(),
    };
    let mut timeline = Vec::new();
    if let Some(d) = run.detected_at {
        timeline.push(row("detected", d, "incident detected".into()));
    }
    let mode = if facts.rehearsal {
        "rehearsal"
    } else {
        "live run"
    };
    timeline.push(row(
        "run_started",
        run.started,
        format!("{mode} started by {} on {}", run.operator, run.host),
    ));
    let mut resumed = run.resumed.iter().peekable();
    for s in &run.steps {
        let at = s.started.or(s.finished).unwrap_or(run.started);
        while let Some((t, who)) = resumed.next_if(|(t, _)| *t <= at) {
            timeline.push(row("resumed", *t, format!("run resumed by {who}")));
        }
        let rollback = s.phase == Phase::Rollback;
        let mut r = if rollback {
            row(
                "rollback",
                at,
                format!("roll back: {}", facts.title(&s.step)),
            )
        } else {
            row("step", at, facts.title(&s.step))
        };
        r.step = Some(s.step.clone());
        r.kind = Some(s.kind);
        r.status = Some(step_status(s.status).to_string());
        r.bad = !s.status.is_some_and(|st| {
            matches!(
                st,
                StepStatus::Succeeded | StepStatus::Skipped | StepStatus::DryRun
            )
        });
        r.duration_ms = s.duration_ms;
        r.duration = s.duration_ms.map(|ms| millis(ms as i64));
        r.attempts = s.attempts;
        r.answer = s.response.answer.map(|a| a.as_str().to_string());
        r.operator = s.response.answer.and(s.response.operator.clone());
        r.wait = s
            .response
            .answer
            .and(s.response.wait_ms)
            .map(|ms| millis(ms as i64));
        r.value.clone_from(&s.response.value);
        r.note.clone_from(&s.response.note);
        r.reason.clone_from(&s.reason);
        r.details = details(s);
        timeline.push(r);
        if !rollback {
            for m in run.milestones.iter().filter(|m| m.step == s.step) {
                let mut r = row("milestone", m.at, format!("milestone: {}", m.name));
                r.step = Some(m.step.clone());
                timeline.push(r);
            }
        }
    }
    for (t, who) in resumed {
        timeline.push(row("resumed", *t, format!("run resumed by {who}")));
    }
    if let (Some(t), Some(status)) = (run.finished, run.status) {
        let mut what = format!("run {}", status.as_str());
        if let Some(r) = &run.reason {
            what.push_str(&format!(": {r}"));
        }
        let run_ms = facts.run_ms();
        let mut r = row("run_finished", t, what);
        r.status = Some(status.as_str().to_string());
        r.duration_ms = run_ms.map(|ms| ms.max(0) as u64);
        r.duration = run_ms.map(millis);
        timeline.push(r);
    }
    timeline
}

fn failed_output(run: &Run) -> Vec<FailedOutput> {
    run.steps
        .iter()
        .filter(|s| {
            matches!(
                s.status,
                Some(StepStatus::Failed | StepStatus::TimedOut) | None
            ) && !s.output_tail.is_empty()
        })
        .map(|s| FailedOutput {
            step: s.label(),
            status: step_status(s.status).to_string(),
            lines: s.output_tail.clone(),
            text: s.output_tail.join("\n"),
            truncated_bytes: s.truncated_bytes,
        })
        .collect()
}

/// The steps that changed things: done manual steps and succeeded automated steps that
/// are not read-only (all of them when the runbook file cannot say which are).
fn resolution(facts: &Facts) -> Resolution {
    let run = facts.run;
    let steps = if facts.rehearsal {
        // A rehearsal changes nothing: its commands were shown, not run.
        Vec::new()
    } else {
        run.steps
            .iter()
            .filter(|s| s.status == Some(StepStatus::Succeeded))
            .filter(|s| s.kind == Kind::Manual || !facts.readonly(&s.step))
            .map(|s| {
                let at = s.started.unwrap_or(run.started);
                ResolutionStep {
                    step: s.step.clone(),
                    title: facts.title(&s.step),
                    kind: s.kind,
                    rollback: s.phase == Phase::Rollback,
                    at: facts.clock(at),
                    offset: facts.offset(at),
                    duration: millis(s.duration_ms.unwrap_or(0) as i64),
                    operator: if s.kind == Kind::Manual {
                        s.response.operator.clone()
                    } else {
                        None
                    },
                    note: s.response.note.clone(),
                }
            })
            .collect()
    };
    Resolution {
        steps,
        readonly_known: facts.runbook.is_some(),
    }
}

fn summary_text(run: &Run, s: &Summary, rehearsal: bool) -> String {
    let what = if rehearsal {
        "was rehearsed (dry run: only read-only steps ran)"
    } else {
        "ran live"
    };
    let mut text = format!(
        "Runbook {} ({}) {what} on {}, started by {} at {}",
        run.runbook,
        run.title,
        run.host,
        run.operator,
        stamp(run.started),
    );
    if let Some(i) = &run.incident {
        text.push_str(&format!(" for incident {i}"));
    }
    match (run.status, run.duration()) {
        (Some(st), Some(d)) => text.push_str(&format!(", and {} after {}.", st.as_str(), delta(d))),
        _ => text.push_str(", and has not finished (no run_finished in its log)."),
    }
    let mut counts = vec![format!("{} succeeded", s.succeeded)];
    for (n, word) in [
        (s.failed, "failed or timed out"),
        (s.skipped, "skipped"),
        (s.dry_run, "shown, not run"),
        (s.aborted, "aborted"),
        (s.in_doubt, "in doubt"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {word}"));
        }
    }
    text.push_str(&format!(" Steps: {} ({}).", s.steps, counts.join(", ")));
    if s.rollbacks > 0 {
        text.push_str(&format!(" Rollbacks run: {}.", s.rollbacks));
    }
    let share = s
        .people_share
        .map(|p| format!(", {p}% of the run"))
        .unwrap_or_default();
    text.push_str(&format!(
        " Waiting on people: {}{share}, over {} manual step{}.",
        s.people_wait,
        s.manual_steps,
        if s.manual_steps == 1 { "" } else { "s" }
    ));
    if let Some(ttm) = run.time_to_mitigate().filter(|_| !rehearsal) {
        text.push_str(&format!(" Mitigated {} after detection.", delta(ttm)));
    }
    text
}

/// Who answered what, the value typed, the note and the reason, in one line.
fn details(s: &StepRun) -> String {
    let mut parts = Vec::new();
    if let Some(a) = s.response.answer {
        let mut p = a.as_str().to_string();
        if let Some(o) = &s.response.operator {
            p.push_str(&format!(" by {o}"));
        }
        if let Some(w) = s.response.wait_ms {
            p.push_str(&format!(" after {}", millis(w as i64)));
        }
        parts.push(p);
    }
    if let Some(v) = &s.response.value {
        parts.push(format!("value \"{v}\""));
    }
    if let Some(n) = &s.response.note {
        parts.push(format!("note: {n}"));
    }
    if let Some(code) = s.exit_code.filter(|c| *c != 0) {
        parts.push(format!("exit code {code}"));
    }
    if let Some(r) = &s.reason {
        parts.push(r.clone());
    }
    parts.join("; ")
}

/// Action items from the facts, in this order: what to automate, what failed, what needed
/// retries, what was skipped, what was slower than usual.
fn action_items(facts: &Facts, earlier: &[Run]) -> Vec<ActionItem> {
    let run = facts.run;
    let named = |id: &str| facts.named(id);
    let total = run
        .duration()
        .map_or_else(|| "an unfinished run".to_string(), delta);
    let mut items = Vec::new();

    let mut manual: Vec<&StepRun> = run
        .steps
        .iter()
        .filter(|s| {
            s.phase == Phase::Run && s.kind == Kind::Manual && s.people_ms() >= AUTOMATE_MIN_MS
        })
        .collect();
    manual.sort_by_key(|s| std::cmp::Reverse(s.people_ms()));
    for s in manual.into_iter().take(AUTOMATE_TOP) {
        items.push(ActionItem {
            kind: "automate",
            item_type: "mitigate",
            step: s.step.clone(),
            text: format!(
                "Automate {}: took {} of {total}",
                named(&s.step),
                millis(s.people_ms() as i64)
            ),
        });
    }

    for s in &run.steps {
        let label = if s.phase == Phase::Rollback {
            format!("the rollback of {}", named(&s.step))
        } else {
            named(&s.step)
        };
        let d = details(s);
        let why = if d.is_empty() {
            String::new()
        } else {
            format!(" ({d})")
        };
        match s.status {
            Some(StepStatus::Failed | StepStatus::TimedOut) => {
                let word = step_status(s.status);
                let tries = if s.attempts > 1 {
                    format!(", {} attempts", s.attempts)
                } else {
                    String::new()
                };
                // "timed out after 1s" already says how it ended.
                let what = if d.starts_with(word) {
                    format!("{d}{tries}")
                } else {
                    format!("{word}{tries}{why}")
                };
                items.push(ActionItem {
                    kind: "failed",
                    item_type: "prevent",
                    step: s.step.clone(),
                    text: format!("Fix {label}: {what}"),
                });
            }
            Some(StepStatus::Aborted) => items.push(ActionItem {
                kind: "failed",
                item_type: "process",
                step: s.step.clone(),
                text: format!("Review why the run was aborted at {label}{why}"),
            }),
            None => items.push(ActionItem {
                kind: "in_doubt",
                item_type: "investigate",
                step: s.step.clone(),
                text: format!(
                    "Find out whether {label} completed: it started and has no recorded end"
                ),
            }),
            _ => {}
        }
    }
    for s in &run.steps {
        if s.status == Some(StepStatus::Succeeded) && s.attempts > 1 {
            items.push(ActionItem {
                kind: "retried",
                item_type: "prevent",
                step: s.step.clone(),
                text: format!(
                    "Make {} reliable: it succeeded only after {} attempts",
                    named(&s.step),
                    s.attempts
                ),
            });
        }
    }
    for s in &run.steps {
        if s.status != Some(StepStatus::Skipped) {
            continue;
        }
        let why = details(s);
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(": {why}")
        };
        items.push(ActionItem {
            kind: "skipped",
            item_type: "process",
            step: s.step.clone(),
            text: format!("Check that skipping {} was right{why}", named(&s.step)),
        });
    }
    for s in &run.steps {
        let (Some(StepStatus::Succeeded), Some(ms)) = (s.status, s.duration_ms) else {
            continue;
        };
        let mut past: Vec<i64> = earlier
            .iter()
            .flat_map(|r| r.steps.iter())
            .filter(|p| {
                p.step == s.step && p.phase == s.phase && p.status == Some(StepStatus::Succeeded)
            })
            .filter_map(|p| p.duration_ms.map(|ms| ms as i64))
            .collect();
        past.sort_unstable();
        let Some(median) = percentile(&past, 50) else {
            continue;
        };
        let ms = ms as i64;
        let kind = if run.mode == Mode::DryRun {
            "rehearsal"
        } else {
            "live"
        };
        if ms as f64 >= median as f64 * SLOWER_FACTOR && ms - median >= SLOWER_MIN_MS {
            let runs = past.len();
            let plural = if runs == 1 { "" } else { "s" };
            items.push(ActionItem {
                kind: "slower",
                item_type: "investigate",
                step: s.step.clone(),
                text: format!(
                    "Find out why {} was slower than usual: took {}, against a median of {} \
                     over {runs} earlier {kind} run{plural}",
                    named(&s.step),
                    millis(ms),
                    millis(median),
                ),
            });
        }
    }
    items
}

// ── The Gantt chart ───────────────────────────────────────────────────────────────────────

/// The steps on a time axis, laid out in SVG user units; the HTML template draws it.
#[derive(Debug, Serialize)]
pub struct Chart {
    pub width: f64,
    pub height: f64,
    /// Where the plot area starts and ends (x) and where the axis is (y).
    pub plot_left: f64,
    pub plot_right: f64,
    pub plot_top: f64,
    pub axis_y: f64,
    pub rows: Vec<ChartRow>,
    pub ticks: Vec<Tick>,
    pub milestones: Vec<Marker>,
    pub legend: Vec<LegendItem>,
    pub legend_y: f64,
    /// The time the axis spans.
    pub span: String,
}

#[derive(Debug, Serialize)]
pub struct ChartRow {
    pub label: String,
    /// Full description for the tooltip: step, status, times.
    pub tooltip: String,
    pub label_y: f64,
    /// A light band behind every other row, for reading across.
    pub band: bool,
    pub band_y: f64,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Serialize)]
pub struct Segment {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    /// `auto`, `wait`, `failed`, `skipped`, `dry`, `doubt`: a CSS class.
    pub class: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Tick {
    pub x: f64,
    pub label: String,
}

#[derive(Debug, Serialize)]
pub struct Marker {
    pub x: f64,
    pub label: String,
    /// SVG `text-anchor` of the label: `start`, `middle` or `end`.
    pub anchor: &'static str,
}

#[derive(Debug, Serialize)]
pub struct LegendItem {
    pub x: f64,
    pub text_x: f64,
    pub class: &'static str,
    pub label: &'static str,
}

const CHART_WIDTH: f64 = 960.0;
const LABEL_WIDTH: f64 = 190.0;
const PLOT_LEFT: f64 = 200.0;
const PLOT_RIGHT: f64 = 940.0;
const PLOT_TOP: f64 = 24.0;
const ROW_HEIGHT: f64 = 22.0;
const BAR_HEIGHT: f64 = 14.0;
const LABEL_CHARS: usize = 26;

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn chart(run: &Run) -> Chart {
    let origin = run.started;
    let last = run
        .steps
        .iter()
        .filter_map(|s| s.finished.or(s.started))
        .chain(run.finished)
        .chain(run.milestones.iter().map(|m| m.at))
        .max()
        .unwrap_or(origin);
    let span_ms = (last - origin).num_milliseconds().max(1) as f64;
    let x = |t: DateTime<Utc>| {
        let ms = (t - origin).num_milliseconds().max(0) as f64;
        round1(PLOT_LEFT + (ms / span_ms).min(1.0) * (PLOT_RIGHT - PLOT_LEFT))
    };
    let mut rows = Vec::new();
    for (i, s) in run.steps.iter().enumerate() {
        let top = PLOT_TOP + i as f64 * ROW_HEIGHT;
        let bar_y = round1(top + (ROW_HEIGHT - BAR_HEIGHT) / 2.0);
        let mut segments = Vec::new();
        let mut seg = |from: DateTime<Utc>, to: DateTime<Utc>, class: &'static str| {
            let (x0, x1) = (x(from), x(to));
            segments.push(Segment {
                x: x0,
                y: bar_y,
                width: round1((x1 - x0).max(2.0)),
                height: BAR_HEIGHT,
                class,
            });
        };
        let start = s.started.unwrap_or(origin);
        let end = s.finished.unwrap_or(last);
        let ms = |v: u64| chrono::Duration::milliseconds(v as i64);
        let wait = s.response.answer.and(s.response.wait_ms).map(ms);
        match (s.kind, s.status) {
            (Kind::Manual, _) => seg(start, end, "wait"),
            (_, None) => seg(start, end, "doubt"),
            (_, Some(StepStatus::DryRun)) => seg(start, end, "dry"),
            (_, Some(StepStatus::Skipped | StepStatus::Aborted)) if s.attempts == 0 => {
                // Declined at its confirmation (the whole span is the wait), or skipped
                // without running (a zero-width mark).
                let class = if wait.is_some() { "wait" } else { "skipped" };
                seg(start, end, class);
            }
            (_, Some(status)) => {
                let class = match status {
                    StepStatus::Succeeded => "auto",
                    _ => "failed",
                };
                match (s.response.answer, wait) {
                    // A confirmation: the person was asked before the step started.
                    (Some(Answer::Yes | Answer::Done | Answer::Run), Some(w)) => {
                        if w > chrono::Duration::zero() {
                            seg(start - w, start, "wait");
                        }
                        seg(start, end, class);
                    }
                    // A failure prompt: the person was asked after the last attempt.
                    (Some(Answer::Skip | Answer::Abort), Some(w)) if end - w > start => {
                        seg(start, end - w, class);
                        seg(end - w, end, "wait");
                    }
                    _ => seg(start, end, class),
                }
            }
        }
        let label = s.label();
        let short_label = if label.chars().count() > LABEL_CHARS {
            let cut: String = label.chars().take(LABEL_CHARS - 1).collect();
            format!("{cut}…")
        } else {
            label.clone()
        };
        let mut tooltip = format!("{label}: {}", step_status(s.status));
        if let Some(d) = s.duration_ms {
            tooltip.push_str(&format!(", took {}", millis(d as i64)));
        }
        if let Some(w) = s.response.answer.and(s.response.wait_ms) {
            tooltip.push_str(&format!(", waited {} for an answer", millis(w as i64)));
        }
        tooltip.push_str(&format!(", started at +{}", delta(start - origin)));
        rows.push(ChartRow {
            label: short_label,
            tooltip,
            label_y: round1(top + ROW_HEIGHT / 2.0 + 4.0),
            band: i % 2 == 1,
            band_y: top,
            segments,
        });
    }
    let axis_y = PLOT_TOP + run.steps.len().max(1) as f64 * ROW_HEIGHT + 4.0;
    let step_ms = tick_step(span_ms as u64);
    let ticks = (0..)
        .map(|k| k * step_ms)
        .take_while(|t| *t as f64 <= span_ms)
        .map(|t| Tick {
            x: round1(PLOT_LEFT + t as f64 / span_ms * (PLOT_RIGHT - PLOT_LEFT)),
            label: if t == 0 {
                "0".to_string()
            } else {
                format!("+{}", millis(t as i64))
            },
        })
        .collect();
    // Milestones close together share one line and one label, which stays inside the plot.
    let mut milestones: Vec<Marker> = Vec::new();
    for m in &run.milestones {
        let at = x(m.at);
        match milestones.last_mut() {
            Some(last) if (at - last.x).abs() < 60.0 => {
                last.label.push_str(&format!(", {}", m.name));
            }
            _ => milestones.push(Marker {
                x: at,
                label: m.name.clone(),
                anchor: "middle",
            }),
        }
    }
    for m in &mut milestones {
        m.anchor = if m.x > PLOT_RIGHT - 60.0 {
            "end"
        } else if m.x < PLOT_LEFT + 60.0 {
            "start"
        } else {
            "middle"
        };
    }
    let legend_y = axis_y + 40.0;
    let legend = [
        ("auto", "automated work"),
        ("wait", "waiting on a person"),
        ("failed", "failed or timed out"),
        ("dry", "shown, not run (dry run)"),
        ("skipped", "skipped"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (class, label))| {
        let x = LABEL_WIDTH - 180.0 + i as f64 * 185.0;
        LegendItem {
            x,
            text_x: x + 20.0,
            class,
            label,
        }
    })
    .collect();
    Chart {
        width: CHART_WIDTH,
        height: legend_y + 16.0,
        plot_left: PLOT_LEFT,
        plot_right: PLOT_RIGHT,
        plot_top: PLOT_TOP,
        axis_y,
        rows,
        ticks,
        milestones,
        legend,
        legend_y,
        span: millis(span_ms as i64),
    }
}

/// A round tick interval giving at most eight ticks over `span_ms`.
fn tick_step(span_ms: u64) -> u64 {
    const STEPS: &[u64] = &[
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000,
        120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000,
        43_200_000, 86_400_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span_ms / s <= 8)
        .unwrap_or(span_ms.div_ceil(8).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escape_keeps_log_text_inert() {
        assert_eq!(
            markdown_escape("a|b <script> [x](y) *z*\nnext"),
            "a\\|b \\<script\\> \\[x\\](y) \\*z\\* next"
        );
    }

    #[test]
    fn ticks() {
        assert_eq!(tick_step(3_000), 500);
        assert_eq!(tick_step(22 * 60_000), 300_000);
        assert!(tick_step(u64::MAX) > 0);
    }

    #[test]
    fn backtick_runs() {
        assert_eq!(longest_backticks("a ``` b ` c"), 3);
        assert_eq!(longest_backticks("none"), 0);
    }
}
