//! The figures of `runbook stats`, computed from the runs: what `--json` prints as is.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Query, Slo};
use crate::event::{Kind, Mode, Phase, RunStatus, StepStatus};
use crate::format::percentile;
use crate::log::run::Run;

/// Every figure, as printed by `--json` (durations in milliseconds, rates from 0 to 1).
#[derive(Debug, Serialize)]
pub(super) struct Stats {
    pub(super) log_dir: String,
    /// The filters: only runs of this runbook, only runs started at or after `since`.
    pub(super) runbook: Option<String>,
    pub(super) since: Option<DateTime<Utc>>,
    pub(super) runs: RunCounts,
    /// Live runs that finished (have a `run_finished`), any outcome.
    pub(super) live_duration: Summary,
    /// Live runs with `--detected-at` that were mitigated.
    pub(super) time_to_mitigate: Summary,
    /// Live runs with `--detected-at`.
    pub(super) time_to_engage: Summary,
    /// The same, per runbook and per service.
    pub(super) engage_by_runbook: Vec<super::engage::Engage>,
    pub(super) engage_by_service: Vec<super::engage::Engage>,
    pub(super) between_incidents: Vec<BetweenIncidents>,
    /// The same per service (the runbook's `service`, recorded in `run_started`): one
    /// service's incidents may be handled by several runbooks.
    pub(super) between_incidents_by_service: Vec<ServiceIncidents>,
    pub(super) steps: Vec<StepStats>,
    /// Steps with `hosts`: hosts that fail and hosts that are slow (absent without any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) fleet_steps: Vec<super::fleet::FleetStats>,
    pub(super) human_time: HumanTime,
    pub(super) rehearsal: Vec<Rehearsal>,
    pub(super) error_budget: Option<ErrorBudget>,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct RunCounts {
    pub(super) total: usize,
    pub(super) live: Outcomes,
    pub(super) dry_run: Outcomes,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct Outcomes {
    pub(super) total: usize,
    pub(super) succeeded: usize,
    pub(super) failed: usize,
    pub(super) aborted: usize,
    pub(super) interrupted: usize,
    /// No `run_finished`: still running, or crashed (see `runbook resume`).
    pub(super) unfinished: usize,
}

impl Outcomes {
    fn add(&mut self, status: Option<RunStatus>) {
        self.total += 1;
        *match status {
            Some(RunStatus::Succeeded) => &mut self.succeeded,
            Some(RunStatus::Failed) => &mut self.failed,
            Some(RunStatus::Aborted) => &mut self.aborted,
            Some(RunStatus::Interrupted) => &mut self.interrupted,
            None => &mut self.unfinished,
        } += 1;
    }
}

/// Fewer values than this cannot tell a 10% change of a median or mean from noise:
/// incident durations spread about as wide as they are long, and the standard error of
/// a mean of n such values is about 1/sqrt(n) of it (14% at 50, 32% at 10).
pub(super) const ENOUGH_TO_COMPARE: usize = 50;

/// A distribution of durations, in milliseconds.
#[derive(Debug, Serialize)]
pub(super) struct Summary {
    pub(super) count: usize,
    /// Fewer than [`ENOUGH_TO_COMPARE`] values: a change of 10% cannot be told from noise.
    pub(super) too_few_to_compare: bool,
    pub(super) min_ms: Option<i64>,
    pub(super) p50_ms: Option<i64>,
    pub(super) p90_ms: Option<i64>,
    pub(super) max_ms: Option<i64>,
    pub(super) mean_ms: Option<i64>,
}

impl Summary {
    pub(super) fn of(mut values: Vec<i64>) -> Summary {
        values.sort_unstable();
        let mean = (!values.is_empty()).then(|| {
            let sum: i128 = values.iter().map(|&v| i128::from(v)).sum();
            (sum as f64 / values.len() as f64).round() as i64
        });
        Summary {
            count: values.len(),
            too_few_to_compare: values.len() < ENOUGH_TO_COMPARE,
            min_ms: values.first().copied(),
            p50_ms: percentile(&values, 50),
            p90_ms: percentile(&values, 90),
            max_ms: values.last().copied(),
            mean_ms: mean,
        }
    }
}

/// Time between consecutive incidents handled with one runbook.
#[derive(Debug, Serialize)]
pub(super) struct BetweenIncidents {
    pub(super) runbook: String,
    pub(super) incidents: usize,
    pub(super) first_detected_at: DateTime<Utc>,
    pub(super) last_detected_at: DateTime<Utc>,
    /// Of the gaps between consecutive `detected_at`s (one fewer than the incidents).
    pub(super) gaps: Summary,
}

/// Time between consecutive incidents of one service.
#[derive(Debug, Serialize)]
pub(super) struct ServiceIncidents {
    pub(super) service: String,
    /// The runbooks that handled them.
    pub(super) runbooks: Vec<String>,
    pub(super) incidents: usize,
    pub(super) first_detected_at: DateTime<Utc>,
    pub(super) last_detected_at: DateTime<Utc>,
    pub(super) gaps: Summary,
}

#[derive(Debug, Serialize)]
pub(super) struct StepStats {
    pub(super) runbook: String,
    pub(super) step: String,
    pub(super) kind: Kind,
    /// Live runs that recorded this step as finished (any status).
    pub(super) runs: usize,
    /// Of the runs in which the step was not skipped.
    pub(super) p50_ms: Option<i64>,
    pub(super) p90_ms: Option<i64>,
    /// Ended `failed` or `timed_out`.
    pub(super) failures: usize,
    pub(super) failure_rate: f64,
    /// Attempts beyond the first, summed.
    pub(super) retries: u64,
    pub(super) skips: usize,
    pub(super) skip_rate: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct HumanTime {
    /// Finished live runs: the runs both sums are over.
    pub(super) runs: usize,
    /// Every `wait_ms` (manual steps, confirmations, failure prompts) of those runs:
    /// [`Run::people_ms`].
    pub(super) wait_ms: u64,
    /// Their `duration_ms`.
    pub(super) run_ms: u64,
    /// `wait_ms / run_ms`.
    pub(super) share: Option<f64>,
    /// Manual steps of live runs, longest median wait first: the automation backlog.
    pub(super) manual_steps: Vec<ManualWait>,
}

#[derive(Debug, Serialize)]
pub(super) struct ManualWait {
    pub(super) runbook: String,
    pub(super) step: String,
    pub(super) waits: Summary,
    pub(super) total_wait_ms: u64,
}

/// Rehearsal against reality: succeeded dry runs next to succeeded live runs.
#[derive(Debug, Serialize)]
pub(super) struct Rehearsal {
    pub(super) runbook: String,
    pub(super) dry_runs: usize,
    pub(super) dry_run_p50_ms: Option<i64>,
    pub(super) live_runs: usize,
    pub(super) live_p50_ms: Option<i64>,
}

#[derive(Debug, Serialize)]
pub(super) struct ErrorBudget {
    pub(super) slo_percent: f64,
    pub(super) window_ms: i64,
    pub(super) window_start: DateTime<Utc>,
    /// `(1 - slo_percent / 100) × window`.
    pub(super) allowed_ms: i64,
    /// Incident time of live runs inside the window, overlaps counted once.
    pub(super) consumed_ms: i64,
    /// `allowed_ms - consumed_ms`; negative when the budget is overspent.
    pub(super) remaining_ms: i64,
    pub(super) consumed_percent: f64,
    /// Live runs whose incident time falls (partly) in the window.
    pub(super) runs: usize,
    pub(super) caveat: &'static str,
}

pub(super) const CAVEAT: &str = "runbook time is a proxy for impact: it runs from detection (else the \
runbook's start) to the run's end, not from when users were first affected to when they \
stopped being affected; your SLI is the real measure";

pub(super) fn compute(all: &[Run], q: &Query, log_dir: &Path, now: DateTime<Utc>) -> Stats {
    let of_runbook: Vec<&Run> = all
        .iter()
        .filter(|r| q.runbook.as_deref().is_none_or(|n| r.runbook == n))
        .collect();
    let runs: Vec<&Run> = of_runbook
        .iter()
        .copied()
        .filter(|r| q.since.is_none_or(|t| r.started >= t))
        .collect();
    let live: Vec<&Run> = runs
        .iter()
        .copied()
        .filter(|r| r.mode == Mode::Live)
        .collect();

    let mut counts = RunCounts {
        total: runs.len(),
        ..RunCounts::default()
    };
    for r in &runs {
        match r.mode {
            Mode::Live => counts.live.add(r.status),
            Mode::DryRun => counts.dry_run.add(r.status),
        }
    }
    let ms = |d: chrono::Duration| d.num_milliseconds();
    Stats {
        log_dir: log_dir.display().to_string(),
        runbook: q.runbook.clone(),
        since: q.since,
        runs: counts,
        live_duration: Summary::of(live.iter().filter_map(|r| finished_ms(r)).collect()),
        time_to_mitigate: Summary::of(
            live.iter()
                .filter_map(|r| r.time_to_mitigate().map(ms))
                .collect(),
        ),
        time_to_engage: Summary::of(
            live.iter()
                .filter_map(|r| r.time_to_engage().map(ms))
                .collect(),
        ),
        engage_by_runbook: super::engage::by_runbook(&live),
        engage_by_service: super::engage::by_service(&live),
        between_incidents: between_incidents(&live),
        between_incidents_by_service: by_service(&live),
        steps: steps(&live),
        fleet_steps: super::fleet::compute(&live),
        human_time: human_time(&live),
        // A diagnostic rehearsal asks no one: its time says nothing of a drill's.
        rehearsal: rehearsal(
            &runs
                .iter()
                .copied()
                .filter(|r| !r.diagnostic)
                .collect::<Vec<_>>(),
        ),
        error_budget: q.slo.map(|slo| error_budget(&of_runbook, slo, now)),
    }
}

/// The duration of a run that finished (has a `run_finished`).
fn finished_ms(r: &Run) -> Option<i64> {
    r.status?;
    r.duration().map(|d| d.num_milliseconds())
}

fn between_incidents(live: &[&Run]) -> Vec<BetweenIncidents> {
    // Per runbook, one detection time per incident: runs that share an incident id (or,
    // without one, a detected_at) are one incident handled in several runs.
    let mut incidents: BTreeMap<&str, HashMap<String, DateTime<Utc>>> = BTreeMap::new();
    for r in live {
        let Some(at) = r.detected_at else { continue };
        let key = r.incident.clone().unwrap_or_else(|| at.to_rfc3339());
        let first = incidents
            .entry(&r.runbook)
            .or_default()
            .entry(key)
            .or_insert(at);
        *first = (*first).min(at);
    }
    incidents
        .into_iter()
        .filter_map(|(runbook, by_incident)| {
            let mut times: Vec<DateTime<Utc>> = by_incident.into_values().collect();
            times.sort_unstable();
            let (&first, &last) = (times.first()?, times.last()?);
            let gaps: Vec<i64> = times
                .windows(2)
                .map(|w| (w[1] - w[0]).num_milliseconds())
                .collect();
            (!gaps.is_empty()).then(|| BetweenIncidents {
                runbook: runbook.to_string(),
                incidents: times.len(),
                first_detected_at: first,
                last_detected_at: last,
                gaps: Summary::of(gaps),
            })
        })
        .collect()
}

/// Incidents per service: runs of any runbook of the service that share an incident id
/// (or, without one, a detected_at) are one incident.
fn by_service(live: &[&Run]) -> Vec<ServiceIncidents> {
    type Seen<'a> = (HashMap<String, DateTime<Utc>>, Vec<&'a str>);
    let mut incidents: BTreeMap<&str, Seen> = BTreeMap::new();
    for r in live {
        let (Some(service), Some(at)) = (r.service.as_deref(), r.detected_at) else {
            continue;
        };
        let key = r.incident.clone().unwrap_or_else(|| at.to_rfc3339());
        let (times, runbooks) = incidents.entry(service).or_default();
        let first = times.entry(key).or_insert(at);
        *first = (*first).min(at);
        if !runbooks.contains(&r.runbook.as_str()) {
            runbooks.push(&r.runbook);
        }
    }
    incidents
        .into_iter()
        .filter_map(|(service, (by_incident, mut runbooks))| {
            let mut times: Vec<DateTime<Utc>> = by_incident.into_values().collect();
            times.sort_unstable();
            runbooks.sort_unstable();
            let (&first, &last) = (times.first()?, times.last()?);
            let gaps: Vec<i64> = times
                .windows(2)
                .map(|w| (w[1] - w[0]).num_milliseconds())
                .collect();
            (!gaps.is_empty()).then(|| ServiceIncidents {
                service: service.to_string(),
                runbooks: runbooks.into_iter().map(str::to_string).collect(),
                incidents: times.len(),
                first_detected_at: first,
                last_detected_at: last,
                gaps: Summary::of(gaps),
            })
        })
        .collect()
}

fn steps(live: &[&Run]) -> Vec<StepStats> {
    struct Acc<'a> {
        step: &'a str,
        kind: Kind,
        runs: usize,
        durations: Vec<i64>,
        failures: usize,
        retries: u64,
        skips: usize,
    }
    // Per runbook (by name), steps in the order they were first seen.
    let mut by_runbook: BTreeMap<&str, (Vec<Acc>, HashMap<&str, usize>)> = BTreeMap::new();
    for r in live {
        let (accs, index) = by_runbook.entry(&r.runbook).or_default();
        for s in r.steps.iter().filter(|s| s.phase == Phase::Run) {
            let Some(status) = s.status else { continue };
            let i = *index.entry(&s.step).or_insert_with(|| {
                accs.push(Acc {
                    step: &s.step,
                    kind: s.kind,
                    runs: 0,
                    durations: Vec::new(),
                    failures: 0,
                    retries: 0,
                    skips: 0,
                });
                accs.len() - 1
            });
            let a = &mut accs[i];
            a.runs += 1;
            a.retries += u64::from(s.attempts.saturating_sub(1));
            match status {
                StepStatus::Skipped => a.skips += 1,
                StepStatus::Failed | StepStatus::TimedOut => a.failures += 1,
                _ => {}
            }
            if status != StepStatus::Skipped
                && let Some(d) = s.duration_ms
            {
                a.durations.push(d as i64);
            }
        }
    }
    let rate = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    by_runbook
        .into_iter()
        .flat_map(|(runbook, (accs, _))| {
            accs.into_iter().map(move |a| {
                let d = Summary::of(a.durations);
                StepStats {
                    runbook: runbook.to_string(),
                    step: a.step.to_string(),
                    kind: a.kind,
                    runs: a.runs,
                    p50_ms: d.p50_ms,
                    p90_ms: d.p90_ms,
                    failures: a.failures,
                    failure_rate: rate(a.failures, a.runs),
                    retries: a.retries,
                    skips: a.skips,
                    skip_rate: rate(a.skips, a.runs),
                }
            })
        })
        .collect()
}

fn human_time(live: &[&Run]) -> HumanTime {
    let (mut runs, mut wait_ms, mut run_ms) = (0, 0u64, 0u64);
    for r in live {
        let Some(d) = finished_ms(r) else { continue };
        runs += 1;
        run_ms += d.max(0) as u64;
        wait_ms += r.people_ms();
    }
    let mut waits: BTreeMap<(&str, &str), Vec<i64>> = BTreeMap::new();
    for r in live {
        for s in &r.steps {
            if let (Kind::Manual, Phase::Run, Some(w)) = (s.kind, s.phase, s.response.wait_ms) {
                waits
                    .entry((&r.runbook, &s.step))
                    .or_default()
                    .push(w as i64);
            }
        }
    }
    let mut manual_steps: Vec<ManualWait> = waits
        .into_iter()
        .map(|((runbook, step), w)| ManualWait {
            runbook: runbook.to_string(),
            step: step.to_string(),
            total_wait_ms: w.iter().map(|&x| x as u64).sum(),
            waits: Summary::of(w),
        })
        .collect();
    manual_steps.sort_by(|a, b| {
        b.waits
            .p50_ms
            .cmp(&a.waits.p50_ms)
            .then(b.total_wait_ms.cmp(&a.total_wait_ms))
    });
    HumanTime {
        runs,
        wait_ms,
        run_ms,
        share: (run_ms > 0).then(|| wait_ms as f64 / run_ms as f64),
        manual_steps,
    }
}

fn rehearsal(runs: &[&Run]) -> Vec<Rehearsal> {
    let mut by_runbook: BTreeMap<&str, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for r in runs {
        let Some(d) = finished_ms(r).filter(|_| r.status == Some(RunStatus::Succeeded)) else {
            continue;
        };
        let (dry, live) = by_runbook.entry(&r.runbook).or_default();
        match r.mode {
            Mode::DryRun => dry.push(d),
            Mode::Live => live.push(d),
        }
    }
    by_runbook
        .into_iter()
        .map(|(runbook, (dry, live))| {
            let (dry, live) = (Summary::of(dry), Summary::of(live));
            Rehearsal {
                runbook: runbook.to_string(),
                dry_runs: dry.count,
                dry_run_p50_ms: dry.p50_ms,
                live_runs: live.count,
                live_p50_ms: live.p50_ms,
            }
        })
        .collect()
}

fn error_budget(runs: &[&Run], slo: Slo, now: DateTime<Utc>) -> ErrorBudget {
    let window_ms = slo.window.num_milliseconds();
    let window_start = now - slo.window;
    let allowed_ms = (window_ms as f64 * (100.0 - slo.percent) / 100.0).round() as i64;
    // Each live run's incident time, cut to the window; overlapping runs (two runbooks for
    // one outage) are merged so that no minute counts twice.
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = runs
        .iter()
        .filter(|r| r.mode == Mode::Live)
        .filter_map(|r| {
            let from = r.detected_at.unwrap_or(r.started).max(window_start);
            let to = r.finished.unwrap_or(r.last_record).min(now);
            (to > from).then_some((from, to))
        })
        .collect();
    let count = spans.len();
    spans.sort_unstable();
    let mut consumed = chrono::Duration::zero();
    let mut current: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    for (from, to) in spans {
        current = match current {
            Some((a, b)) if from <= b => Some((a, b.max(to))),
            Some((a, b)) => {
                consumed += b - a;
                Some((from, to))
            }
            None => Some((from, to)),
        };
    }
    if let Some((a, b)) = current {
        consumed += b - a;
    }
    let consumed_ms = consumed.num_milliseconds();
    ErrorBudget {
        slo_percent: slo.percent,
        window_ms,
        window_start,
        allowed_ms,
        consumed_ms,
        remaining_ms: allowed_ms - consumed_ms,
        consumed_percent: if allowed_ms > 0 {
            consumed_ms as f64 * 100.0 / allowed_ms as f64
        } else {
            0.0
        },
        runs: count,
        caveat: CAVEAT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_use_nearest_rank() {
        let s = Summary::of(vec![400, 100, 300, 200]);
        assert_eq!(
            (s.min_ms, s.p50_ms, s.p90_ms, s.max_ms, s.mean_ms),
            (Some(100), Some(200), Some(400), Some(400), Some(250))
        );
    }
}
