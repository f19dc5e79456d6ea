//! The figures of fleet steps over live runs: how many hosts they ran on, how often a host
//! failed or could not be reached, and which hosts fail and which are slow, by name.

use std::collections::BTreeMap;

use serde::Serialize;

use super::figures::Summary;
use crate::event::{Phase, StepStatus};
use crate::format::{indented_table, millis_or_dash, row};
use crate::log::run::Run;

/// Hosts named in a ranking.
const NAMED: usize = 3;

#[derive(Debug, Serialize)]
pub(super) struct FleetStats {
    pub(super) runbook: String,
    pub(super) step: String,
    /// Live runs that recorded this fleet step as finished.
    pub(super) runs: usize,
    /// Hosts per run.
    pub(super) hosts_p50: Option<i64>,
    /// Every host's end over those runs.
    pub(super) host_runs: usize,
    /// Failed or timed out.
    pub(super) host_failures: usize,
    pub(super) unreachable: usize,
    /// `(host_failures + unreachable) / host_runs`.
    pub(super) failure_rate: f64,
    /// The hosts that failed or could not be reached most often: `(host, times)`.
    pub(super) most_failed: Vec<(String, usize)>,
    /// The hosts with the longest median duration: `(host, p50 ms)`.
    pub(super) slowest: Vec<(String, i64)>,
}

pub(super) fn compute(live: &[&Run]) -> Vec<FleetStats> {
    #[derive(Default)]
    struct Acc {
        runs: usize,
        hosts: Vec<i64>,
        host_runs: usize,
        failures: usize,
        unreachable: usize,
        failed_by_host: BTreeMap<String, usize>,
        durations: BTreeMap<String, Vec<i64>>,
    }
    let mut by_step: BTreeMap<(&str, &str), Acc> = BTreeMap::new();
    for r in live {
        for s in r
            .steps
            .iter()
            .filter(|s| s.phase == Phase::Run && s.is_fleet())
        {
            if s.status.is_none() {
                continue;
            }
            let a = by_step.entry((&r.runbook, &s.step)).or_default();
            a.runs += 1;
            a.hosts
                .push(s.planned_hosts.len().max(s.hosts.len()) as i64);
            for h in &s.hosts {
                let (Some(status), Some(name)) = (h.status, &h.host) else {
                    continue;
                };
                a.host_runs += 1;
                match status {
                    StepStatus::Unreachable => a.unreachable += 1,
                    StepStatus::Failed | StepStatus::TimedOut => a.failures += 1,
                    _ => {}
                }
                if status.is_failure() {
                    *a.failed_by_host.entry(name.clone()).or_default() += 1;
                }
                if let (false, Some(d)) = (
                    matches!(status, StepStatus::Skipped | StepStatus::DryRun),
                    h.duration_ms,
                ) {
                    a.durations.entry(name.clone()).or_default().push(d as i64);
                }
            }
        }
    }
    by_step
        .into_iter()
        .map(|((runbook, step), a)| {
            let mut most_failed: Vec<(String, usize)> = a.failed_by_host.into_iter().collect();
            most_failed.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
            most_failed.truncate(NAMED);
            let mut slowest: Vec<(String, i64)> = a
                .durations
                .into_iter()
                .filter_map(|(h, d)| Some((h, Summary::of(d).p50_ms?)))
                .collect();
            slowest.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
            slowest.truncate(NAMED);
            let bad = a.failures + a.unreachable;
            FleetStats {
                runbook: runbook.to_string(),
                step: step.to_string(),
                runs: a.runs,
                hosts_p50: Summary::of(a.hosts).p50_ms,
                host_runs: a.host_runs,
                host_failures: a.failures,
                unreachable: a.unreachable,
                failure_rate: if a.host_runs == 0 {
                    0.0
                } else {
                    bad as f64 / a.host_runs as f64
                },
                most_failed,
                slowest,
            }
        })
        .collect()
}

/// The section of the text output; nothing when no live run had a fleet step.
pub(super) fn render(out: &mut String, fleets: &[FleetStats]) {
    if fleets.is_empty() {
        return;
    }
    out.push_str("\nFleet steps (live runs): hosts that fail, hosts that are slow\n");
    let mut rows = vec![row(&[
        "RUNBOOK",
        "STEP",
        "RUNS",
        "HOSTS",
        "HOST RUNS",
        "FAILED",
        "UNREACHABLE",
        "MOST FAILED",
        "SLOWEST (P50)",
    ])];
    for f in fleets {
        let most: Vec<String> = f
            .most_failed
            .iter()
            .map(|(h, n)| format!("{h} x{n}"))
            .collect();
        let slow: Vec<String> = f
            .slowest
            .iter()
            .map(|(h, ms)| format!("{h} {}", millis_or_dash(Some(*ms))))
            .collect();
        rows.push(vec![
            f.runbook.clone(),
            f.step.clone(),
            f.runs.to_string(),
            f.hosts_p50.map_or_else(|| "-".into(), |n| n.to_string()),
            f.host_runs.to_string(),
            format!("{:.1}%", f.failure_rate * 100.0),
            f.unreachable.to_string(),
            if most.is_empty() {
                "-".into()
            } else {
                most.join(", ")
            },
            if slow.is_empty() {
                "-".into()
            } else {
                slow.join(", ")
            },
        ]);
    }
    out.push_str(&indented_table(&rows));
}
