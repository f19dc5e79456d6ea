//! Where a run stands, and the decisions over it as plain functions of that state: which
//! steps may start, what a finished step releases, when the run stops and how it ends,
//! what a failure leads to, and what is left to roll back. No processes, no I/O.

use std::collections::BTreeSet;

use crate::event::{RunStatus, StepStatus};
use crate::runbook::OnFailure;

use super::plan::Plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepState {
    /// Not started; may be ready.
    Pending,
    /// Waiting on a person (a prompt is queued or on screen).
    Queued,
    Running,
    Done(StepStatus),
}

#[derive(Debug)]
pub(crate) struct Schedule {
    dependents: Vec<Vec<usize>>,
    state: Vec<StepState>,
    /// Unfinished dependencies per step.
    waiting: Vec<usize>,
    /// Steps whose dependencies are all done, in file order.
    ready: BTreeSet<usize>,
    /// Automated steps running now.
    running: usize,
    /// Succeeded steps, in the order they succeeded (for rollback, newest last).
    succeeded: Vec<usize>,
    /// Set when no new step may start: how the run ends, and why.
    stop: Option<(RunStatus, String)>,
}

impl Schedule {
    pub(crate) fn new(plan: &Plan) -> Self {
        let n = plan.len();
        let waiting: Vec<usize> = (0..n).map(|i| plan.needs(i).len()).collect();
        Schedule {
            dependents: (0..n).map(|i| plan.dependents(i).to_vec()).collect(),
            ready: (0..n).filter(|&i| waiting[i] == 0).collect(),
            state: vec![StepState::Pending; n],
            waiting,
            running: 0,
            succeeded: Vec::new(),
            stop: None,
        }
    }

    pub(crate) fn state(&self, i: usize) -> StepState {
        self.state[i]
    }

    /// Steps that may start now (dependencies done, not started), in file order.
    pub(crate) fn ready(&self) -> Vec<usize> {
        self.ready
            .iter()
            .copied()
            .filter(|&i| self.state[i] == StepState::Pending)
            .collect()
    }

    /// Whether another automated step may start with `parallel` at most at once.
    pub(crate) fn has_room(&self, parallel: usize) -> bool {
        self.running < parallel
    }

    pub(crate) fn running(&self) -> usize {
        self.running
    }

    /// The step now waits on a person.
    pub(crate) fn queue(&mut self, i: usize) {
        self.ready.remove(&i);
        self.state[i] = StepState::Queued;
    }

    /// The step may start again (a confirmed step, a retry chosen on resume, a prompt
    /// taken back): pending, and ready when its dependencies are done.
    pub(crate) fn requeue(&mut self, i: usize) {
        self.state[i] = StepState::Pending;
        if self.waiting[i] == 0 {
            self.ready.insert(i);
        }
    }

    pub(crate) fn start(&mut self, i: usize) {
        self.ready.remove(&i);
        self.state[i] = StepState::Running;
        self.running += 1;
    }

    /// An automated step's task ended (its step may still wait on a person).
    pub(crate) fn task_ended(&mut self) {
        self.running = self.running.saturating_sub(1);
    }

    /// Marks a step as ended and makes the steps waiting only for it ready. Whether they
    /// then start is for the run to say: once it is stopping, nothing new starts.
    pub(crate) fn finish(&mut self, i: usize, status: StepStatus) {
        self.ready.remove(&i);
        if status == StepStatus::Succeeded {
            self.succeeded.push(i);
        }
        self.state[i] = StepState::Done(status);
        for &d in &self.dependents[i] {
            self.waiting[d] = self.waiting[d].saturating_sub(1);
            if self.waiting[d] == 0 {
                self.ready.insert(d);
            }
        }
    }

    /// No new step starts from now on; the first reason given is the one that stands.
    pub(crate) fn stop(&mut self, status: RunStatus, reason: String) {
        if self.stop.is_none() {
            self.stop = Some((status, reason));
        }
    }

    /// Stops for `status` even if the run was already stopping for another reason (an
    /// interrupt overrides a failure still being wound down).
    pub(crate) fn stop_now(&mut self, status: RunStatus, reason: String) {
        self.stop = Some((status, reason));
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.is_some()
    }

    /// How the run ends: the reason it stopped, else success if every step ended, else
    /// failure (steps that could not run because what they need failed).
    pub(crate) fn end(&self) -> (RunStatus, Option<String>) {
        if let Some((status, reason)) = &self.stop {
            return (*status, Some(reason.clone()));
        }
        let unfinished = self
            .state
            .iter()
            .any(|s| matches!(s, StepState::Pending | StepState::Queued));
        if unfinished {
            (RunStatus::Failed, Some("some steps could not run".into()))
        } else {
            (RunStatus::Succeeded, None)
        }
    }

    /// Succeeded steps with a rollback, newest first: what a failed run offers to undo.
    pub(crate) fn to_roll_back(&self, has_rollback: impl Fn(usize) -> bool) -> Vec<usize> {
        self.succeeded
            .iter()
            .rev()
            .copied()
            .filter(|&i| has_rollback(i))
            .collect()
    }
}

/// What follows an automated step that failed or timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterFailure {
    /// Ask the operator: retry, skip or abort.
    Ask,
    /// Record it and go on; dependents run.
    Continue,
    /// Record it; no new step starts and the run fails.
    Stop,
}

/// A rehearsal goes on past a failing read-only check (the systems may not be reachable
/// from where the drill runs); a run that is already stopping asks no one.
pub(crate) fn after_failure(on_failure: OnFailure, dry_run: bool, stopping: bool) -> AfterFailure {
    match (on_failure, dry_run) {
        (_, true) | (OnFailure::Continue, _) => AfterFailure::Continue,
        (OnFailure::Prompt, false) if !stopping => AfterFailure::Ask,
        _ => AfterFailure::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// a -> b -> d, a -> c -> d
    fn diamond() -> Schedule {
        Schedule::new(&Plan::from_needs(vec![
            vec![],
            vec![0],
            vec![0],
            vec![1, 2],
        ]))
    }

    #[test]
    fn steps_become_ready_when_everything_they_need_is_done() {
        let mut s = diamond();
        assert_eq!(s.ready(), [0]);
        s.start(0);
        assert!(s.ready().is_empty());
        s.task_ended();
        s.finish(0, StepStatus::Succeeded);
        assert_eq!(s.ready(), [1, 2]);
        s.finish(1, StepStatus::Skipped);
        assert_eq!(s.ready(), [2]);
        s.finish(2, StepStatus::Failed);
        assert_eq!(
            s.ready(),
            [3],
            "a failure releases dependents; stopping is separate"
        );
    }

    #[test]
    fn the_run_ends_as_its_first_stop_says_unless_an_interrupt_overrides() {
        let mut s = diamond();
        s.stop(RunStatus::Failed, "step a failed".into());
        s.stop(RunStatus::Aborted, "later".into());
        assert_eq!(s.end(), (RunStatus::Failed, Some("step a failed".into())));
        s.stop_now(RunStatus::Interrupted, "interrupted by SIGINT".into());
        assert_eq!(s.end().0, RunStatus::Interrupted);
    }

    #[test]
    fn a_run_with_steps_that_never_ran_fails() {
        let mut s = diamond();
        s.finish(0, StepStatus::Succeeded);
        assert_eq!(s.end().0, RunStatus::Failed);
        for i in 1..4 {
            s.finish(i, StepStatus::Succeeded);
        }
        assert_eq!(s.end(), (RunStatus::Succeeded, None));
    }

    #[test]
    fn rollbacks_are_offered_newest_first_for_steps_that_have_one() {
        let mut s = diamond();
        s.finish(0, StepStatus::Succeeded);
        s.finish(2, StepStatus::Succeeded);
        s.finish(1, StepStatus::Succeeded);
        s.finish(3, StepStatus::Failed);
        assert_eq!(s.to_roll_back(|i| i != 2), [1, 0]);
    }

    #[test]
    fn a_failure_asks_only_when_someone_can_answer_and_the_run_goes_on() {
        use AfterFailure::*;
        assert_eq!(after_failure(OnFailure::Prompt, false, false), Ask);
        assert_eq!(after_failure(OnFailure::Prompt, false, true), Stop);
        assert_eq!(after_failure(OnFailure::Abort, false, false), Stop);
        assert_eq!(after_failure(OnFailure::Continue, false, false), Continue);
        assert_eq!(after_failure(OnFailure::Abort, true, false), Continue);
    }
}
