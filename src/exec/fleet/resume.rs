//! Where each host of a fleet step stands in a run's log, for `runbook resume`: hosts that
//! ended are not run again (and their captures come back as the step's table); hosts that
//! started and have no recorded end are in doubt, each to be put to the operator, and so
//! are hosts stopped mid-command by a lost terminal (`aborted` in a step that did not end);
//! hosts never started run when the step goes on.

use serde_json::{Map, Value};

use super::{HostEnd, HostTable};
use crate::event::{Phase, StepStatus};
use crate::log::run::{Run, StepRun};
use crate::runbook::Runbook;

/// A fleet step of the log.
#[derive(Debug)]
pub(crate) struct FleetSeed {
    pub(crate) step: usize,
    pub(crate) table: HostTable,
    /// Hosts (by their place in the table) that started and have no recorded end, with
    /// when they started.
    pub(crate) in_doubt: Vec<(usize, String)>,
}

/// The fleet steps of `run` that `rb` still has as fleet steps; the tables of those that
/// succeeded with a `capture` go into `vars`.
pub(crate) fn seed(rb: &Runbook, run: &Run, vars: &mut Map<String, Value>) -> Vec<FleetSeed> {
    let mut out = Vec::new();
    for s in run
        .steps
        .iter()
        .filter(|s| s.phase == Phase::Run && s.is_fleet())
    {
        let Some(i) = rb.steps.iter().position(|r| r.id == s.step && r.is_fleet()) else {
            continue;
        };
        let seed = of_step(i, s);
        if s.status == Some(crate::event::StepStatus::Succeeded)
            && let Some(var) = &rb.steps[i].capture
        {
            vars.insert(var.clone(), Value::Object(seed.table.captures()));
        }
        out.push(seed);
    }
    out
}

fn of_step(i: usize, s: &StepRun) -> FleetSeed {
    let mut hosts = s.planned_hosts.clone();
    for h in s.hosts.iter().filter_map(|h| h.host.as_ref()) {
        if !hosts.contains(h) {
            hosts.push(h.clone());
        }
    }
    let mut table = HostTable::new(hosts);
    let mut in_doubt = Vec::new();
    // The step itself has no end: the run stopped while it ran (a crash, a lost terminal).
    let in_flight = s.status.is_none();
    for h in &s.hosts {
        let Some(at) = h
            .host
            .as_ref()
            .and_then(|n| table.hosts.iter().position(|x| x == n))
        else {
            continue;
        };
        match (h.status, h.started) {
            // Killed mid-command when the terminal went away: it may or may not have run.
            (Some(StepStatus::Aborted), Some(started)) if in_flight => {
                in_doubt.push((at, crate::format::stamp(started)));
            }
            (Some(status), _) => {
                table.run[at] = Some(HostEnd {
                    status,
                    exit_code: h.exit_code,
                    attempts: h.attempts,
                    capture: h.response.captured.clone(),
                    reason: h.reason.clone(),
                });
            }
            (None, Some(started)) => in_doubt.push((at, crate::format::stamp(started))),
            (None, None) => {}
        }
    }
    FleetSeed {
        step: i,
        table,
        in_doubt,
    }
}
