//! `runbook exec` and `runbook resume`: everything between a validated runbook and a
//! finished, logged run. [`prepare`] turns flags (and, to resume, the log) into a run ready
//! to start; [`start`] takes the lock, opens the log and drives the [`executor`], whose
//! events reach the log and the display through [`emit`]. Nothing here prints: the
//! display is a sink given from outside, and so is the prompter.

pub(crate) mod ask;
mod detected_at;
pub(crate) mod emit;
mod executor;
mod fleet;
mod lock;
mod orphans;
mod plan;
pub(crate) mod prepare;
mod process;
mod resume;
mod schedule;
pub(crate) mod secrets;
mod signals;
mod spawn;
mod start_at;
mod task;

use crate::event as ev;
use chrono::Utc;

use crate::error::Error;
use crate::event::{Event, Level, Mode, SCHEMA_VERSION, Sink};
use crate::log::writer::LogWriter;
use ask::Prompter;
use emit::Emitter;
use executor::Executor;
pub(crate) use executor::RunOutcome;
use prepare::{LogPlace, Prepared};

/// Runs a prepared run to its end: takes the runbook's lock (a live run), opens the log,
/// records the start, and runs the steps, showing them on `display` and asking `prompter`.
pub(crate) fn start(
    prepared: Prepared,
    display: Box<dyn Sink>,
    prompter: Box<dyn Prompter>,
) -> Result<RunOutcome, Error> {
    let opts = &prepared.opts;
    let host = host_name();
    // A live run of a locked runbook holds the lock until the process ends.
    let _lock = if prepared.rb.lock && !opts.dry_run {
        let holder = lock::Holder {
            run_id: opts.run_id.clone(),
            operator: opts.operator.clone(),
            host: host.clone(),
            pid: std::process::id(),
            since: crate::event::timestamp(Utc::now()),
        };
        Some(lock::acquire(
            &prepared.log_dir,
            &prepared.rb.name,
            &holder,
        )?)
    } else {
        None
    };
    let cap = opts.run.output_cap;
    let (log, first) = match &prepared.log {
        LogPlace::New(dir) => {
            let log = LogWriter::create(dir, &opts.run_id, cap).map_err(|source| Error::Io {
                action: "create the execution log in",
                path: dir.clone(),
                source,
            })?;
            let first = run_started(&prepared, &host, &log);
            (log, first)
        }
        LogPlace::Existing { path } => {
            let log = LogWriter::append(path, cap).map_err(|source| {
                if source.kind() == std::io::ErrorKind::WouldBlock {
                    Error::Locked(format!(
                        "run {} is still executing in another runbook process (it holds {}); wait for it to end, or stop it, then resume",
                        opts.run_id,
                        path.display()
                    ))
                } else {
                    Error::Io {
                        action: "append to",
                        path: path.clone(),
                        source,
                    }
                }
            })?;
            let first = Event::RunResumed(ev::RunResumed {
                run_id: opts.run_id.clone(),
                operator: opts.operator.clone(),
                from: prepared.from.clone(),
                timeout_ms: prepared.rb.timeout.map(|t| t.as_millis() as u64),
            });
            (log, first)
        }
    };
    let emitter = Emitter::new(Box::new(log), display);
    // The run does not begin unless its start is on disk.
    emitter.emit(&first)?;
    if let Some(seed) = &prepared.seed {
        let rb = &prepared.rb;
        emitter.notice(
            Level::Info,
            None,
            format!(
                "{}: {}  ({} steps settled, {} to decide)",
                rb.name,
                rb.title,
                seed.done.len(),
                seed.undecided.len()
            ),
        );
    }
    for w in &prepared.warnings {
        emitter.notice(Level::Warning, None, w.clone());
    }
    let (executor, seed) = Executor::new(prepared, emitter, prompter);
    // One thread: steps spend their time in their own processes, and hand-offs between
    // worker threads cost more per step than everything the executor itself does.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let outcome = runtime.block_on(executor.run(seed));
    // A prompt left waiting on input (after an interrupt) must not keep the process alive.
    runtime.shutdown_background();
    Ok(outcome)
}

fn run_started(prepared: &Prepared, host: &str, log: &LogWriter) -> Event {
    let rb = &prepared.rb;
    let opts = &prepared.opts;
    Event::RunStarted(Box::new(ev::RunStarted {
        schema_version: SCHEMA_VERSION,
        run_id: opts.run_id.clone(),
        runbook: rb.name.clone(),
        runbook_path: std::fs::canonicalize(&rb.path)
            .unwrap_or_else(|_| rb.path.clone())
            .display()
            .to_string(),
        runbook_sha256: rb.sha256.clone(),
        title: rb.title.clone(),
        mode: if opts.dry_run {
            Mode::DryRun
        } else {
            Mode::Live
        },
        params: prepared.logged_params.clone(),
        operator: opts.operator.clone(),
        host: host.to_string(),
        incident: opts.incident.clone(),
        detected_at: opts.detected_at.map(crate::event::timestamp),
        version: env!("CARGO_PKG_VERSION").into(),
        log_path: log.path().display().to_string(),
        options: Some(opts.run.clone()),
        alert: prepared.alert.clone().map(Box::new),
        diagnostic: opts.diagnose,
        service: rb.service.clone().or_else(|| {
            let alert = prepared.alert.as_ref()?;
            alert.labels.get("service").cloned()
        }),
        steps: rb.order.iter().map(|&i| rb.steps[i].id.clone()).collect(),
        timeout_ms: rb.timeout.map(|t| t.as_millis() as u64),
    }))
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}
