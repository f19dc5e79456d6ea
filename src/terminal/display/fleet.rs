//! A fleet step on the terminal: one spinner for the step that says `12/40 hosts done,
//! 1 failed`, a line for each host that did not succeed (or, in a dry run, the command each
//! host would run), and the step's own line with its hosts by status at the end.

use std::collections::HashMap;
use std::time::Duration;

use super::{Display, mark};
use crate::event::StepStatus;
use crate::format;

/// Where the hosts of one running fleet step stand.
pub(super) struct Progress {
    /// What the spinner says before the counts: the step id, or `rolling back ID`.
    pub(super) label: String,
    total: usize,
    done: usize,
    failed: usize,
    /// Each host's command, to show in a dry run.
    commands: HashMap<String, String>,
}

impl Progress {
    pub(super) fn new(total: usize) -> Self {
        Progress {
            label: String::new(),
            total,
            done: 0,
            failed: 0,
            commands: HashMap::new(),
        }
    }

    /// `restart: 12/40 hosts done, 1 failed`.
    pub(super) fn message(&self) -> String {
        let mut m = format!("{}: {}/{} hosts done", self.label, self.done, self.total);
        if self.failed > 0 {
            m.push_str(&format!(", {} failed", self.failed));
        }
        m
    }
}

/// How one host's run of a step ended.
pub(super) struct HostEnd<'a> {
    pub(super) status: StepStatus,
    pub(super) duration_ms: u64,
    pub(super) attempts: u32,
    pub(super) exit_code: Option<i32>,
    pub(super) reason: Option<&'a str>,
}

impl Display {
    pub(super) fn host_started(&mut self, step: &str, host: &str, command: Option<&str>) {
        if let (Some(p), Some(c)) = (self.fleets.get_mut(step), command) {
            p.commands.insert(host.to_string(), c.trim().to_string());
        }
    }

    pub(super) fn host_finished(&mut self, step: &str, host: &str, end: HostEnd<'_>) {
        let command = match self.fleets.get_mut(step) {
            Some(p) => {
                p.done += 1;
                if end.status.is_failure() {
                    p.failed += 1;
                }
                if let Some(s) = &self.spinners {
                    s.relabel(step, p.message());
                }
                p.commands.remove(host)
            }
            None => None,
        };
        match end.status {
            // Counted on the spinner and in the step's own line at its end.
            StepStatus::Succeeded => {}
            StepStatus::DryRun => {
                let c = command.unwrap_or_default();
                self.line(format!("  would run {step} on {host}: {c}"));
            }
            status => {
                let (word, tone) = mark(status);
                let mut text = format!(
                    "  {} {step} on {host} in {}",
                    self.paint(tone, word),
                    format::duration(Duration::from_millis(end.duration_ms))
                );
                if end.attempts > 1 {
                    text.push_str(&format!(" after {} attempts", end.attempts));
                }
                if let (Some(c), StepStatus::Failed) = (end.exit_code, status) {
                    text.push_str(&format!(", exit code {c}"));
                }
                if let Some(r) = end.reason {
                    text.push_str(&format!(": {r}"));
                }
                self.line(&text);
            }
        }
    }
}
