//! Time to engage per runbook and per service: from detection (an alert's `startsAt`, or
//! `--detected-at`) to the start of the live run that responded.

use std::collections::BTreeMap;

use serde::Serialize;

use super::figures::Summary;
use crate::log::run::Run;

/// Time to engage of one runbook or one service.
#[derive(Debug, Serialize)]
pub(super) struct Engage {
    pub(super) name: String,
    /// Of the runs counted, those started from an alert (`exec --alert`).
    pub(super) from_alerts: usize,
    pub(super) time: Summary,
}

/// Per runbook, over live runs with a detection time.
pub(super) fn by_runbook(live: &[&Run]) -> Vec<Engage> {
    group(live, |r| Some(r.runbook.clone()))
}

/// Per service (the runbook's `service`, else the alert's `service` label), over live
/// runs with a detection time and a service.
pub(super) fn by_service(live: &[&Run]) -> Vec<Engage> {
    group(live, |r| r.service.clone())
}

fn group(live: &[&Run], key: impl Fn(&Run) -> Option<String>) -> Vec<Engage> {
    let mut by: BTreeMap<String, (Vec<i64>, usize)> = BTreeMap::new();
    for r in live {
        let (Some(name), Some(t)) = (key(r), r.time_to_engage()) else {
            continue;
        };
        let (times, alerts) = by.entry(name).or_default();
        times.push(t.num_milliseconds());
        *alerts += usize::from(r.alert.is_some());
    }
    by.into_iter()
        .map(|(name, (times, from_alerts))| Engage {
            name,
            from_alerts,
            time: Summary::of(times),
        })
        .collect()
}
