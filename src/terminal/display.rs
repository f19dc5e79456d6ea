//! The terminal sink: turns the run's events into what the operator sees. On a terminal,
//! a spinner per running step (indicatif) with finished steps printed above; elsewhere, or
//! with `--quiet`, plain lines. Step output goes to stdout, everything else to stderr.
//! While a prompt is on screen the display is paused and output is held back (bounded).
//! A fleet step is one spinner with its hosts' progress ([`fleet`]).

mod fleet;

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::event::{Event, Level, Mode, Output, Phase, RunStatus, Sink, StepStatus, Stream};
use crate::format::{self, Tone};

/// Output held back while a prompt is up; beyond this it is only in the log.
const HOLD_LIMIT: usize = 1024 * 1024;

pub(crate) struct Display {
    fancy: Option<MultiProgress>,
    colour: bool,
    bars: HashMap<String, ProgressBar>,
    /// On a terminal: a header line with the run and its clock (since detection when known).
    header: Option<ProgressBar>,
    /// Automated steps running now.
    running: std::collections::HashSet<String>,
    /// Running steps that have run alongside another: their output is prefixed by step id
    /// for the rest of their run, so a step's lines read the same from start to end.
    overlapped: std::collections::HashSet<String>,
    paused: bool,
    held: Vec<(Stream, Vec<u8>)>,
    held_bytes: usize,
    dropped_bytes: usize,
    out: std::io::Stdout,
    /// The run and its log, for the last line.
    run: Option<(String, String)>,
    /// Commands of steps started in a dry run, to show what would have run.
    commands: HashMap<String, String>,
    /// Fleet steps running now: their hosts' progress.
    fleets: HashMap<String, fleet::Progress>,
}

impl Display {
    pub(crate) fn new(fancy: bool, colour: bool) -> Self {
        let fancy =
            fancy.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        Display {
            fancy,
            colour,
            bars: HashMap::new(),
            header: None,
            running: std::collections::HashSet::new(),
            overlapped: std::collections::HashSet::new(),
            paused: false,
            held: Vec::new(),
            held_bytes: 0,
            dropped_bytes: 0,
            out: std::io::stdout(),
            run: None,
            commands: HashMap::new(),
            fleets: HashMap::new(),
        }
    }

    fn paint(&self, tone: Tone, s: &str) -> String {
        format::paint(s, tone, self.colour)
    }

    /// A status line on stderr, printed above the spinners; held back while a prompt is
    /// on screen, so the prompt is never drawn over.
    fn line(&mut self, text: &str) {
        if self.paused {
            let mut held = Vec::with_capacity(text.len() + 1);
            held.extend_from_slice(text.as_bytes());
            held.push(b'\n');
            self.hold(Stream::Stderr, held);
            return;
        }
        match &self.fancy {
            Some(m) => {
                let _ = m.println(text);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    fn hold(&mut self, stream: Stream, text: Vec<u8>) {
        if self.held_bytes + text.len() <= HOLD_LIMIT {
            self.held_bytes += text.len();
            self.held.push((stream, text));
        } else {
            self.dropped_bytes += text.len();
        }
    }

    /// Step output (stdout to stdout, stderr to stderr), prefixed by the step id when
    /// several steps are running.
    fn show_output(&mut self, step: &str, host: Option<&str>, stream: Stream, bytes: &[u8]) {
        let prefix = match host {
            Some(h) if self.overlapped.contains(step) => Some(format!("[{step} {h}] ")),
            Some(h) => Some(format!("[{h}] ")),
            None if self.overlapped.contains(step) => Some(format!("[{step}] ")),
            None => None,
        };
        let bytes = if let Some(prefix) = prefix {
            let mut out = Vec::with_capacity(bytes.len() + 16);
            for line in bytes.split_inclusive(|&b| b == b'\n') {
                out.extend_from_slice(prefix.as_bytes());
                out.extend_from_slice(line);
            }
            out
        } else if self.paused {
            bytes.to_vec()
        } else {
            return self.write_out(stream, bytes);
        };
        if self.paused {
            self.hold(stream, bytes);
            return;
        }
        self.write_out(stream, &bytes);
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
        match &self.fancy {
            Some(m) => m.suspend(write),
            None => write(),
        }
    }

    /// Hides the spinners and holds output back while a prompt is on screen.
    fn pause(&mut self) {
        if let Some(m) = &self.fancy {
            let _ = m.clear();
            m.set_draw_target(ProgressDrawTarget::hidden());
        }
        self.paused = true;
    }

    fn resume(&mut self) {
        self.paused = false;
        if let Some(m) = &self.fancy {
            m.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        }
        let held = std::mem::take(&mut self.held);
        self.held_bytes = 0;
        for (stream, text) in held {
            self.write_out(stream, &text);
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
            Event::RunStarted {
                run_id,
                runbook,
                title,
                mode,
                log_path,
                incident,
                detected_at,
                ..
            } => {
                self.run = Some((run_id.clone(), log_path.clone()));
                let rehearsal = if *mode == Mode::DryRun {
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
                if let Some(d) = detected_at
                    && let Ok(t) = chrono::DateTime::parse_from_rfc3339(d)
                {
                    let since = chrono::Utc::now()
                        .signed_duration_since(t)
                        .to_std()
                        .unwrap_or_default();
                    self.line(&format!("  detected {d} ({} ago)", format::duration(since)));
                }
            }
            Event::StepStarted {
                host: Some(host),
                step,
                command,
                ..
            } => self.host_started(step, host, command.as_deref()),
            Event::StepStarted {
                step,
                command,
                phase,
                attempt,
                kind,
                hosts,
                host: None,
            } => {
                if let Some(hosts) = hosts {
                    self.fleets
                        .insert(step.clone(), fleet::Progress::new(hosts.len()));
                }
                if *kind == crate::event::Kind::Manual {
                    return;
                }
                if self.running.iter().any(|s| s != step) {
                    self.overlapped.extend(self.running.iter().cloned());
                    self.overlapped.insert(step.clone());
                }
                self.running.insert(step.clone());
                let mut what = match (phase, attempt) {
                    (Phase::Rollback, _) => format!("rolling back {step}"),
                    (_, 1) => step.clone(),
                    (_, n) => format!("{step} (attempt {n})"),
                };
                if let Some(p) = self.fleets.get_mut(step) {
                    p.label.clone_from(&what);
                    what = p.message();
                }
                match &self.fancy {
                    Some(m) if !self.bars.contains_key(step) => {
                        let bar = m.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template("  {spinner} {msg} {elapsed}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.set_message(what);
                        bar.enable_steady_tick(Duration::from_millis(100));
                        self.bars.insert(step.clone(), bar);
                    }
                    Some(_) => {
                        if let Some(bar) = self.bars.get(step) {
                            bar.set_message(what);
                        }
                    }
                    None => self.line(&format!("  -> {what}")),
                }
                if let Some(c) = command {
                    self.commands.insert(step.clone(), c.clone());
                }
                if let Some(c) = command
                    && self.fancy.is_none()
                {
                    let c = c.trim();
                    if c.contains('\n') {
                        self.line(&format!("     $ {}", c.replace('\n', "\n       ")));
                    } else {
                        self.line(&format!("     $ {c}"));
                    }
                }
            }
            Event::StepOutput { .. } => {}
            Event::StepFinished {
                host: Some(host),
                step,
                status,
                duration_ms,
                exit_code,
                reason,
                attempts,
                ..
            } => self.host_finished(
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
            Event::StepFinished {
                host: None,
                host_counts,
                step,
                status,
                duration_ms,
                attempts,
                exit_code,
                phase,
                response,
                reason,
                kind,
            } => {
                self.running.remove(step);
                self.overlapped.remove(step);
                let _ = kind;
                let command = self.commands.remove(step);
                if let (StepStatus::DryRun, Some(c), true) =
                    (status, &command, self.fancy.is_some())
                {
                    self.line(&format!("  would run {step}: {}", c.trim()));
                }
                if let Some(bar) = self.bars.remove(step) {
                    bar.finish_and_clear();
                    if let Some(m) = &self.fancy {
                        m.remove(&bar);
                    }
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
                self.line(&text);
            }
            Event::Milestone { name, step } => {
                self.line(&format!(
                    "  {} {name} (by {step})",
                    self.paint(Tone::Success, "milestone")
                ));
            }
            Event::RunResumed { run_id, operator } => {
                self.line(&format!("resumed run {run_id} by {operator}"))
            }
            Event::RunFinished {
                status,
                duration_ms,
                reason,
            } => {
                let tone = if *status == RunStatus::Succeeded {
                    Tone::Success
                } else {
                    Tone::Error
                };
                let mut text = format!(
                    "run {} in {}",
                    self.paint(tone, status.as_str()),
                    format::duration(Duration::from_millis(*duration_ms))
                );
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
            Event::StepRetrying {
                step,
                attempt,
                reason,
                delay_ms,
                host,
                ..
            } => {
                let on = host
                    .as_ref()
                    .map(|h| format!(" on {h}"))
                    .unwrap_or_default();
                self.line(&format!(
                    "  {step}{on} attempt {attempt} {reason}; retrying in {}",
                    humantime::format_duration(Duration::from_millis(*delay_ms))
                ))
            }
            Event::PromptOpened { .. } => self.pause(),
            Event::PromptClosed { .. } => self.resume(),
            Event::Notice { level, text, .. } => {
                let text = match level {
                    Level::Info => format!("  {text}"),
                    Level::Warning => format!("  {}: {text}", self.paint(Tone::Caution, "warning")),
                    Level::Error => format!("{}: {text}", self.paint(Tone::Error, "error")),
                };
                self.line(&text);
            }
            Event::NotRolledBack { steps } => {
                let mut text =
                    String::from("not rolled back (undo by hand if needed, newest first):");
                for s in steps {
                    text.push_str(&format!("\n  {}: {}", s.step, s.command.trim()));
                }
                self.line(&text);
            }
        }
    }

    /// Stops every spinner (the run is over).
    fn finish(&mut self) {
        if let Some(h) = self.header.take() {
            h.finish_and_clear();
        }
        for (_, bar) in self.bars.drain() {
            bar.finish_and_clear();
        }
        if let Some(m) = self.fancy.take() {
            let _ = m.clear();
        }
    }
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
        self.show(event);
        Ok(())
    }

    fn output(&mut self, out: &Output<'_>) -> std::io::Result<()> {
        self.show_output(out.step, out.host, out.stream, out.bytes);
        Ok(())
    }
}
