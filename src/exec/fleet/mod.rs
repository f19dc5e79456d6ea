//! Fleet steps: a step with `hosts` runs its command on each host through the system's
//! `ssh`, in rolling batches, with a failure threshold, and reports each host's start, output
//! and end as events that carry the `host`, then the step's own end with its hosts by status.
//!
//! - [`policy`]: the decisions (batch, threshold, which hosts a pass runs, the verdict), as
//!   plain functions;
//! - [`ssh`]: the command lines, the shared connections of the run, the remote word;
//! - [`attempt`]: one `ssh` session, and ending its remote command on timeout or interrupt;
//! - [`host`]: one host's attempts (retries) and output;
//! - [`run`]: one pass over a step's hosts, the batch scheduler;
//! - [`resume`]: where each host of a step stands, read back from the log.
//!
//! The executor renders each host's command (with `{{host}}` set) and hands a [`Pass`] to
//! [`run::run`]; how each host ended is kept in the step's [`HostTable`], which a retry,
//! a rollback and `resume` go on from.

mod attempt;
mod host;
pub(crate) mod policy;
pub(crate) mod resume;
pub(crate) mod run;
pub(crate) mod ssh;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::event::{Event, HostCounts, Phase, StepStatus};
use crate::runbook::Share;

/// Most of one host's stdout kept for a `capture`: a table of hosts has many entries.
const CAPTURE_LIMIT: usize = 64 * 1024;

/// How one host's run of a step (or of its rollback) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostEnd {
    pub(crate) status: StepStatus,
    pub(crate) exit_code: Option<i32>,
    /// Attempts on this host so far, over every pass (in a pass: that pass's).
    pub(crate) attempts: u32,
    /// Trimmed stdout, for a `capture` (succeeded hosts only).
    pub(crate) capture: Option<String>,
    pub(crate) reason: Option<String>,
}

impl HostEnd {
    pub(crate) fn because(status: StepStatus, reason: impl Into<String>) -> Self {
        HostEnd {
            status,
            exit_code: None,
            attempts: 0,
            capture: None,
            reason: Some(reason.into()),
        }
    }

    /// A few words on a failure, for the step's reason: `exit code 3`, `unreachable`.
    pub(crate) fn short(&self) -> String {
        match (self.status, self.exit_code) {
            (StepStatus::Failed, Some(c)) => format!("exit code {c}"),
            (s, _) => s.as_str().replace('_', " "),
        }
    }
}

/// How each host of one fleet step ended, in each phase: what a retry, a rollback and
/// `resume` go on from. Shared by the executor and the pass that runs the step.
#[derive(Debug, Default)]
pub(crate) struct HostTable {
    /// The step's hosts, in order (rendered from `hosts` when the step first started).
    pub(crate) hosts: Vec<String>,
    pub(crate) run: Vec<Option<HostEnd>>,
    pub(crate) rollback: Vec<Option<HostEnd>>,
    /// The counts of each phase's last verdict, for the step's `step_finished`.
    pub(crate) counts: [Option<HostCounts>; 2],
}

impl HostTable {
    pub(crate) fn new(hosts: Vec<String>) -> Self {
        let n = hosts.len();
        HostTable {
            hosts,
            run: vec![None; n],
            rollback: vec![None; n],
            counts: [None, None],
        }
    }

    pub(crate) fn phase(&self, phase: Phase) -> &[Option<HostEnd>] {
        match phase {
            Phase::Run => &self.run,
            Phase::Rollback => &self.rollback,
        }
    }

    pub(crate) fn phase_mut(&mut self, phase: Phase) -> &mut Vec<Option<HostEnd>> {
        match phase {
            Phase::Run => &mut self.run,
            Phase::Rollback => &mut self.rollback,
        }
    }

    pub(crate) fn statuses(&self, phase: Phase) -> Vec<Option<StepStatus>> {
        self.phase(phase)
            .iter()
            .map(|e| e.as_ref().map(|e| e.status))
            .collect()
    }

    /// The table of a `capture`: host -> trimmed stdout, for the hosts that succeeded.
    pub(crate) fn captures(&self) -> serde_json::Map<String, serde_json::Value> {
        self.hosts
            .iter()
            .zip(&self.run)
            .filter_map(|(h, e)| {
                let e = e.as_ref().filter(|e| e.status == StepStatus::Succeeded)?;
                let v = crate::runbook::template::value_of(e.capture.as_deref()?);
                Some((h.clone(), v))
            })
            .collect()
    }
}

/// A host table shared by the executor and a running pass.
pub(crate) type SharedTable = Arc<Mutex<HostTable>>;

pub(crate) fn lock(table: &SharedTable) -> std::sync::MutexGuard<'_, HostTable> {
    // A panic while holding the lock must not lose the hosts' results.
    table.lock().unwrap_or_else(|p| p.into_inner())
}

/// One host's work in a pass, rendered before the pass starts.
#[derive(Debug, Clone)]
pub(crate) struct HostJob {
    /// The host's place in the step's host list.
    pub(crate) index: usize,
    pub(crate) host: String,
    /// The rendered command, secrets masked: what the log and the display show.
    pub(crate) command: String,
    /// The one word `ssh` sends (see [`ssh::remote_command`]).
    pub(crate) remote: String,
    /// Number of this host's first attempt in the pass.
    pub(crate) first_attempt: u32,
}

/// How each host's attempts go, the same for every host of a pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempts {
    pub(crate) timeout: Option<Duration>,
    pub(crate) retries: u32,
    pub(crate) retry_delay: Duration,
    pub(crate) retry_backoff: f64,
    /// Whether stdout is kept for a `capture`.
    pub(crate) capture: bool,
}

/// One pass over some hosts of a fleet step: the first, a retry of the failed hosts, or a
/// rollback on the succeeded ones.
pub(crate) struct Pass {
    pub(crate) step: String,
    pub(crate) phase: Phase,
    pub(crate) jobs: Vec<HostJob>,
    /// A rehearsal of a step that changes things: each host's command shown, none run.
    pub(crate) dry: bool,
    pub(crate) attempts: Attempts,
    pub(crate) at_once: usize,
    /// Failures tolerated before no new host starts (`None`: a rollback goes to every host).
    pub(crate) allowed: Option<usize>,
    pub(crate) max_failed: Share,
    /// Records to write with the first hosts' starts (the step's own start, hosts that
    /// ended before the pass: a false `when`, a command that cannot be rendered).
    pub(crate) prelude: Vec<Event>,
    pub(crate) started: Instant,
    pub(crate) table: SharedTable,
}
