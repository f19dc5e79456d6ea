//! Facts about the run: summary, detection, timeline, resolution, the output of failed steps.

use chrono::{DateTime, Utc};

use super::{
    DetectedBy, Detection, FailedOutput, Resolution, ResolutionStep, Summary, TimelineRow,
};
use crate::event::{Kind, Phase, StepStatus};
use crate::format::{self, delta, millis, stamp, step_status};
use crate::log::run::{Run, StepRun};
use crate::runbook::Runbook;

/// The run, with what the report adds to the log: step titles and `readonly` flags from
/// the runbook file when it is the one that ran, and times written relative to the run.
pub(super) struct Facts<'a> {
    pub(super) run: &'a Run,
    pub(super) runbook: Option<&'a Runbook>,
    pub(super) rehearsal: bool,
}

impl Facts<'_> {
    pub(super) fn title(&self, id: &str) -> String {
        self.runbook
            .and_then(|rb| rb.step(id))
            .map_or_else(|| id.to_string(), |s| s.title.clone())
    }

    /// `id (Title)`, or just the id when there is no other title.
    pub(super) fn named(&self, id: &str) -> String {
        let t = self.title(id);
        if t == id { t } else { format!("{id} ({t})") }
    }

    pub(super) fn readonly(&self, id: &str) -> bool {
        self.runbook
            .and_then(|rb| rb.step(id))
            .is_some_and(|s| s.readonly)
    }

    /// Clock time, with the day only when it is not the day the run started.
    pub(super) fn clock(&self, t: DateTime<Utc>) -> String {
        if t.date_naive() == self.run.started.date_naive() {
            format::clock(t)
        } else {
            format::datetime(t)
        }
    }

    /// From the start of the run: `+1m 3s`, or `-5m 0s` before it.
    pub(super) fn offset(&self, t: DateTime<Utc>) -> String {
        let d = t - self.run.started;
        if d < chrono::Duration::zero() {
            delta(d)
        } else {
            format!("+{}", delta(d))
        }
    }

    pub(super) fn run_ms(&self) -> Option<i64> {
        self.run.duration().map(|d| d.num_milliseconds())
    }

    /// Steps the run never reached, in run order (from the log, else the runbook file).
    pub(super) fn not_reached(&self) -> Vec<String> {
        let order: Vec<String> = self
            .runbook
            .map(|rb| rb.order.iter().map(|&i| rb.steps[i].id.clone()).collect())
            .unwrap_or_default();
        self.run
            .not_reached(&order)
            .into_iter()
            .map(str::to_string)
            .collect()
    }
}

/// How the run ended, for people: a rehearsal is "finished", and says how many read-only
/// checks failed, never "succeeded".
pub(super) fn outcome_text(facts: &Facts) -> String {
    let run = facts.run;
    if !facts.rehearsal {
        return run.outcome().to_string();
    }
    let failed = run
        .steps
        .iter()
        .filter(|s| matches!(s.status, Some(StepStatus::Failed | StepStatus::TimedOut)))
        .count();
    let checks = match failed {
        0 => String::new(),
        1 => ", 1 read-only check failed".into(),
        n => format!(", {n} read-only checks failed"),
    };
    match run.status {
        Some(crate::event::RunStatus::Succeeded) => format!("rehearsal finished{checks}"),
        Some(st) => format!("rehearsal {}{checks}", st.as_str()),
        None => format!("rehearsal unfinished{checks}"),
    }
}

pub(super) fn summary(facts: &Facts) -> Summary {
    let run = facts.run;
    let run_ms = facts.run_ms();
    let run_steps: Vec<&StepRun> = run.steps.iter().filter(|s| s.phase == Phase::Run).collect();
    let count = |f: &dyn Fn(&StepRun) -> bool| run_steps.iter().filter(|s| f(s)).count();
    let people_wait_ms = run.people_ms() as i64;
    let summary = Summary {
        text: String::new(),
        steps: run_steps.len(),
        succeeded: count(&|s| s.status == Some(StepStatus::Succeeded)),
        failed: count(&|s| matches!(s.status, Some(StepStatus::Failed | StepStatus::TimedOut))),
        skipped: count(&|s| s.status == Some(StepStatus::Skipped)),
        dry_run: count(&|s| s.status == Some(StepStatus::DryRun)),
        aborted: count(&|s| s.status == Some(StepStatus::Aborted)),
        in_doubt: count(&|s| s.status.is_none()),
        not_reached: facts.not_reached(),
        manual_steps: count(&|s| s.kind == Kind::Manual),
        rollbacks: run.steps.len() - run_steps.len(),
        retried: count(&|s| s.attempts > 1),
        people_wait_ms,
        people_wait: millis(people_wait_ms),
        people_share: run_ms.filter(|ms| *ms > 0).map(|ms| {
            ((people_wait_ms as f64 / ms as f64) * 100.0)
                .round()
                .min(100.0) as u32
        }),
    };
    Summary {
        text: summary_text(facts, &summary),
        ..summary
    }
}

pub(super) fn detection(facts: &Facts) -> Detection {
    let run = facts.run;
    let mitigated_milestone = run.milestones.iter().find(|m| m.name == "mitigated");
    // A rehearsal mitigates nothing, even when it reaches its end.
    let mitigated_at = run.mitigated_at().filter(|_| !facts.rehearsal);
    let time_to_mitigate = run.time_to_mitigate().filter(|_| !facts.rehearsal);
    Detection {
        detected: run.detected_at.is_some(),
        detected_at: run.detected_at.map(stamp),
        time_to_engage_ms: run.time_to_engage().map(|d| d.num_milliseconds()),
        time_to_engage: run.time_to_engage().map(delta),
        mitigated_at: mitigated_at.map(stamp),
        mitigated_by: mitigated_at.map(|_| match mitigated_milestone {
            Some(m) => format!("the mitigated milestone of step {}", m.step),
            None => "the run's successful end".to_string(),
        }),
        time_to_mitigate_ms: time_to_mitigate.map(|d| d.num_milliseconds()),
        time_to_mitigate: time_to_mitigate.map(delta),
        resolved_at: run
            .milestones
            .iter()
            .find(|m| m.name == "resolved")
            .map(|m| stamp(m.at)),
        alert: run.alert.as_ref().map(detected_by),
    }
}

fn detected_by(a: &crate::event::AlertRecord) -> DetectedBy {
    let labels: Vec<String> = a
        .labels
        .iter()
        .filter(|(k, _)| *k != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let started = chrono::DateTime::parse_from_rfc3339(&a.starts_at)
        .map(|t| stamp(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| a.starts_at.clone());
    DetectedBy {
        name: a.name.clone(),
        id: a.id.clone(),
        status: a.status.clone(),
        labels: labels.join(", "),
        summary: a
            .annotations
            .get("summary")
            .or(a.annotations.get("description"))
            .cloned(),
        started_at: started,
        // The link comes from the network: a `javascript:` one must not reach a page.
        generator_url: a
            .generator_url
            .clone()
            .filter(|u| u.starts_with("http://") || u.starts_with("https://")),
        diagnostic_run: a.diagnostic_run.clone(),
    }
}

/// The timeline: the log's order is the order things happened in (a skipped step sits
/// where it was decided), with each milestone right after the step that reached it.
pub(super) fn timeline(facts: &Facts) -> Vec<TimelineRow> {
    let run = facts.run;
    let row = |event: &'static str, t: DateTime<Utc>, what: String| TimelineRow {
        event,
        at: facts.clock(t),
        ts: crate::event::timestamp(t),
        offset: facts.offset(t),
        offset_ms: (t - run.started).num_milliseconds(),
        step: None,
        what,
        kind: None,
        status: None,
        bad: false,
        duration_ms: None,
        duration: None,
        attempts: 0,
        answer: None,
        operator: None,
        wait: None,
        value: None,
        note: None,
        reason: None,
        details: String::new(),
        hosts: None,
    };
    let mut timeline = Vec::new();
    if let Some(d) = run.detected_at {
        timeline.push(row("detected", d, "incident detected".into()));
    }
    let mode = if facts.rehearsal {
        "rehearsal"
    } else {
        "live run"
    };
    timeline.push(row(
        "run_started",
        run.started,
        format!("{mode} started by {} on {}", run.operator, run.host),
    ));
    let mut resumed = run.resumed.iter().peekable();
    for s in &run.steps {
        let at = s.started.or(s.finished).unwrap_or(run.started);
        while let Some((t, who)) = resumed.next_if(|(t, _)| *t <= at) {
            timeline.push(row("resumed", *t, format!("run resumed by {who}")));
        }
        let rollback = s.phase == Phase::Rollback;
        let mut r = if rollback {
            row(
                "rollback",
                at,
                format!("roll back: {}", facts.title(&s.step)),
            )
        } else {
            row("step", at, facts.title(&s.step))
        };
        r.step = Some(s.step.clone());
        r.kind = Some(s.kind);
        r.status = Some(step_status(s.status).to_string());
        r.bad = !s.status.is_some_and(|st| {
            matches!(
                st,
                StepStatus::Succeeded | StepStatus::Skipped | StepStatus::DryRun
            )
        });
        r.duration_ms = s.duration_ms;
        r.duration = s.duration_ms.map(|ms| millis(ms as i64));
        r.attempts = s.attempts;
        r.answer = s.response.answer.map(|a| a.as_str().to_string());
        r.operator = s.response.answer.and(s.response.operator.clone());
        r.wait = s
            .response
            .answer
            .and(s.response.wait_ms)
            .map(|ms| millis(ms as i64));
        r.value.clone_from(&s.response.value);
        r.note.clone_from(&s.response.note);
        r.reason.clone_from(&s.reason);
        r.details = details(s);
        r.hosts = crate::review::hosts::of(s);
        if let Some(h) = &r.hosts {
            r.details = [h.headline(), std::mem::take(&mut r.details)]
                .into_iter()
                .filter(|d| !d.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
        }
        timeline.push(r);
        if !rollback {
            for m in run.milestones.iter().filter(|m| m.step == s.step) {
                let mut r = row("milestone", m.at, format!("milestone: {}", m.name));
                r.step = Some(m.step.clone());
                timeline.push(r);
            }
        }
    }
    for (t, who) in resumed {
        timeline.push(row("resumed", *t, format!("run resumed by {who}")));
    }
    // Steps never reached have no time: they sit at the end, before the run's end.
    let end = run.finished.unwrap_or(run.last_record);
    for id in facts.not_reached() {
        let mut r = row("not_reached", end, facts.title(&id));
        r.at = "-".into();
        r.offset = "-".into();
        r.status = Some("not reached".into());
        r.details = "the run ended before it".into();
        r.step = Some(id);
        timeline.push(r);
    }
    if let (Some(t), Some(status)) = (run.finished, run.status) {
        let mut what = format!("run {}", status.as_str());
        if let Some(r) = &run.reason {
            what.push_str(&format!(": {r}"));
        }
        let run_ms = facts.run_ms();
        let mut r = row("run_finished", t, what);
        r.status = Some(status.as_str().to_string());
        r.duration_ms = run_ms.map(|ms| ms.max(0) as u64);
        r.duration = run_ms.map(millis);
        timeline.push(r);
    }
    timeline
}

/// Hosts of a fleet step whose last output the report shows (the first that failed).
const FAILED_HOSTS_SHOWN: usize = 3;

pub(super) fn failed_output(run: &Run) -> Vec<FailedOutput> {
    let mut out = Vec::new();
    for s in &run.steps {
        let failed = matches!(
            s.status,
            Some(StepStatus::Failed | StepStatus::TimedOut) | None
        );
        if failed && !s.output_tail.is_empty() {
            out.push(FailedOutput {
                step: s.label(),
                status: step_status(s.status).to_string(),
                lines: s.output_tail.clone(),
                text: s.output_tail.join("\n"),
                truncated_bytes: s.truncated_bytes,
            });
        }
        let hosts = s
            .hosts
            .iter()
            .filter(|h| h.status.is_some_and(StepStatus::is_failure) && !h.output_tail.is_empty());
        for h in hosts.take(FAILED_HOSTS_SHOWN) {
            out.push(FailedOutput {
                step: format!("{} on {}", s.label(), h.host.as_deref().unwrap_or_default()),
                status: step_status(h.status).to_string(),
                lines: h.output_tail.clone(),
                text: h.output_tail.join("\n"),
                truncated_bytes: h.truncated_bytes,
            });
        }
    }
    out
}

/// The steps that changed things: done manual steps and succeeded automated steps that
/// are not read-only (all of them when the runbook file cannot say which are).
pub(super) fn resolution(facts: &Facts) -> Resolution {
    let run = facts.run;
    let steps = if facts.rehearsal {
        // A rehearsal changes nothing: its commands were shown, not run.
        Vec::new()
    } else {
        run.steps
            .iter()
            .filter(|s| s.status == Some(StepStatus::Succeeded))
            .filter(|s| s.kind == Kind::Manual || !facts.readonly(&s.step))
            .map(|s| {
                let at = s.started.unwrap_or(run.started);
                ResolutionStep {
                    step: s.step.clone(),
                    title: facts.title(&s.step),
                    kind: s.kind,
                    rollback: s.phase == Phase::Rollback,
                    at: facts.clock(at),
                    offset: facts.offset(at),
                    duration: millis(s.duration_ms.unwrap_or(0) as i64),
                    operator: if s.kind == Kind::Manual {
                        s.response.operator.clone()
                    } else {
                        None
                    },
                    note: s.response.note.clone(),
                }
            })
            .collect()
    };
    Resolution {
        steps,
        left_applied: run.not_rolled_back.clone(),
        readonly_known: facts.runbook.is_some(),
    }
}

fn summary_text(facts: &Facts, s: &Summary) -> String {
    let (run, rehearsal) = (facts.run, facts.rehearsal);
    let what = if rehearsal {
        "was rehearsed (dry run: only read-only steps ran)"
    } else {
        "ran live"
    };
    let mut text = format!(
        "Runbook {} ({}) {what} on {}, started by {} at {}",
        run.runbook,
        run.title,
        run.host,
        run.operator,
        stamp(run.started),
    );
    if let Some(i) = &run.incident {
        text.push_str(&format!(" for incident {i}"));
    }
    match (run.status, run.duration()) {
        (Some(_), Some(d)) if rehearsal => {
            let outcome = outcome_text(facts);
            let (head, checks) = outcome.split_once(", ").unwrap_or((&outcome, ""));
            let head = head.trim_start_matches("rehearsal ");
            text.push_str(&format!(", and {head} after {}", delta(d)));
            if !checks.is_empty() {
                text.push_str(&format!("; {checks}"));
            }
            text.push('.');
        }
        (Some(st), Some(d)) => text.push_str(&format!(", and {} after {}.", st.as_str(), delta(d))),
        _ => text.push_str(", and has not finished (no run_finished in its log)."),
    }
    let mut counts = vec![format!("{} succeeded", s.succeeded)];
    for (n, word) in [
        (s.failed, "failed or timed out"),
        (s.skipped, "skipped"),
        (s.dry_run, "shown, not run"),
        (s.aborted, "aborted"),
        (s.in_doubt, "in doubt"),
        (s.not_reached.len(), "never reached"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {word}"));
        }
    }
    text.push_str(&format!(
        " Steps: {} ({}).",
        s.steps + s.not_reached.len(),
        counts.join(", ")
    ));
    if !s.not_reached.is_empty() {
        text.push_str(&format!(" Never reached: {}.", s.not_reached.join(", ")));
    }
    if !run.not_rolled_back.is_empty() && !rehearsal {
        let left: Vec<&str> = run
            .not_rolled_back
            .iter()
            .map(|p| p.step.as_str())
            .collect();
        text.push_str(&format!(
            " Changes left applied (not rolled back): {}.",
            left.join(", ")
        ));
    }
    if s.rollbacks > 0 {
        text.push_str(&format!(" Rollbacks run: {}.", s.rollbacks));
    }
    let share = s
        .people_share
        .map(|p| format!(", {p}% of the run"))
        .unwrap_or_default();
    text.push_str(&format!(
        " Waiting on people: {}{share}, over {} manual step{}.",
        s.people_wait,
        s.manual_steps,
        if s.manual_steps == 1 { "" } else { "s" }
    ));
    if let Some(ttm) = run.time_to_mitigate().filter(|_| !facts.rehearsal) {
        text.push_str(&format!(" Mitigated {} after detection.", delta(ttm)));
    }
    text
}

/// Who answered what, the value typed, the note and the reason, in one line.
pub(super) fn details(s: &StepRun) -> String {
    let mut parts = Vec::new();
    if let Some(a) = s.response.answer {
        let mut p = a.as_str().to_string();
        if let Some(o) = &s.response.operator {
            p.push_str(&format!(" by {o}"));
        }
        if let Some(w) = s.response.wait_ms {
            p.push_str(&format!(" after {}", millis(w as i64)));
        }
        parts.push(p);
    }
    if let Some(v) = &s.response.value {
        parts.push(format!("value \"{v}\""));
    }
    if let Some(n) = &s.response.note {
        parts.push(format!("note: {n}"));
    }
    if let Some(code) = s.exit_code.filter(|c| *c != 0) {
        parts.push(format!("exit code {code}"));
    }
    if let Some(r) = &s.reason {
        parts.push(r.clone());
    }
    parts.join("; ")
}
