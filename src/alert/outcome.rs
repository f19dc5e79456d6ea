//! What a diagnostic rehearsal found, read back from its run's log: how it ended, the
//! read-only checks that ran and failed, and the manual steps waiting for a person.

use std::path::Path;

use serde::Serialize;

use crate::event::{Kind, Phase, StepStatus};
use crate::log::run::Run;

/// The reason a diagnostic rehearsal records for a manual step: nobody was asked.
pub const WAITING: &str = "waiting for a person: a diagnostic rehearsal asks no one";

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub run_id: String,
    /// `succeeded`, `failed`, ... or `running` (no end recorded yet).
    pub status: String,
    /// Read-only steps that ran, and of those, the ones that failed or timed out.
    pub checks_ran: usize,
    pub checks_failed: Vec<String>,
    /// Manual steps recorded as waiting for a person.
    pub waiting: usize,
}

impl Outcome {
    /// One line: `failed: 3 checks ran, check-lag failed; 2 manual steps waiting`.
    pub fn text(&self) -> String {
        let mut t = format!(
            "{}: {} check{} ran",
            self.status,
            self.checks_ran,
            if self.checks_ran == 1 { "" } else { "s" }
        );
        if !self.checks_failed.is_empty() {
            t.push_str(&format!(", {} failed", self.checks_failed.join(", ")));
        }
        if self.waiting > 0 {
            t.push_str(&format!(
                "; {} manual step{} waiting",
                self.waiting,
                if self.waiting == 1 { "" } else { "s" }
            ));
        }
        t
    }
}

/// Reads the rehearsal `run_id` in `log_dir`; `None` when its log cannot be read.
pub fn of(log_dir: &Path, run_id: &str) -> Option<Outcome> {
    let log = crate::log::reader::read(&log_dir.join(format!("{run_id}.jsonl"))).ok()?;
    let run = Run::from_log(&log)?;
    let steps = run.steps.iter().filter(|s| s.phase == Phase::Run);
    let mut out = Outcome {
        run_id: run_id.to_string(),
        status: match run.status {
            Some(s) => s.as_str().to_string(),
            None => "running".to_string(),
        },
        checks_ran: 0,
        checks_failed: Vec::new(),
        waiting: 0,
    };
    for s in steps {
        match (s.kind, s.status) {
            (Kind::Auto, Some(StepStatus::Succeeded)) => out.checks_ran += 1,
            (Kind::Auto, Some(StepStatus::Failed | StepStatus::TimedOut)) => {
                out.checks_ran += 1;
                out.checks_failed.push(s.step.clone());
            }
            (Kind::Manual, Some(StepStatus::DryRun)) => out.waiting += 1,
            _ => {}
        }
    }
    Some(out)
}
