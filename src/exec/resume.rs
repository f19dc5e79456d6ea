//! What `runbook resume` goes on from: the run's log read back, the runbook checked to be
//! the one that ran, and where the run stands (a [`Seed`]): finished steps are not run
//! again, captured and asked values come back, and a step that started without a recorded
//! end is *in doubt*, for the operator to decide.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::event::{Event, Phase, RunOptions, StepStatus};
use crate::log::reader;
use crate::log::run::Run;
use crate::runbook::Runbook;
use crate::runbook::template::value_of;

/// A run to resume, and the runbook it ran.
pub(crate) struct Found {
    pub run: Run,
    pub runbook: Runbook,
    pub path: PathBuf,
    /// The log's last line was cut short by a crash.
    pub torn: bool,
    /// The options it was started with (absent in older logs).
    pub options: Option<RunOptions>,
    /// Lines of the log that could not be read (1-based), skipped.
    pub skipped_lines: Vec<usize>,
}

/// Where a resumed run stands, from its log.
#[derive(Debug, Default)]
pub(crate) struct Seed {
    /// Steps recorded as finished, in the order they finished, with their status.
    pub done: Vec<(usize, StepStatus)>,
    /// Attempts already made per step.
    pub attempts: Vec<(usize, u32)>,
    /// Steps that started and have no finish line, with when they started.
    pub in_doubt: Vec<(usize, String)>,
    /// Steps with `hosts`: how each host ended, and which hosts are in doubt.
    pub fleet: Vec<super::fleet::resume::FleetSeed>,
    /// Time since the run first started.
    pub elapsed: Duration,
    /// Steps of the log the runbook no longer has, and the like.
    pub warnings: Vec<String>,
}

/// Finds run `id` in `dir`, and checks that it can be resumed with the runbook it ran.
pub(crate) fn find(dir: &std::path::Path, id: &str, force: bool) -> Result<Found, Error> {
    let path = reader::find(dir, id)?;
    let log = reader::read(&path)?;
    let run = Run::from_log(&log)
        .ok_or_else(|| Error::BadLog(reader::ReadError::NotALog { path: path.clone() }))?;
    if let Some(status) = run.status {
        return Err(Error::Finished {
            run_id: run.run_id,
            status: status.as_str(),
        });
    }
    let options = log.records.iter().find_map(|(_, e)| match e {
        Event::RunStarted { options, .. } => options.clone(),
        _ => None,
    });
    let runbook = crate::runbook::load(std::path::Path::new(&run.runbook_path), &run.runbook)?;
    if runbook.sha256 != run.runbook_sha256 && !force {
        return Err(Error::RunbookChanged {
            path: run.runbook_path,
            run_id: run.run_id,
            then: short(&run.runbook_sha256).to_string(),
            now: short(&runbook.sha256).to_string(),
        });
    }
    Ok(Found {
        skipped_lines: log.skipped_lines,
        torn: log.torn,
        run,
        runbook,
        path,
        options,
    })
}

/// Where `run` stands in `rb`; restores the values its finished steps captured or were
/// given into `vars`.
pub(crate) fn seed(
    rb: &Runbook,
    run: &Run,
    skipped_lines: &[usize],
    vars: &mut Map<String, Value>,
) -> Seed {
    let mut seed = Seed {
        elapsed: (Utc::now() - run.started).to_std().unwrap_or_default(),
        ..Seed::default()
    };
    if !skipped_lines.is_empty() {
        let lines: Vec<String> = skipped_lines.iter().map(|n| n.to_string()).collect();
        seed.warnings.push(format!(
            "lines {} of the log could not be read and were skipped: what they recorded is not known",
            lines.join(", ")
        ));
    }
    let mut finished: Vec<(chrono::DateTime<Utc>, usize, StepStatus)> = Vec::new();
    for s in run.steps.iter().filter(|s| s.phase == Phase::Run) {
        let Some(i) = rb.steps.iter().position(|r| r.id == s.step) else {
            seed.warnings.push(format!(
                "step {} of the log is no longer in the runbook; ignored",
                s.step
            ));
            continue;
        };
        seed.attempts.push((i, s.attempts));
        match (s.status, s.started) {
            (Some(status), _) => {
                finished.push((s.finished.unwrap_or(run.started), i, status));
                if status == StepStatus::Succeeded {
                    let step = &rb.steps[i];
                    if let (Some(var), Some(v)) = (&step.capture, &s.response.captured) {
                        vars.insert(var.clone(), value_of(v));
                    }
                    if let (Some(var), Some(v)) = (&step.ask, &s.response.value) {
                        vars.insert(var.clone(), value_of(v));
                    }
                }
            }
            (None, Some(started)) => seed.in_doubt.push((i, crate::format::stamp(started))),
            (None, None) => {}
        }
    }
    finished.sort_by_key(|(t, _, _)| *t);
    seed.done = finished.into_iter().map(|(_, i, st)| (i, st)).collect();
    seed.fleet = super::fleet::resume::seed(rb, run, vars);
    seed
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
