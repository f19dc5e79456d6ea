//! After a failed or aborted live run: the succeeded steps that have a `rollback` are
//! offered for undoing, newest first (spec §3), one at a time; whatever stays applied is
//! recorded as a `not_rolled_back` event.

use crate::event as ev;
use std::sync::Arc;
use std::time::Instant;

use super::{Ending, Executor, Msg};
use crate::event::{Event, Level, PendingRollback, Phase, PromptKind, RollbackMode, StepStatus};
use crate::exec::ask::{Question, Verdict, verdict};
use crate::exec::process::Cancel;
use crate::exec::signals::{Caught, Signals};

/// The terminal hung up during the rollbacks: the run is left open.
pub(super) struct HungUp;

impl Executor {
    pub(super) fn to_roll_back(&self) -> Vec<usize> {
        self.schedule
            .to_roll_back(|i| self.rb.steps[i].rollback.is_some())
    }

    /// Offers (or runs, or lists) the rollbacks. Stops at the first interrupt.
    pub(super) async fn roll_back(&mut self, signals: &mut Signals) -> Result<(), HungUp> {
        let candidates = self.to_roll_back();
        if candidates.is_empty()
            || self.interrupts > 0
            || self.opts.run.rollback == RollbackMode::Never
        {
            return Ok(());
        }
        self.cancel.send_replace(Cancel::None);
        self.notice(Level::Info, None, "rolling back, newest first:".into());
        for i in candidates {
            let mut response = crate::event::Response::default();
            if self.opts.run.rollback == RollbackMode::Ask {
                let Some(reply) = self.ask_rollback(i, signals).await? else {
                    self.notice(Level::Info, None, "rollback stopped: no answer".into());
                    return Ok(());
                };
                let (reply, waited) = reply;
                response = self.response(&reply, waited);
                match verdict(PromptKind::Rollback, reply.answer) {
                    Verdict::Go | Verdict::Done => {}
                    Verdict::Skip => {
                        let e = Ending {
                            response,
                            ..Ending::default()
                        };
                        self.emit_finished(i, Phase::Rollback, StepStatus::Skipped, e);
                        continue;
                    }
                    Verdict::Abort => {
                        let e = Ending {
                            response,
                            ..Ending::because("rollback stopped here")
                        };
                        self.emit_finished(i, Phase::Rollback, StepStatus::Skipped, e);
                        self.notice(Level::Info, None, "rollback stopped".into());
                        return Ok(());
                    }
                }
            }
            if let Err(e) = self.start_auto(i, Phase::Rollback) {
                let e = Ending {
                    response,
                    ..Ending::because(format!("cannot render the rollback: {e}"))
                };
                self.emit_finished(i, Phase::Rollback, StepStatus::Failed, e);
                continue;
            }
            // One rollback at a time, in order.
            while self.schedule.running() > 0 {
                tokio::select! {
                    Some(msg) = self.rx.recv() => {
                        if let Msg::Task { step, phase: Phase::Rollback, result } = msg {
                            self.schedule.task_ended();
                            if result.status == StepStatus::Succeeded {
                                self.rolled_back.push(step);
                            }
                            let e = Ending {
                                duration: result.duration,
                                attempts: result.attempts,
                                exit_code: result.exit_code,
                                response: std::mem::take(&mut response),
                                reason: result.reason,
                            };
                            self.emit_finished(step, Phase::Rollback, result.status, e);
                        }
                    }
                    caught = signals.next() => match caught {
                        Caught::HangUp => return Err(HungUp),
                        _ => self.interrupt_rollback(),
                    },
                }
            }
            if self.interrupts > 0 {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Asks whether to run step `i`'s rollback: the reply and how long it took, or `None`
    /// when no answer came (end of input, an interrupt).
    async fn ask_rollback(
        &mut self,
        i: usize,
        signals: &mut Signals,
    ) -> Result<Option<(crate::exec::ask::Reply, std::time::Duration)>, HungUp> {
        let rb = Arc::clone(&self.rb);
        let step = &rb.steps[i];
        let command = self
            .render(step, Phase::Rollback)
            .map(|s| s.command)
            .unwrap_or_else(|e| format!("(cannot render the rollback: {e})"));
        let q = Question {
            kind: PromptKind::Rollback,
            step: step.id.clone(),
            title: step.title.clone(),
            body: self.masker.mask(&command).into_owned(),
            ask: None,
            needed_by: Vec::new(),
            started: None,
            seq: self.next_seq(),
            can_roll_back: false,
        };
        self.emit(Event::PromptOpened(ev::PromptOpened {
            step: step.id.clone(),
            prompt: PromptKind::Rollback,
        }));
        let prompter = Arc::clone(&self.prompter);
        let asked_at = Instant::now();
        let asked = tokio::task::spawn_blocking(move || {
            prompter.lock().unwrap_or_else(|p| p.into_inner()).ask(&q)
        });
        let reply = tokio::select! {
            r = asked => match r {
                Ok(Err(crate::exec::ask::PromptError::HangUp)) => return Err(HungUp),
                r => r.ok().and_then(Result::ok),
            },
            caught = signals.next() => match caught {
                Caught::HangUp => return Err(HungUp),
                _ => { self.interrupts += 1; None }
            },
        };
        let waited = asked_at.elapsed();
        self.emit(Event::PromptClosed(ev::PromptClosed {
            step: step.id.clone(),
            prompt: PromptKind::Rollback,
            answer: reply.as_ref().map(|r| r.answer),
            shown_ms: waited.as_millis() as u64,
        }));
        Ok(reply.map(|r| (r, waited)))
    }

    fn interrupt_rollback(&mut self) {
        self.interrupts += 1;
        let how = if self.interrupts == 1 {
            Cancel::Graceful
        } else {
            Cancel::Kill
        };
        let _ = self.cancel.send(how);
    }

    /// Records the changes a run that did not succeed leaves applied: succeeded steps with
    /// a rollback that did not run (or did not succeed), newest first.
    pub(super) fn list_not_rolled_back(&mut self) {
        let left: Vec<PendingRollback> = self
            .to_roll_back()
            .into_iter()
            .filter(|i| !self.rolled_back.contains(i))
            .map(|i| {
                let step = &self.rb.steps[i];
                let command = self
                    .render(step, Phase::Rollback)
                    .map(|s| s.command)
                    .unwrap_or_else(|e| format!("(cannot render the rollback: {e})"));
                PendingRollback {
                    step: step.id.clone(),
                    command: self.masker.mask(command.trim()).into_owned(),
                }
            })
            .collect();
        if !left.is_empty() {
            self.emit(Event::NotRolledBack(ev::NotRolledBack { steps: left }));
        }
    }
}
