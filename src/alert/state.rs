//! The alerts as the journal tells them: every notification folded into one entry per
//! firing of an alert (an *occurrence*: a fingerprint and a `startsAt`), deduplicated,
//! tracked from firing to resolved, with its runbook and its diagnostic rehearsal.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::payload::{Alert, Labels, Notification, Status};
use super::route::Route;
use super::store::Record;

/// One firing of one alert, from its first notification to its latest.
#[derive(Debug, Clone, Serialize)]
pub struct Occurrence {
    /// What `runbook alerts` shows and `exec --alert` takes: the fingerprint, with `-N`
    /// for the Nth firing of the same alert.
    pub id: String,
    pub fingerprint: String,
    pub status: Status,
    pub name: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub generator_url: String,
    pub group_key: String,
    pub receiver: String,
    pub external_url: String,
    pub first_received: DateTime<Utc>,
    pub last_received: DateTime<Utc>,
    /// Notifications that carried it (Alertmanager repeats them).
    pub notifications: u64,
    /// Decided when it was first received.
    pub route: Route,
    pub diagnostic: Option<Diagnostic>,
}

/// The diagnostic rehearsal of an occurrence.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diagnostic {
    pub runbook: String,
    pub requested_at: Option<DateTime<Utc>>,
    /// The rehearsal's run id, once it started.
    pub run_id: Option<String>,
    /// Why it did not start or did not finish.
    pub failed: Option<String>,
}

/// Every occurrence, in the order first received.
#[derive(Debug, Default, Clone)]
pub struct Alerts {
    pub list: Vec<Occurrence>,
    by_key: HashMap<(String, DateTime<Utc>), usize>,
    by_id: HashMap<String, usize>,
    /// Occurrences seen per fingerprint, for the `-N` of the next one.
    firings: HashMap<String, usize>,
}

impl Alerts {
    /// The id an alert has, or would have if it were received now; and whether it is new.
    pub fn id_of(&self, a: &Alert) -> (String, bool) {
        if let Some(&i) = self.by_key.get(&(a.fingerprint.clone(), a.starts_at)) {
            return (self.list[i].id.clone(), false);
        }
        let n = self.firings.get(&a.fingerprint).copied().unwrap_or(0);
        let id = if n == 0 {
            a.fingerprint.clone()
        } else {
            format!("{}-{}", a.fingerprint, n + 1)
        };
        (id, true)
    }

    /// The ids of a notification's alerts, new ones numbered as [`Alerts::apply`] will
    /// number them (two alerts of one notification may be two firings of one fingerprint).
    pub fn ids_of(&self, n: &Notification) -> Vec<(String, bool)> {
        let mut scratch = Alerts::default();
        let mut out = Vec::with_capacity(n.alerts.len());
        for a in &n.alerts {
            let key = (a.fingerprint.clone(), a.starts_at);
            if let Some(&i) = self.by_key.get(&key) {
                out.push((self.list[i].id.clone(), false));
            } else if let Some(&j) = scratch.by_key.get(&key) {
                out.push((out_id(&out, j), false));
            } else {
                let before = self.firings.get(&a.fingerprint).copied().unwrap_or(0)
                    + scratch.firings.get(&a.fingerprint).copied().unwrap_or(0);
                let id = if before == 0 {
                    a.fingerprint.clone()
                } else {
                    format!("{}-{}", a.fingerprint, before + 1)
                };
                *scratch.firings.entry(a.fingerprint.clone()).or_default() += 1;
                scratch.by_key.insert(key, out.len());
                out.push((id, true));
            }
        }
        out
    }

    /// Folds one journal record in.
    pub fn apply(&mut self, ts: DateTime<Utc>, record: &Record) {
        match record {
            Record::Notification {
                notification,
                routed,
            } => {
                for a in &notification.alerts {
                    let key = (a.fingerprint.clone(), a.starts_at);
                    let i = match self.by_key.get(&key) {
                        Some(&i) => i,
                        None => {
                            let (id, _) = self.id_of(a);
                            let route = routed
                                .iter()
                                .find(|r| r.alert == id)
                                .map(|r| r.route.clone())
                                .unwrap_or_default();
                            *self.firings.entry(a.fingerprint.clone()).or_default() += 1;
                            self.by_key.insert(key, self.list.len());
                            self.by_id.insert(id.clone(), self.list.len());
                            self.list
                                .push(new_occurrence(id, a, notification, ts, route));
                            self.list.len() - 1
                        }
                    };
                    let o = &mut self.list[i];
                    o.status = a.status;
                    o.labels.clone_from(&a.labels);
                    o.annotations.clone_from(&a.annotations);
                    o.ends_at = a.ends_at;
                    o.group_key.clone_from(&notification.group_key);
                    o.last_received = ts;
                    o.notifications += 1;
                }
            }
            Record::Diagnose { alert, runbook } => {
                if let Some(o) = self.get_mut(alert) {
                    o.diagnostic = Some(Diagnostic {
                        runbook: runbook.clone(),
                        requested_at: Some(ts),
                        ..Diagnostic::default()
                    });
                }
            }
            Record::DiagnosticRun {
                alert,
                run_id,
                runbook,
            } => {
                if let Some(o) = self.get_mut(alert) {
                    let d = o.diagnostic.get_or_insert_with(Diagnostic::default);
                    d.run_id = Some(run_id.clone());
                    d.runbook.clone_from(runbook);
                    d.failed = None;
                }
            }
            Record::DiagnoseFailed { alert, reason } => {
                if let Some(o) = self.get_mut(alert) {
                    o.diagnostic.get_or_insert_with(Diagnostic::default).failed =
                        Some(reason.clone());
                }
            }
        }
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Occurrence> {
        let i = *self.by_id.get(id)?;
        self.list.get_mut(i)
    }

    /// The occurrence of this fingerprint and start, if received.
    pub fn get(&self, fingerprint: &str, starts_at: DateTime<Utc>) -> Option<&Occurrence> {
        let i = self.by_key.get(&(fingerprint.to_string(), starts_at))?;
        self.list.get(*i)
    }

    /// The occurrences an id names: exactly, else by unique prefix.
    pub fn find(&self, id: &str) -> Vec<&Occurrence> {
        if let Some(o) = self.by_id.get(id).and_then(|&i| self.list.get(i)) {
            return vec![o];
        }
        self.list.iter().filter(|o| o.id.starts_with(id)).collect()
    }
}

fn out_id(out: &[(String, bool)], j: usize) -> String {
    out.get(j).map(|(id, _)| id.clone()).unwrap_or_default()
}

fn new_occurrence(
    id: String,
    a: &Alert,
    n: &Notification,
    ts: DateTime<Utc>,
    route: Route,
) -> Occurrence {
    Occurrence {
        id,
        fingerprint: a.fingerprint.clone(),
        status: a.status,
        name: a.name().to_string(),
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: a.starts_at,
        ends_at: a.ends_at,
        generator_url: a.generator_url.clone(),
        group_key: n.group_key.clone(),
        receiver: n.receiver.clone(),
        external_url: n.external_url.clone(),
        first_received: ts,
        last_received: ts,
        notifications: 0,
        route,
        diagnostic: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::payload::parse;

    const FIRING: &[u8] = include_bytes!("../../tests/fixtures/alertmanager/firing.json");
    const RESOLVED: &[u8] = include_bytes!("../../tests/fixtures/alertmanager/resolved.json");

    fn record(body: &[u8]) -> Record {
        Record::Notification {
            notification: parse(body).unwrap_or_else(|e| panic!("{e}")),
            routed: Vec::new(),
        }
    }

    #[test]
    fn repeats_are_one_alert_that_resolves_and_a_new_firing_is_another() {
        let mut alerts = Alerts::default();
        let now = Utc::now();
        alerts.apply(now, &record(FIRING));
        alerts.apply(now, &record(FIRING));
        assert_eq!(alerts.list.len(), 1);
        assert_eq!(alerts.list[0].notifications, 2);
        alerts.apply(now, &record(RESOLVED));
        assert_eq!(alerts.list[0].status, Status::Resolved);
        assert!(alerts.list[0].ends_at.is_some());
        let again = String::from_utf8_lossy(FIRING).replace("20:40:00Z", "21:40:00Z");
        let n = parse(again.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            alerts.ids_of(&n),
            [("b7f0de69e0b04897-2".to_string(), true)]
        );
        alerts.apply(now, &record(again.as_bytes()));
        let ids: Vec<&str> = alerts.list.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["b7f0de69e0b04897", "b7f0de69e0b04897-2"]);
        assert_eq!(alerts.find("b7f0").len(), 2);
        assert_eq!(alerts.find("b7f0de69e0b04897").len(), 1);
    }
}
