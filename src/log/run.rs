//! One run as read back from its log: the model `review` reports on and `resume` goes on from.
//!
//! It holds no more than the log does.

use crate::event as ev;
use chrono::{DateTime, Utc};

use crate::event::{
    AlertRecord, Event, HostCounts, Kind, Mode, PendingRollback, Phase, Response, RunStatus,
    StepStatus,
};
use crate::log::reader::RunLog;

/// Lines of output kept per step for review (the tail shown when a step failed).
const TAIL_LINES: usize = 10;

/// One run, as read back from its log.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) run_id: String,
    pub(crate) runbook: String,
    pub(crate) title: String,
    /// The runbook file as it was when the run started: where, and its sha256.
    pub(crate) runbook_path: String,
    pub(crate) runbook_sha256: String,
    pub(crate) mode: Mode,
    pub(crate) operator: String,
    pub(crate) host: String,
    pub(crate) incident: Option<String>,
    /// The runbook's `service` (else the alert's `service` label), when the log records it.
    pub(crate) service: Option<String>,
    /// Every step id in run order, when the log records them.
    pub(crate) planned: Vec<String>,
    pub(crate) detected_at: Option<DateTime<Utc>>,
    pub(crate) started: DateTime<Utc>,
    pub(crate) finished: Option<DateTime<Utc>>,
    /// `None` while the run has no `run_finished` (still running, or it crashed).
    pub(crate) status: Option<RunStatus>,
    pub(crate) reason: Option<String>,
    pub(crate) duration_ms: Option<u64>,
    pub(crate) params: serde_json::Map<String, serde_json::Value>,
    pub(crate) version: String,
    pub(crate) log_path: String,
    /// Operators who resumed the run, with when.
    pub(crate) resumed: Vec<(DateTime<Utc>, String)>,
    pub(crate) milestones: Vec<MilestoneAt>,
    pub(crate) steps: Vec<StepRun>,
    /// Changes the run's latest end left applied (not rolled back), newest first.
    pub(crate) not_rolled_back: Vec<PendingRollback>,
    /// The log's last line was torn by a crash and skipped.
    pub(crate) torn: bool,
    /// The time of the log's latest record: where an unfinished run stands.
    pub(crate) last_record: DateTime<Utc>,
    /// The alert the run responded to (`exec --alert`).
    pub(crate) alert: Option<AlertRecord>,
    /// A diagnostic rehearsal started for an alert (`exec --diagnose`).
    pub(crate) diagnostic: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct MilestoneAt {
    pub(crate) name: String,
    pub(crate) step: String,
    pub(crate) at: DateTime<Utc>,
}

/// One step (or one rollback) of a run.
#[derive(Debug, Clone)]
pub(crate) struct StepRun {
    pub(crate) step: String,
    pub(crate) kind: Kind,
    pub(crate) phase: Phase,
    pub(crate) started: Option<DateTime<Utc>>,
    pub(crate) finished: Option<DateTime<Utc>>,
    /// `None` when the step started and never finished: it may or may not have run.
    pub(crate) status: Option<StepStatus>,
    pub(crate) duration_ms: Option<u64>,
    /// Attempts of its latest execution: a step rolled back (or resumed `--from` before
    /// it) and run again starts counting anew, for its earlier attempts were no retries.
    pub(crate) attempts: u32,
    /// The attempt number its latest execution started after.
    pub(crate) attempt_base: u32,
    pub(crate) exit_code: Option<i32>,
    /// The person's side (answer, operator, note, wait, value typed, value captured), as
    /// its `step_finished` recorded it.
    pub(crate) response: Response,
    pub(crate) reason: Option<String>,
    /// The last lines of output (stdout and stderr interleaved as they came).
    pub(crate) output_tail: Vec<String>,
    /// The last line of `output_tail` has not ended yet.
    pub(crate) tail_open: bool,
    pub(crate) truncated_bytes: u64,
    /// The process group of its latest attempt, when the log recorded it.
    pub(crate) spawned: Option<Spawned>,
    /// One host of a fleet step: its name (the record is in its step's `hosts`).
    pub(crate) host: Option<String>,
    /// A fleet step: the hosts it was started on, from its `step_started`.
    pub(crate) planned_hosts: Vec<String>,
    /// A fleet step: each host's record, in the order the hosts first started or ended.
    pub(crate) hosts: Vec<StepRun>,
    /// A fleet step: its hosts by status, from its `step_finished`.
    pub(crate) host_counts: Option<HostCounts>,
}

/// Where a step's processes were, as its `step_spawned` recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spawned {
    pub(crate) attempt: u32,
    pub(crate) pgid: u32,
    pub(crate) start_ticks: u64,
    pub(crate) boot_id: String,
}

impl StepRun {
    /// Time spent waiting on a person at this step: the `wait_ms` its prompt recorded (a
    /// manual step, a confirmation, a failure prompt). The one definition `report` and
    /// `stats` share, and the one `runbook stats --help` and docs/stats.md give.
    pub(crate) fn people_ms(&self) -> u64 {
        self.response.wait_ms.unwrap_or(0)
    }

    /// The step's id, marked when this is its rollback.
    pub(crate) fn label(&self) -> String {
        if self.phase == Phase::Rollback {
            format!("{} (rollback)", self.step)
        } else {
            self.step.clone()
        }
    }

    /// Whether this is a fleet step (it ran, or was to run, on hosts).
    pub(crate) fn is_fleet(&self) -> bool {
        !self.planned_hosts.is_empty() || !self.hosts.is_empty() || self.host_counts.is_some()
    }

    fn new(step: &str, kind: Kind, phase: Phase, host: Option<&str>) -> StepRun {
        StepRun {
            step: step.to_string(),
            kind,
            phase,
            started: None,
            finished: None,
            status: None,
            duration_ms: None,
            attempts: 0,
            attempt_base: 0,
            exit_code: None,
            response: Response::default(),
            reason: None,
            output_tail: Vec::new(),
            tail_open: false,
            truncated_bytes: 0,
            spawned: None,
            host: host.map(str::to_string),
            planned_hosts: Vec::new(),
            hosts: Vec::new(),
            host_counts: None,
        }
    }

    /// The record of one host of this fleet step, made on first mention.
    fn host_mut(&mut self, host: &str) -> &mut StepRun {
        let i = match self
            .hosts
            .iter()
            .position(|h| h.host.as_deref() == Some(host))
        {
            Some(i) => i,
            None => {
                let h = StepRun::new(&self.step, self.kind, self.phase, Some(host));
                self.hosts.push(h);
                self.hosts.len() - 1
            }
        };
        &mut self.hosts[i]
    }
}

/// A run built record by record as its log is read: its first record must be the
/// `run_started` that begins it; every later one is taken into account in order.
#[derive(Default)]
pub(crate) struct Fold {
    run: Option<Run>,
    seen: bool,
}

impl Fold {
    pub(crate) fn push(&mut self, ts: DateTime<Utc>, event: Event) {
        match &mut self.run {
            Some(run) => run.apply(ts, event),
            None if !self.seen => self.run = Run::started(ts, event),
            None => {}
        }
        self.seen = true;
    }

    /// The run, `None` when the log did not begin with `run_started`.
    pub(crate) fn finish(self, torn: bool) -> Option<Run> {
        let mut run = self.run?;
        run.torn = torn;
        Some(run)
    }
}

impl Run {
    /// Builds the run from its log's records, in order.
    pub(crate) fn from_log(log: &RunLog) -> Option<Run> {
        let mut fold = Fold::default();
        for (ts, event) in log.records.iter().cloned() {
            fold.push(ts, event);
        }
        fold.finish(log.torn)
    }

    /// A run as its `run_started` record begins it; `None` for any other record.
    fn started(ts: DateTime<Utc>, first: Event) -> Option<Run> {
        let Event::RunStarted(started) = first else {
            return None;
        };
        let ev::RunStarted {
            run_id,
            runbook,
            runbook_path,
            runbook_sha256,
            title,
            mode,
            params,
            operator,
            host,
            incident,
            detected_at,
            version,
            log_path,
            alert,
            diagnostic,
            service,
            steps,
            ..
        } = *started;
        // Most runs start every planned step once: room for them all at once, rather than
        // a vector doubled (and copied) four times over a 20-step run.
        let room = steps.len();
        Some(Run {
            run_id,
            runbook,
            title,
            runbook_path,
            runbook_sha256,
            mode,
            operator,
            host,
            incident,
            service,
            planned: steps,
            detected_at: detected_at
                .as_deref()
                .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                .map(|d| d.with_timezone(&Utc)),
            started: ts,
            finished: None,
            status: None,
            reason: None,
            duration_ms: None,
            params,
            version,
            log_path,
            resumed: Vec::new(),
            milestones: Vec::new(),
            steps: Vec::with_capacity(room),
            not_rolled_back: Vec::new(),
            torn: false,
            last_record: ts,
            alert: alert.map(|a| *a),
            diagnostic,
        })
    }

    /// Takes the run's next record into account (every record after its `run_started`).
    fn apply(&mut self, ts: DateTime<Utc>, event: Event) {
        self.last_record = self.last_record.max(ts);
        match event {
            Event::StepStarted(ev::StepStarted {
                step,
                kind,
                attempt,
                phase,
                host,
                hosts,
                ..
            }) => {
                let s = self.step_mut(&step, phase, kind, host.as_deref());
                if let Some(hosts) = hosts {
                    s.planned_hosts = hosts;
                }
                if s.started.is_none() || s.status.is_some() {
                    // A fresh start (or a retry after a prompt) of this step.
                    if s.status == Some(StepStatus::Succeeded) {
                        // It succeeded, and runs again (rolled back, or `--from`): a
                        // new execution, not a retry.
                        s.attempt_base = attempt.saturating_sub(1);
                        s.attempts = 0;
                    }
                    if s.status.is_some() {
                        s.status = None;
                        s.finished = None;
                    }
                    s.spawned = None;
                    s.started.get_or_insert(ts);
                }
                s.attempts = s.attempts.max(attempt.saturating_sub(s.attempt_base));
            }
            Event::StepOutput(ev::StepOutput {
                step,
                text,
                phase,
                truncated_bytes,
                host,
                ..
            }) => {
                let s = self.step_mut(&step, phase, Kind::Auto, host.as_deref());
                s.truncated_bytes += truncated_bytes.unwrap_or(0);
                let mut lines = text.lines();
                // Output shown before its line ended goes on where it stopped.
                if s.tail_open
                    && let (Some(last), Some(more)) = (s.output_tail.last_mut(), lines.next())
                {
                    last.push_str(more);
                }
                s.output_tail.extend(lines.map(str::to_string));
                if !text.is_empty() {
                    s.tail_open = !text.ends_with('\n');
                }
                let excess = s.output_tail.len().saturating_sub(TAIL_LINES);
                s.output_tail.drain(..excess);
            }
            Event::StepFinished(ev::StepFinished {
                step,
                kind,
                status,
                duration_ms,
                attempts,
                exit_code,
                phase,
                response,
                reason,
                host,
                host_counts,
            }) => {
                let s = self.step_mut(&step, phase, kind, host.as_deref());
                s.kind = kind;
                s.host_counts = host_counts;
                s.finished = Some(ts);
                s.status = Some(status);
                s.duration_ms = Some(duration_ms);
                // A step that started over is counted by its starts (older logs gave
                // the attempt number here, counting the earlier execution too).
                if s.attempt_base == 0 {
                    s.attempts = s.attempts.max(attempts);
                }
                s.exit_code = exit_code;
                s.response = response;
                s.reason = reason;
                if s.started.is_none() {
                    // Steps that never ran (skipped) start and end at once.
                    s.started = Some(ts - chrono::Duration::milliseconds(duration_ms as i64));
                }
            }
            Event::StepSpawned(ev::StepSpawned {
                step,
                attempt,
                phase,
                pgid,
                start_ticks,
                boot_id,
            }) => {
                let s = self.step_mut(&step, phase, Kind::Auto, None);
                s.spawned = Some(Spawned {
                    attempt,
                    pgid,
                    start_ticks,
                    boot_id,
                });
            }
            Event::NotRolledBack(ev::NotRolledBack { steps }) => self.not_rolled_back = steps,
            Event::Milestone(ev::Milestone { name, step }) => {
                self.milestones.push(MilestoneAt { name, step, at: ts })
            }
            Event::RunResumed(ev::RunResumed { operator, .. }) => {
                self.resumed.push((ts, operator));
                // A resumed run is unfinished again until its new end.
                self.status = None;
                self.finished = None;
                self.not_rolled_back.clear();
            }
            Event::RunFinished(ev::RunFinished {
                status,
                duration_ms,
                reason,
            }) => {
                self.status = Some(status);
                self.finished = Some(ts);
                self.duration_ms = Some(duration_ms);
                self.reason = reason;
            }
            Event::RunStarted(_)
            | Event::StepRetrying(ev::StepRetrying { .. })
            | Event::PromptOpened(ev::PromptOpened { .. })
            | Event::PromptClosed(ev::PromptClosed { .. })
            | Event::Notice(ev::Notice { .. }) => {}
        }
    }

    /// The record of a step in a phase (of one of its hosts, for a fleet step's host).
    fn step_mut(
        &mut self,
        step: &str,
        phase: Phase,
        kind: Kind,
        host: Option<&str>,
    ) -> &mut StepRun {
        let pos = self
            .steps
            .iter()
            .position(|s| s.step == step && s.phase == phase);
        let i = match pos {
            Some(i) => i,
            None => {
                self.steps.push(StepRun::new(step, kind, phase, None));
                self.steps.len() - 1
            }
        };
        match host {
            Some(h) => self.steps[i].host_mut(h),
            None => &mut self.steps[i],
        }
    }

    /// Steps of `planned` (or of `order`, for a log that does not list them) that the run
    /// never reached: no record of them at all.
    pub(crate) fn not_reached<'a>(&'a self, order: &'a [String]) -> Vec<&'a str> {
        let planned = if self.planned.is_empty() {
            order
        } else {
            &self.planned
        };
        planned
            .iter()
            .filter(|id| !self.steps.iter().any(|s| &s.step == *id))
            .map(String::as_str)
            .collect()
    }

    /// Time spent waiting on people over the whole run (see [`StepRun::people_ms`]).
    pub(crate) fn people_ms(&self) -> u64 {
        self.steps.iter().map(StepRun::people_ms).sum()
    }

    /// Wall time of the run: recorded at its end, else up to its last record.
    pub(crate) fn duration(&self) -> Option<chrono::Duration> {
        self.duration_ms
            .map(|ms| chrono::Duration::milliseconds(ms as i64))
            .or_else(|| self.finished.map(|f| f - self.started))
    }

    /// When the incident was mitigated: the `mitigated` milestone, else a successful end.
    pub(crate) fn mitigated_at(&self) -> Option<DateTime<Utc>> {
        self.milestones
            .iter()
            .find(|m| m.name == "mitigated")
            .map(|m| m.at)
            .or(match self.status {
                Some(RunStatus::Succeeded) => self.finished,
                _ => None,
            })
    }

    /// Time from detection to mitigation (the MTTR the team tracks), when both are known.
    pub(crate) fn time_to_mitigate(&self) -> Option<chrono::Duration> {
        Some(self.mitigated_at()? - self.detected_at?)
    }

    /// Time from detection until the runbook was started.
    pub(crate) fn time_to_engage(&self) -> Option<chrono::Duration> {
        Some(self.started - self.detected_at?)
    }

    /// Everyone who answered a prompt, and the operator who started the run, once each.
    pub(crate) fn operators(&self) -> Vec<String> {
        let mut out = vec![self.operator.clone()];
        for o in self
            .steps
            .iter()
            .filter_map(|s| s.response.operator.as_ref())
            .chain(self.resumed.iter().map(|(_, o)| o))
        {
            if !out.contains(o) {
                out.push(o.clone());
            }
        }
        out
    }

    /// The outcome as a word: the run's status, or `unfinished`.
    pub(crate) fn outcome(&self) -> &'static str {
        self.status.map_or("unfinished", RunStatus::as_str)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn run(lines: &[&str]) -> Run {
        let start = r#"{"ts":"2026-11-26T03:00:00.000Z","event":"run_started","schema_version":1,"run_id":"r","runbook":"x","runbook_path":"/x.toml","runbook_sha256":"00","title":"X","mode":"live","params":{},"operator":"ann","host":"h","incident":null,"detected_at":"2026-11-26T02:50:00Z","version":"0.1.0","log_path":"/l"}"#;
        let text = std::iter::once(start)
            .chain(lines.iter().copied())
            .collect::<Vec<_>>()
            .join("\n");
        let log = crate::log::reader::parse(
            Path::new("l.jsonl"),
            text.as_bytes(),
            crate::log::reader::Detail::Full,
        )
        .unwrap();
        Run::from_log(&log).unwrap()
    }

    #[test]
    fn steps_answers_and_people_time_come_from_the_records() {
        let r = run(&[
            r#"{"ts":"2026-11-26T03:00:01.000Z","event":"step_started","step":"look","kind":"manual","attempt":1,"phase":"run"}"#,
            r#"{"ts":"2026-11-26T03:00:03.500Z","event":"step_finished","step":"look","kind":"manual","status":"succeeded","duration_ms":2500,"attempts":1,"exit_code":null,"phase":"run","answer":"done","operator":"bob","note":"fine","wait_ms":2500}"#,
            r#"{"ts":"2026-11-26T03:00:04.000Z","event":"step_started","step":"fix","kind":"auto","attempt":1,"command":"true","phase":"run"}"#,
            r#"{"ts":"2026-11-26T03:00:04.100Z","event":"step_finished","step":"fix","kind":"auto","status":"succeeded","duration_ms":100,"attempts":1,"exit_code":0,"phase":"run","answer":"yes","operator":"ann","wait_ms":300,"captured":"42"}"#,
            r#"{"ts":"2026-11-26T03:00:04.200Z","event":"milestone","name":"mitigated","step":"fix"}"#,
            r#"{"ts":"2026-11-26T03:00:05.000Z","event":"step_started","step":"fix","kind":"auto","attempt":1,"phase":"rollback"}"#,
        ]);
        assert_eq!(r.status, None);
        assert_eq!(r.outcome(), "unfinished");
        assert_eq!(r.operators(), ["ann", "bob"]);
        assert_eq!(r.people_ms(), 2800);
        assert_eq!(
            r.time_to_mitigate().map(|d| d.num_milliseconds()),
            Some(604_200)
        );
        let fix = &r.steps[1];
        assert_eq!(
            (fix.response.captured.as_deref(), fix.people_ms()),
            (Some("42"), 300)
        );
        let rollback = &r.steps[2];
        assert_eq!(
            (rollback.label().as_str(), rollback.status),
            ("fix (rollback)", None)
        );
    }
}
