//! One run as read back from its log: the model `review` reports on and `resume` goes on from.
//!
//! It holds no more than the log does.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::event::{Event, Kind, Mode, Phase, Response, RunStatus, StepStatus};
use crate::log::reader::RunLog;

/// Lines of output kept per step for review (the tail shown when a step failed).
const TAIL_LINES: usize = 10;

/// One run, as read back from its log.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub run_id: String,
    pub runbook: String,
    pub title: String,
    /// The runbook file as it was when the run started: where, and its sha256.
    pub runbook_path: String,
    pub runbook_sha256: String,
    pub mode: Mode,
    pub operator: String,
    pub host: String,
    pub incident: Option<String>,
    pub detected_at: Option<DateTime<Utc>>,
    pub started: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    /// `None` while the run has no `run_finished` (still running, or it crashed).
    pub status: Option<RunStatus>,
    pub reason: Option<String>,
    pub duration_ms: Option<u64>,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub version: String,
    pub log_path: String,
    /// Operators who resumed the run, with when.
    pub resumed: Vec<(DateTime<Utc>, String)>,
    pub milestones: Vec<MilestoneAt>,
    pub steps: Vec<StepRun>,
    /// The log's last line was torn by a crash and skipped.
    pub torn: bool,
    /// The time of the log's latest record: where an unfinished run stands.
    #[serde(skip)]
    pub last_record: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MilestoneAt {
    pub name: String,
    pub step: String,
    pub at: DateTime<Utc>,
}

/// One step (or one rollback) of a run.
#[derive(Debug, Clone, Serialize)]
pub struct StepRun {
    pub step: String,
    pub kind: Kind,
    pub phase: Phase,
    pub command: Option<String>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    /// `None` when the step started and never finished: it may or may not have run.
    pub status: Option<StepStatus>,
    pub duration_ms: Option<u64>,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    /// The person's side (answer, operator, note, wait, value typed, value captured), as
    /// its `step_finished` recorded it.
    #[serde(flatten)]
    pub response: Response,
    pub reason: Option<String>,
    /// The last lines of output (stdout and stderr interleaved as they came).
    pub output_tail: Vec<String>,
    pub truncated_bytes: u64,
}

/// The answer fields read as the step's own (`s.captured`), as `exec::resume` reads them.
impl std::ops::Deref for StepRun {
    type Target = Response;

    fn deref(&self) -> &Response {
        &self.response
    }
}

impl StepRun {
    /// Time spent waiting on a person at this step: the `wait_ms` its prompt recorded (a
    /// manual step, a confirmation, a failure prompt). The one definition `report` and
    /// `stats` share, and the one `runbook stats --help` and docs/stats.md give.
    pub fn people_ms(&self) -> u64 {
        self.response.wait_ms.unwrap_or(0)
    }

    /// The step's id, marked when this is its rollback.
    pub fn label(&self) -> String {
        if self.phase == Phase::Rollback {
            format!("{} (rollback)", self.step)
        } else {
            self.step.clone()
        }
    }
}

impl Run {
    /// Builds the run from its log's records, in order.
    pub fn from_log(log: &RunLog) -> Option<Run> {
        let (ts, Event::RunStarted { .. }) = log.records.first()? else {
            return None;
        };
        let mut run = match &log.records[0].1 {
            Event::RunStarted {
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
                ..
            } => Run {
                run_id: run_id.clone(),
                runbook: runbook.clone(),
                title: title.clone(),
                runbook_path: runbook_path.clone(),
                runbook_sha256: runbook_sha256.clone(),
                mode: *mode,
                operator: operator.clone(),
                host: host.clone(),
                incident: incident.clone(),
                detected_at: detected_at
                    .as_deref()
                    .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                    .map(|d| d.with_timezone(&Utc)),
                started: *ts,
                finished: None,
                status: None,
                reason: None,
                duration_ms: None,
                params: params.clone(),
                version: version.clone(),
                log_path: log_path.clone(),
                resumed: Vec::new(),
                milestones: Vec::new(),
                steps: Vec::new(),
                torn: log.torn,
                last_record: log.records.iter().map(|(t, _)| *t).max().unwrap_or(*ts),
            },
            _ => return None,
        };
        for (ts, event) in &log.records[1..] {
            match event {
                Event::StepStarted {
                    step,
                    kind,
                    attempt,
                    command,
                    phase,
                } => {
                    let s = run.step_mut(step, *phase, *kind);
                    if s.started.is_none() || s.status.is_some() {
                        // A fresh start (or a retry after a prompt) of this step.
                        if s.status.is_some() {
                            s.status = None;
                            s.finished = None;
                        }
                        s.started.get_or_insert(*ts);
                    }
                    s.attempts = s.attempts.max(*attempt);
                    if command.is_some() {
                        s.command.clone_from(command);
                    }
                }
                Event::StepOutput {
                    step,
                    text,
                    phase,
                    truncated_bytes,
                    stream,
                } => {
                    let s = run.step_mut(step, *phase, Kind::Auto);
                    s.truncated_bytes += truncated_bytes.unwrap_or(0);
                    let _ = stream;
                    s.output_tail.extend(text.lines().map(str::to_string));
                    let excess = s.output_tail.len().saturating_sub(TAIL_LINES);
                    s.output_tail.drain(..excess);
                }
                Event::StepFinished {
                    step,
                    kind,
                    status,
                    duration_ms,
                    attempts,
                    exit_code,
                    phase,
                    response,
                    reason,
                } => {
                    let s = run.step_mut(step, *phase, *kind);
                    s.kind = *kind;
                    s.finished = Some(*ts);
                    s.status = Some(*status);
                    s.duration_ms = Some(*duration_ms);
                    s.attempts = s.attempts.max(*attempts);
                    s.exit_code = *exit_code;
                    s.response.clone_from(response);
                    s.reason.clone_from(reason);
                    if s.started.is_none() {
                        // Steps that never ran (skipped) start and end at once.
                        s.started = Some(*ts - chrono::Duration::milliseconds(*duration_ms as i64));
                    }
                }
                Event::Milestone { name, step } => run.milestones.push(MilestoneAt {
                    name: name.clone(),
                    step: step.clone(),
                    at: *ts,
                }),
                Event::RunResumed { operator, .. } => {
                    run.resumed.push((*ts, operator.clone()));
                    // A resumed run is unfinished again until its new end.
                    run.status = None;
                    run.finished = None;
                }
                Event::RunFinished {
                    status,
                    duration_ms,
                    reason,
                } => {
                    run.status = Some(*status);
                    run.finished = Some(*ts);
                    run.duration_ms = Some(*duration_ms);
                    run.reason.clone_from(reason);
                }
                Event::RunStarted { .. } => {}
            }
        }
        Some(run)
    }

    fn step_mut(&mut self, step: &str, phase: Phase, kind: Kind) -> &mut StepRun {
        let pos = self
            .steps
            .iter()
            .position(|s| s.step == step && s.phase == phase);
        let i = match pos {
            Some(i) => i,
            None => {
                self.steps.push(StepRun {
                    step: step.to_string(),
                    kind,
                    phase,
                    command: None,
                    started: None,
                    finished: None,
                    status: None,
                    duration_ms: None,
                    attempts: 0,
                    exit_code: None,
                    response: Response::default(),
                    reason: None,
                    output_tail: Vec::new(),
                    truncated_bytes: 0,
                });
                self.steps.len() - 1
            }
        };
        &mut self.steps[i]
    }

    /// Time spent waiting on people over the whole run (see [`StepRun::people_ms`]).
    pub fn people_ms(&self) -> u64 {
        self.steps.iter().map(StepRun::people_ms).sum()
    }

    /// Wall time of the run: recorded at its end, else up to its last record.
    pub fn duration(&self) -> Option<chrono::Duration> {
        self.duration_ms
            .map(|ms| chrono::Duration::milliseconds(ms as i64))
            .or_else(|| self.finished.map(|f| f - self.started))
    }

    /// When the incident was mitigated: the `mitigated` milestone, else a successful end.
    pub fn mitigated_at(&self) -> Option<DateTime<Utc>> {
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
    pub fn time_to_mitigate(&self) -> Option<chrono::Duration> {
        Some(self.mitigated_at()? - self.detected_at?)
    }

    /// Time from detection until the runbook was started.
    pub fn time_to_engage(&self) -> Option<chrono::Duration> {
        Some(self.started - self.detected_at?)
    }

    /// Everyone who answered a prompt, and the operator who started the run, once each.
    pub fn operators(&self) -> Vec<String> {
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
    pub fn outcome(&self) -> &'static str {
        self.status.map_or("unfinished", RunStatus::as_str)
    }
}
