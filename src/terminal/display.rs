//! The terminal sink: turns the run's events into what the operator sees. Three styles
//! (`runbook exec --help` says what each prints):
//!
//! - live, on a terminal: a spinner per running step and a status line ([`Spinners`]),
//!   each command as it starts, output as it comes, finished steps printed above;
//! - plain, without a terminal: a line per step start with its command, the output, a
//!   line per step end; a retry prints its attempt, not the command again;
//! - quiet (`--quiet`): the run's start and end, failures with their last output,
//!   warnings, what is left applied. Prompts are the prompter's, in every style.
//!
//! A fleet step is one spinner with its hosts' progress ([`fleet`]); its output lines are
//! prefixed with the host.
//!
//! Step output goes to stdout (stderr for the step's stderr), everything else to stderr.
//! While a prompt is on screen, output is held back (bounded) and counted on the prompt's
//! status line; a failure elsewhere is shown at once. How output reaches the screen is
//! [`output`]'s.

use crate::event as ev;
use std::collections::VecDeque;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

mod fleet;
mod output;

use super::board::{self, Shared};
use super::spinners::Spinners;
use super::wrap::wrap;
use crate::event::{Event, Kind, Level, Mode, Output, Phase, RunStatus, Sink, StepStatus, Stream};
use crate::format::{self, Tone};

/// Output held back while a prompt is up; beyond this it is only in the log.
const HOLD_LIMIT: usize = 1024 * 1024;
/// Lines of a step's output kept in quiet mode, shown if it fails.
const QUIET_TAIL: usize = 10;

/// How much the display shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Live,
    Plain,
    Quiet,
}

pub(crate) struct Display {
    style: Style,
    colour: bool,
    /// Wrap lines to the terminal's width (stderr is a terminal).
    wrap: bool,
    board: Shared,
    spinners: Option<Spinners>,
    /// Automated steps running now.
    running: HashSet<String>,
    /// Running steps that have run alongside another: their output is prefixed by step id
    /// for the rest of their run, so a step's lines read the same from start to end.
    overlapped: HashSet<String>,
    /// Steps whose output stopped in the middle of a line (for the prefix).
    mid_line: HashSet<(String, Stream)>,
    /// Live: the unfinished line each step is writing, shown on its spinner.
    partial: HashMap<(String, Stream), Vec<u8>>,
    /// Steps (and phases) whose command was shown: a retry shows its attempt only.
    shown: HashSet<(String, Phase)>,
    /// Manual instructions not yet shown: a prompt shows them, or the step's end does.
    instructions: HashMap<String, String>,
    /// Quiet: the last lines of each running step, shown if it fails.
    tails: HashMap<String, VecDeque<String>>,
    paused: bool,
    held: Vec<(String, Stream, Vec<u8>)>,
    held_bytes: usize,
    dropped_bytes: usize,
    out: std::io::Stdout,
    /// The run and its log, for the last line.
    run: Option<(String, String)>,
    /// A rehearsal: its end says "finished", with the read-only checks that failed.
    rehearsal: bool,
    failed_checks: usize,
    /// Fleet steps running now: their hosts' progress.
    fleets: HashMap<String, fleet::Progress>,
}

impl Display {
    pub(crate) fn new(style: Style, colour: bool, board: Shared) -> Self {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        Display {
            spinners: (style == Style::Live).then(|| Spinners::new(board.clone())),
            style,
            colour,
            wrap: terminal,
            board,
            running: HashSet::default(),
            overlapped: HashSet::default(),
            mid_line: HashSet::default(),
            partial: HashMap::default(),
            shown: HashSet::default(),
            instructions: HashMap::default(),
            tails: HashMap::default(),
            paused: false,
            held: Vec::new(),
            held_bytes: 0,
            dropped_bytes: 0,
            out: std::io::stdout(),
            run: None,
            rehearsal: false,
            failed_checks: 0,
            fleets: HashMap::default(),
        }
    }

    fn paint(&self, tone: Tone, s: &str) -> String {
        format::paint(s, tone, self.colour)
    }

    fn quiet(&self) -> bool {
        self.style == Style::Quiet
    }

    /// A status line on stderr, printed above the spinners, wrapped at words to the
    /// terminal's width; held back while a prompt is on screen, so the prompt is never
    /// drawn over.
    fn line(&mut self, text: impl AsRef<str> + Into<String>) {
        // A line made for the purpose is used as it is, never copied.
        let mut text = if self.wrap {
            wrap(text.as_ref(), super::wrap::width())
        } else {
            text.into()
        };
        if self.paused {
            let mut held = Vec::with_capacity(text.len() + 1);
            held.extend_from_slice(text.as_bytes());
            held.push(b'\n');
            self.hold(String::new(), Stream::Stderr, held);
            return;
        }
        match &self.spinners {
            Some(s) => s.println(&text),
            None => {
                // One write for the line and its end.
                text.push('\n');
                let _ = std::io::stderr().lock().write_all(text.as_bytes());
            }
        }
    }

    /// A line that must be seen now, even while a prompt is on screen: a failure elsewhere,
    /// a run that went past its timeout, a log that cannot be written.
    fn urgent(&mut self, text: &str) {
        if !self.paused {
            return self.line(text);
        }
        let mut b = board::lock(&self.board);
        if b.prompt_on_screen {
            // The prompt prints it above itself.
            b.urgent.push(text.to_string());
            return;
        }
        drop(b);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\n{text}\n");
        let _ = err.flush();
    }

    fn show(&mut self, event: &Event) {
        match event {
            Event::RunStarted(started) => {
                let ev::RunStarted {
                    run_id,
                    runbook,
                    title,
                    mode,
                    log_path,
                    incident,
                    detected_at,
                    timeout_ms,
                    ..
                } = &**started;
                self.run = Some((run_id.clone(), log_path.clone()));
                self.rehearsal = *mode == Mode::DryRun;
                let detected = detected_at
                    .as_deref()
                    .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
                    .map(|t| t.with_timezone(&chrono::Utc));
                self.clocks(detected, *timeout_ms);
                let rehearsal = if self.rehearsal {
                    "  (dry run: nothing is changed)"
                } else {
                    ""
                };
                self.line(format!(
                    "{} {runbook}: {title}{rehearsal}",
                    self.paint(Tone::Strong, "runbook")
                ));
                self.line(format!("  run {run_id}"));
                self.line(format!("  log {log_path}"));
                if let Some(i) = incident {
                    self.line(format!("  incident {i}"));
                }
                if let Some(t) = detected {
                    self.line(detected_line(t, chrono::Utc::now()));
                }
            }
            Event::StepStarted(ev::StepStarted {
                host: Some(host),
                step,
                command,
                ..
            }) => self.host_started(step, host, command.as_deref()),
            Event::StepStarted(ev::StepStarted {
                step,
                command,
                phase,
                attempt,
                kind,
                last_attempt,
                timeout_ms,
                instructions,
                hosts,
                host: None,
            }) => {
                if let Some(hosts) = hosts {
                    let mut p = fleet::Progress::new(hosts.len());
                    p.label = match phase {
                        Phase::Rollback => format!("rolling back {step}"),
                        Phase::Run => step.clone(),
                    };
                    self.fleets.insert(step.clone(), p);
                }
                if *kind == Kind::Manual {
                    if let Some(text) = instructions {
                        self.instructions.insert(step.clone(), text.clone());
                    }
                    return;
                }
                let timeout = timeout_ms.map(Duration::from_millis);
                board::lock(&self.board)
                    .status
                    .start_step(step, Instant::now(), timeout);
                if self.running.iter().any(|s| s != step) {
                    self.overlapped.extend(self.running.iter().cloned());
                    self.overlapped.insert(step.clone());
                }
                self.running.insert(step.clone());
                self.started(
                    step,
                    *phase,
                    *attempt,
                    *last_attempt,
                    timeout,
                    command.as_deref(),
                );
            }
            Event::StepOutput(ev::StepOutput { .. })
            | Event::StepSpawned(ev::StepSpawned { .. }) => {}
            Event::StepFinished(ev::StepFinished {
                host: Some(host),
                step,
                status,
                duration_ms,
                exit_code,
                reason,
                attempts,
                ..
            }) => self.host_finished(
                step,
                host,
                fleet::HostEnd {
                    status: *status,
                    duration_ms: *duration_ms,
                    attempts: *attempts,
                    exit_code: *exit_code,
                    reason: reason.as_deref(),
                },
            ),
            Event::StepFinished(ev::StepFinished {
                step,
                status,
                duration_ms,
                attempts,
                exit_code,
                phase,
                response,
                reason,
                kind,
                host_counts,
                host: None,
            }) => {
                self.running.remove(step);
                self.overlapped.remove(step);
                board::lock(&self.board).status.end_step(step);
                self.end_partial(step);
                if let Some(s) = &mut self.spinners {
                    s.end(step);
                }
                if let Some(text) = self.instructions.remove(step) {
                    // Answered without a prompt (a rehearsal with --yes): still read out.
                    let body: String = text.trim().lines().map(|l| format!("\n    {l}")).collect();
                    self.line(format!("  manual step {step}:{body}"));
                }
                if self.rehearsal && matches!(status, StepStatus::Failed | StepStatus::TimedOut) {
                    self.failed_checks += 1;
                }
                let (mark, tone) = mark(*status);
                let mut text = format!("  {} {step}", self.paint(tone, mark));
                if *phase == Phase::Rollback {
                    text.push_str(" (rollback)");
                }
                text.push_str(&format!(
                    " in {}",
                    format::duration(Duration::from_millis(*duration_ms))
                ));
                if *attempts > 1 {
                    text.push_str(&format!(" after {attempts} attempts"));
                }
                if let (Some(c), StepStatus::Failed) = (exit_code, status) {
                    text.push_str(&format!(", exit code {c}"));
                }
                if let Some(r) = reason {
                    text.push_str(&format!(": {r}"));
                }
                if let Some(n) = &response.note {
                    text.push_str(&format!(" (note: {n})"));
                }
                self.fleets.remove(step);
                if let Some(c) = host_counts {
                    text.push_str(&format!(
                        "\n     {} host{}: {}",
                        c.total(),
                        if c.total() == 1 { "" } else { "s" },
                        c.text()
                    ));
                }
                let bad = status.is_failure();
                let tail = self.tails.remove(step).unwrap_or_default();
                if bad {
                    if self.quiet() && !tail.is_empty() {
                        text.push(':');
                        for l in tail {
                            text.push_str(&format!("\n    | {l}"));
                        }
                    }
                    self.urgent(&text);
                } else if !self.quiet() || (*status == StepStatus::Aborted && *kind == Kind::Auto) {
                    self.line(&text);
                }
            }
            Event::Milestone(ev::Milestone { name, step }) => {
                if !self.quiet() {
                    self.line(format!(
                        "  {} {name} (by {step})",
                        self.paint(Tone::Success, "milestone")
                    ));
                }
            }
            Event::RunResumed(ev::RunResumed {
                run_id,
                operator,
                timeout_ms,
                ..
            }) => {
                self.clocks(None, *timeout_ms);
                self.line(format!("resumed run {run_id} by {operator}"));
            }
            Event::RunFinished(ev::RunFinished {
                status,
                duration_ms,
                reason,
            }) => {
                let tone = if *status == RunStatus::Succeeded {
                    Tone::Success
                } else {
                    Tone::Error
                };
                let took = format::duration(Duration::from_millis(*duration_ms));
                let mut text = match (self.rehearsal, status) {
                    (true, RunStatus::Succeeded) => {
                        format!("{} in {took}", self.paint(tone, "rehearsal finished"))
                    }
                    (true, _) => {
                        format!("rehearsal {} in {took}", self.paint(tone, status.as_str()))
                    }
                    (false, _) => format!("run {} in {took}", self.paint(tone, status.as_str())),
                };
                match self.failed_checks {
                    0 => {}
                    1 => text.push_str(", 1 read-only check failed"),
                    n => text.push_str(&format!(", {n} read-only checks failed")),
                }
                if let Some(r) = reason {
                    text.push_str(&format!(": {r}"));
                }
                self.line(&text);
                self.finish();
                if let Some((run_id, log_path)) = &self.run {
                    let end = format!("  run {run_id}  log {log_path}");
                    self.line(&end);
                }
            }
            Event::StepRetrying(ev::StepRetrying {
                step,
                attempt,
                reason,
                delay_ms,
                host,
                ..
            }) => {
                if !self.quiet() {
                    let on = host
                        .as_ref()
                        .map(|h| format!(" on {h}"))
                        .unwrap_or_default();
                    self.line(format!(
                        "  {step}{on} attempt {attempt} {reason}; retrying in {}",
                        humantime::format_duration(Duration::from_millis(*delay_ms))
                    ));
                }
            }
            Event::PromptOpened(ev::PromptOpened { step, prompt }) => {
                // The prompt shows the instructions itself.
                self.instructions.remove(step);
                let what = match prompt {
                    crate::event::PromptKind::Interrupt => "what to do after Ctrl-C".to_string(),
                    _ => step.clone(),
                };
                board::lock(&self.board).status.waiting = Some((what, Instant::now()));
                self.pause();
            }
            Event::PromptClosed(ev::PromptClosed { .. }) => {
                board::lock(&self.board).status.waiting = None;
                self.resume();
            }
            Event::Notice(ev::Notice { level, text, .. }) => match level {
                Level::Info if self.quiet() => {}
                Level::Info => self.line(format!("  {text}")),
                Level::Warning => {
                    let text = format!("  {}: {text}", self.paint(Tone::Caution, "warning"));
                    self.urgent(&text)
                }
                Level::Error => {
                    let text = format!("{}: {text}", self.paint(Tone::Error, "error"));
                    self.urgent(&text)
                }
            },
            Event::NotRolledBack(ev::NotRolledBack { steps }) => {
                let mut text =
                    String::from("not rolled back (undo by hand if needed, newest first):");
                for s in steps {
                    text.push_str(&format!("\n  {}: {}", s.step, s.command.trim()));
                }
                self.line(&text);
            }
        }
    }

    /// The run's clocks, for the status line: it starts now, maybe with a deadline.
    fn clocks(&self, detected: Option<chrono::DateTime<chrono::Utc>>, timeout_ms: Option<u64>) {
        let now = Instant::now();
        let mut b = board::lock(&self.board);
        b.status.since = Some(now);
        if detected.is_some() {
            b.status.detected_at = detected;
        }
        b.status.run_deadline = timeout_ms.map(|ms| now + Duration::from_millis(ms));
    }

    /// An automated step (or an attempt, or a rollback) starts: its command the first
    /// time, its attempt after that.
    fn started(
        &mut self,
        step: &str,
        phase: Phase,
        attempt: u32,
        last: Option<u32>,
        timeout: Option<Duration>,
        command: Option<&str>,
    ) {
        let name = match phase {
            Phase::Rollback => format!("rolling back {step}"),
            Phase::Run => step.to_string(),
        };
        let of = match (attempt, last) {
            (a, Some(l)) => format!("attempt {a} of {l}"),
            (1, None) => String::new(),
            (a, None) => format!("attempt {a}"),
        };
        let first = self.shown.insert((step.to_string(), phase));
        if let Some(s) = &mut self.spinners {
            let what = match self.fleets.get(step) {
                // A fleet step's spinner counts its hosts; each host's time is its own.
                Some(p) => p.message(),
                None if of.is_empty() => name.clone(),
                None => format!("{name}  {of},"),
            };
            s.start(step, what, timeout);
        }
        if self.quiet() {
            return;
        }
        if !first {
            // A retry: the command was shown already.
            let limit = timeout
                .map(|t| format!(" (timeout {})", format::setting(t)))
                .unwrap_or_default();
            self.line(format!("  -> {name}: {of}{limit}"));
            return;
        }
        // The step and its command in one write.
        let mut text = format!("  -> {name}");
        if let Some(c) = command {
            text.push_str("\n     $ ");
            text.push_str(&c.trim().replace('\n', "\n       "));
        }
        self.line(text);
    }

    /// Stops every spinner (the run is over).
    fn finish(&mut self) {
        let steps: Vec<String> = self.running.drain().collect();
        for step in steps {
            self.end_partial(&step);
        }
        if let Some(s) = self.spinners.take() {
            s.finish();
        }
    }
}

/// The detection time as understood, in UTC and local time, and how long ago it was.
fn detected_line(t: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    let since = now.signed_duration_since(t).to_std().unwrap_or_default();
    let local = t.with_timezone(&chrono::Local);
    format!(
        "  detected {} = {} local time (UTC{}), {} ago",
        format::stamp(t),
        local.format("%Y-%m-%d %H:%M:%S"),
        local.format("%:z"),
        format::duration(since)
    )
}

/// The word a step's (or a host's) end is shown with, and its colour.
fn mark(status: StepStatus) -> (&'static str, Tone) {
    match status {
        StepStatus::Succeeded => ("ok", Tone::Good),
        StepStatus::Failed => ("FAILED", Tone::Bad),
        StepStatus::TimedOut => ("TIMED OUT", Tone::Bad),
        StepStatus::Skipped => ("skipped", Tone::Caution),
        StepStatus::DryRun => ("dry run", Tone::Rehearsal),
        StepStatus::Aborted => ("aborted", Tone::Bad),
        StepStatus::Unreachable => ("UNREACHABLE", Tone::Bad),
    }
}

impl Sink for Display {
    fn event(&mut self, event: &Event) -> std::io::Result<()> {
        self.show(&super::visible::sanitized(event));
        Ok(())
    }

    fn output(&mut self, out: &Output<'_>) -> std::io::Result<()> {
        self.show_output(out.step, out.host, out.stream, out.bytes);
        Ok(())
    }
}
