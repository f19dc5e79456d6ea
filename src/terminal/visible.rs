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
    match &mut e {
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
    Cow::Owned(e)
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
}
