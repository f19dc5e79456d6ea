//! Durable JSONL writing. Each record is one `write` of one line to a file opened for
//! appending; records that say a step may have run (`step_started`) and every finish are
//! flushed to disk (fdatasync) before the executor goes on, so a crash at any instant leaves
//! a log that never hides a step that may have run. A crash mid-write leaves at most a torn
//! last line, which readers tolerate.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::event::{Event, timestamp};

pub struct LogWriter {
    file: File,
    path: PathBuf,
}

impl LogWriter {
    /// Creates `<dir>/<run_id>.jsonl` (mode 0600) in `dir` (created 0700 when missing).
    pub fn create(dir: &Path, run_id: &str) -> io::Result<Self> {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        // Tighten a directory we own that was created looser (for example by hand).
        let meta = std::fs::metadata(dir)?;
        if meta.permissions().mode() & 0o077 != 0 && meta_owned(&meta) {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let path = dir.join(format!("{run_id}.jsonl"));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        // Make the new directory entry durable too, so the file itself survives a crash.
        File::open(dir)?.sync_all()?;
        Ok(LogWriter { file, path })
    }

    /// Opens an existing log to append to it (for `resume`).
    pub fn append(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(LogWriter {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record; durable ones are on disk when this returns.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        /// The written form of a [`crate::event::Record`], borrowing the event.
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
        if durable(event) {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

fn meta_owned(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.uid() == nix::unistd::getuid().as_raw()
}

/// Whether a record is synced to disk before the executor goes on. Every write reaches the
/// kernel at once, so a killed process loses nothing; the sync is for a machine that loses
/// power. `step_started` must be synced (spec §4), and so is every record of a decision or
/// an end. Output is not, and neither is the end of an automated step nobody answered for:
/// the next record's sync carries it, and if the machine dies first the step is merely
/// in doubt on resume (the safe side). This halves the syncs of a chain of commands.
fn durable(event: &Event) -> bool {
    match event {
        Event::StepOutput { .. } => false,
        Event::StepFinished { kind, response, .. } => {
            *kind == crate::event::Kind::Manual || response.answer.is_some()
        }
        _ => true,
    }
}
