//! The facts of a run: what the executor emits and the execution log holds (spec §4). The
//! serialised form of an event *is* a log line; the terminal display reads the same events.

use std::io;

use serde::{Deserialize, Serialize};

/// Version of the log's record format, written on `run_started`. Readers refuse newer ones.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Live,
    DryRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// A host of a fleet step that `ssh` could not connect or log in to (exit 255 before
    /// the command started).
    Unreachable,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::TimedOut => "timed_out",
            StepStatus::Skipped => "skipped",
            StepStatus::DryRun => "dry_run",
            StepStatus::Aborted => "aborted",
            StepStatus::Unreachable => "unreachable",
        }
    }

    /// Failed, timed out or unreachable: what a failure policy counts.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            StepStatus::Failed | StepStatus::TimedOut | StepStatus::Unreachable
        )
    }
}

/// The hosts of a fleet step by how they ended, on the step's own `step_finished`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCounts {
    #[serde(default)]
    pub succeeded: u32,
    #[serde(default)]
    pub failed: u32,
    #[serde(default)]
    pub timed_out: u32,
    #[serde(default)]
    pub unreachable: u32,
    #[serde(default)]
    pub skipped: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dry_run: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub aborted: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl HostCounts {
    pub fn add(&mut self, status: StepStatus) {
        *match status {
            StepStatus::Succeeded => &mut self.succeeded,
            StepStatus::Failed => &mut self.failed,
            StepStatus::TimedOut => &mut self.timed_out,
            StepStatus::Unreachable => &mut self.unreachable,
            StepStatus::Skipped => &mut self.skipped,
            StepStatus::DryRun => &mut self.dry_run,
            StepStatus::Aborted => &mut self.aborted,
        } += 1;
    }

    pub fn total(&self) -> u32 {
        self.succeeded
            + self.failed
            + self.timed_out
            + self.unreachable
            + self.skipped
            + self.dry_run
            + self.aborted
    }

    /// Failed, timed out or unreachable.
    pub fn failures(&self) -> u32 {
        self.failed + self.timed_out + self.unreachable
    }

    /// The non-zero counts in words: `19 succeeded, 1 unreachable`.
    pub fn text(&self) -> String {
        let parts: Vec<String> = [
            (self.succeeded, "succeeded"),
            (self.failed, "failed"),
            (self.timed_out, "timed out"),
            (self.unreachable, "unreachable"),
            (self.skipped, "skipped"),
            (self.dry_run, "dry run"),
            (self.aborted, "aborted"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
        if parts.is_empty() {
            "no host".into()
        } else {
            parts.join(", ")
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

/// What to do with succeeded steps that have a `rollback` when a live run fails (spec §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RollbackMode {
    Ask,
    Auto,
    Never,
}

/// The options a run was started with, kept in `run_started` so `resume` goes on with them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// Most automated steps running at once.
    pub parallel: usize,
    /// Output kept in the log per step attempt, in bytes.
    pub output_cap: u64,
    pub rollback: RollbackMode,
    /// `--ssh-config`: the ssh client configuration file of fleet steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_config: Option<String>,
}

/// Which question a prompt asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKind {
    /// A manual step: done / skip / abort.
    Manual,
    /// A `confirm = true` step: yes / skip / abort.
    Confirm,
    /// A failed step with `on_failure = "prompt"`: retry / skip / abort.
    Failure,
    /// A rollback after a failed run: run / skip / stop.
    Rollback,
    /// On resume, a step that started and has no recorded end: retry / done / skip / abort.
    InDoubt,
    /// On resume, a step that failed, timed out or was aborted: retry / done / skip / abort.
    Stopped,
    /// On resume, a step whose processes are still running (the executor was killed):
    /// wait for them, or stop them.
    Running,
    /// Ctrl-C on a terminal: stop here, roll back the completed steps, or carry on. A
    /// question about the whole run: its `prompt_opened` names no step.
    Interrupt,
}

/// How much a notice matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// A succeeded step whose change is still in place: its rollback was not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRollback {
    pub step: String,
    /// The rendered rollback command (secrets as `***`).
    pub command: String,
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
    Wait,
    /// At an interrupt: stop, and roll back the steps that completed.
    RollBack,
    /// At an interrupt: go on as if it had not happened.
    CarryOn,
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
            Answer::Wait => "wait",
            Answer::RollBack => "roll_back",
            Answer::CarryOn => "carry_on",
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

/// The name of every event this version knows, as the log writes it.
pub(crate) const EVENT_NAMES: &[&str] = &[
    "run_started",
    "step_started",
    "step_spawned",
    "step_output",
    "step_finished",
    "step_retrying",
    "prompt_opened",
    "prompt_closed",
    "notice",
    "not_rolled_back",
    "milestone",
    "run_resumed",
    "run_finished",
];

impl Event {
    /// The event named `name`, read from `d` (a map of its fields; others are ignored).
    pub(crate) fn named<'de, D: serde::Deserializer<'de>>(
        name: &str,
        d: D,
    ) -> Result<Event, D::Error> {
        Ok(match name {
            "run_started" => Event::RunStarted(Box::new(RunStarted::deserialize(d)?)),
            "step_started" => Event::StepStarted(StepStarted::deserialize(d)?),
            "step_spawned" => Event::StepSpawned(StepSpawned::deserialize(d)?),
            "step_output" => Event::StepOutput(StepOutput::deserialize(d)?),
            "step_finished" => Event::StepFinished(StepFinished::deserialize(d)?),
            "step_retrying" => Event::StepRetrying(StepRetrying::deserialize(d)?),
            "prompt_opened" => Event::PromptOpened(PromptOpened::deserialize(d)?),
            "prompt_closed" => Event::PromptClosed(PromptClosed::deserialize(d)?),
            "notice" => Event::Notice(Notice::deserialize(d)?),
            "not_rolled_back" => Event::NotRolledBack(NotRolledBack::deserialize(d)?),
            "milestone" => Event::Milestone(Milestone::deserialize(d)?),
            "run_resumed" => Event::RunResumed(RunResumed::deserialize(d)?),
            "run_finished" => Event::RunFinished(RunFinished::deserialize(d)?),
            other => {
                return Err(serde::de::Error::unknown_variant(other, EVENT_NAMES));
            }
        })
    }
}

impl<'de> Deserialize<'de> for Event {
    /// Reads `"event"` (after `"ts"`, which the writer puts first), then the named event's
    /// fields straight from the rest of the object: no line is buffered. An object with
    /// other fields before `"event"` is refused here; `log::reader` reads it the slow way.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Event;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object whose \"event\" names it, before its other fields")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Event, A::Error> {
                use serde::de::Error;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "event" => {
                            let name: std::borrow::Cow<'de, str> = map.next_value()?;
                            let rest = serde::de::value::MapAccessDeserializer::new(map);
                            return Event::named(&name, rest);
                        }
                        "ts" => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                        other => {
                            return Err(A::Error::custom(format!("`{other}` before \"event\"")));
                        }
                    }
                }
                Err(A::Error::missing_field("event"))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// A fact of a run: one line of the log. Serialised as its struct's fields with `"event"`
/// naming it (`{"event":"step_started","step":...}`); read back by [`Event::from_line`]'s
/// dispatch, which deserialises the named struct directly (an internally tagged enum would
/// buffer every line first).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted(Box<RunStarted>),
    StepStarted(StepStarted),
    /// The step's process group exists: where to find it if the executor dies. Written
    /// right after the spawn (`step_started` is on disk before it).
    StepSpawned(StepSpawned),
    StepOutput(StepOutput),
    StepFinished(StepFinished),
    /// An attempt failed and another follows after `delay_ms`.
    StepRetrying(StepRetrying),
    /// A question is on screen; only one at a time.
    PromptOpened(PromptOpened),
    /// The question was answered, or taken back (`answer` absent).
    PromptClosed(PromptClosed),
    /// Something the operator should know that is not a step's start or end.
    Notice(Notice),
    /// The run ends with these changes still applied (newest first): undo them by hand.
    NotRolledBack(NotRolledBack),
    Milestone(Milestone),
    RunResumed(RunResumed),
    RunFinished(RunFinished),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStarted {
    pub schema_version: u32,
    pub run_id: String,
    pub runbook: String,
    pub runbook_path: String,
    pub runbook_sha256: String,
    pub title: String,
    pub mode: Mode,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub operator: String,
    pub host: String,
    pub incident: Option<String>,
    pub detected_at: Option<String>,
    pub version: String,
    pub log_path: String,
    /// Absent in logs written before options were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<RunOptions>,
    /// The alert the run responds to (`exec --alert`, `--alert-file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Box<AlertRecord>>,
    /// A diagnostic rehearsal (`exec --diagnose`, started by `runbook serve`): read-only
    /// steps only, nobody asked, manual steps recorded as waiting.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub diagnostic: bool,
    /// The runbook's `service`, else the alert's `service` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Every step id in run order: a review lists the steps the run never reached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// The run's `timeout` in ms, counted from this record (the display's deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepStarted {
    pub step: String,
    pub kind: Kind,
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub phase: Phase,
    /// The last attempt this start may lead to (its `retries` allow), when above 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<u32>,
    /// The step's `timeout` in ms, for each attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// A manual step's instructions as rendered (secrets as `***`): what the person read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// A fleet step on one host: the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A fleet step itself: the hosts it runs on, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
}

/// The step's process group exists: where to find it if the executor dies. Written
/// right after the spawn (`step_started` is on disk before it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepSpawned {
    pub step: String,
    pub attempt: u32,
    pub phase: Phase,
    /// Process group id (the shell's pid).
    pub pgid: u32,
    /// The shell's start time, in clock ticks since boot (`/proc/PID/stat`), to tell it
    /// from a later process that reuses the id.
    pub start_ticks: u64,
    /// The kernel's boot id: after a reboot nothing of the run survives.
    pub boot_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepOutput {
    pub step: String,
    pub stream: Stream,
    pub text: String,
    pub phase: Phase,
    /// Set on the one marker written when the per-step cap is reached at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepFinished {
    pub step: String,
    pub kind: Kind,
    pub status: StepStatus,
    pub duration_ms: u64,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub phase: Phase,
    #[serde(flatten)]
    pub response: Response,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A fleet step on one host: the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A fleet step itself: its hosts by how they ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_counts: Option<HostCounts>,
}

/// An attempt failed and another follows after `delay_ms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRetrying {
    pub step: String,
    pub attempt: u32,
    pub reason: String,
    pub delay_ms: u64,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A question is on screen; only one at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromptOpened {
    /// Absent for a question about the whole run (`interrupt`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
    pub prompt: PromptKind,
}

/// The question was answered, or taken back (`answer` absent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromptClosed {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
    pub prompt: PromptKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    pub shown_ms: u64,
}

/// Something the operator should know that is not a step's start or end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notice {
    pub level: Level,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// The run ends with these changes still applied (newest first): undo them by hand.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotRolledBack {
    pub steps: Vec<PendingRollback>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Milestone {
    pub name: String,
    pub step: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResumed {
    pub run_id: String,
    pub operator: String,
    /// `--from STEP`: this step and everything after it run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The run's `timeout` in ms, counted anew from this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFinished {
    pub status: RunStatus,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The alert a run responds to, as `run_started` records it (spec §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// The id `runbook alerts` shows: the fingerprint, with `-N` for a later firing.
    pub id: String,
    /// The `alertname` label.
    pub name: String,
    /// `firing` or `resolved`, when the run started.
    pub status: String,
    pub fingerprint: String,
    /// The alert's `startsAt` (RFC 3339).
    pub starts_at: String,
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_key: Option<String>,
    /// The diagnostic rehearsal `runbook serve` ran for the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostic_run: Option<String>,
}

/// RFC 3339 in UTC with milliseconds, as every log line's `ts`.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = Vec::with_capacity(24);
    write_timestamp(&mut out, t);
    // Only ASCII digits and separators were written.
    String::from_utf8(out)
        .unwrap_or_else(|_| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Appends [`timestamp`]'s text to `out`: written digit by digit, as every record of the
/// log takes one (chrono's general formatter costs more than the rest of the record).
pub(crate) fn write_timestamp(out: &mut Vec<u8>, t: chrono::DateTime<chrono::Utc>) {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        // Written with a sign and more digits: chrono knows how.
        let text = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        return out.extend_from_slice(text.as_bytes());
    }
    let digits = |out: &mut Vec<u8>, n: u32, width: u32| {
        for p in (0..width).rev() {
            out.push(b'0' + (n / 10u32.pow(p) % 10) as u8);
        }
    };
    digits(out, year as u32, 4);
    out.push(b'-');
    digits(out, t.month(), 2);
    out.push(b'-');
    digits(out, t.day(), 2);
    out.push(b'T');
    digits(out, t.hour(), 2);
    out.push(b':');
    digits(out, t.minute(), 2);
    out.push(b':');
    // A leap second shows as second 60, as chrono writes it.
    let (second, millis) = match t.nanosecond() {
        n if n >= 1_000_000_000 => (t.second() + 1, (n - 1_000_000_000) / 1_000_000),
        n => (t.second(), n / 1_000_000),
    };
    digits(out, second, 2);
    out.push(b'.');
    digits(out, millis, 3);
    out.push(b'Z');
}

/// A piece of a step's output, already masked, as it came from the process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output<'a> {
    pub step: &'a str,
    /// A fleet step's output from one host.
    pub host: Option<&'a str>,
    pub phase: Phase,
    pub stream: Stream,
    pub bytes: &'a [u8],
}

/// Receives the run's events and output. Only the log's errors matter: a display that
/// cannot draw must not stop a run.
pub(crate) trait Sink: Send {
    fn event(&mut self, event: &Event) -> io::Result<()>;
    fn output(&mut self, output: &Output<'_>) -> io::Result<()>;

    /// Several events at once: a durable log makes them durable together (one sync for
    /// the starts of a batch of hosts).
    fn events(&mut self, events: &[Event]) -> io::Result<()> {
        events.iter().try_for_each(|e| self.event(e))
    }

    /// An event whose sync is left to a later [`Sink::sync_then`] (a step's
    /// start, synced while its shell starts).
    fn event_unsynced(&mut self, event: &Event) -> io::Result<()> {
        self.event(event)
    }

    /// Makes everything recorded so far durable, then calls `then` with the result: on a
    /// thread of the sink's own where it has one, the caller going on meanwhile.
    fn sync_then(&mut self, then: Box<dyn FnOnce(io::Result<()>) + Send>) {
        then(Ok(()))
    }

    /// Whether a sync is known to cost less than starting a step while it is made.
    fn syncs_are_cheap(&self) -> bool {
        true
    }
}

/// The log could not be written: the run cannot be trusted to be recorded from here on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot write the execution log: {0}")]
pub(crate) struct LogFailed(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};

    #[test]
    fn timestamps_read_as_chrono_writes_them() {
        let chrono =
            |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        // A spread of instants over three thousand years, to the nanosecond.
        let mut t = Utc.with_ymd_and_hms(1901, 1, 1, 0, 0, 0).unwrap();
        for i in 0..5000i64 {
            t += chrono::Duration::nanoseconds(i * 7_919_000_000_013 + 999_999);
            assert_eq!(timestamp(t), chrono(t));
        }
        // A leap second, the smallest and largest four-digit years, and beyond them.
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 1_500))
            .unwrap()
            .and_utc();
        let edges = [
            leap,
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(),
        ];
        for t in edges {
            assert_eq!(timestamp(t), chrono(t));
        }
        assert_eq!(timestamp(leap), "2016-12-31T23:59:60.500Z");
    }
}
