//! The questions put to the operator, one at a time on a blocking thread while automated
//! steps keep running, and what each answer does to the run.

use crate::event as ev;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Asking, Ending, Executor, Msg};
use crate::event::{Event, Kind, Level, Phase, PromptKind, Response, RunStatus, StepStatus};
use crate::exec::ask::{PromptError, Question, Reply, Verdict, verdict};
use crate::runbook::Action;

impl Executor {
    /// Puts the next queued question, unless one is on screen. Once the run is stopping no
    /// new step starts, so queued questions are dropped; a failure waiting for a decision
    /// stands as it is.
    pub(super) fn next_prompt(&mut self) {
        if self.schedule.stopping() {
            while let Some((kind, i)) = self.prompts.pop_front() {
                match kind {
                    PromptKind::Failure => self.failure_stands(i),
                    _ => self.schedule.requeue(i),
                }
            }
            return;
        }
        if self.asking.is_some() || self.deciding.is_some() {
            return;
        }
        let Some((kind, i)) = self.prompts.pop_front() else {
            return;
        };
        let Some(question) = self.question(kind, i) else {
            return;
        };
        self.asking = Some(Asking {
            kind,
            step: i,
            opened: Instant::now(),
            seq: question.seq,
        });
        let step = self.rb.steps[i].id.clone();
        self.emit(Event::PromptOpened(ev::PromptOpened { step, prompt: kind }));
        let prompter = Arc::clone(&self.prompter);
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let asked = Instant::now();
            let reply = prompter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .ask(&question);
            let _ = tx.send(Msg::Answer {
                kind,
                step: i,
                reply,
                waited: asked.elapsed(),
            });
        });
    }

    /// The question of kind `kind` about step `i`; `None` if it cannot be put (a manual
    /// step whose instructions cannot be rendered has failed instead).
    fn question(&mut self, kind: PromptKind, i: usize) -> Option<Question> {
        let rb = Arc::clone(&self.rb);
        let step = &rb.steps[i];
        if kind == PromptKind::InDoubt && step.is_fleet() {
            return self.fleet_question(i);
        }
        let command = |this: &Self| match &step.action {
            Action::Run(_) if step.is_fleet() => this.fleet_preview(i, Phase::Run),
            Action::Run(r) => this
                .renderer
                .shell(r, &this.data())
                .map_or_else(|_| r.clone(), |c| c.text),
            Action::Manual(_) => String::new(),
        };
        let body = match kind {
            PromptKind::Manual => {
                let text = match &step.action {
                    Action::Manual(m) => m.as_str(),
                    Action::Run(_) => "",
                };
                let instructions = match self.renderer.shown(text, &self.data()) {
                    Ok(t) => t,
                    Err(e) => {
                        self.failed_before_start(i, format!("cannot render the instructions: {e}"));
                        return None;
                    }
                };
                // Put again after Ctrl-C and "carry on", it is the same start.
                if self.progress[i].started.is_none() {
                    self.start_manual(i, &instructions);
                }
                instructions
            }
            PromptKind::Confirm | PromptKind::Rollback => command(self),
            PromptKind::InDoubt => match &step.action {
                Action::Run(_) => format!("its command: {}", command(self).trim()),
                Action::Manual(_) => "a manual step whose prompt was on screen".into(),
            },
            PromptKind::Stopped | PromptKind::Running => {
                let what = self.progress[i]
                    .undecided
                    .as_ref()
                    .map(|u| u.what.clone())
                    .unwrap_or_default();
                match &step.action {
                    Action::Run(_) => format!("{what}\n    its command: {}", command(self).trim()),
                    Action::Manual(_) => what,
                }
            }
            PromptKind::Failure => self.progress[i]
                .failure
                .as_ref()
                .map(|r| r.describe_failure())
                .unwrap_or_else(|| "failed".into()),
            // Put by `ask_what_now`, never queued.
            PromptKind::Interrupt => String::new(),
        };
        Some(Question {
            kind,
            step: step.id.clone(),
            title: step.title.clone(),
            body: self.masker.mask(&body).into_owned(),
            ask: step.ask.clone().filter(|_| kind == PromptKind::Manual),
            needed_by: match (&step.ask, kind) {
                (Some(var), PromptKind::Manual) => self
                    .waiting_users(var)
                    .into_iter()
                    .map(|j| rb.steps[j].id.clone())
                    .collect(),
                _ => Vec::new(),
            },
            started: self.progress[i].undecided.as_ref().map(|u| u.since.clone()),
            seq: self.next_seq(),
            can_roll_back: false,
        })
    }

    /// Records the start of manual step `i`, with the instructions the person reads.
    pub(super) fn start_manual(&mut self, i: usize, instructions: &str) {
        self.progress[i].started = Some(Instant::now());
        let step = self.rb.steps[i].id.clone();
        let instructions = self.masker.mask(instructions).into_owned();
        self.emit(Event::StepStarted(ev::StepStarted {
            step,
            kind: Kind::Manual,
            attempt: 1,
            command: None,
            phase: Phase::Run,
            last_attempt: None,
            timeout_ms: None,
            instructions: Some(instructions),
            host: None,
            hosts: None,
        }));
    }

    /// A reply arrived from the prompt thread.
    pub(super) fn answered(
        &mut self,
        kind: PromptKind,
        i: usize,
        reply: Result<Reply, PromptError>,
        waited: Duration,
    ) {
        if kind == PromptKind::Interrupt {
            return self.decided(reply);
        }
        if self.asking.is_none() {
            // The question was taken back (an interrupt); its answer no longer counts.
            return;
        }
        let reply = match reply {
            Ok(reply) => reply,
            Err(PromptError::HangUp) => {
                self.hung_up = true;
                return;
            }
            Err(PromptError::Withdrawn) => return,
            Err(PromptError::Interrupted) => {
                // The prompt saw Ctrl-C itself (a key on a terminal, EINTR on a line); a
                // SIGINT may come first or next.
                if self.interrupts == 0 {
                    self.interrupt(crate::exec::signals::Caught::Interrupt);
                } else {
                    self.take_back_prompt("SIGINT");
                }
                return;
            }
            Err(e) => {
                self.close_prompt(None);
                return self.unanswered(kind, i, e, waited);
            }
        };
        self.close_prompt(Some(reply.answer));
        let v = verdict(kind, reply.answer);
        match kind {
            PromptKind::Manual => self.answer_manual(i, reply, waited),
            PromptKind::Confirm => self.answer_confirm(i, v, &reply, waited),
            PromptKind::Failure => self.answer_failure(i, v, &reply, waited),
            PromptKind::InDoubt | PromptKind::Stopped => {
                self.answer_undecided(i, v, &reply, waited)
            }
            PromptKind::Running => self.answer_running(i, v),
            // Rollback questions are put by the rollback phase itself, and the interrupt
            // question is answered above.
            PromptKind::Rollback | PromptKind::Interrupt => {}
        }
    }

    /// Records that the question on screen is closed, answered or not.
    pub(super) fn close_prompt(&mut self, answer: Option<crate::event::Answer>) {
        if let Some(a) = self.asking.take() {
            let step = self.rb.steps[a.step].id.clone();
            self.emit(Event::PromptClosed(ev::PromptClosed {
                step,
                prompt: a.kind,
                answer,
                shown_ms: a.opened.elapsed().as_millis() as u64,
            }));
        }
    }

    /// An interrupt takes the question on screen back: its answer, if one comes, is
    /// ignored. A manual step on screen was started; it ends here, not done.
    pub(super) fn take_back_prompt(&mut self, which: &str) {
        let Some(a) = self.asking else {
            return;
        };
        self.withdraw(a.seq);
        self.close_prompt(None);
        self.question_dropped(a.kind, a.step, which);
    }

    /// A question about step `i` that will not be put again: a manual step it was about
    /// ends aborted (it was started), a failure stands as it was.
    pub(super) fn question_dropped(&mut self, kind: PromptKind, i: usize, which: &str) {
        match kind {
            PromptKind::Manual => {
                let ending = Ending {
                    duration: self.progress[i]
                        .started
                        .map_or(Duration::ZERO, |t| t.elapsed()),
                    attempts: 1,
                    ..Ending::because(format!("interrupted by {which} at the prompt"))
                };
                self.finish(i, StepStatus::Aborted, ending);
            }
            PromptKind::Failure => self.failure_stands(i),
            _ if self.is_queued(i) => self.schedule.requeue(i),
            _ => {}
        }
    }

    /// A failure nobody decided on is recorded as it was.
    pub(super) fn failure_stands(&mut self, i: usize) {
        if let Some(r) = self.progress[i].failure.take() {
            let response = self.progress[i].confirmed.clone().unwrap_or_default();
            self.finish_task(i, r, response);
        }
    }

    /// No answer could be read (end of input, an I/O error): no one is there to decide.
    fn unanswered(&mut self, kind: PromptKind, i: usize, e: PromptError, waited: Duration) {
        let id = self.rb.steps[i].id.clone();
        let why = match e {
            PromptError::EndOfInput => {
                format!("end of input at the prompt for step {id}: aborting the run")
            }
            e => format!("{e} at the prompt for step {id}: aborting the run"),
        };
        self.notice(Level::Error, Some(i), why.clone());
        if kind == PromptKind::Running {
            // Its processes run on, untouched; the next resume finds them again.
            self.schedule.stop(RunStatus::Aborted, why);
            return;
        }
        if kind == PromptKind::Failure {
            // The failure stands, and the run ends failed (spec §3).
            self.failure_stands(i);
            self.schedule
                .stop(RunStatus::Failed, format!("step {id} failed"));
            return;
        }
        let ending = Ending {
            duration: waited,
            attempts: self.progress[i].attempts,
            response: Response {
                operator: Some(self.opts.operator.clone()),
                wait_ms: Some(waited.as_millis() as u64),
                ..Response::default()
            },
            ..Ending::because("no answer: end of input")
        };
        self.finish(i, StepStatus::Aborted, ending);
        self.schedule.stop(RunStatus::Aborted, why);
    }

    /// The operator aborted the run at step `i`.
    fn aborted_at(&mut self, i: usize, after_failure: bool) {
        let id = &self.rb.steps[i].id;
        let why = if after_failure {
            format!("aborted by {} after step {id} failed", self.opts.operator)
        } else {
            format!("aborted by {} at step {id}", self.opts.operator)
        };
        self.schedule.stop(RunStatus::Aborted, why);
    }

    pub(super) fn answer_manual(&mut self, i: usize, reply: Reply, waited: Duration) {
        let mut response = self.response(&reply, waited);
        let status = match verdict(PromptKind::Manual, reply.answer) {
            Verdict::Done | Verdict::Go => StepStatus::Succeeded,
            Verdict::Skip => StepStatus::Skipped,
            Verdict::Abort => StepStatus::Aborted,
        };
        let rb = Arc::clone(&self.rb);
        let step = &rb.steps[i];
        if status == StepStatus::Succeeded
            && let (Some(var), Some(value)) = (&step.ask, &reply.value)
        {
            self.vars
                .insert(var.clone(), crate::runbook::template::value_of(value));
            response.value = Some(self.masker.mask(value).into_owned());
        }
        if self.opts.dry_run && self.opts.yes {
            response.note = Some("answered by --yes (dry run)".into());
            if let Some(var) = &step.ask {
                let dry = serde_json::Value::String(format!("<dry-run:{var}>"));
                self.vars.insert(var.clone(), dry);
            }
        }
        let ending = Ending {
            duration: waited,
            attempts: 1,
            response,
            ..Ending::default()
        };
        self.finish(i, status, ending);
        if status == StepStatus::Aborted {
            self.aborted_at(i, false);
        }
    }

    fn answer_confirm(&mut self, i: usize, v: Verdict, reply: &Reply, waited: Duration) {
        let response = self.response(reply, waited);
        let ending = Ending {
            duration: waited,
            response: response.clone(),
            ..Ending::default()
        };
        match v {
            Verdict::Go | Verdict::Done => {
                self.progress[i].confirmed = Some(response);
                self.schedule.requeue(i);
            }
            Verdict::Skip => self.finish(i, StepStatus::Skipped, ending),
            Verdict::Abort => {
                self.finish(i, StepStatus::Aborted, ending);
                self.aborted_at(i, false);
            }
        }
    }

    fn answer_failure(&mut self, i: usize, v: Verdict, reply: &Reply, waited: Duration) {
        let response = self.response(reply, waited);
        match v {
            Verdict::Go | Verdict::Done => {
                self.progress[i].failure = None;
                if let Err(e) = self.start_auto(i, Phase::Run) {
                    self.failed_before_start(i, format!("cannot render the command: {e}"));
                }
            }
            // The failure is recorded; dependents go on as if it had succeeded.
            Verdict::Skip => {
                if let Some(r) = self.progress[i].failure.take() {
                    self.finish_task(i, r, response);
                }
            }
            Verdict::Abort => {
                if let Some(r) = self.progress[i].failure.take() {
                    self.finish_task(i, r, response);
                }
                self.aborted_at(i, true);
            }
        }
    }

    /// A step the log does not settle (in doubt, or stopped before the resume).
    fn answer_undecided(&mut self, i: usize, v: Verdict, reply: &Reply, waited: Duration) {
        if self.rb.steps[i].is_fleet() && self.progress[i].undecided.is_none() {
            return self.fleet_answer_in_doubt(i, v, reply, waited);
        }
        let response = self.response(reply, waited);
        let rb = Arc::clone(&self.rb);
        let step = &rb.steps[i];
        let undecided = self.progress[i].undecided.take();
        let ending = Ending {
            attempts: self.progress[i].attempts,
            response: response.clone(),
            ..Ending::default()
        };
        match v {
            Verdict::Go if step.is_manual() => self.prompts.push_front((PromptKind::Manual, i)),
            Verdict::Go => {
                // Asked once already; the retry is the operator's decision, not a new confirm.
                self.progress[i].confirmed = Some(response);
                self.schedule.requeue(i);
            }
            Verdict::Done => {
                let (reason, duration) = match &undecided {
                    Some(u) if u.kind == PromptKind::Stopped => (
                        format!("it had stopped ({}); the operator recorded it as done", first_line(&u.what)),
                        u.duration,
                    ),
                    Some(u) => (
                        "in doubt after a crash; the operator recorded it as done (duration up to its last record)".to_string(),
                        u.duration,
                    ),
                    None => ("the operator recorded it as done".to_string(), Duration::ZERO),
                };
                let ending = Ending {
                    duration,
                    reason: Some(reason),
                    ..ending
                };
                self.finish(i, StepStatus::Succeeded, ending);
            }
            Verdict::Skip => self.finish(i, StepStatus::Skipped, ending),
            Verdict::Abort => {
                self.finish(i, StepStatus::Aborted, ending);
                self.aborted_at(i, false);
            }
        }
    }

    /// A step whose processes still run: wait for them, or stop them; either way, once
    /// they are gone the operator says whether it completed.
    fn answer_running(&mut self, i: usize, v: Verdict) {
        let Some(pgid) = self.progress[i].undecided.as_ref().and_then(|u| u.pgid) else {
            return self.orphan_gone(i);
        };
        let stop = v == Verdict::Abort;
        let text = if stop {
            format!("stopping process group {pgid} (TERM, then KILL)")
        } else {
            format!("waiting for process group {pgid} to end (Ctrl-C stops it)")
        };
        self.notice(Level::Info, Some(i), text);
        self.schedule.start(i);
        let tx = self.tx.clone();
        let cancel = self.cancel.subscribe();
        tokio::spawn(async move {
            if stop {
                crate::exec::orphans::stop(pgid).await;
            } else {
                crate::exec::orphans::wait_gone(pgid, cancel).await;
            }
            let _ = tx.send(Msg::Gone { step: i });
        });
    }

    /// The processes of a step left running are gone: whether it completed is not known.
    pub(super) fn orphan_gone(&mut self, i: usize) {
        self.schedule.queue(i);
        if let Some(u) = &mut self.progress[i].undecided {
            u.kind = PromptKind::InDoubt;
            u.pgid = None;
        }
        self.prompts.push_front((PromptKind::InDoubt, i));
    }
}

/// The first line of a description, for a one-line reason.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
