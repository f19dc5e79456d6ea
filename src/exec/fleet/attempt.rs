//! One attempt of a fleet step on one host: an `ssh` session whose output streams as it
//! comes, and whose remote command is ended, not only the local `ssh`, on a timeout or an
//! interrupt: TERM to the remote process group, a grace period, then KILL to it and to the
//! local `ssh`.
//!
//! This is [`crate::exec::process::run`] for a remote command: the same loop over two
//! pipes, an exit and a deadline, with two differences that do not fit there: the first
//! line on stderr is the remote process group (taken out of the output), and stopping
//! means signalling that group through a second `ssh`.

use std::time::Duration;

use nix::sys::signal::Signal as LocalSignal;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::ssh::{MARKER, Signal, Ssh};
use crate::event::Stream;
use crate::exec::process::{Cancel, GRACE, signal_group};

/// How long to keep reading after `ssh` exits, for output still in the pipes.
const DRAIN: Duration = Duration::from_millis(500);
/// How long a signal sent through a second `ssh` may take.
const SIGNAL_WAIT: Duration = Duration::from_secs(10);
/// Bytes read at a time from each pipe: hosts are many, and a remote command's output
/// comes through ssh's own buffers anyway.
const READ_BUFFER: usize = 16 * 1024;
/// Most of stderr held back while looking for the marker line.
const MARKER_SCAN_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `ssh` exited with this code; `started`: the remote command had started (its marker
    /// came), so an exit 255 is the command's own and not a failure to connect.
    Exited {
        code: i32,
        started: bool,
    },
    /// `ssh` was killed by this signal (not by us).
    Signalled(i32),
    TimedOut,
    Cancelled,
}

/// The remote process group, read from the first line of stderr; lines before it (a
/// login shell's noise) and everything after pass through as output.
#[derive(Debug, Default)]
pub(crate) struct Marker {
    pub(crate) pgid: Option<u32>,
    pending: Vec<u8>,
    /// Too much stderr without the marker: stop looking.
    gave_up: bool,
}

impl Marker {
    /// Feeds a chunk of stderr; `out` receives what is output.
    pub(crate) fn feed(&mut self, bytes: &[u8], mut out: impl FnMut(&[u8])) {
        if self.pgid.is_some() || self.gave_up {
            return out(bytes);
        }
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &self.pending[start..]) {
            let line = &self.pending[start..start + nl];
            let pgid = std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.strip_prefix(MARKER))
                .and_then(|n| n.trim().parse::<u32>().ok());
            if let Some(pgid) = pgid.filter(|&p| p > 1) {
                self.pgid = Some(pgid);
                out(&self.pending[..start]);
                let rest = self.pending[start + nl + 1..].to_vec();
                self.pending.clear();
                if !rest.is_empty() {
                    out(&rest);
                }
                return;
            }
            start += nl + 1;
        }
        if self.pending.len() > MARKER_SCAN_LIMIT {
            self.gave_up = true;
            out(&std::mem::take(&mut self.pending));
        }
    }

    /// What is still held back, at the end.
    pub(crate) fn finish(&mut self, out: impl FnOnce(&[u8])) {
        if !self.pending.is_empty() {
            out(&std::mem::take(&mut self.pending));
        }
    }
}

async fn read_some(
    pipe: &mut Option<impl AsyncReadExt + Unpin>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(p) => p.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Signals the remote process group through a second `ssh`, and waits for it (bounded).
async fn signal_remote(ssh: &Ssh, host: &str, pgid: Option<u32>, signal: Signal) {
    let Some(pgid) = pgid else { return };
    if let Ok(mut child) = ssh.signal(host, pgid, signal).spawn() {
        let _ = tokio::time::timeout(SIGNAL_WAIT, child.wait()).await;
    }
}

/// Runs `remote` on `host`, handing every chunk of output to `on_output` as it arrives.
pub(crate) async fn run(
    ssh: &Ssh,
    host: &str,
    remote: &str,
    timeout: Option<Duration>,
    mut on_output: impl FnMut(Stream, &[u8]),
    mut cancel: watch::Receiver<Cancel>,
) -> std::io::Result<Outcome> {
    let mut child = ssh.session(host, remote).spawn()?;
    let local = child.id().map_or(0, |id| id as i32);
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let mut buf_out = vec![0u8; READ_BUFFER];
    let mut buf_err = vec![0u8; READ_BUFFER];
    let mut marker = Marker::default();

    let deadline = timeout.map(|t| Instant::now() + t);
    let mut status = None;
    let mut ended_by: Option<Outcome> = None;
    let mut kill_at: Option<Instant> = None;
    let mut drain_until: Option<Instant> = None;
    let mut cancel_open = true;
    let far = || Instant::now() + Duration::from_secs(365 * 24 * 3600);
    // A TERM asked for, to send once the remote group is known.
    let mut term_pending = false;

    let initial = *cancel.borrow_and_update();
    if initial != Cancel::None {
        ended_by = Some(Outcome::Cancelled);
        if initial == Cancel::Kill {
            signal_group(local, LocalSignal::SIGKILL);
        } else {
            term_pending = true;
            kill_at = Some(Instant::now() + GRACE);
        }
    }

    loop {
        if status.is_some() && out.is_none() && err.is_none() {
            break;
        }
        if term_pending && marker.pgid.is_some() {
            term_pending = false;
            signal_remote(ssh, host, marker.pgid, Signal::Term).await;
        }
        tokio::select! {
            n = read_some(&mut out, &mut buf_out) => match n {
                Ok(n) if n > 0 => on_output(Stream::Stdout, &buf_out[..n]),
                _ => out = None,
            },
            n = read_some(&mut err, &mut buf_err) => match n {
                Ok(n) if n > 0 => marker.feed(&buf_err[..n], |b| on_output(Stream::Stderr, b)),
                _ => err = None,
            },
            s = child.wait(), if status.is_none() => {
                status = Some(s?);
                drain_until = Some(Instant::now() + DRAIN);
            }
            _ = sleep_until(deadline.unwrap_or_else(far)), if deadline.is_some() && ended_by.is_none() && status.is_none() => {
                ended_by = Some(Outcome::TimedOut);
                kill_at = Some(Instant::now() + GRACE);
                if marker.pgid.is_some() {
                    signal_remote(ssh, host, marker.pgid, Signal::Term).await;
                } else {
                    // Not connected yet: nothing runs there to end.
                    signal_group(local, LocalSignal::SIGTERM);
                }
            }
            _ = sleep_until(kill_at.unwrap_or_else(far)), if kill_at.is_some() => {
                kill_at = None;
                signal_remote(ssh, host, marker.pgid, Signal::Kill).await;
                signal_group(local, LocalSignal::SIGKILL);
            }
            _ = sleep_until(drain_until.unwrap_or_else(far)), if drain_until.is_some() => break,
            changed = cancel.changed(), if cancel_open => {
                cancel_open = changed.is_ok();
                let how = if cancel_open { *cancel.borrow_and_update() } else { Cancel::None };
                match how {
                    Cancel::None => {}
                    Cancel::Graceful => {
                        ended_by = Some(Outcome::Cancelled);
                        kill_at = Some(Instant::now() + GRACE);
                        if marker.pgid.is_some() {
                            signal_remote(ssh, host, marker.pgid, Signal::Term).await;
                        } else {
                            signal_group(local, LocalSignal::SIGTERM);
                        }
                    }
                    Cancel::Kill => {
                        ended_by = Some(Outcome::Cancelled);
                        kill_at = None;
                        signal_remote(ssh, host, marker.pgid, Signal::Kill).await;
                        signal_group(local, LocalSignal::SIGKILL);
                    }
                }
            }
        }
    }
    marker.finish(|b| on_output(Stream::Stderr, b));
    if let Some(outcome) = ended_by {
        // Whatever of the remote group outlived its shell (a child ignoring TERM) goes now.
        signal_remote(ssh, host, marker.pgid, Signal::Kill).await;
        signal_group(local, LocalSignal::SIGKILL);
        return Ok(outcome);
    }
    use std::os::unix::process::ExitStatusExt;
    let status =
        status.ok_or_else(|| std::io::Error::other("ssh did not report an exit status"))?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => Outcome::Exited {
            code,
            started: marker.pgid.is_some(),
        },
        (None, Some(sig)) => Outcome::Signalled(sig),
        (None, None) => Outcome::Exited {
            code: -1,
            started: marker.pgid.is_some(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]]) -> (Option<u32>, Vec<u8>) {
        let mut m = Marker::default();
        let mut out = Vec::new();
        for c in chunks {
            m.feed(c, |b| out.extend_from_slice(b));
        }
        m.finish(|b| out.extend_from_slice(b));
        (m.pgid, out)
    }

    #[test]
    fn the_marker_is_taken_out_wherever_the_reads_split_it() {
        assert_eq!(
            scan(&[b"runbook-pg", b"id:4242\nerr 1\n", b"err 2"]),
            (Some(4242), b"err 1\nerr 2".to_vec())
        );
        assert_eq!(
            scan(&[b"motd noise\nrunbook-pgid:7\n"]),
            (Some(7), b"motd noise\n".to_vec())
        );
    }

    #[test]
    fn without_a_marker_stderr_is_output_and_no_group_is_known() {
        assert_eq!(
            scan(&[b"ssh: connect to host x port 22: Connection refused\r\n"]),
            (
                None,
                b"ssh: connect to host x port 22: Connection refused\r\n".to_vec()
            )
        );
        let (pgid, out) = scan(&[b"runbook-pgid:1\n"]);
        assert_eq!(
            (pgid, out.len()),
            (None, 15),
            "group 1 would be every process"
        );
    }
}
