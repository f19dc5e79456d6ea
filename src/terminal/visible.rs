//! The display's one door for text from outside: every string of an event that came from a
//! runbook, a person, a log or a process (titles, notes, commands, reasons, names) has its
//! control characters written out (`format::visible`) before anything is drawn, so no
//! value can move the cursor, clear the screen or set the clipboard. Step output itself is
//! passed through as bytes, on purpose.

use crate::event as ev;
use std::borrow::Cow;

use crate::event::{Event, PendingRollback, Response};
use crate::format::{Shown, drives_terminal, visible};

/// `event` with every string that could hold outside text made visible; borrowed when
/// nothing needed it (the common case).
pub(crate) fn sanitized(event: &Event) -> Cow<'_, Event> {
    if !needs(event) {
        return Cow::Borrowed(event);
    }
    let mut e = event.clone();
    clean_all(&mut e);
    Cow::Owned(e)
}

/// Makes every string of `e` that could hold outside text visible. [`needs`] looks at the
/// same strings (a test holds the two together).
fn clean_all(e: &mut Event) {
    match e {
        Event::RunStarted(started) => {
            let ev::RunStarted {
                runbook,
                title,
                operator,
                host,
                incident,
                log_path,
                ..
            } = &mut **started;
            for s in [runbook, title, operator, host, log_path] {
                clean(s);
            }
            clean_opt(incident);
        }
        Event::StepStarted(ev::StepStarted {
            command,
            instructions,
            ..
        }) => {
            clean_opt(command);
            clean_opt(instructions);
        }
        Event::StepFinished(ev::StepFinished {
            response, reason, ..
        }) => {
            clean_response(response);
            clean_opt(reason);
        }
        Event::StepRetrying(ev::StepRetrying { reason, .. }) => clean(reason),
        Event::Notice(ev::Notice { text, .. }) => clean(text),
        Event::NotRolledBack(ev::NotRolledBack { steps }) => {
            steps.iter_mut().for_each(clean_pending)
        }
        Event::RunResumed(ev::RunResumed { operator, .. }) => clean(operator),
        Event::RunFinished(ev::RunFinished { reason, .. }) => clean_opt(reason),
        _ => {}
    }
}

fn needs(event: &Event) -> bool {
    let bad = |s: &str| {
        s.chars()
            .any(|c| drives_terminal(c) && c != '\n' && c != '\t')
    };
    let opt = |s: &Option<String>| s.as_deref().is_some_and(bad);
    match event {
        Event::RunStarted(started) => {
            let ev::RunStarted {
                runbook,
                title,
                operator,
                host,
                incident,
                log_path,
                ..
            } = &**started;
            [runbook, title, operator, host, log_path]
                .into_iter()
                .any(|s| bad(s))
                || opt(incident)
        }
        Event::StepStarted(ev::StepStarted {
            command,
            instructions,
            ..
        }) => opt(command) || opt(instructions),
        Event::StepFinished(ev::StepFinished {
            response, reason, ..
        }) => opt(reason) || opt(&response.note) || opt(&response.operator) || opt(&response.value),
        Event::StepRetrying(ev::StepRetrying { reason, .. }) => bad(reason),
        Event::Notice(ev::Notice { text, .. }) => bad(text),
        Event::NotRolledBack(ev::NotRolledBack { steps }) => steps.iter().any(|p| bad(&p.command)),
        Event::RunResumed(ev::RunResumed { operator, .. }) => bad(operator),
        Event::RunFinished(ev::RunFinished { reason, .. }) => opt(reason),
        _ => false,
    }
}

fn clean(s: &mut String) {
    if let Cow::Owned(v) = visible(s, Shown::Text) {
        *s = v;
    }
}

fn clean_opt(s: &mut Option<String>) {
    if let Some(s) = s {
        clean(s);
    }
}

fn clean_response(r: &mut Response) {
    clean_opt(&mut r.note);
    clean_opt(&mut r.operator);
    clean_opt(&mut r.value);
}

fn clean_pending(p: &mut PendingRollback) {
    clean(&mut p.command);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_in_events_is_made_visible_and_clean_events_are_borrowed() {
        let clean_event = Event::Notice(ev::Notice {
            level: crate::event::Level::Info,
            text: "all fine\n".into(),
            step: None,
        });
        assert!(matches!(sanitized(&clean_event), Cow::Borrowed(_)));
        let hostile = Event::RunFinished(ev::RunFinished {
            status: crate::event::RunStatus::Failed,
            duration_ms: 1,
            reason: Some("boom \u{1b}]52;c;cm0gLXJmIH4=\u{7} \u{1b}[2J".into()),
        });
        let Event::RunFinished(ev::RunFinished { reason, .. }) = sanitized(&hostile).into_owned()
        else {
            unreachable!()
        };
        let reason = reason.unwrap_or_default();
        assert!(
            !reason.contains('\u{1b}') && !reason.contains('\u{7}'),
            "{reason:?}"
        );
    }

    /// One of each event with every field set. The literals name every field, so a field
    /// added to an event must be added here, and is then tried by the test below.
    fn every_event() -> Vec<Event> {
        use crate::event::*;
        let s = |t: &str| t.to_string();
        let response = Response {
            answer: Some(Answer::Done),
            operator: Some(s("ops")),
            note: Some(s("note")),
            wait_ms: Some(1),
            value: Some(s("value")),
            captured: Some(s("captured")),
        };
        let alert = AlertRecord {
            id: s("id"),
            name: s("name"),
            status: s("firing"),
            fingerprint: s("f"),
            starts_at: s("2026-01-01T00:00:00Z"),
            labels: [(s("team"), s("db"))].into(),
            annotations: [(s("summary"), s("down"))].into(),
            generator_url: Some(s("http://x")),
            group_key: Some(s("g")),
            diagnostic_run: Some(s("r")),
        };
        vec![
            Event::RunStarted(Box::new(RunStarted {
                schema_version: 1,
                run_id: s("r"),
                runbook: s("rb"),
                runbook_path: s("rb.toml"),
                runbook_sha256: s("00"),
                title: s("title"),
                mode: Mode::Live,
                params: [(s("p"), serde_json::Value::String(s("v")))]
                    .into_iter()
                    .collect(),
                operator: s("ops"),
                host: s("host"),
                incident: Some(s("INC-1")),
                detected_at: Some(s("2026-01-01T00:00:00Z")),
                version: s("1"),
                log_path: s("/log"),
                options: Some(RunOptions {
                    parallel: 1,
                    output_cap: 1,
                    rollback: RollbackMode::Ask,
                    ssh_config: Some(s("cfg")),
                }),
                alert: Some(Box::new(alert)),
                diagnostic: true,
                service: Some(s("svc")),
                steps: vec![s("a")],
                timeout_ms: Some(1),
            })),
            Event::StepStarted(StepStarted {
                step: s("a"),
                kind: Kind::Auto,
                attempt: 1,
                command: Some(s("true")),
                phase: Phase::Run,
                last_attempt: Some(2),
                timeout_ms: Some(1),
                instructions: Some(s("do it")),
                host: Some(s("h")),
                hosts: Some(vec![s("h")]),
            }),
            Event::StepSpawned(StepSpawned {
                step: s("a"),
                attempt: 1,
                phase: Phase::Run,
                pgid: 2,
                start_ticks: 3,
                boot_id: s("b"),
            }),
            Event::StepOutput(StepOutput {
                step: s("a"),
                stream: Stream::Stdout,
                text: s("out"),
                phase: Phase::Run,
                truncated_bytes: Some(1),
                host: Some(s("h")),
            }),
            Event::StepFinished(StepFinished {
                step: s("a"),
                kind: Kind::Manual,
                status: StepStatus::Succeeded,
                duration_ms: 1,
                attempts: 1,
                exit_code: Some(0),
                phase: Phase::Run,
                response,
                reason: Some(s("why")),
                host: Some(s("h")),
                host_counts: Some(HostCounts::default()),
            }),
            Event::StepRetrying(StepRetrying {
                step: s("a"),
                attempt: 1,
                reason: s("why"),
                delay_ms: 1,
                phase: Phase::Run,
                host: Some(s("h")),
            }),
            Event::PromptOpened(PromptOpened {
                step: s("a"),
                prompt: PromptKind::Manual,
            }),
            Event::PromptClosed(PromptClosed {
                step: s("a"),
                prompt: PromptKind::Manual,
                answer: Some(Answer::Done),
                shown_ms: 1,
            }),
            Event::Notice(ev::Notice {
                level: Level::Info,
                text: s("text"),
                step: Some(s("a")),
            }),
            Event::NotRolledBack(NotRolledBack {
                steps: vec![PendingRollback {
                    step: s("a"),
                    command: s("undo"),
                }],
            }),
            Event::Milestone(Milestone {
                name: s("mitigated"),
                step: s("a"),
            }),
            Event::RunResumed(RunResumed {
                run_id: s("r"),
                operator: s("ops"),
                from: Some(s("a")),
                timeout_ms: Some(1),
            }),
            Event::RunFinished(ev::RunFinished {
                status: crate::event::RunStatus::Failed,
                duration_ms: 1,
                reason: Some(s("why")),
            }),
        ]
    }

    /// JSON pointers to every string in `v`.
    fn strings(v: &serde_json::Value, at: String, found: &mut Vec<String>) {
        match v {
            serde_json::Value::String(_) => found.push(at),
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    strings(item, format!("{at}/{i}"), found);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    strings(item, format!("{at}/{k}"), found);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn what_is_checked_is_what_is_cleaned_in_every_string_of_every_event() {
        // A string `needs` checks and the cleaning misses would be shown raw; one the
        // cleaning covers and `needs` misses would never be cleaned.
        let hostile = "x\u{1b}]52;c;cm0=\u{7}\u{9b}2J";
        let (mut tried, mut cleaned) = (0, 0);
        for sample in every_event() {
            let json = serde_json::to_value(&sample).unwrap();
            let mut paths = Vec::new();
            strings(&json, String::new(), &mut paths);
            for path in paths.iter().filter(|p| *p != "/event") {
                let mut j = json.clone();
                *j.pointer_mut(path).unwrap() = serde_json::Value::String(hostile.into());
                // Read back as a log line is: `event` first.
                let mut fields = j.as_object().cloned().unwrap_or_default();
                let name = fields.remove("event").unwrap_or_default();
                let rest = serde_json::to_string(&fields).unwrap();
                let line = format!("{{\"event\":{name},{}", &rest[1..]);
                // A string that is one of a few words (a status, a kind) takes no other.
                let Ok(e) = serde_json::from_str::<Event>(&line) else {
                    continue;
                };
                tried += 1;
                let mut clean = e.clone();
                clean_all(&mut clean);
                let changed =
                    serde_json::to_value(&clean).unwrap() != serde_json::to_value(&e).unwrap();
                assert_eq!(needs(&e), changed, "{path} of {}", json["event"]);
                cleaned += usize::from(changed);
            }
        }
        assert!(
            tried > 50 && cleaned > 15,
            "tried {tried}, cleaned {cleaned}"
        );
    }
}
