//! After the incident: the commands that read runs back from their logs.
//!
//! `log list`, `log show`, `report` and `stats` each load `Run`s (the model in
//! `crate::log::run`) through `load_all` or `load_one`, which warn about what they skip.

mod hosts;
pub(crate) mod log_cmd;
pub(crate) mod report;
pub(crate) mod stats;

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::format::{Shown, visible};
use crate::log::reader;
use crate::log::run::{Fold, Run};

/// Reads every run in `dir` (oldest first), warning on stderr about logs it cannot read.
///
/// Reading and parsing is the whole cost of `log list` and `stats` over a long history, so
/// the files are shared out, in order, among a few threads (one per core, at most four).
fn load_all(dir: &Path) -> Result<Vec<Run>, Error> {
    let paths = reader::all(dir)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let chunk = paths.len().div_ceil(threads).max(64);
    // One buffer per thread, reused for every file it reads.
    let load = |part: &[PathBuf]| -> Vec<Result<Run, String>> {
        let mut buf = Vec::new();
        part.iter().map(|p| load_path(p, &mut buf)).collect()
    };
    let mut chunks = paths.chunks(chunk);
    let first = chunks.next().unwrap_or_default();
    let parts: Vec<Vec<Result<Run, String>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = chunks.map(|part| scope.spawn(move || load(part))).collect();
        // This thread reads the first share itself rather than wait idle.
        let mut parts = vec![load(first)];
        for w in workers {
            parts.push(
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        parts
    });
    let mut runs = Vec::with_capacity(paths.len());
    for result in parts.into_iter().flatten() {
        match result {
            Ok(run) => runs.push(run),
            Err(warning) => eprintln!("warning: {}; skipped", visible(&warning, Shown::Text)),
        }
    }
    Ok(runs)
}

/// One run of many, without its steps' output (which no figure over runs needs), its
/// records folded into the run as they are read.
fn load_path(path: &Path, buf: &mut Vec<u8>) -> Result<Run, String> {
    reader::read_into(path, buf).map_err(|e| e.to_string())?;
    let mut fold = Fold::default();
    let ends = reader::each_record(path, buf, reader::Detail::NoOutput, |ts, event| {
        fold.push(ts, event);
    })
    .map_err(|e| e.to_string())?;
    let run = fold
        .finish(ends.torn)
        .ok_or_else(|| format!("{} has no run_started record", path.display()))?;
    Ok(run)
}

/// Reads one run by id (or `latest`).
fn load_one(dir: &Path, id: &str) -> Result<Run, Error> {
    let path: PathBuf = reader::find(dir, id)?;
    let log = reader::read(&path)?;
    if log.torn {
        eprintln!(
            "warning: the last line of {} was cut short (a crash while writing); it is ignored",
            path.display()
        );
    }
    if let [line] = log.skipped_lines[..] {
        eprintln!(
            "warning: line {line} of {} could not be read; it is ignored",
            path.display()
        );
    } else if !log.skipped_lines.is_empty() {
        let lines: Vec<String> = log.skipped_lines.iter().map(usize::to_string).collect();
        eprintln!(
            "warning: lines {} of {} could not be read; they are ignored",
            lines.join(", "),
            path.display()
        );
    }
    Run::from_log(&log).ok_or(Error::BadLog(reader::ReadError::NotALog { path }))
}
