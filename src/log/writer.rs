//! Durable JSONL writing, the way databases write their write-ahead logs. After its first
//! two syncs (a one-step run makes no more: plain appends serve it best), the file grows in
//! zero-filled chunks, and each record is one write of one line into space already there:
//! the durable ones (`step_started` and every decision) are then flushed with an
//! `fdatasync` that commits data only, never a new file size. The file is cut to its
//! records when the run ends; after a crash it may end in zero bytes, where readers stop.
//! A crash at any instant leaves a log that never hides a step that may have run, with at
//! most a torn last line, which readers tolerate.

use crate::event as ev;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::sync::Durability;
use crate::event::{Event, Output, Phase, Sink, Stream, write_timestamp};

pub(crate) struct LogWriter {
    /// Locked (flock) for as long as the run writes it: a second process cannot resume a
    /// run that is still executing, whether or not its runbook takes a lock.
    file: Flock<File>,
    path: PathBuf,
    /// Where the next record goes: the end of the records.
    end: u64,
    /// The file's length: zero-filled beyond `end`.
    allocated: u64,
    /// Output kept per step attempt; the rest is counted in one `truncated_bytes` marker.
    output_cap: u64,
    /// Output so far of each attempt in flight: logged and dropped bytes.
    attempts: Vec<Attempt>,
    /// Its syncs (with the new file's directory entry, the first time).
    durability: Durability,
    /// Syncs asked for so far.
    syncs: u32,
    /// The buffer each record is built in.
    line: Vec<u8>,
}

/// The largest record buffer kept for the next record.
const LINE_KEPT: usize = 64 * 1024;

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
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        // The new directory entry is made durable with the first synced record, so the
        // file itself survives a crash.
        Self::new(file, path, 0, output_cap, Some(dir.to_path_buf()))
    }

    /// Opens an existing log to go on writing it (for `resume`): after its last record,
    /// with a line cut short by a crash ended first, so the next record starts on its own.
    pub(crate) fn append(path: &Path, output_cap: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(path)?;
        let bytes = std::fs::read(path)?;
        let records = super::reader::records_of(&bytes);
        let mut log = Self::new(
            file,
            path.to_path_buf(),
            records.len() as u64,
            output_cap,
            None,
        )?;
        log.allocated = bytes.len() as u64;
        if !records.is_empty() && !records.ends_with(b"\n") {
            log.put(b"\n")?;
        }
        Ok(log)
    }

    /// Takes the file's lock; `WouldBlock` when another process writes it.
    fn new(
        file: File,
        path: PathBuf,
        end: u64,
        output_cap: u64,
        unsynced_dir: Option<PathBuf>,
    ) -> io::Result<Self> {
        let file = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| io::Error::from(errno))?;
        let durability = Durability::new(file.try_clone()?, path.clone(), unsynced_dir);
        Ok(LogWriter {
            file,
            path,
            end,
            allocated: end,
            output_cap,
            attempts: Vec::new(),
            durability,
            syncs: 0,
            line: Vec::with_capacity(512),
        })
    }

    /// Writes `bytes` after the last record. When they do not fit, the file grows by a
    /// zero-filled chunk, written after the record (a crash in between leaves the record
    /// whole and no zeros); the next synced record makes the growth durable, and every
    /// synced record after it commits data only.
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(bytes, self.end)?;
        self.end += bytes.len() as u64;
        if self.end > self.allocated && self.syncs < APPENDED_SYNCS {
            // A short run: its few syncs each commit the new size, and there is no
            // zero-filled room to cut off at the end.
            self.allocated = self.end;
        } else if self.end > self.allocated {
            let chunk = self.allocated.clamp(FIRST_CHUNK, LARGEST_CHUNK);
            let zeros = vec![0u8; chunk as usize];
            self.file.write_all_at(&zeros, self.end)?;
            self.allocated = self.end + chunk;
        }
        Ok(())
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
        // `{"ts":"...",` then the event's own object without its opening brace: the same
        // line a flattened wrapper would give, without serde's buffering. Built in a
        // buffer kept from one record to the next.
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        line.extend_from_slice(b"{\"ts\":\"");
        write_timestamp(&mut line, chrono::Utc::now());
        line.extend_from_slice(b"\",");
        let object = line.len();
        serde_json::to_writer(&mut line, event).map_err(io::Error::other)?;
        // The event's opening brace goes: the line has its own.
        if line.get(object) == Some(&b'{') {
            line.remove(object);
        }
        line.push(b'\n');
        let put = self.put(&line);
        // A large record (a long piece of output) does not keep its buffer.
        if line.capacity() <= LINE_KEPT {
            self.line = line;
        }
        put?;
        if sync {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes every record written so far durable.
    fn sync(&mut self) -> io::Result<()> {
        self.syncs = self.syncs.saturating_add(1);
        self.durability.sync()
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
        self.write(&Event::StepOutput(ev::StepOutput {
            step: a.step,
            stream: Stream::Stdout,
            text: String::new(),
            phase,
            truncated_bytes: Some(a.dropped),
            host: a.host,
        }))
    }
}

/// Syncs made before the log grows in zero-filled chunks. The first sync of a new file
/// commits its size and directory entry whatever its length; a run that ends at its second
/// (a one-step run: its step's start, then its end) is best served by plain appends, which
/// leave nothing to cut off at the end. A longer run grows in chunks from its third.
const APPENDED_SYNCS: u32 = 2;
/// The first growth of a log: room for a short run's records.
const FIRST_CHUNK: u64 = 16 * 1024;
/// The largest growth: chunks double up to this.
const LARGEST_CHUNK: u64 = 4 * 1024 * 1024;

impl Drop for LogWriter {
    /// Cuts the file to its records: the zero-filled room left is for a run that goes on.
    /// Not synced: the records are on disk already, and should the cut be lost, the zeros
    /// it would have removed are skipped by every reader.
    fn drop(&mut self) {
        if self.allocated > self.end {
            let _ = self.file.set_len(self.end);
        }
    }
}

impl LogWriter {
    /// Records an event: ends or begins the output of an attempt as it says, then writes it.
    fn record(&mut self, event: &Event, sync: bool) -> io::Result<()> {
        match event {
            Event::StepStarted(ev::StepStarted {
                step, phase, host, ..
            }) => {
                self.end_attempt(step, *phase, host.as_deref())?;
                self.attempts.push(Attempt {
                    step: step.clone(),
                    phase: *phase,
                    host: host.clone(),
                    logged: 0,
                    dropped: 0,
                });
            }
            Event::StepRetrying(ev::StepRetrying {
                step, phase, host, ..
            })
            | Event::StepFinished(ev::StepFinished {
                step, phase, host, ..
            }) => self.end_attempt(step, *phase, host.as_deref())?,
            _ => {}
        }
        self.write_line(event, sync)
    }
}

impl Sink for LogWriter {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.record(event, durable(event))
    }

    fn event_unsynced(&mut self, event: &Event) -> io::Result<()> {
        self.record(event, false)
    }

    fn sync_then(&mut self, then: Box<dyn FnOnce(io::Result<()>) + Send>) {
        self.syncs = self.syncs.saturating_add(1);
        self.durability.sync_then(then)
    }

    fn syncs_are_cheap(&self) -> bool {
        self.durability.is_cheap()
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
        self.write(&Event::StepOutput(ev::StepOutput {
            step: out.step.to_string(),
            stream: out.stream,
            text: String::from_utf8_lossy(&out.bytes[..keep]).into_owned(),
            phase: out.phase,
            truncated_bytes: None,
            host: out.host.map(str::to_string),
        }))
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
/// power. `step_started` must be synced before its command runs (spec §4: `process::run`
/// syncs a shell step's while its shell starts), and so is every record of a decision or
/// an end. Output is not, and neither is the end of an automated step nobody answered for:
/// the next record's sync carries it, and if the machine dies first the step is merely
/// in doubt on resume (the safe side). This halves the syncs of a chain of commands.
/// `run_started` waits for the first such record too: nothing has happened before it, and
/// a run lost with the power before its first step leaves nothing to resume.
fn durable(event: &Event) -> bool {
    match event {
        Event::StepStarted(ev::StepStarted { .. })
        | Event::Milestone(ev::Milestone { .. })
        | Event::RunResumed(ev::RunResumed { .. })
        | Event::RunFinished(ev::RunFinished { .. }) => true,
        Event::StepFinished(ev::StepFinished { kind, response, .. }) => {
            *kind == crate::event::Kind::Manual || response.answer.is_some()
        }
        Event::RunStarted(_)
        | Event::StepOutput(ev::StepOutput { .. })
        | Event::StepSpawned(ev::StepSpawned { .. })
        | Event::StepRetrying(ev::StepRetrying { .. })
        | Event::PromptOpened(ev::PromptOpened { .. })
        | Event::PromptClosed(ev::PromptClosed { .. })
        | Event::Notice(ev::Notice { .. })
        | Event::NotRolledBack(ev::NotRolledBack { .. }) => false,
    }
}
