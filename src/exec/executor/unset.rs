//! A value a step would have provided (its `capture` or `ask`) is missing because the step
//! was skipped, failed and was passed over, or was recorded done without it: the steps
//! that use the value are named at that moment, with what will happen to them.

use super::Executor;
use crate::event::{Level, StepStatus};
use crate::exec::schedule::StepState;
use crate::runbook::{Action, OnFailure, Step, template};

impl Executor {
    /// The steps not started yet whose templates read `var`, in file order.
    pub(super) fn waiting_users(&self, var: &str) -> Vec<usize> {
        (0..self.rb.steps.len())
            .filter(|&j| {
                matches!(
                    self.schedule.state(j),
                    StepState::Pending | StepState::Queued
                )
            })
            .filter(|&j| reads(&self.rb.steps[j], var))
            .collect()
    }

    /// After step `i` ended with `status` (`skipped_by_answer` when a person skipped it
    /// past its failure): if the run goes on without the value it would have provided,
    /// says which steps need it and what will become of them.
    pub(super) fn check_provided(&mut self, i: usize, status: StepStatus, skipped_by_answer: bool) {
        let step = &self.rb.steps[i];
        let Some(var) = step.capture.as_ref().or(step.ask.as_ref()) else {
            return;
        };
        if self.vars.contains_key(var) {
            return;
        }
        let how = match status {
            StepStatus::Skipped => "was skipped",
            StepStatus::Succeeded => "was recorded done without it",
            StepStatus::Failed | StepStatus::TimedOut
                if step.on_failure == OnFailure::Continue || skipped_by_answer =>
            {
                "failed and the run goes on"
            }
            _ => return,
        };
        let users = self.waiting_users(var);
        if users.is_empty() {
            return;
        }
        let fates: Vec<String> = users
            .iter()
            .map(|&j| {
                let u = &self.rb.steps[j];
                let then = if u.on_failure == OnFailure::Continue {
                    "the run goes on"
                } else {
                    "the run stops there"
                };
                format!("{} ({then})", u.id)
            })
            .collect();
        let (they, start) = if users.len() == 1 {
            ("it", "starts")
        } else {
            ("they", "start")
        };
        let text = format!(
            "`{var}` is not set: step {} {how}. {} need{} it and will fail when {they} {start}: {}",
            step.id,
            if users.len() == 1 {
                "One step"
            } else {
                "These steps"
            },
            if users.len() == 1 { "s" } else { "" },
            fates.join(", ")
        );
        self.notice(Level::Warning, Some(i), text);
    }
}

/// Whether any template of `step` reads `var`.
fn reads(step: &Step, var: &str) -> bool {
    let action = match &step.action {
        Action::Run(t) | Action::Manual(t) => t,
    };
    std::iter::once(action)
        .chain(&step.when)
        .chain(&step.rollback)
        .chain(&step.dir)
        .chain(step.env.iter().map(|(_, v)| v))
        .any(|t| template::analyse(t).is_ok_and(|refs| refs.iter().any(|r| r.name == var)))
}
