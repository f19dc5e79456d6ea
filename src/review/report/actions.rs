//! Action items drawn from the facts: what to automate, fix, make reliable, check, look into.

use super::ActionItem;
use super::facts::{Facts, details};
use crate::event::{Kind, Mode, Phase, StepStatus};
use crate::format::{delta, millis, percentile, step_status};
use crate::log::run::{Run, StepRun};

/// Manual steps named as automation candidates: the longest few, and only those a person
/// spent at least a second on (an instant answer is not worth automating away).
const AUTOMATE_TOP: usize = 3;
const AUTOMATE_MIN_MS: u64 = 1_000;
/// "Slower than its median" means at least this many times the median, and by at least
/// [`SLOWER_MIN_MS`]: a 4ms step that took 9ms is noise, not an action item.
const SLOWER_FACTOR: f64 = 1.5;
const SLOWER_MIN_MS: i64 = 500;

/// Action items from the facts, in this order: what to automate, what failed, what needed
/// retries, what was skipped, what was slower than usual.
pub(super) fn action_items(facts: &Facts, earlier: &[Run]) -> Vec<ActionItem> {
    let run = facts.run;
    let named = |id: &str| facts.named(id);
    let total = run
        .duration()
        .map_or_else(|| "an unfinished run".to_string(), delta);
    let mut items = Vec::new();

    let mut manual: Vec<&StepRun> = run
        .steps
        .iter()
        .filter(|s| {
            s.phase == Phase::Run && s.kind == Kind::Manual && s.people_ms() >= AUTOMATE_MIN_MS
        })
        .collect();
    manual.sort_by_key(|s| std::cmp::Reverse(s.people_ms()));
    for s in manual.into_iter().take(AUTOMATE_TOP) {
        items.push(ActionItem {
            kind: "automate",
            item_type: "mitigate",
            step: s.step.clone(),
            text: format!(
                "Automate {}: took {} of {total}",
                named(&s.step),
                millis(s.people_ms() as i64)
            ),
        });
    }

    for s in &run.steps {
        let label = if s.phase == Phase::Rollback {
            format!("the rollback of {}", named(&s.step))
        } else {
            named(&s.step)
        };
        let d = details(s);
        let why = if d.is_empty() {
            String::new()
        } else {
            format!(" ({d})")
        };
        match s.status {
            Some(StepStatus::Failed | StepStatus::TimedOut) => {
                let word = step_status(s.status);
                let tries = if s.attempts > 1 {
                    format!(", {} attempts", s.attempts)
                } else {
                    String::new()
                };
                // "timed out after 1s" already says how it ended.
                let what = if d.starts_with(word) {
                    format!("{d}{tries}")
                } else {
                    format!("{word}{tries}{why}")
                };
                items.push(ActionItem {
                    kind: "failed",
                    item_type: "prevent",
                    step: s.step.clone(),
                    text: format!("Fix {label}: {what}"),
                });
            }
            Some(StepStatus::Aborted) => items.push(ActionItem {
                kind: "failed",
                item_type: "process",
                step: s.step.clone(),
                text: format!("Review why the run was aborted at {label}{why}"),
            }),
            None => items.push(ActionItem {
                kind: "in_doubt",
                item_type: "investigate",
                step: s.step.clone(),
                text: format!(
                    "Find out whether {label} completed: it started and has no recorded end"
                ),
            }),
            _ => {}
        }
    }
    for s in &run.steps {
        if s.status == Some(StepStatus::Succeeded) && s.attempts > 1 {
            items.push(ActionItem {
                kind: "retried",
                item_type: "prevent",
                step: s.step.clone(),
                text: format!(
                    "Make {} reliable: it succeeded only after {} attempts",
                    named(&s.step),
                    s.attempts
                ),
            });
        }
    }
    for s in &run.steps {
        if s.status != Some(StepStatus::Skipped) {
            continue;
        }
        let why = details(s);
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(": {why}")
        };
        items.push(ActionItem {
            kind: "skipped",
            item_type: "process",
            step: s.step.clone(),
            text: format!("Check that skipping {} was right{why}", named(&s.step)),
        });
    }
    for s in &run.steps {
        let (Some(StepStatus::Succeeded), Some(ms)) = (s.status, s.duration_ms) else {
            continue;
        };
        let mut past: Vec<i64> = earlier
            .iter()
            .flat_map(|r| r.steps.iter())
            .filter(|p| {
                p.step == s.step && p.phase == s.phase && p.status == Some(StepStatus::Succeeded)
            })
            .filter_map(|p| p.duration_ms.map(|ms| ms as i64))
            .collect();
        past.sort_unstable();
        let Some(median) = percentile(&past, 50) else {
            continue;
        };
        let ms = ms as i64;
        let kind = if run.mode == Mode::DryRun {
            "rehearsal"
        } else {
            "live"
        };
        if ms as f64 >= median as f64 * SLOWER_FACTOR && ms - median >= SLOWER_MIN_MS {
            let runs = past.len();
            let plural = if runs == 1 { "" } else { "s" };
            items.push(ActionItem {
                kind: "slower",
                item_type: "investigate",
                step: s.step.clone(),
                text: format!(
                    "Find out why {} was slower than usual: took {}, against a median of {} \
                     over {runs} earlier {kind} run{plural}",
                    named(&s.step),
                    millis(ms),
                    millis(median),
                ),
            });
        }
    }
    items
}
