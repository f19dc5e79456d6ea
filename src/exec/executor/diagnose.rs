//! The diagnostic rehearsal (`exec --diagnose`, what `runbook serve` starts for an alert)
//! asks no one: a manual step is not done, it is waiting for the person on call.

use serde_json::Value;

use super::{Ending, Executor};
use crate::alert::outcome::WAITING;
use crate::event::StepStatus;

impl Executor {
    /// Records manual step `i` as waiting: `dry_run` (a status every log reader knows; a
    /// manual step has it only in a diagnostic rehearsal) with the reason [`WAITING`]. Its
    /// `ask` reads `<dry-run:NAME>` afterwards, as in any rehearsal, and its dependents go on.
    pub(super) fn left_waiting(&mut self, i: usize) {
        if let Some(var) = self.rb.steps[i].ask.clone() {
            let dry = Value::String(format!("<dry-run:{var}>"));
            self.vars.insert(var, dry);
        }
        self.finish(i, StepStatus::DryRun, Ending::because(WAITING));
    }
}
