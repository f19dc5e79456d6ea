//! One live execution per runbook (spec §2, exit 3): an OS file lock (flock) held for the
//! whole run, in `<log-dir>/locks/<runbook>.lock`, with who holds it written inside. The
//! kernel releases it when the holder exits, however it exits, so a crash never leaves a
//! stale lock to clean up by hand.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Who holds a lock, as written in the lock file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Holder {
    pub run_id: String,
    pub operator: String,
    pub host: String,
    pub pid: u32,
    pub since: String,
}

/// A held lock; dropping it releases it.
pub(crate) struct RunLock {
    _lock: Flock<File>,
}

pub(crate) fn acquire(log_dir: &Path, runbook: &str, holder: &Holder) -> Result<RunLock, Error> {
    let dir = log_dir.join("locks");
    let fail = |action: &'static str, source: std::io::Error| Error::Io {
        action,
        path: dir.clone(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| fail("create the lock in", e))?;
    let path = dir.join(format!("{runbook}.lock"));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        // A symlink planted at the lock's path is refused, never followed and overwritten.
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&path)
        .map_err(|e| fail("open the lock in", e))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => {
            let mut info = serde_json::to_string(holder).unwrap_or_default();
            // Written over the last holder's text, padded with spaces (which JSON allows
            // after a value) to its length: cutting the file would cost a journal update
            // on every run. A lock file grown odd (over 64 KiB) is cut after all.
            let old = lock.metadata().map(|m| m.len()).unwrap_or(0);
            let written = if old > 64 * 1024 {
                lock.set_len(0)
                    .and_then(|()| lock.write_all_at(info.as_bytes(), 0))
            } else {
                let pad = usize::try_from(old).unwrap_or(0).saturating_sub(info.len());
                info.extend(std::iter::repeat_n(' ', pad));
                lock.write_all_at(info.as_bytes(), 0)
            };
            // Not synced: the lock itself is the kernel's; the text only says who holds it.
            written.map_err(|e| fail("write the lock in", e))?;
            Ok(RunLock { _lock: lock })
        }
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Err(Error::Locked(describe(
                runbook,
                serde_json::from_str::<Holder>(&text).ok(),
            )))
        }
        Err((_, errno)) => Err(fail("take the lock in", std::io::Error::from(errno))),
    }
}

fn describe(runbook: &str, holder: Option<Holder>) -> String {
    let Some(h) = holder else {
        return format!(
            "runbook `{runbook}` is being run by another live execution; wait for it to finish"
        );
    };
    let ago = chrono::DateTime::parse_from_rfc3339(&h.since)
        .ok()
        .and_then(|t| chrono::Utc::now().signed_duration_since(t).to_std().ok())
        .map(|d| format!(", {} ago", crate::format::duration(d)))
        .unwrap_or_default();
    format!(
        "runbook `{runbook}` is being run by {} on {} (run {}, pid {}) since {}{ago}; one live execution at a time (a --dry-run needs no lock)",
        h.operator, h.host, h.run_id, h.pid, h.since
    )
}
