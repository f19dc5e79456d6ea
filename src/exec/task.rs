//! Running an automated step (or one rollback): every attempt as a process, its output on
//! its way to the sinks (split into lines, masked), its capture, and the waits between
//! retries. A task reports facts through the [`Emitter`] and its end as a [`TaskResult`].

use crate::event as ev;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::emit::Emitter;
use super::process::{self, Cancel, Outcome};
use super::secrets::{LineSplitter, Masker};
use crate::event::{Event, Kind, LogFailed, Output, Phase, StepStatus, Stream};
use crate::runbook::MAX_DURATION;

/// Most of a step's stdout kept for `capture`.
const CAPTURE_LIMIT: usize = 1024 * 1024;

/// Everything one task needs, rendered and decided before it starts.
pub(crate) struct Task {
    pub step: String,
    pub phase: Phase,
    pub spec: process::Spec,
    /// A rehearsal of a step that changes things: shown and recorded, never run.
    pub dry: bool,
    /// Whether stdout is kept for a `capture`.
    pub capture: bool,
    /// Number of the first attempt (attempts made earlier, plus one).
    pub first_attempt: u32,
    /// Attempts after the first one that fails.
    pub retries: u32,
    pub retry_delay: Duration,
    pub retry_backoff: f64,
    /// When the step started (its first attempt, possibly before a failure prompt).
    pub started: Instant,
    /// Each attempt's timeout, for the record (the process enforces the spec's).
    pub timeout: Option<Duration>,
}

/// The end of one task (all its attempts).
#[derive(Debug)]
pub(crate) struct TaskResult {
    pub status: StepStatus,
    pub exit_code: Option<i32>,
    pub attempts: u32,
    pub duration: Duration,
    pub capture: Option<String>,
    pub reason: Option<String>,
}

impl TaskResult {
    /// A task that never got to run its command.
    pub(crate) fn not_run(status: StepStatus, reason: String) -> Self {
        TaskResult {
            status,
            exit_code: None,
            attempts: 0,
            duration: Duration::ZERO,
            capture: None,
            reason: Some(reason),
        }
    }

    /// How the failure reads in a prompt: "failed with exit code 3", "timed out".
    pub(crate) fn describe_failure(&self) -> String {
        match (self.status, self.exit_code, &self.reason) {
            (_, _, Some(reason)) => format!("failed: {reason}"),
            (StepStatus::TimedOut, _, _) => "timed out".into(),
            (_, Some(c), _) => format!("failed with exit code {c}"),
            _ => "failed".into(),
        }
    }
}

impl Task {
    pub(crate) async fn run(
        self,
        emitter: &Emitter,
        masker: &Arc<Masker>,
        cancel: watch::Receiver<Cancel>,
    ) -> TaskResult {
        let command = masker.mask(&self.spec.command).into_owned();
        if self.dry {
            let _ = emitter.emit(&self.started_event(self.first_attempt, command));
            return TaskResult {
                status: StepStatus::DryRun,
                exit_code: None,
                attempts: 1,
                duration: Duration::ZERO,
                capture: None,
                reason: None,
            };
        }
        self.attempts(emitter, masker, command, cancel).await
    }

    fn started_event(&self, attempt: u32, command: String) -> Event {
        let last = self.first_attempt + self.retries;
        Event::StepStarted(ev::StepStarted {
            step: self.step.clone(),
            kind: Kind::Auto,
            attempt,
            command: Some(command),
            phase: self.phase,
            last_attempt: (last > 1 && !self.dry).then_some(last),
            timeout_ms: self.timeout.map(|t| t.as_millis() as u64),
            instructions: None,
            host: None,
            hosts: None,
        })
    }

    async fn attempts(
        &self,
        emitter: &Emitter,
        masker: &Arc<Masker>,
        command: String,
        mut cancel: watch::Receiver<Cancel>,
    ) -> TaskResult {
        let mut delay = self.retry_delay;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let attempt = self.first_attempt + attempts - 1;
            // The start must be on disk before the command runs (spec §4): written now,
            // synced by `process::run` before the command may run, while its shell starts.
            let started = self.started_event(attempt, command.clone());
            if let Err(e) = emitter.emit_unsynced(&started) {
                return TaskResult {
                    attempts,
                    ..TaskResult::not_run(StepStatus::Failed, format!("not started: {e}"))
                };
            }
            let output = process::Output::new(Captured {
                out: StepOutput::new(emitter, masker, &self.step, None, self.phase),
                capture: self.capture.then(Vec::new),
            });
            // A shell is held (started while its start is synced) unless syncs are cheap.
            let hold = !emitter.syncs_are_cheap();
            let outcome = process::run(
                &self.spec,
                hold,
                |gate| {
                    let synced = emitter.sync_then(&started, move || gate.open());
                    async move { synced.await.map_err(std::io::Error::other) }
                },
                |pgid, start_ticks| {
                    // Where to find the step's processes if this process dies; not synced:
                    // resume also finds them by their environment.
                    let _ = emitter.emit(&Event::StepSpawned(ev::StepSpawned {
                        step: self.step.clone(),
                        attempt,
                        phase: self.phase,
                        pgid,
                        start_ticks: start_ticks.unwrap_or_default(),
                        boot_id: super::orphans::boot_id(),
                    }));
                },
                &output,
                cancel.clone(),
            )
            .await;
            let capture = output.with(|o| {
                o.out.finish();
                o.capture.take().unwrap_or_default()
            });
            // The start could not be recorded: the command did not run.
            if let Some(e) = outcome
                .as_ref()
                .err()
                .and_then(|e| e.get_ref()?.downcast_ref::<LogFailed>())
            {
                return TaskResult {
                    attempts,
                    ..TaskResult::not_run(StepStatus::Failed, format!("not started: {e}"))
                };
            }
            let (status, exit_code, reason) = self.judge(outcome);
            if is_last_attempt(status, attempts, self.retries, &cancel) {
                let capture = captured(status, self.capture, &capture);
                return TaskResult {
                    status,
                    exit_code,
                    attempts,
                    duration: self.started.elapsed(),
                    capture,
                    reason,
                };
            }
            let _ = emitter.emit(&Event::StepRetrying(ev::StepRetrying {
                step: self.step.clone(),
                attempt,
                reason: reason
                    .unwrap_or_else(|| format!("exited with {}", exit_code.unwrap_or(-1))),
                delay_ms: delay.as_millis() as u64,
                phase: self.phase,
                host: None,
            }));
            delay = retry_wait(delay, self.retry_backoff, &mut cancel).await;
        }
    }

    /// What an attempt's outcome means for the step.
    fn judge(
        &self,
        outcome: std::io::Result<Outcome>,
    ) -> (StepStatus, Option<i32>, Option<String>) {
        match outcome {
            Ok(Outcome::Exited(0)) => (StepStatus::Succeeded, Some(0), None),
            Ok(Outcome::Exited(c)) => (StepStatus::Failed, Some(c), None),
            Ok(Outcome::Signalled(s)) => (
                StepStatus::Failed,
                None,
                Some(format!("killed by signal {s}")),
            ),
            Ok(Outcome::TimedOut) => (
                StepStatus::TimedOut,
                None,
                self.spec
                    .timeout
                    .map(|t| format!("timed out after {}", humantime::format_duration(t))),
            ),
            Ok(Outcome::Cancelled) => (
                StepStatus::Aborted,
                None,
                Some("stopped: the run was interrupted".into()),
            ),
            Err(e) => (
                StepStatus::Failed,
                None,
                Some(format!(
                    "cannot start `{}`: {e}",
                    self.spec.shell.first().map_or("sh", String::as_str)
                )),
            ),
        }
    }
}

/// A step's attempt's output, and the stdout kept for its `capture`.
struct Captured {
    out: StepOutput,
    capture: Option<Vec<u8>>,
}

impl process::Sink for Captured {
    fn piece(&mut self, piece: process::Piece<'_>) {
        match piece {
            process::Piece::Data(stream, bytes) => {
                if let Some(capture) = &mut self.capture
                    && stream == Stream::Stdout
                {
                    keep_for_capture(capture, bytes, CAPTURE_LIMIT);
                }
                self.out.push(stream, bytes);
            }
            process::Piece::Quiet => self.out.flush(),
        }
    }
}

/// Keeps the start of `bytes` in `capture`, up to `limit` bytes in all.
pub(crate) fn keep_for_capture(capture: &mut Vec<u8>, bytes: &[u8], limit: usize) {
    let room = limit.saturating_sub(capture.len());
    capture.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// One attempt's output on its way to the sinks (of a step, or of a fleet step on one
/// host): split so that a secret arriving across two reads is still seen whole, and masked.
/// It owns what it needs, so that the thread reading a large stdout or stderr can hold it.
pub(crate) struct StepOutput {
    emitter: Emitter,
    masker: Arc<Masker>,
    step: String,
    host: Option<String>,
    phase: Phase,
    split: [LineSplitter; 2],
}

impl StepOutput {
    pub(crate) fn new(
        emitter: &Emitter,
        masker: &Arc<Masker>,
        step: &str,
        host: Option<&str>,
        phase: Phase,
    ) -> Self {
        StepOutput {
            emitter: emitter.clone(),
            masker: Arc::clone(masker),
            step: step.to_string(),
            host: host.map(str::to_string),
            phase,
            split: [LineSplitter::default(), LineSplitter::default()],
        }
    }

    pub(crate) fn push(&mut self, stream: Stream, bytes: &[u8]) {
        // Out of `self` while it hands pieces to `self.emit`, then back.
        let mut split = std::mem::take(&mut self.split[stream as usize]);
        split.push(bytes, &self.masker, |piece| self.emit(stream, piece));
        self.split[stream as usize] = split;
    }

    fn emit(&self, stream: Stream, bytes: &[u8]) {
        // A failed log write is the executor's to act on: it hears of it at the step's end.
        let _ = self.emitter.output(&Output {
            step: &self.step,
            host: self.host.as_deref(),
            phase: self.phase,
            stream,
            bytes,
        });
    }

    /// Output went quiet: an unfinished line (`waiting for replica...`) is shown now.
    fn flush(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some(piece) = self.split[stream as usize].flush(&self.masker) {
                self.emit(stream, &piece);
            }
        }
    }

    pub(crate) fn finish(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some(piece) = self.split[stream as usize].finish(&self.masker) {
                self.emit(stream, &piece);
            }
        }
    }
}

/// Whether an attempt that ended in `status` is the last: it succeeded or was aborted, the
/// retries are spent, or the run is being stopped.
pub(crate) fn is_last_attempt(
    status: StepStatus,
    attempts: u32,
    retries: u32,
    cancel: &watch::Receiver<Cancel>,
) -> bool {
    matches!(status, StepStatus::Succeeded | StepStatus::Aborted)
        || attempts > retries
        || *cancel.borrow() != Cancel::None
}

/// The value a capturing step leaves behind: its output, trimmed, once it has succeeded.
pub(crate) fn captured(status: StepStatus, capture: bool, output: &[u8]) -> Option<String> {
    (status == StepStatus::Succeeded && capture)
        .then(|| String::from_utf8_lossy(output).trim().to_string())
}

/// Waits `delay` before the next attempt (or until the run is stopped), and returns the wait
/// after that one: `delay` times `backoff`, capped so a long run of retries never overflows.
pub(crate) async fn retry_wait(
    delay: Duration,
    backoff: f64,
    cancel: &mut watch::Receiver<Cancel>,
) -> Duration {
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = cancel.changed() => {}
    }
    Duration::try_from_secs_f64(delay.as_secs_f64() * backoff)
        .unwrap_or(MAX_DURATION)
        .min(MAX_DURATION)
}
