//! The one channel from the executor to its sinks. The executor never prints: it emits
//! [`Event`]s, and the terminal display and the execution log (spec §4) each turn them
//! into output. The serialised form of an event *is* a log line.

use serde::{Deserialize, Serialize};

/// Version of the log's record format, written on `run_started`. Readers refuse newer ones.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Live,
    DryRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Run,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Auto,
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
    DryRun,
    Aborted,
}

impl StepStatus {
    /// Whether dependents may run after a step that ended this way.
    pub fn satisfies(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded | StepStatus::Skipped | StepStatus::DryRun
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::TimedOut => "timed_out",
            StepStatus::Skipped => "skipped",
            StepStatus::DryRun => "dry_run",
            StepStatus::Aborted => "aborted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    Aborted,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Aborted => "aborted",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// What a person answered at a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Done,
    Yes,
    Skip,
    Retry,
    Abort,
    Run,
    Stop,
}

impl Answer {
    /// The word for this answer, as typed at a prompt and written in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Done => "done",
            Answer::Yes => "yes",
            Answer::Skip => "skip",
            Answer::Retry => "retry",
            Answer::Abort => "abort",
            Answer::Run => "run",
            Answer::Stop => "stop",
        }
    }
}

/// The person's side of a manual step, a confirmation or a failure prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// The value typed for an `ask` (secrets never come through here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value a `capture` kept (masked), so `resume` can restore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        schema_version: u32,
        run_id: String,
        runbook: String,
        runbook_path: String,
        runbook_sha256: String,
        title: String,
        mode: Mode,
        params: serde_json::Map<String, serde_json::Value>,
        operator: String,
        host: String,
        incident: Option<String>,
        detected_at: Option<String>,
        version: String,
        log_path: String,
    },
    StepStarted {
        step: String,
        kind: Kind,
        attempt: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        command: Option<String>,
        phase: Phase,
    },
    StepOutput {
        step: String,
        stream: Stream,
        text: String,
        phase: Phase,
        /// Set on the one marker written when the per-step cap is reached at the end.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        truncated_bytes: Option<u64>,
    },
    StepFinished {
        step: String,
        kind: Kind,
        status: StepStatus,
        duration_ms: u64,
        attempts: u32,
        exit_code: Option<i32>,
        phase: Phase,
        #[serde(flatten)]
        response: Response,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Milestone {
        name: String,
        step: String,
    },
    RunResumed {
        run_id: String,
        operator: String,
    },
    RunFinished {
        status: RunStatus,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// One line of the log: an event stamped with its time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub ts: String,
    #[serde(flatten)]
    pub event: Event,
}

/// RFC 3339 in UTC with milliseconds, as every log line's `ts`.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Receives events; sinks must not block the executor for long.
pub trait Sink: Send {
    fn event(&mut self, event: &Event);
}
