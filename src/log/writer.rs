//! Durable JSONL writing. Each record is one `write` of one line to a file opened for
//! appending; records that say a step may have run (`step_started`) and every finish are
//! flushed to disk (fdatasync) before the executor goes on, so a crash at any instant leaves
//! a log that never hides a step that may have run. A crash mid-write leaves at most a torn
//! last line, which readers tolerate.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::event::{Event, Output, Phase, Sink, Stream, timestamp};

pub(crate) struct LogWriter {
    /// Locked (flock) for as long as the run writes it: a second process cannot resume a
    /// run that is still executing, whether or not its runbook takes a lock.
    file: Flock<File>,
    path: PathBuf,
    /// Output kept per step attempt; the rest is counted in one `truncated_bytes` marker.
    output_cap: u64,
    /// Output so far of each attempt in flight: logged and dropped bytes.
    attempts: Vec<Attempt>,
}

/// One attempt's output: of a step, or of a fleet step on one host.
struct Attempt {
    step: String,
    phase: Phase,
    host: Option<String>,
    logged: u64,
    dropped: u64,
}

impl LogWriter {
    /// Creates `<dir>/<run_id>.jsonl` (mode 0600) in `dir` (created 0700 when missing; an
    /// existing directory is left as it is: it may be shared, and the files are 0600).
    pub(crate) fn create(dir: &Path, run_id: &str, output_cap: u64) -> io::Result<Self> {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let path = dir.join(format!("{run_id}.jsonl"));
        // A new file, never one that is there already (nor a symlink planted there).
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        // Make the new directory entry durable too, so the file itself survives a crash.
        File::open(dir)?.sync_all()?;
        Self::new(file, path, output_cap)
    }

    /// Opens an existing log to append to it (for `resume`).
    pub(crate) fn append(path: &Path, output_cap: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .append(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(path)?;
        Self::new(file, path.to_path_buf(), output_cap)
    }

    /// Takes the file's lock; `WouldBlock` when another process writes it.
    fn new(file: File, path: PathBuf, output_cap: u64) -> io::Result<Self> {
        let file = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| io::Error::from(errno))?;
        Ok(LogWriter {
            file,
            path,
            output_cap,
            attempts: Vec::new(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record; durable ones are on disk when this returns.
    fn write(&mut self, event: &Event) -> io::Result<()> {
        self.write_line(event, durable(event))
    }

    /// Appends one record, and syncs the file (this record and every one before it) when
    /// `sync` says so.
    fn write_line(&mut self, event: &Event, sync: bool) -> io::Result<()> {
        /// One line of the log, borrowing the event.
        #[derive(serde::Serialize)]
        struct Line<'a> {
            ts: String,
            #[serde(flatten)]
            event: &'a Event,
        }
        let record = Line {
            ts: timestamp(chrono::Utc::now()),
            event,
        };
        let mut line = serde_json::to_vec(&record).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        if sync {
            self.file.sync_data()?;
            // A log deleted under a running run (its directory removed by a cleanup job)
            // would take every later record with it, unseen.
            use std::os::unix::fs::MetadataExt;
            if self.file.metadata()?.nlink() == 0 {
                return Err(io::Error::other(format!(
                    "{} was deleted while the run was writing it",
                    self.path.display()
                )));
            }
        }
        Ok(())
    }

    fn attempt(&mut self, step: &str, phase: Phase, host: Option<&str>) -> Option<usize> {
        self.attempts
            .iter()
            .position(|a| a.phase == phase && a.step == step && a.host.as_deref() == host)
    }

    /// Ends the output of an attempt: writes the truncation marker if bytes were dropped.
    fn end_attempt(&mut self, step: &str, phase: Phase, host: Option<&str>) -> io::Result<()> {
        let Some(i) = self.attempt(step, phase, host) else {
            return Ok(());
        };
        let a = self.attempts.swap_remove(i);
        if a.dropped == 0 {
            return Ok(());
        }
        self.write(&Event::StepOutput {
            step: a.step,
            stream: Stream::Stdout,
            text: String::new(),
            phase,
            truncated_bytes: Some(a.dropped),
            host: a.host,
        })
    }
}

impl LogWriter {
    /// Records an event: ends or begins the output of an attempt as it says, then writes it.
    fn record(&mut self, event: &Event, sync: bool) -> io::Result<()> {
        match event {
            Event::StepStarted {
                step, phase, host, ..
            } => {
                self.end_attempt(step, *phase, host.as_deref())?;
                self.attempts.push(Attempt {
                    step: step.clone(),
                    phase: *phase,
                    host: host.clone(),
                    logged: 0,
                    dropped: 0,
                });
            }
            Event::StepRetrying {
                step, phase, host, ..
            }
            | Event::StepFinished {
                step, phase, host, ..
            } => self.end_attempt(step, *phase, host.as_deref())?,
            _ => {}
        }
        self.write_line(event, sync)
    }
}

impl Sink for LogWriter {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.record(event, durable(event))
    }

    fn output(&mut self, out: &Output<'_>) -> io::Result<()> {
        let cap = self.output_cap;
        let i = match self.attempt(out.step, out.phase, out.host) {
            Some(i) => i,
            None => {
                self.attempts.push(Attempt {
                    step: out.step.to_string(),
                    phase: out.phase,
                    host: out.host.map(str::to_string),
                    logged: 0,
                    dropped: 0,
                });
                self.attempts.len() - 1
            }
        };
        let a = &mut self.attempts[i];
        let room = cap.saturating_sub(a.logged) as usize;
        let keep = out.bytes.len().min(room);
        a.dropped += (out.bytes.len() - keep) as u64;
        if keep == 0 {
            return Ok(());
        }
        a.logged += keep as u64;
        self.write(&Event::StepOutput {
            step: out.step.to_string(),
            stream: out.stream,
            text: String::from_utf8_lossy(&out.bytes[..keep]).into_owned(),
            phase: out.phase,
            truncated_bytes: None,
            host: out.host.map(str::to_string),
        })
    }

    /// The records one after another, then one sync if any of them must be durable.
    fn events(&mut self, events: &[Event]) -> io::Result<()> {
        let Some((last, rest)) = events.split_last() else {
            return Ok(());
        };
        let sync = events.iter().any(durable);
        for e in rest {
            self.record(e, false)?;
        }
        self.record(last, sync)
    }
}

/// Whether a record is synced to disk before the executor goes on. Every write reaches the
/// kernel at once, so a killed process loses nothing; the sync is for a machine that loses
/// power. `step_started` must be synced (spec §4), and so is every record of a decision or
/// an end. Output is not, and neither is the end of an automated step nobody answered for:
/// the next record's sync carries it, and if the machine dies first the step is merely
/// in doubt on resume (the safe side). This halves the syncs of a chain of commands.
fn durable(event: &Event) -> bool {
    match event {
        Event::RunStarted { .. }
        | Event::StepStarted { .. }
        | Event::Milestone { .. }
        | Event::RunResumed { .. }
        | Event::RunFinished { .. } => true,
        Event::StepFinished { kind, response, .. } => {
            *kind == crate::event::Kind::Manual || response.answer.is_some()
        }
        Event::StepOutput { .. }
        | Event::StepRetrying { .. }
        | Event::PromptOpened { .. }
        | Event::PromptClosed { .. }
        | Event::Notice { .. }
        | Event::NotRolledBack { .. } => false,
    }
}
