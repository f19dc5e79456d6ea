//! One host of a fleet step: its attempts (a failure, a timeout or an unreachable host is
//! retried `retries` times), its output on its way to the sinks (masked, marked with the
//! host), and how it ended. Its first start is recorded by the pass, with the other hosts
//! of its batch; a retry records its own.

use crate::event as ev;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::attempt::{self, Outcome};
use super::ssh::Ssh;
use super::{Attempts, CAPTURE_LIMIT, HostEnd, HostJob};
use crate::event::{Event, Kind, Phase, StepStatus, Stream};
use crate::exec::emit::Emitter;
use crate::exec::process::Cancel;
use crate::exec::secrets::Masker;
use crate::exec::task::{self, StepOutput};

/// The start of one host's attempt, as the log records it.
pub(super) fn started(step: &str, phase: Phase, job: &HostJob, attempt: u32) -> Event {
    Event::StepStarted(ev::StepStarted {
        step: step.to_string(),
        kind: Kind::Auto,
        attempt,
        command: Some(job.command.clone()),
        phase,
        last_attempt: None,
        timeout_ms: None,
        instructions: None,
        host: Some(job.host.clone()),
        hosts: None,
    })
}

/// Everything a host's attempts share with the rest of the pass.
pub(super) struct Context<'a> {
    pub(super) step: &'a str,
    pub(super) phase: Phase,
    pub(super) attempts: Attempts,
    pub(super) ssh: &'a Ssh,
    pub(super) emitter: &'a Emitter,
    pub(super) masker: &'a Arc<Masker>,
}

/// Runs `job`'s attempts; its first start is already recorded.
pub(super) async fn run(
    cx: &Context<'_>,
    job: &HostJob,
    mut cancel: watch::Receiver<Cancel>,
) -> HostEnd {
    let a = cx.attempts;
    let mut delay = a.retry_delay;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let attempt = job.first_attempt + attempts - 1;
        if attempts > 1
            && let Err(e) = cx.emitter.emit(&started(cx.step, cx.phase, job, attempt))
        {
            return HostEnd {
                attempts,
                ..HostEnd::because(StepStatus::Failed, format!("not started: {e}"))
            };
        }
        if *cancel.borrow() != Cancel::None {
            return HostEnd {
                attempts,
                ..HostEnd::because(StepStatus::Aborted, "stopped: the run was interrupted")
            };
        }
        let mut capture = Vec::new();
        let mut last_err = LastLine::default();
        let mut out = StepOutput::new(cx.emitter, cx.masker, cx.step, Some(&job.host), cx.phase);
        let outcome = attempt::run(
            cx.ssh,
            &job.host,
            &job.remote,
            a.timeout,
            |stream, bytes| {
                if stream == Stream::Stdout && a.capture {
                    task::keep_for_capture(&mut capture, bytes, CAPTURE_LIMIT);
                }
                if stream == Stream::Stderr {
                    last_err.push(bytes);
                }
                out.push(stream, bytes);
            },
            cancel.clone(),
        )
        .await;
        out.finish();
        let (status, exit_code, reason) = judge(outcome, a.timeout, &last_err, cx.masker);
        if task::is_last_attempt(status, attempts, a.retries, &cancel) {
            let capture = task::captured(status, a.capture, &capture);
            return HostEnd {
                status,
                exit_code,
                attempts,
                capture,
                reason,
            };
        }
        let _ = cx.emitter.emit(&Event::StepRetrying(ev::StepRetrying {
            step: cx.step.to_string(),
            attempt,
            reason: reason.unwrap_or_else(|| format!("exited with {}", exit_code.unwrap_or(-1))),
            delay_ms: delay.as_millis() as u64,
            phase: cx.phase,
            host: Some(job.host.clone()),
        }));
        delay = task::retry_wait(delay, a.retry_backoff, &mut cancel).await;
    }
}

/// What an attempt's outcome means for the host.
fn judge(
    outcome: std::io::Result<Outcome>,
    timeout: Option<Duration>,
    last_err: &LastLine,
    masker: &Masker,
) -> (StepStatus, Option<i32>, Option<String>) {
    match outcome {
        Ok(Outcome::Exited { code: 0, .. }) => (StepStatus::Succeeded, Some(0), None),
        // ssh's own failure: it could not connect or log in, so nothing ran there.
        Ok(Outcome::Exited {
            code: 255,
            started: false,
        }) => {
            let why = last_err
                .text()
                .map(|l| masker.mask(&l).into_owned())
                .map_or_else(
                    || "ssh could not connect or log in (exit 255)".to_string(),
                    |l| format!("ssh could not connect or log in: {l}"),
                );
            (StepStatus::Unreachable, Some(255), Some(why))
        }
        Ok(Outcome::Exited { code, .. }) => (StepStatus::Failed, Some(code), None),
        Ok(Outcome::Signalled(s)) => (
            StepStatus::Failed,
            None,
            Some(format!("ssh was killed by signal {s}")),
        ),
        Ok(Outcome::TimedOut) => (
            StepStatus::TimedOut,
            None,
            timeout.map(|t| {
                format!(
                    "timed out after {}; the remote command was stopped",
                    humantime::format_duration(t)
                )
            }),
        ),
        Ok(Outcome::Cancelled) => (
            StepStatus::Aborted,
            None,
            Some("stopped: the run was interrupted".into()),
        ),
        Err(e) => (
            StepStatus::Failed,
            None,
            Some(format!("cannot start `ssh`: {e}")),
        ),
    }
}

/// The last non-empty line of a stream: why ssh failed, when it did.
#[derive(Debug, Default)]
struct LastLine {
    /// The tail of what came, up to a bound.
    tail: Vec<u8>,
}

impl LastLine {
    const KEEP: usize = 4096;

    fn push(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > Self::KEEP {
            let cut = self.tail.len() - Self::KEEP;
            self.tail.drain(..cut);
        }
    }

    fn text(&self) -> Option<String> {
        let s = String::from_utf8_lossy(&self.tail);
        let line = s.lines().map(str::trim).rfind(|l| !l.is_empty())?;
        Some(line.chars().take(300).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(outcome: Outcome, stderr: &[u8]) -> (StepStatus, Option<String>) {
        let mut last = LastLine::default();
        last.push(stderr);
        let (s, _, r) = judge(
            Ok(outcome),
            Some(Duration::from_secs(2)),
            &last,
            &Masker::default(),
        );
        (s, r)
    }

    #[test]
    fn exit_255_is_unreachable_only_before_the_command_started() {
        let refused = b"ssh: connect to host 127.0.0.1 port 9: Connection refused\r\n";
        assert_eq!(
            end(Outcome::Exited { code: 255, started: false }, refused),
            (
                StepStatus::Unreachable,
                Some("ssh could not connect or log in: ssh: connect to host 127.0.0.1 port 9: Connection refused".into())
            )
        );
        assert_eq!(
            end(
                Outcome::Exited {
                    code: 255,
                    started: true
                },
                b""
            )
            .0,
            StepStatus::Failed
        );
        assert_eq!(
            end(
                Outcome::Exited {
                    code: 3,
                    started: true
                },
                b""
            )
            .0,
            StepStatus::Failed
        );
        assert_eq!(end(Outcome::TimedOut, b"").0, StepStatus::TimedOut);
    }
}
