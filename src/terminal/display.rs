//! The terminal sink: turns the run's events into what the operator sees. On a terminal,
//! a spinner per running step (indicatif) with finished steps printed above; elsewhere, or
//! with `--quiet`, plain lines. Step output goes to stdout, everything else to stderr.
//! While a prompt is on screen the display is paused and output is held back (bounded).

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::event::{Event, Level, Mode, Output, Phase, RunStatus, Sink, StepStatus, Stream};
use crate::format::{self, Shown, Tone};

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
    fn show_output(&mut self, step: &str, stream: Stream, bytes: &[u8]) {
        let bytes = if self.overlapped.contains(step) {
            let prefix = format!("[{step}] ");
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
                    "{} {}: {}{rehearsal}",
                    self.paint(Tone::Strong, "runbook"),
                    v(runbook),
                    v(title)
                ));
                self.line(&format!("  run {}", v(run_id)));
                self.line(&format!("  log {}", v(log_path)));
                if let Some(i) = incident {
                    self.line(&format!("  incident {}", v(i)));
                }
                if let Some(d) = detected_at
                    && let Ok(t) = chrono::DateTime::parse_from_rfc3339(d)
                {
                    let since = chrono::Utc::now()
                        .signed_duration_since(t)
                        .to_std()
                        .unwrap_or_default();
                    let d = v(d);
                    self.line(&format!("  detected {d} ({} ago)", format::duration(since)));
                }
            }
            Event::StepStarted {
                step,
                command,
                phase,
                attempt,
                kind,
            } => {
                if *kind == crate::event::Kind::Manual {
                    return;
                }
                if self.running.iter().any(|s| s != step) {
                    self.overlapped.extend(self.running.iter().cloned());
                    self.overlapped.insert(step.clone());
                }
                self.running.insert(step.clone());
                let what = match (phase, attempt) {
                    (Phase::Rollback, _) => format!("rolling back {step}"),
                    (_, 1) => step.clone(),
                    (_, n) => format!("{step} (attempt {n})"),
                };
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
                    let c = v(c.trim());
                    if c.contains('\n') {
                        self.line(&format!("     $ {}", c.replace('\n', "\n       ")));
                    } else {
                        self.line(&format!("     $ {c}"));
                    }
                }
            }
            Event::StepOutput { .. } => {}
            Event::StepFinished {
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
                    self.line(&format!("  would run {step}: {}", v(c.trim())));
                }
                if let Some(bar) = self.bars.remove(step) {
                    bar.finish_and_clear();
                    if let Some(m) = &self.fancy {
                        m.remove(&bar);
                    }
                }
                let (mark, tone) = match status {
                    StepStatus::Succeeded => ("ok", Tone::Good),
                    StepStatus::Failed => ("FAILED", Tone::Bad),
                    StepStatus::TimedOut => ("TIMED OUT", Tone::Bad),
                    StepStatus::Skipped => ("skipped", Tone::Caution),
                    StepStatus::DryRun => ("dry run", Tone::Rehearsal),
                    StepStatus::Aborted => ("aborted", Tone::Bad),
                };
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
                    text.push_str(&format!(": {}", v(r)));
                }
                if let Some(n) = &response.note {
                    text.push_str(&format!(" (note: {})", v(n)));
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
                self.line(&format!("resumed run {} by {}", v(run_id), v(operator)))
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
                    text.push_str(&format!(": {}", v(r)));
                }
                self.line(&text);
                self.finish();
                if let Some((run_id, log_path)) = &self.run {
                    let end = format!("  run {}  log {}", v(run_id), v(log_path));
                    self.line(&end);
                }
            }
            Event::StepRetrying {
                step,
                attempt,
                reason,
                delay_ms,
                ..
            } => self.line(&format!(
                "  {step} attempt {attempt} {}; retrying in {}",
                v(reason),
                humantime::format_duration(Duration::from_millis(*delay_ms))
            )),
            Event::PromptOpened { .. } => self.pause(),
            Event::PromptClosed { .. } => self.resume(),
            Event::Notice { level, text, .. } => {
                let text = v(text);
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
                    text.push_str(&format!("\n  {}: {}", s.step, v(s.command.trim())));
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

/// Text from the run (titles, commands, reasons, notes, names) as it may be shown.
fn v(text: &str) -> std::borrow::Cow<'_, str> {
    format::visible(text, Shown::Text)
}

impl Sink for Display {
    fn event(&mut self, event: &Event) -> std::io::Result<()> {
        self.show(event);
        Ok(())
    }

    fn output(&mut self, out: &Output<'_>) -> std::io::Result<()> {
        self.show_output(out.step, out.stream, out.bytes);
        Ok(())
    }
}
