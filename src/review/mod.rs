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
use crate::log::run::Run;

/// Reads every run in `dir` (oldest first), warning on stderr about logs it cannot read.
///
/// Reading and parsing is the whole cost of `log list` and `stats` over a long history, so
/// the files are shared out, in order, among a few threads (one per core, at most four).
fn load_all(dir: &Path) -> Result<Vec<Run>, Error> {
    let paths = reader::all(dir)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let chunk = paths.len().div_ceil(threads).max(64);
    let parts: Vec<Vec<Result<Run, String>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|p| load_path(p)).collect()))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
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

/// One run of many: without its steps' output, which no figure over runs needs.
fn load_path(path: &Path) -> Result<Run, String> {
    let log = reader::read_with(path, reader::Detail::NoOutput).map_err(|e| e.to_string())?;
    Run::from_log(&log).ok_or_else(|| format!("{} has no run_started record", path.display()))
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
