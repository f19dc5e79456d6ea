//! The durable record of alerts: `<log-dir>/alerts/journal.jsonl`, one JSON object per
//! line (`ts`, `record`), appended with one `write` and made durable (fdatasync) before
//! `runbook serve` answers Alertmanager. Everything `runbook alerts` shows is this journal
//! folded by [`super::state`]. A crash mid-write leaves at most a torn last line, which
//! readers skip and the next writer ends.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::payload::Notification;
use super::route::Route;
use super::state::Alerts;

/// One line of the journal, after its `ts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// A notification as received, with the route of each alert new to the journal.
    Notification {
        notification: Notification,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        routed: Vec<Routed>,
    },
    /// `serve` starts a diagnostic rehearsal of `runbook` for this alert (once per alert).
    Diagnose { alert: String, runbook: String },
    /// The rehearsal began: its run id (written by the rehearsal itself).
    DiagnosticRun {
        alert: String,
        runbook: String,
        run_id: String,
    },
    /// The rehearsal did not start, or ended without a record of its own.
    DiagnoseFailed { alert: String, reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Routed {
    pub alert: String,
    #[serde(flatten)]
    pub route: Route,
}

#[derive(Serialize, Deserialize)]
struct Line {
    ts: DateTime<Utc>,
    #[serde(flatten)]
    record: Record,
}

/// The journal's directory in a log directory.
pub fn dir(log_dir: &Path) -> PathBuf {
    log_dir.join("alerts")
}

fn journal_path(log_dir: &Path) -> PathBuf {
    dir(log_dir).join("journal.jsonl")
}

/// The journal, open for appending.
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens (creating 0700 / 0600 when missing) the journal of `log_dir`, and ends a torn
    /// last line so the next record starts on a line of its own.
    pub fn open(log_dir: &Path) -> io::Result<Journal> {
        let d = dir(log_dir);
        if !d.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)?;
        }
        let path = journal_path(log_dir);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&path)?;
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(io::SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        // The directory entry too, so the file survives a crash.
        File::open(&d)?.sync_all()?;
        Ok(Journal { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `records` at `ts` in one write, and waits until they are on disk.
    pub fn append(&mut self, ts: DateTime<Utc>, records: &[Record]) -> io::Result<()> {
        let mut text = String::new();
        for record in records {
            let line = Line {
                ts,
                record: record.clone(),
            };
            let json = serde_json::to_string(&line).map_err(io::Error::other)?;
            text.push_str(&json);
            text.push('\n');
        }
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()
    }
}

/// Appends one record to the journal of `log_dir` (a rehearsal naming its run).
pub fn append_one(log_dir: &Path, record: Record) -> io::Result<()> {
    Journal::open(log_dir)?.append(Utc::now(), &[record])
}

/// The lock `runbook serve` holds on a log directory's alerts while it runs: two
/// receivers on one journal would each start a rehearsal of the same alert.
pub fn lock(log_dir: &Path) -> io::Result<Option<Flock<File>>> {
    let d = dir(log_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)?;
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(d.join("serve.lock"))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(f) => Ok(Some(f)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(io::Error::from(e)),
    }
}

/// What reading the journal found.
pub struct Journaled {
    pub alerts: Alerts,
    /// Lines that could not be read (a torn last line, or a newer record kind).
    pub skipped: usize,
}

/// Reads and folds the journal of `log_dir`; no journal is no alerts.
pub fn read(log_dir: &Path) -> io::Result<Journaled> {
    let path = journal_path(log_dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(fold(&bytes))
}

/// Folds journal text: lines that do not parse are counted and skipped.
pub fn fold(bytes: &[u8]) -> Journaled {
    let mut alerts = Alerts::default();
    let mut skipped = 0;
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Line>(line) {
            Ok(l) => alerts.apply(l.ts, &l.record),
            Err(_) => skipped += 1,
        }
    }
    Journaled { alerts, skipped }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRING: &[u8] = include_bytes!("../../tests/fixtures/alertmanager/firing.json");

    fn notification() -> Record {
        Record::Notification {
            notification: super::super::parse(FIRING).unwrap_or_else(|e| panic!("{e}")),
            routed: Vec::new(),
        }
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_ended_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut j = Journal::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        j.append(Utc::now(), &[notification()])
            .unwrap_or_else(|e| panic!("{e}"));
        drop(j);
        let path = journal_path(dir.path());
        let mut f = OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(b"{\"ts\":\"2026-11-28T21:00:00Z\",\"record\":\"notif")
            .unwrap_or_else(|e| panic!("{e}"));
        let read = super::read(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((read.alerts.list.len(), read.skipped), (1, 1));
        let mut j = Journal::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        j.append(
            Utc::now(),
            &[Record::Diagnose {
                alert: "b7f0de69e0b04897".into(),
                runbook: "db-failover".into(),
            }],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let read = super::read(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.skipped, 1, "only the torn line is lost");
        let d = read.alerts.list[0].diagnostic.as_ref();
        assert_eq!(d.map(|d| d.runbook.as_str()), Some("db-failover"));
    }
}
