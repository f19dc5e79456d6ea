//! One pass over a fleet step's hosts: the batch scheduler. Hosts start in order, at most
//! the batch at a time and within the run's bound on ssh sessions; the starts of hosts that
//! go together are written to the log with one sync, before any of them is spawned. Each
//! host's end is recorded in the step's [`super::HostTable`] and as its `step_finished`;
//! past `max_failed`, or on an interrupt, no new host starts and the running ones finish.

use crate::event as ev;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::task::JoinSet;

use super::host::{self, Context};
use super::policy::{Rollout, verdict};
use super::ssh::Ssh;
use super::{HostEnd, HostJob, Pass, lock};
use crate::event::{Event, Kind, Phase, Response, StepStatus};
use crate::exec::emit::Emitter;
use crate::exec::process::Cancel;
use crate::exec::secrets::Masker;
use crate::exec::task::TaskResult;

/// Runs the pass; its result is the step's (or its rollback's) end.
pub(crate) async fn run(
    pass: Pass,
    ssh: Option<Arc<Ssh>>,
    emitter: Emitter,
    masker: Arc<Masker>,
    mut cancel: watch::Receiver<Cancel>,
) -> TaskResult {
    let Pass {
        step,
        phase,
        jobs,
        dry,
        attempts,
        at_once,
        allowed,
        max_failed,
        mut prelude,
        started,
        table,
    } = pass;
    let mut interrupted = false;
    match ssh {
        Some(ssh) if !dry => {
            let mut rollout = Rollout::new(jobs.len(), at_once, allowed);
            let mut running: JoinSet<HostEnd> = JoinSet::new();
            let mut ids = HashMap::new();
            let mut cancel_open = true;
            loop {
                if *cancel.borrow() != Cancel::None {
                    interrupted = true;
                    rollout.stop();
                }
                let permits = take_permits(&ssh, rollout.room());
                let batch = rollout.start(permits.len());
                let mut events = std::mem::take(&mut prelude);
                events.extend(
                    jobs[batch.clone()]
                        .iter()
                        .map(|j| host::started(&step, phase, j, j.first_attempt)),
                );
                let logged = emitter.emit_all(&events);
                for (at, permit) in batch.zip(permits) {
                    let job = jobs[at].clone();
                    if let Err(e) = &logged {
                        // Its start is not on disk: it must not run.
                        let end = HostEnd::because(StepStatus::Failed, format!("not started: {e}"));
                        let id = running.spawn(async move { end }).id();
                        ids.insert(id, (at, Instant::now()));
                        continue;
                    }
                    let id = running
                        .spawn(host_task(
                            step.clone(),
                            phase,
                            attempts,
                            Arc::clone(&ssh),
                            emitter.clone(),
                            Arc::clone(&masker),
                            job,
                            cancel.clone(),
                            permit,
                        ))
                        .id();
                    ids.insert(id, (at, Instant::now()));
                }
                if rollout.done() {
                    break;
                }
                let waiting_for_session = rollout.room() > 0;
                tokio::select! {
                    Some(joined) = running.join_next_with_id() => {
                        let (id, end) = match joined {
                            Ok((id, end)) => (id, end),
                            Err(e) => (e.id(), HostEnd::because(
                                StepStatus::Failed,
                                "internal error in runbook while running this host (a bug: please report it)",
                            )),
                        };
                        if let Some((at, since)) = ids.remove(&id) {
                            rollout.ended(at, end.status);
                            record(&emitter, &masker, &table, &step, phase, &jobs[at], end, since);
                        }
                    }
                    permit = Arc::clone(&ssh.sessions).acquire_owned(), if waiting_for_session => {
                        // A session is free: go round and take it with the others.
                        drop(permit);
                    }
                    changed = cancel.changed(), if cancel_open => {
                        cancel_open = changed.is_ok();
                    }
                }
            }
            // An interrupt that came as the last hosts ended still ends the step so.
            interrupted |= *cancel.borrow() != Cancel::None;
        }
        _ => {
            // A rehearsal (or nothing to run): each host's command is shown and recorded.
            let mut events = std::mem::take(&mut prelude);
            for j in &jobs {
                events.push(host::started(&step, phase, j, j.first_attempt));
            }
            let _ = emitter.emit_all(&events);
            for job in &jobs {
                let end = HostEnd {
                    status: StepStatus::DryRun,
                    exit_code: None,
                    attempts: 1,
                    capture: None,
                    reason: None,
                };
                record(
                    &emitter,
                    &masker,
                    &table,
                    &step,
                    phase,
                    job,
                    end,
                    Instant::now(),
                );
            }
        }
    }
    if !prelude.is_empty() {
        let _ = emitter.emit_all(&prelude);
    }
    let mut t = lock(&table);
    let ends = t.phase(phase);
    let hosts: Vec<(&str, Option<StepStatus>, Option<String>)> = t
        .hosts
        .iter()
        .zip(ends)
        .map(|(h, e)| {
            (
                h.as_str(),
                e.as_ref().map(|e| e.status),
                e.as_ref().map(HostEnd::short),
            )
        })
        .collect();
    let named: Vec<(&str, Option<StepStatus>, Option<&str>)> = hosts
        .iter()
        .map(|(h, s, w)| (*h, *s, w.as_deref()))
        .collect();
    // A rollback goes to every host: no threshold.
    let threshold = allowed.map(|_| max_failed);
    let v = verdict(&named, allowed.unwrap_or(0), interrupted, threshold);
    t.counts[phase as usize] = Some(v.counts);
    TaskResult {
        status: v.status,
        exit_code: None,
        attempts: 1,
        duration: started.elapsed(),
        capture: None,
        reason: v.reason,
    }
}

/// As many session permits as are free, up to `n`.
fn take_permits(ssh: &Ssh, n: usize) -> Vec<OwnedSemaphorePermit> {
    (0..n)
        .map_while(|_| Arc::clone(&ssh.sessions).try_acquire_owned().ok())
        .collect()
}

/// One host's attempts, as a task of its own, holding a session permit throughout.
#[allow(clippy::too_many_arguments)]
async fn host_task(
    step: String,
    phase: Phase,
    attempts: super::Attempts,
    ssh: Arc<Ssh>,
    emitter: Emitter,
    masker: Arc<Masker>,
    job: HostJob,
    cancel: watch::Receiver<Cancel>,
    _permit: OwnedSemaphorePermit,
) -> HostEnd {
    let cx = Context {
        step: &step,
        phase,
        attempts,
        ssh: &ssh,
        emitter: &emitter,
        masker: &masker,
    };
    host::run(&cx, &job, cancel).await
}

/// Keeps a host's end in the table and records it as the host's `step_finished`.
#[allow(clippy::too_many_arguments)]
fn record(
    emitter: &Emitter,
    masker: &Masker,
    table: &super::SharedTable,
    step: &str,
    phase: Phase,
    job: &HostJob,
    mut end: HostEnd,
    started: Instant,
) {
    // The host's attempts over every pass, as the log counts a step's.
    end.attempts += job.first_attempt - 1;
    let event = Event::StepFinished(ev::StepFinished {
        step: step.to_string(),
        kind: Kind::Auto,
        status: end.status,
        duration_ms: started.elapsed().as_millis() as u64,
        attempts: end.attempts,
        exit_code: end.exit_code,
        phase,
        response: Response {
            captured: end.capture.as_ref().map(|c| masker.mask(c).into_owned()),
            ..Response::default()
        },
        reason: end.reason.clone(),
        host: Some(job.host.clone()),
        host_counts: None,
    });
    if let Some(slot) = lock(table).phase_mut(phase).get_mut(job.index) {
        *slot = Some(end);
    }
    let _ = emitter.emit(&event);
}
