//! What `runbook resume` goes on from: the run's log read back, the runbook checked to be
//! the one that ran, and where the run stands (a [`Seed`]): finished steps are not run
//! again, captured and asked values come back, and a step that started without a recorded
//! end is *in doubt*, for the operator to decide.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value};

use super::plan::Plan;
use crate::error::Error;
use crate::event::{Answer, Event, Phase, PromptKind, RunOptions, RunStatus, StepStatus};
use crate::log::reader;
use crate::log::run::{Run, StepRun};
use crate::runbook::template::value_of;
use crate::runbook::{OnFailure, Runbook, Step};

/// A run to resume, and the runbook it ran.
pub(crate) struct Found {
    pub run: Run,
    pub runbook: Runbook,
    pub path: PathBuf,
    /// The options it was started with (absent in older logs).
    pub options: Option<RunOptions>,
    /// Lines of the log that could not be read (1-based), skipped.
    pub skipped_lines: Vec<usize>,
}

/// Where a resumed run stands, from its log.
#[derive(Debug, Default)]
pub(crate) struct Seed {
    /// Steps whose recorded end stands, in the order they ended, with their status.
    pub done: Vec<(usize, StepStatus)>,
    /// Attempts already made per step.
    pub attempts: Vec<(usize, u32)>,
    /// Steps that start over (rolled back, or after `--from`): their earlier attempts are
    /// not retries of this execution.
    pub restarted: Vec<usize>,
    /// Steps the operator must decide on before the run goes on, in the order to ask.
    pub undecided: Vec<Undecided>,
    /// Steps with `hosts`: how each host ended, and which hosts are in doubt.
    pub fleet: Vec<super::fleet::resume::FleetSeed>,
    /// Time since the run first started.
    pub elapsed: Duration,
    /// Steps of the log the runbook no longer has, unreadable lines, and the like.
    pub warnings: Vec<String>,
}

/// A step whose end the log does not settle: it failed or was stopped, it has no recorded
/// end, or its processes still run.
#[derive(Debug, Clone)]
pub(crate) struct Undecided {
    pub step: usize,
    /// `stopped`, `in_doubt` or `running`.
    pub kind: PromptKind,
    /// What the log says happened, for the question.
    pub what: String,
    /// When it started.
    pub since: String,
    /// How long it ran, as far as the log knows (for a step then recorded as done).
    pub duration: Duration,
    /// The process group still running (`running` only).
    pub pgid: Option<u32>,
}

/// Finds run `id` in `dir`, and checks that it can be resumed with the runbook it ran.
pub(crate) fn find(dir: &std::path::Path, id: &str, force: bool) -> Result<Found, Error> {
    let path = reader::find(dir, id)?;
    let log = reader::read(&path)?;
    let run = Run::from_log(&log)
        .ok_or_else(|| Error::BadLog(reader::ReadError::NotALog { path: path.clone() }))?;
    if run.status == Some(RunStatus::Succeeded) {
        return Err(Error::Finished { run_id: run.run_id });
    }
    let options = log.records.iter().find_map(|(_, e)| match e {
        Event::RunStarted(started) => started.options.clone(),
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
        run,
        runbook,
        path,
        options,
    })
}

/// Where `run` stands in `rb`; restores the values its settled steps captured or were
/// given into `vars`. With `from`, that step and every step after it in the graph run
/// again whatever the log says (unless their processes still run).
pub(crate) fn seed(
    rb: &Runbook,
    plan: &Plan,
    run: &Run,
    from: Option<usize>,
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
    let again: Vec<usize> = from.map(|f| plan.descendants(f)).unwrap_or_default();
    let rolled_back: Vec<&str> = run
        .steps
        .iter()
        .filter(|s| s.phase == Phase::Rollback && s.status == Some(StepStatus::Succeeded))
        .map(|s| s.step.as_str())
        .collect();
    let mut settled: Vec<(chrono::DateTime<Utc>, usize, StepStatus)> = Vec::new();
    let (mut running, mut in_doubt, mut stopped) = (Vec::new(), Vec::new(), Vec::new());
    for s in run.steps.iter().filter(|s| s.phase == Phase::Run) {
        let Some(i) = rb.steps.iter().position(|r| r.id == s.step) else {
            seed.warnings.push(format!(
                "step {} of the log is no longer in the runbook; ignored",
                s.step
            ));
            continue;
        };
        let step = &rb.steps[i];
        seed.attempts.push((i, s.attempts));
        let since = s.started.map(crate::format::stamp).unwrap_or_default();
        // Whatever the log says, a step whose processes still run is never started again.
        // (A fleet step's hosts are asked about one by one; its ssh sessions are its own.)
        if s.status.is_none()
            && step.fleet.is_none()
            && let Some(pgid) = still_running(run, s)
        {
            running.push(Undecided {
                step: i,
                kind: PromptKind::Running,
                what: format!("its process group {pgid} (started {since}) has not ended"),
                since,
                duration: Duration::ZERO,
                pgid: Some(pgid),
            });
            continue;
        }
        if again.contains(&i) {
            seed.restarted.push(i);
            continue;
        }
        if rolled_back.contains(&s.step.as_str()) {
            seed.restarted.push(i);
            seed.warnings.push(format!(
                "step {} was rolled back after the run failed: it runs again",
                s.step
            ));
            continue;
        }
        match s.status {
            Some(status) if settles(step, s, status) => {
                settled.push((s.finished.unwrap_or(run.started), i, status));
                if let (Some(var), Some(v)) = (&step.capture, &s.response.captured) {
                    vars.insert(var.clone(), value_of(v));
                }
                if let (Some(var), Some(v)) = (&step.ask, &s.response.value) {
                    vars.insert(var.clone(), value_of(v));
                }
            }
            Some(status) => stopped.push(Undecided {
                step: i,
                kind: PromptKind::Stopped,
                what: how_it_stopped(s, status),
                since,
                duration: Duration::from_millis(s.duration_ms.unwrap_or(0)),
                pgid: None,
            }),
            None if s.started.is_some() => {
                let last_sign = s
                    .started
                    .map_or(chrono::TimeDelta::zero(), |t| run.last_record - t);
                in_doubt.push(Undecided {
                    step: i,
                    kind: PromptKind::InDoubt,
                    what: String::new(),
                    since,
                    duration: last_sign.to_std().unwrap_or_default(),
                    pgid: None,
                })
            }
            None => {}
        }
    }
    settled.sort_by_key(|(t, _, _)| *t);
    seed.done = settled.into_iter().map(|(_, i, st)| (i, st)).collect();
    seed.undecided = running;
    seed.undecided.append(&mut in_doubt);
    seed.undecided.append(&mut stopped);
    seed.fleet = super::fleet::resume::seed(rb, run, vars);
    seed
}

/// Whether a recorded end stands on resume: successes and skips do, and so do failures the
/// run went on from (`on_failure = "continue"`, or skipped at the failure prompt). A
/// failure that stopped the run, a timeout and an abort are put to the operator again.
fn settles(step: &Step, s: &StepRun, status: StepStatus) -> bool {
    match status {
        StepStatus::Succeeded | StepStatus::Skipped | StepStatus::DryRun => true,
        StepStatus::Failed | StepStatus::TimedOut | StepStatus::Unreachable => {
            step.on_failure == OnFailure::Continue || s.response.answer == Some(Answer::Skip)
        }
        StepStatus::Aborted => false,
    }
}

/// "failed with exit code 3 at 03:12:45 UTC (by alice); its last output: ..."
fn how_it_stopped(s: &StepRun, status: StepStatus) -> String {
    let mut what = match (status, s.exit_code) {
        (StepStatus::Failed, Some(c)) => format!("failed with exit code {c}"),
        (StepStatus::TimedOut, _) => "timed out".to_string(),
        (StepStatus::Aborted, _) => "was aborted".to_string(),
        _ => crate::format::step_status(Some(status)).to_string(),
    };
    if let Some(at) = s.finished {
        what.push_str(&format!(" at {}", crate::format::stamp(at)));
    }
    if let Some(r) = &s.reason {
        what.push_str(&format!(" ({r})"));
    }
    if !s.output_tail.is_empty() {
        what.push_str("; its last output:");
        for line in &s.output_tail {
            what.push_str(&format!("\n      {line}"));
        }
    }
    what
}

/// The process group of step `s` if it still runs: the one its log recorded, else one
/// found by its environment (the executor died before recording it). Only on the host
/// the run ran on.
fn still_running(run: &Run, s: &StepRun) -> Option<u32> {
    if run.host != super::host_name() {
        return None;
    }
    match &s.spawned {
        Some(spawned) if spawned.attempt == s.attempts => {
            super::orphans::alive(spawned).then_some(spawned.pgid)
        }
        _ => super::orphans::find(&run.run_id, &s.step),
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
