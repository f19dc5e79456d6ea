//! Making the log durable: `fdatasync`, the new file's directory entry along with the first
//! one, and a check that the file is still linked. A sync can run on a thread of its own,
//! so that a step's shell starts meanwhile (spec §4). A failed sync fails every later one:
//! after a failed `fdatasync`, the next may report success for data that never reached the
//! disk.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A handle on one log file's durability, shared by its writer and the sync thread.
#[derive(Clone)]
pub(crate) struct Durability {
    shared: Arc<Shared>,
}

struct Shared {
    /// The log file (a duplicate of the writer's descriptor).
    file: File,
    path: PathBuf,
    /// How long its syncs take, in nanoseconds (a moving average; 0 before the first).
    cost: AtomicU64,
    /// Held for the length of a sync: syncs happen one at a time.
    state: Mutex<State>,
}

struct State {
    /// The directory of a log just created, synced (for the file's entry) right after the
    /// file's first sync.
    unsynced_dir: Option<PathBuf>,
    /// Why an earlier sync failed.
    failed: Option<String>,
}

type Job = Box<dyn FnOnce() + Send>;

impl Durability {
    pub(crate) fn new(file: File, path: PathBuf, unsynced_dir: Option<PathBuf>) -> Self {
        let state = Mutex::new(State {
            unsynced_dir,
            failed: None,
        });
        // In memory (tmpfs, ramfs), a sync has nothing to write: known cheap from the
        // start, so that not even the first is handed to a thread.
        let cost = AtomicU64::new(if in_memory(&file) { 1 } else { 0 });
        Durability {
            shared: Arc::new(Shared {
                file,
                path,
                cost,
                state,
            }),
        }
    }

    /// Whether this log's syncs are known to cost less than handing them to another thread
    /// (a log on tmpfs, a disk whose cache needs no flush): they are then made in place, and
    /// a step is started once its start is synced. Unknown before the first sync.
    pub(crate) fn is_cheap(&self) -> bool {
        let ns = self.shared.cost.load(Ordering::Relaxed);
        ns > 0 && ns < CHEAP.as_nanos() as u64
    }

    /// Makes every record written so far durable.
    pub(crate) fn sync(&self) -> io::Result<()> {
        let s = &self.shared;
        // A panic elsewhere while syncing leaves the state as it was: still usable.
        let mut state = s.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = &state.failed {
            return Err(io::Error::other(why.clone()));
        }
        let start = Instant::now();
        let synced = s.sync_once(&mut state);
        if let Err(e) = &synced {
            state.failed = Some(e.to_string());
        }
        // At least 1: 0 is "not known yet".
        let took = (start.elapsed().as_nanos() as u64).max(1);
        let before = s.cost.load(Ordering::Relaxed);
        let average = if before == 0 {
            took
        } else {
            (3 * before + took) / 4
        };
        s.cost.store(average, Ordering::Relaxed);
        synced
    }

    /// Runs [`Durability::sync`], then `then` with its result: on the sync thread, unless
    /// syncs are cheap (or that thread cannot be started).
    pub(crate) fn sync_then(&self, then: impl FnOnce(io::Result<()>) + Send + 'static) {
        let this = self.clone();
        let job: Job = Box::new(move || then(this.sync()));
        if self.is_cheap() {
            return job();
        }
        match sync_thread() {
            Some(tx) => {
                if let Err(mpsc::SendError(job)) = tx.send(job) {
                    job();
                }
            }
            None => job(),
        }
    }
}

impl Shared {
    fn sync_once(&self, state: &mut State) -> io::Result<()> {
        // Tests of a kill in the middle of a sync slow it down (never in a release build).
        #[cfg(debug_assertions)]
        if let Some(ms) = std::env::var("RUNBOOK_TEST_SLOW_SYNC_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            std::thread::sleep(Duration::from_millis(ms));
        }
        self.file.sync_data()?;
        if let Some(dir) = state.unsynced_dir.take() {
            File::open(dir)?.sync_all()?;
        }
        // A log deleted under a running run (its directory removed by a cleanup job)
        // would take every later record with it, unseen.
        use std::os::unix::fs::MetadataExt;
        if self.file.metadata()?.nlink() == 0 {
            return Err(io::Error::other(format!(
                "{} was deleted while the run was writing it",
                self.path.display()
            )));
        }
        Ok(())
    }
}

/// Whether `file` lives in memory, where `fdatasync` has nothing to do.
fn in_memory(file: &File) -> bool {
    use nix::sys::statfs::{FsType, TMPFS_MAGIC, fstatfs};
    // ramfs has no constant in nix (linux/magic.h: RAMFS_MAGIC).
    const RAMFS_MAGIC: FsType = FsType(0x8584_58f6);
    fstatfs(file).is_ok_and(|s| [TMPFS_MAGIC, RAMFS_MAGIC].contains(&s.filesystem_type()))
}

/// A sync that takes less than this on average is made in place: handing it to the sync
/// thread (a wake-up on another CPU) and holding the shell cost about as much, 50 us a
/// step on the machine of docs/benchmarks.md.
const CHEAP: Duration = Duration::from_micros(50);

/// The thread that runs syncs handed to it, one after another, started on first use;
/// `None` if it cannot be started.
fn sync_thread() -> Option<&'static Sender<Job>> {
    static THREAD: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    THREAD
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("log-sync".into())
                .stack_size(64 * 1024)
                .spawn(move || rx.into_iter().for_each(|job| job()))
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_sync_fails_every_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let file = File::create(&path).unwrap();
        // The directory to sync with the first sync is gone: that sync fails once, and a
        // second attempt would find nothing left to do.
        let gone = dir.path().join("gone");
        let d = Durability::new(file, path.clone(), Some(gone));
        let first = d.sync().unwrap_err().to_string();
        let (tx, rx) = mpsc::channel();
        d.sync_then(move |r| tx.send(r.map_err(|e| e.to_string())).unwrap());
        assert_eq!(rx.recv().unwrap(), Err(first.clone()));
        assert_eq!(d.sync().unwrap_err().to_string(), first);
    }

    #[test]
    fn syncs_are_cheap_once_measured_so_or_from_the_start_in_memory() {
        let in_dir = |dir: &std::path::Path| {
            let path = dir.join("log");
            let file = File::create(&path).unwrap();
            (in_memory(&file), Durability::new(file, path, None))
        };
        // Where the crate is: usually a disk, where the cost is not known before a sync.
        let here = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let (memory, d) = in_dir(here.path());
        assert_eq!(d.is_cheap(), memory, "before the first sync");
        // On tmpfs a sync costs nothing, and is known to.
        let shm = std::path::Path::new("/dev/shm");
        let on_tmpfs = nix::sys::statfs::statfs(shm)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC);
        if on_tmpfs {
            let dir = tempfile::tempdir_in(shm).unwrap();
            let (memory, d) = in_dir(dir.path());
            assert!(memory);
            assert!(d.is_cheap(), "known before the first sync");
            d.sync().unwrap();
            assert!(d.is_cheap());
        }
    }

    #[test]
    fn a_deleted_log_fails_its_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let file = File::create(&path).unwrap();
        let d = Durability::new(file, path.clone(), Some(dir.path().to_path_buf()));
        d.sync().unwrap();
        std::fs::remove_file(&path).unwrap();
        let e = d.sync().unwrap_err().to_string();
        assert!(
            e.contains("was deleted while the run was writing it"),
            "{e}"
        );
    }
}
