//! Taking a notification in: the ids of its alerts, the route of each new one, which of
//! them get a diagnostic rehearsal, all written to the journal in one durable write before
//! the receiver answers. Under one lock, so that concurrent notifications number and
//! dedupe alerts exactly as a later reading of the journal will.

use std::io;

use chrono::Utc;

use super::runbooks::Runbooks;
use crate::alert::payload::{Notification, Status};
use crate::alert::route::route;
use crate::alert::state::Alerts;
use crate::alert::store::{Journal, Record, Routed};

pub(crate) struct Intake {
    pub(crate) journal: Journal,
    pub(crate) alerts: Alerts,
    pub(crate) runbooks: Runbooks,
}

/// A rehearsal to start.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) alert: String,
    pub(crate) runbook: String,
}

/// What one notification brought.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) alerts: usize,
    /// Alerts not seen before, with their runbook (if any).
    pub(crate) new: Vec<(String, String, Option<String>)>,
    pub(crate) jobs: Vec<Job>,
}

impl Intake {
    /// Stores `n` durably and folds it in; on an I/O error nothing is folded (what reached
    /// the disk, if anything, is at most a torn line that readers skip).
    pub(crate) fn accept(&mut self, n: Notification) -> io::Result<Accepted> {
        let ids = self.alerts.ids_of(&n);
        let mut routed = Vec::new();
        let mut jobs = Vec::new();
        let mut new = Vec::new();
        if ids.iter().any(|(_, is_new)| *is_new) {
            let candidates = self.runbooks.current();
            for (a, (id, is_new)) in n.alerts.iter().zip(&ids) {
                if !*is_new || routed.iter().any(|r: &Routed| r.alert == *id) {
                    continue;
                }
                let r = route(&a.labels, &a.annotations, &candidates);
                let diagnose = r.runbook.as_ref().is_some_and(|name| {
                    candidates
                        .iter()
                        .find(|c| &c.name == name)
                        .and_then(|c| c.alert.as_ref())
                        .is_some_and(|spec| spec.diagnose)
                });
                if diagnose
                    && a.status == Status::Firing
                    && let Some(runbook) = &r.runbook
                {
                    jobs.push(Job {
                        alert: id.clone(),
                        runbook: runbook.clone(),
                    });
                }
                new.push((id.clone(), a.name().to_string(), r.runbook.clone()));
                routed.push(Routed {
                    alert: id.clone(),
                    route: r,
                });
            }
        }
        let alerts = n.alerts.len();
        let mut records = vec![Record::Notification {
            notification: n,
            routed,
        }];
        records.extend(jobs.iter().map(|j| Record::Diagnose {
            alert: j.alert.clone(),
            runbook: j.runbook.clone(),
        }));
        let now = Utc::now();
        self.journal.append(now, &records)?;
        for r in &records {
            self.alerts.apply(now, r);
        }
        Ok(Accepted { alerts, new, jobs })
    }

    /// Records that a rehearsal did not start or did not end well.
    pub(crate) fn failed(&mut self, alert: &str, reason: String) -> io::Result<()> {
        let r = Record::DiagnoseFailed {
            alert: alert.to_string(),
            reason,
        };
        let now = Utc::now();
        self.journal.append(now, std::slice::from_ref(&r))?;
        self.alerts.apply(now, &r);
        Ok(())
    }
}
