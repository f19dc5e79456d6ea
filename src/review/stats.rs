//! `runbook stats`: figures over every run in the log directory, for the review after an
//! incident and the planning before the next one: how runs end and how long they take, the
//! MTTR and the time between incidents, which steps fail, retry or get skipped, where people
//! wait (what to automate next), how rehearsals compare with real runs, and what is left of
//! an error budget.
//!
//! Every figure is defined in `runbook stats --help` and in docs/stats.md. Percentiles are
//! nearest-rank: each one is a value some run really had, so it can be found in the logs.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::load_all;
use crate::commands::{print, print_json};
use crate::error::{Error, exit};
use crate::event::{Kind, Mode, Phase, RunStatus, StepStatus};
use crate::format::{self, indented_table, millis, millis_or_dash, percentile, row};
use crate::log::run::Run;

/// The flags of `runbook stats`, as given.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatsArgs<'a> {
    pub runbook: Option<&'a str>,
    pub since: Option<&'a str>,
    pub json: bool,
    pub slo: Option<&'a str>,
    pub window: Option<&'a str>,
}

/// The flags, checked: which runs count, and the objective to measure them against.
struct Query {
    runbook: Option<String>,
    /// Only runs started at or after this.
    since: Option<DateTime<Utc>>,
    slo: Option<Slo>,
}

#[derive(Clone, Copy)]
struct Slo {
    percent: f64,
    window: chrono::Duration,
}

impl Query {
    fn new(args: &StatsArgs, now: DateTime<Utc>) -> Result<Query, Error> {
        let since = match args.since {
            Some(s) => {
                let d = duration("--since", s)?;
                Some(
                    now.checked_sub_signed(d)
                        .ok_or_else(|| Error::Usage(format!("--since `{s}` is too long ago")))?,
                )
            }
            None => None,
        };
        let slo = match (args.slo, args.window) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::Usage(
                    "--slo needs --window: the period the objective covers, such as --window 30d"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(Error::Usage(
                    "--window needs --slo: the objective in percent, such as --slo 99.9".into(),
                ));
            }
            (Some(p), Some(w)) => {
                let percent = p
                    .trim()
                    .trim_end_matches('%')
                    .parse::<f64>()
                    .ok()
                    .filter(|x| *x > 0.0 && *x < 100.0)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "--slo `{p}` is not a percentage above 0 and below 100, such as 99.9"
                        ))
                    })?;
                let window = duration("--window", w)?;
                if window <= chrono::Duration::zero() {
                    return Err(Error::Usage(format!(
                        "--window `{w}` is empty; give a period such as 30d"
                    )));
                }
                Some(Slo { percent, window })
            }
        };
        Ok(Query {
            runbook: args.runbook.map(str::to_string),
            since,
            slo,
        })
    }
}

/// A DURATION flag (humantime: `7d`, `12h 30m`).
fn duration(flag: &str, s: &str) -> Result<chrono::Duration, Error> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        Error::Usage(format!(
            "{flag} `{s}` is not a duration such as 7d or 12h: {e}"
        ))
    })?;
    chrono::Duration::from_std(d).map_err(|_| Error::Usage(format!("{flag} `{s}` is too long")))
}

/// Every figure, as printed by `--json` (durations in milliseconds, rates from 0 to 1).
#[derive(Debug, Serialize)]
struct Stats {
    log_dir: String,
    /// The filters: only runs of this runbook, only runs started at or after `since`.
    runbook: Option<String>,
    since: Option<DateTime<Utc>>,
    runs: RunCounts,
    /// Live runs that finished (have a `run_finished`), any outcome.
    live_duration: Summary,
    /// Live runs with `--detected-at` that were mitigated.
    time_to_mitigate: Summary,
    /// Live runs with `--detected-at`.
    time_to_engage: Summary,
    between_incidents: Vec<BetweenIncidents>,
    steps: Vec<StepStats>,
    human_time: HumanTime,
    rehearsal: Vec<Rehearsal>,
    error_budget: Option<ErrorBudget>,
}

#[derive(Debug, Default, Serialize)]
struct RunCounts {
    total: usize,
    live: Outcomes,
    dry_run: Outcomes,
}

#[derive(Debug, Default, Serialize)]
struct Outcomes {
    total: usize,
    succeeded: usize,
    failed: usize,
    aborted: usize,
    interrupted: usize,
    /// No `run_finished`: still running, or crashed (see `runbook resume`).
    unfinished: usize,
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

/// A distribution of durations, in milliseconds.
#[derive(Debug, Serialize)]
struct Summary {
    count: usize,
    min_ms: Option<i64>,
    p50_ms: Option<i64>,
    p90_ms: Option<i64>,
    max_ms: Option<i64>,
    mean_ms: Option<i64>,
}

impl Summary {
    fn of(mut values: Vec<i64>) -> Summary {
        values.sort_unstable();
        let mean = (!values.is_empty()).then(|| {
            let sum: i128 = values.iter().map(|&v| i128::from(v)).sum();
            (sum as f64 / values.len() as f64).round() as i64
        });
        Summary {
            count: values.len(),
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
struct BetweenIncidents {
    runbook: String,
    incidents: usize,
    first_detected_at: DateTime<Utc>,
    last_detected_at: DateTime<Utc>,
    /// Of the gaps between consecutive `detected_at`s (one fewer than the incidents).
    gaps: Summary,
}

#[derive(Debug, Serialize)]
struct StepStats {
    runbook: String,
    step: String,
    kind: Kind,
    /// Live runs that recorded this step as finished (any status).
    runs: usize,
    /// Of the runs in which the step was not skipped.
    p50_ms: Option<i64>,
    p90_ms: Option<i64>,
    /// Ended `failed` or `timed_out`.
    failures: usize,
    failure_rate: f64,
    /// Attempts beyond the first, summed.
    retries: u64,
    skips: usize,
    skip_rate: f64,
}

#[derive(Debug, Serialize)]
struct HumanTime {
    /// Finished live runs: the runs both sums are over.
    runs: usize,
    /// Every `wait_ms` (manual steps, confirmations, failure prompts) of those runs:
    /// [`Run::people_ms`].
    wait_ms: u64,
    /// Their `duration_ms`.
    run_ms: u64,
    /// `wait_ms / run_ms`.
    share: Option<f64>,
    /// Manual steps of live runs, longest median wait first: the automation backlog.
    manual_steps: Vec<ManualWait>,
}

#[derive(Debug, Serialize)]
struct ManualWait {
    runbook: String,
    step: String,
    waits: Summary,
    total_wait_ms: u64,
}

/// Rehearsal against reality: succeeded dry runs next to succeeded live runs.
#[derive(Debug, Serialize)]
struct Rehearsal {
    runbook: String,
    dry_runs: usize,
    dry_run_p50_ms: Option<i64>,
    live_runs: usize,
    live_p50_ms: Option<i64>,
}

#[derive(Debug, Serialize)]
struct ErrorBudget {
    slo_percent: f64,
    window_ms: i64,
    window_start: DateTime<Utc>,
    /// `(1 - slo_percent / 100) × window`.
    allowed_ms: i64,
    /// Incident time of live runs inside the window, overlaps counted once.
    consumed_ms: i64,
    /// `allowed_ms - consumed_ms`; negative when the budget is overspent.
    remaining_ms: i64,
    consumed_percent: f64,
    /// Live runs whose incident time falls (partly) in the window.
    runs: usize,
    caveat: &'static str,
}

const CAVEAT: &str = "runbook time is a proxy for impact: it runs from detection (else the \
runbook's start) to the run's end, not from when users were first affected to when they \
stopped being affected; your SLI is the real measure";

pub fn stats(log_dir: &Path, args: &StatsArgs) -> Result<u8, Error> {
    let now = Utc::now();
    let query = Query::new(args, now)?;
    let runs = load_all(log_dir)?;
    let stats = compute(&runs, &query, log_dir, now);
    if args.json {
        print_json(&stats)?;
    } else {
        print(&render(&stats))?;
    }
    Ok(exit::OK)
}

fn compute(all: &[Run], q: &Query, log_dir: &Path, now: DateTime<Utc>) -> Stats {
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
        between_incidents: between_incidents(&live),
        steps: steps(&live),
        human_time: human_time(&live),
        rehearsal: rehearsal(&runs),
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

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn render(s: &Stats) -> String {
    let mut scope = String::new();
    if let Some(n) = &s.runbook {
        scope.push_str(&format!(" of {n}"));
    }
    if let Some(t) = s.since {
        scope.push_str(&format!(" started since {}", format::minute(t)));
    }
    let mut out = String::new();
    if s.runs.total == 0 {
        out.push_str(&format!("no runs{scope} in {}\n", s.log_dir));
        if let Some(b) = &s.error_budget {
            out.push('\n');
            render_budget(&mut out, b);
        }
        return out;
    }
    out.push_str(&format!(
        "{} run{}{scope} in {}\n",
        s.runs.total,
        if s.runs.total == 1 { "" } else { "s" },
        s.log_dir
    ));

    out.push_str("\nRuns by mode and outcome\n");
    let mut rows = vec![row(&[
        "MODE",
        "RUNS",
        "SUCCEEDED",
        "FAILED",
        "ABORTED",
        "INTERRUPTED",
        "UNFINISHED",
    ])];
    for (mode, o) in [(Mode::Live, &s.runs.live), (Mode::DryRun, &s.runs.dry_run)] {
        rows.push(vec![
            format::mode(mode).into(),
            o.total.to_string(),
            o.succeeded.to_string(),
            o.failed.to_string(),
            o.aborted.to_string(),
            o.interrupted.to_string(),
            o.unfinished.to_string(),
        ]);
    }
    out.push_str(&indented_table(&rows));

    let d = &s.live_duration;
    out.push_str(&format!(
        "\nLive run duration ({} finished live run{})\n",
        d.count,
        if d.count == 1 { "" } else { "s" }
    ));
    if d.count == 0 {
        out.push_str("  no finished live runs\n");
    } else {
        out.push_str(&format!(
            "  p50 {}  p90 {}  max {}  mean {}\n",
            millis_or_dash(d.p50_ms),
            millis_or_dash(d.p90_ms),
            millis_or_dash(d.max_ms),
            millis_or_dash(d.mean_ms)
        ));
    }

    out.push_str("\nTime to engage and to mitigate (live runs with --detected-at)\n");
    if s.time_to_engage.count == 0 {
        out.push_str("  no live run was given --detected-at\n");
    } else {
        let mut rows = vec![row(&["", "RUNS", "P50", "P90", "MEAN", "MAX"])];
        for (name, m) in [
            ("time to engage", &s.time_to_engage),
            ("time to mitigate (MTTR)", &s.time_to_mitigate),
        ] {
            rows.push(vec![
                name.into(),
                m.count.to_string(),
                millis_or_dash(m.p50_ms),
                millis_or_dash(m.p90_ms),
                millis_or_dash(m.mean_ms),
                millis_or_dash(m.max_ms),
            ]);
        }
        out.push_str(&indented_table(&rows));
    }

    out.push_str("\nTime between incidents (consecutive detected_at, per runbook)\n");
    if s.between_incidents.is_empty() {
        out.push_str("  no runbook has handled two incidents with --detected-at yet\n");
    } else {
        let mut rows = vec![row(&[
            "RUNBOOK",
            "INCIDENTS",
            "MEAN (MTBF)",
            "P50",
            "SHORTEST",
            "LAST DETECTED",
        ])];
        for b in &s.between_incidents {
            rows.push(vec![
                b.runbook.clone(),
                b.incidents.to_string(),
                millis_or_dash(b.gaps.mean_ms),
                millis_or_dash(b.gaps.p50_ms),
                millis_or_dash(b.gaps.min_ms),
                format::minute(b.last_detected_at),
            ]);
        }
        out.push_str(&indented_table(&rows));
    }

    out.push_str("\nSteps (live runs)\n");
    if s.steps.is_empty() {
        out.push_str("  no live run recorded a finished step\n");
    } else {
        let mut rows = vec![row(&[
            "RUNBOOK", "STEP", "KIND", "RUNS", "P50", "P90", "FAILED", "RETRIES", "SKIPPED",
        ])];
        for st in &s.steps {
            rows.push(vec![
                st.runbook.clone(),
                st.step.clone(),
                format::kind(st.kind).into(),
                st.runs.to_string(),
                millis_or_dash(st.p50_ms),
                millis_or_dash(st.p90_ms),
                pct(st.failure_rate),
                st.retries.to_string(),
                pct(st.skip_rate),
            ]);
        }
        out.push_str(&indented_table(&rows));
    }

    let h = &s.human_time;
    out.push_str("\nHuman time (live runs)\n");
    match h.share {
        Some(share) => out.push_str(&format!(
            "  {} of live run time was spent waiting for people: {} of {} over {} finished run{}\n",
            pct(share),
            millis(h.wait_ms as i64),
            millis(h.run_ms as i64),
            h.runs,
            if h.runs == 1 { "" } else { "s" }
        )),
        None => out.push_str("  no finished live runs\n"),
    }
    if h.manual_steps.is_empty() {
        out.push_str("  no manual step was answered in a live run\n");
    } else {
        out.push_str("  Manual steps by median wait (the automation backlog):\n");
        let mut rows = vec![row(&[
            "RUNBOOK", "STEP", "WAITS", "P50", "P90", "MAX", "TOTAL",
        ])];
        for m in &h.manual_steps {
            rows.push(vec![
                m.runbook.clone(),
                m.step.clone(),
                m.waits.count.to_string(),
                millis_or_dash(m.waits.p50_ms),
                millis_or_dash(m.waits.p90_ms),
                millis_or_dash(m.waits.max_ms),
                millis(m.total_wait_ms as i64),
            ]);
        }
        out.push_str(&indented_table(&rows));
    }

    out.push_str("\nRehearsal against reality (succeeded runs, median duration)\n");
    if s.rehearsal.is_empty() {
        out.push_str("  no succeeded runs\n");
    } else {
        let mut rows = vec![row(&[
            "RUNBOOK",
            "DRY RUNS",
            "DRY-RUN P50",
            "LIVE RUNS",
            "LIVE P50",
        ])];
        for r in &s.rehearsal {
            rows.push(vec![
                r.runbook.clone(),
                r.dry_runs.to_string(),
                millis_or_dash(r.dry_run_p50_ms),
                r.live_runs.to_string(),
                millis_or_dash(r.live_p50_ms),
            ]);
        }
        out.push_str(&indented_table(&rows));
    }

    if let Some(b) = &s.error_budget {
        out.push('\n');
        render_budget(&mut out, b);
    }
    out
}

fn render_budget(out: &mut String, b: &ErrorBudget) {
    out.push_str(&format!(
        "Error budget (SLO {}% over {}, since {})\n",
        b.slo_percent,
        millis(b.window_ms),
        format::minute(b.window_start)
    ));
    out.push_str(&format!("  allowed    {}\n", millis(b.allowed_ms)));
    out.push_str(&format!(
        "  consumed   {} ({:.1}%) by {} live run{}\n",
        millis(b.consumed_ms),
        b.consumed_percent,
        b.runs,
        if b.runs == 1 { "" } else { "s" }
    ));
    out.push_str(&format!(
        "  remaining  {}{}\n",
        millis(b.remaining_ms),
        if b.remaining_ms < 0 {
            " (overspent)"
        } else {
            ""
        }
    ));
    // The caveat, wrapped to the width of the tables above.
    let mut line = String::from("  note:");
    for word in CAVEAT.split_whitespace() {
        if line.len() + 1 + word.len() > 90 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("       ");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
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
