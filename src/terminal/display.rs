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
//! status line; a failure elsewhere is shown at once.

use crate::event as ev;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::time::{Duration, Instant};

mod fleet;

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
            running: HashSet::new(),
            overlapped: HashSet::new(),
            mid_line: HashSet::new(),
            partial: HashMap::new(),
            shown: HashSet::new(),
            instructions: HashMap::new(),
            tails: HashMap::new(),
            paused: false,
            held: Vec::new(),
            held_bytes: 0,
            dropped_bytes: 0,
            out: std::io::stdout(),
            run: None,
            rehearsal: false,
            failed_checks: 0,
            fleets: HashMap::new(),
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
    fn line(&mut self, text: &str) {
        let mut text = if self.wrap {
            wrap(text, super::wrap::width())
        } else {
            text.to_string()
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

    fn hold(&mut self, step: String, stream: Stream, text: Vec<u8>) {
        if !step.is_empty() {
            let lines = memchr::memchr_iter(b'\n', &text).count().max(1);
            board::lock(&self.board).status.held_lines += lines;
        }
        if self.held_bytes + text.len() <= HOLD_LIMIT {
            self.held_bytes += text.len();
            self.held.push((step, stream, text));
        } else {
            self.dropped_bytes += text.len();
        }
    }

    /// Step output (stdout to stdout, stderr to stderr), prefixed by the step id when
    /// several steps are running.
    fn show_output(&mut self, step: &str, host: Option<&str>, stream: Stream, bytes: &[u8]) {
        if self.quiet() {
            let tail = self.tails.entry(step.to_string()).or_default();
            for l in String::from_utf8_lossy(bytes).lines() {
                tail.push_back(l.to_string());
                if tail.len() > QUIET_TAIL {
                    tail.pop_front();
                }
            }
            return;
        }
        let bytes = self.prefixed(step, host, stream, bytes);
        if self.paused {
            self.hold(step.to_string(), stream, bytes.into_owned());
            return;
        }
        self.show_prefixed(step, stream, &bytes);
    }

    /// Output already prefixed, on its way to the screen; never copied on the way when a
    /// pipe takes it (the speed of `cat` is the goal).
    fn show_prefixed(&mut self, step: &str, stream: Stream, bytes: &[u8]) {
        if self.spinners.is_none() {
            return self.write_out(stream, bytes);
        }
        // Whole lines above the spinners; the unfinished one on the step's spinner, until
        // its line or the step ends (a line written under the spinners would be drawn over).
        let key = (step.to_string(), stream);
        let cut = memchr::memrchr(b'\n', bytes).map_or(0, |i| i + 1);
        let (lines, tail) = bytes.split_at(cut);
        let rest = match self.partial.remove(&key) {
            Some(mut pending) if lines.is_empty() => {
                pending.extend_from_slice(tail);
                pending
            }
            Some(mut pending) => {
                pending.extend_from_slice(lines);
                self.write_out(stream, &pending);
                tail.to_vec()
            }
            None => {
                if !lines.is_empty() {
                    self.write_out(stream, lines);
                }
                tail.to_vec()
            }
        };
        if let Some(s) = &self.spinners {
            let shown = String::from_utf8_lossy(&rest);
            let last = shown.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("");
            let last: String = last.chars().filter(|c| !c.is_control()).collect();
            s.writing(step, &last);
        }
        if !rest.is_empty() {
            self.partial.insert(key, rest);
        }
    }

    /// `[step] ` at the start of each line, for steps that run alongside others; `[host] `
    /// (or `[step host] `) for a host of a fleet step.
    fn prefixed<'a>(
        &mut self,
        step: &str,
        host: Option<&str>,
        stream: Stream,
        bytes: &'a [u8],
    ) -> std::borrow::Cow<'a, [u8]> {
        let ends = bytes.last() == Some(&b'\n');
        // Whole lines with no line left open: nothing to remember (and nothing allocated).
        let mid = if ends && self.mid_line.is_empty() {
            false
        } else {
            let key = (
                host.map_or_else(|| step.to_string(), |h| format!("{step} {h}")),
                stream,
            );
            let mid = self.mid_line.contains(&key);
            if ends {
                self.mid_line.remove(&key);
            } else if !bytes.is_empty() {
                self.mid_line.insert(key);
            }
            mid
        };
        let prefix = match host {
            Some(h) if self.overlapped.contains(step) => format!("[{step} {h}] "),
            Some(h) => format!("[{h}] "),
            None if self.overlapped.contains(step) => format!("[{step}] "),
            None => return std::borrow::Cow::Borrowed(bytes),
        };
        let mut out = Vec::with_capacity(bytes.len() + 16);
        for (n, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
            if n > 0 || !mid {
                out.extend_from_slice(prefix.as_bytes());
            }
            out.extend_from_slice(line);
        }
        std::borrow::Cow::Owned(out)
    }

    fn write_out(&self, stream: Stream, bytes: &[u8]) {
        let write = || match stream {
            Stream::Stdout => {
                let mut out = self.out.lock();
                let _ = out.write_all(bytes);
                let _ = out.flush();
            }
            Stream::Stderr => {
                let _ = std::io::stderr().lock().write_all(bytes);
            }
        };
        match &self.spinners {
            Some(s) => s.suspend(write),
            None => write(),
        }
    }

    /// The unfinished line of a step that ended, ended (after its held output, while a
    /// prompt is on screen: an empty held piece marks the place).
    fn end_partial(&mut self, step: &str) {
        if self.paused {
            self.held
                .push((step.to_string(), Stream::Stdout, Vec::new()));
            return;
        }
        for stream in [Stream::Stdout, Stream::Stderr] {
            let key = (step.to_string(), stream);
            let mid = self.mid_line.remove(&key);
            match self.partial.remove(&key) {
                Some(mut rest) => {
                    rest.push(b'\n');
                    self.write_out(stream, &rest);
                }
                // Without spinners, output reaches a pipe byte for byte.
                None if mid && self.spinners.is_some() => self.write_out(stream, b"\n"),
                None => {}
            }
        }
    }

    /// Hides the spinners and holds output back while a prompt is on screen.
    fn pause(&mut self) {
        if let Some(s) = &self.spinners {
            s.hide();
        }
        self.paused = true;
    }

    fn resume(&mut self) {
        self.paused = false;
        board::lock(&self.board).status.held_lines = 0;
        if let Some(s) = &self.spinners {
            s.show();
        }
        let held = std::mem::take(&mut self.held);
        self.held_bytes = 0;
        for (step, stream, text) in held {
            if step.is_empty() {
                self.write_out(stream, &text);
            } else if text.is_empty() {
                self.end_partial(&step);
            } else {
                self.show_prefixed(&step, stream, &text);
            }
        }
        if self.dropped_bytes > 0 {
            let n = std::mem::take(&mut self.dropped_bytes);
            self.line(&format!(
                "  ({n} bytes of output arrived during the prompt; they are in the log)"
            ));
        }
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
                self.line(&format!(
                    "{} {runbook}: {title}{rehearsal}",
                    self.paint(Tone::Strong, "runbook")
                ));
                self.line(&format!("  run {run_id}"));
                self.line(&format!("  log {log_path}"));
                if let Some(i) = incident {
                    self.line(&format!("  incident {i}"));
                }
                if let Some(t) = detected {
                    self.line(&detected_line(t, chrono::Utc::now()));
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
                    self.line(&format!("  manual step {step}:{body}"));
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
                    self.line(&format!(
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
                self.line(&format!("resumed run {run_id} by {operator}"));
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
                    self.line(&format!(
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
                Level::Info => self.line(&format!("  {text}")),
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
            self.line(&format!("  -> {name}: {of}{limit}"));
            return;
        }
        self.line(&format!("  -> {name}"));
        if let Some(c) = command {
            let c = c.trim();
            self.line(&format!("     $ {}", c.replace('\n', "\n       ")));
        }
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
