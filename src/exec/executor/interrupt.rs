//! Ctrl-C and SIGTERM. Without a terminal (and for SIGTERM) the first stops the run: the
//! running steps get TERM, then KILL after a grace period; the second kills at once. On a
//! terminal, Ctrl-C first asks the operator, while steps keep running and nothing new
//! starts: stop here (the run ends interrupted, exit 130, and `resume` goes on with it),
//! roll back the completed steps (the run ends aborted), or carry on as if nothing had
//! happened. A second Ctrl-C while that is asked stops at once.

use crate::event as ev;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Executor, Msg};
use crate::event::{Answer, Event, Level, PromptKind, RollbackMode, RunStatus};
use crate::exec::ask::{PromptError, Question, Reply};
use crate::exec::process::Cancel;
use crate::exec::signals::Caught;

impl Executor {
    /// SIGINT or SIGTERM, or Ctrl-C pressed at a prompt.
    pub(super) fn interrupt(&mut self, caught: Caught) {
        let which = caught.name();
        if self.deciding.is_some() {
            return self.stop_at_once(which);
        }
        self.interrupts += 1;
        if self.interrupts == 1
            && caught == Caught::Interrupt
            && self.opts.ask_on_interrupt
            && !self.schedule.stopping()
        {
            return self.ask_what_now();
        }
        if self.interrupts == 1 {
            self.notice(
                Level::Info,
                None,
                format!("{which}: stopping the running steps (again to kill them at once)"),
            );
            self.schedule
                .stop_now(RunStatus::Interrupted, format!("interrupted by {which}"));
            let _ = self.cancel.send(Cancel::Graceful);
            self.take_back_prompt(which);
        } else {
            self.notice(
                Level::Info,
                None,
                format!("{which} again: killing the running steps"),
            );
            let _ = self.cancel.send(Cancel::Kill);
        }
    }

    /// Tells the prompter that question `seq` (and any before it) is taken back.
    pub(super) fn withdraw(&self, seq: u64) {
        if let Some(w) = &self.withdrawn {
            w.fetch_max(seq, Ordering::SeqCst);
        }
    }

    /// The next question's number.
    pub(super) fn next_seq(&mut self) -> u64 {
        self.questions += 1;
        self.questions
    }

    /// Puts "stop here, roll back, or carry on?" to the operator; the question on screen,
    /// if any, is set aside meanwhile.
    fn ask_what_now(&mut self) {
        if let Some(a) = self.asking {
            self.withdraw(a.seq);
            self.close_prompt(None);
            self.set_aside = Some((a.kind, a.step));
        }
        let running: Vec<&str> = (0..self.rb.steps.len())
            .filter(|&i| self.schedule.state(i) == crate::exec::schedule::StepState::Running)
            .map(|i| self.rb.steps[i].id.as_str())
            .collect();
        let undo = if self.opts.dry_run {
            Vec::new()
        } else {
            self.to_roll_back()
        };
        let mut body = match running.as_slice() {
            [] => "nothing is running".to_string(),
            r => format!("running (they go on until you answer): {}", r.join(", ")),
        };
        if !undo.is_empty() {
            let ids: Vec<&str> = undo.iter().map(|&i| self.rb.steps[i].id.as_str()).collect();
            body.push_str(&format!(
                "\ncompleted steps that can be rolled back, newest first: {}",
                ids.join(", ")
            ));
        }
        let seq = self.next_seq();
        let question = Question {
            kind: PromptKind::Interrupt,
            step: String::new(),
            title: self.rb.title.clone(),
            body: self.masker.mask(&body).into_owned(),
            ask: None,
            started: None,
            needed_by: Vec::new(),
            seq,
            can_roll_back: !undo.is_empty(),
        };
        self.deciding = Some((seq, Instant::now()));
        self.emit(Event::PromptOpened(ev::PromptOpened {
            step: String::new(),
            prompt: PromptKind::Interrupt,
        }));
        let prompter = Arc::clone(&self.prompter);
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let asked = Instant::now();
            let reply = prompter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .ask(&question);
            let _ = tx.send(Msg::Answer {
                kind: PromptKind::Interrupt,
                step: 0,
                reply,
                waited: asked.elapsed(),
            });
        });
    }

    /// The operator answered what to do after Ctrl-C.
    pub(super) fn decided(&mut self, reply: Result<Reply, PromptError>) {
        let Some((_, opened)) = self.deciding.take() else {
            // Taken back: a second Ctrl-C already stopped the run.
            return;
        };
        let answer = reply.as_ref().ok().map(|r| r.answer);
        self.emit(Event::PromptClosed(ev::PromptClosed {
            step: String::new(),
            prompt: PromptKind::Interrupt,
            answer,
            shown_ms: opened.elapsed().as_millis() as u64,
        }));
        match reply {
            Ok(r) if r.answer == Answer::CarryOn => {
                self.interrupts = 0;
                self.notice(Level::Info, None, "carrying on".into());
                if let Some(q) = self.set_aside.take() {
                    self.prompts.push_front(q);
                }
            }
            Ok(r) if r.answer == Answer::RollBack => self.stop_here(true),
            Err(PromptError::HangUp) => self.hung_up = true,
            Err(PromptError::Interrupted) => self.stop_at_once("SIGINT"),
            Ok(_) | Err(_) => self.stop_here(false),
        }
    }

    /// Stop here (the run ends interrupted), or stop and roll back (it ends aborted).
    fn stop_here(&mut self, roll_back: bool) {
        if roll_back {
            let who = self.opts.operator.clone();
            self.notice(
                Level::Info,
                None,
                "stopping the running steps, then rolling back the completed ones (Ctrl-C to stop at once)".into(),
            );
            self.schedule.stop_now(
                RunStatus::Aborted,
                format!("stopped by {who} at Ctrl-C, to roll back"),
            );
            // The rollback runs at the end of the run, as after an abort, without asking.
            self.interrupts = 0;
            self.opts.run.rollback = RollbackMode::Auto;
        } else {
            self.notice(
                Level::Info,
                None,
                "SIGINT: stopping the running steps (again to kill them at once); `runbook resume` goes on later".into(),
            );
            self.schedule
                .stop_now(RunStatus::Interrupted, "interrupted by SIGINT".into());
        }
        let _ = self.cancel.send(Cancel::Graceful);
        self.drop_set_aside("SIGINT");
    }

    /// A second Ctrl-C while the question is asked: the running steps are killed.
    fn stop_at_once(&mut self, which: &str) {
        if let Some((seq, opened)) = self.deciding.take() {
            self.withdraw(seq);
            self.emit(Event::PromptClosed(ev::PromptClosed {
                step: String::new(),
                prompt: PromptKind::Interrupt,
                answer: None,
                shown_ms: opened.elapsed().as_millis() as u64,
            }));
        }
        self.interrupts = self.interrupts.max(2);
        self.notice(
            Level::Info,
            None,
            format!("{which} again: killing the running steps"),
        );
        self.schedule
            .stop_now(RunStatus::Interrupted, format!("interrupted by {which}"));
        let _ = self.cancel.send(Cancel::Kill);
        self.drop_set_aside(which);
    }

    /// The question set aside will not be put again.
    fn drop_set_aside(&mut self, which: &str) {
        if let Some((kind, i)) = self.set_aside.take() {
            self.question_dropped(kind, i, which);
        }
    }
}
