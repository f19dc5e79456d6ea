//! Starting steps: `when` decided once, confirmations queued, commands rendered and handed
//! to a task; and what an automated step's end means for the run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::{Ending, Executor, Msg, PanicGuard};
use crate::event::{Answer, Level, Phase, PromptKind, Response, RunStatus, StepStatus};
use crate::exec::ask::Reply;
use crate::exec::process::Spec;
use crate::exec::schedule::{AfterFailure, StepState, after_failure};
use crate::exec::task::{Task, TaskResult};
use crate::runbook::template::{self, is_plain};
use crate::runbook::{Action, Step};

/// Wait between attempts when a step has `retries` but no `retry_delay`.
const DEFAULT_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

impl Executor {
    /// Starts every ready step that may start now. Steps that end without running (a false
    /// `when`) release their dependents at once, so this goes round until nothing changes.
    pub(super) fn start_ready(&mut self) {
        while self.start_ready_once() {}
    }

    /// One pass over the ready steps; whether any of them ended at once.
    fn start_ready_once(&mut self) -> bool {
        let mut ended = false;
        for i in self.schedule.ready() {
            if self.schedule.stopping() {
                return false;
            }
            let step = Arc::clone(&self.rb);
            let step = &step.steps[i];
            if !self.progress[i].when_decided
                && let Some(when) = &step.when
            {
                self.progress[i].when_decided = true;
                match self.decide_when(i, when) {
                    Ok(true) => {}
                    Ok(false) => {
                        let e = Ending::because("its `when` condition is false");
                        self.finish(i, StepStatus::Skipped, e);
                        ended = true;
                        continue;
                    }
                    Err(e) => {
                        self.failed_before_start(i, format!("cannot decide `when`: {e}"));
                        ended = true;
                        continue;
                    }
                }
            }
            match &step.action {
                Action::Manual(m) => {
                    self.schedule.queue(i);
                    if self.opts.diagnose {
                        self.left_waiting(i);
                        ended = true;
                    } else if self.opts.dry_run && self.opts.yes {
                        // Nobody is asked, but the instructions are shown and recorded:
                        // reading them is the point of a drill.
                        let text = self
                            .renderer
                            .raw(m, &self.data())
                            .unwrap_or_else(|e| format!("(cannot render the instructions: {e})"));
                        self.start_manual(i, &text);
                        let waited = std::time::Duration::ZERO;
                        self.answer_manual(i, Reply::auto(Answer::Done), waited);
                        ended = true;
                    } else {
                        self.prompts.push_back((PromptKind::Manual, i));
                    }
                }
                Action::Run(_) => {
                    if step.confirm && self.progress[i].confirmed.is_none() {
                        if !self.opts.yes {
                            self.schedule.queue(i);
                            self.prompts.push_back((PromptKind::Confirm, i));
                            continue;
                        }
                        self.progress[i].confirmed = Some(Response {
                            answer: Some(Answer::Yes),
                            operator: Some(self.opts.operator.clone()),
                            note: Some("confirmed by --yes".into()),
                            wait_ms: Some(0),
                            ..Response::default()
                        });
                    }
                    if !self.schedule.has_room(self.opts.run.parallel) {
                        continue;
                    }
                    if let Err(e) = self.start_auto(i, Phase::Run) {
                        self.failed_before_start(i, format!("cannot render the command: {e}"));
                        ended = true;
                    }
                }
            }
        }
        ended
    }

    /// Renders a `when`; in a dry run, one that reads a value no command produced is taken
    /// as true (it is decided at run time).
    fn decide_when(&mut self, i: usize, when: &str) -> Result<bool, String> {
        // A step with `hosts` decides it for each host (`{{host}}` is set then).
        if self.rb.steps[i].is_fleet() {
            return Ok(true);
        }
        if self.opts.dry_run
            && let Ok(refs) = template::analyse(when)
            && refs.iter().any(|r| {
                self.vars
                    .get(&r.name)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.starts_with("<dry-run:"))
            })
        {
            let text = format!(
                "(dry run: `{}` is decided at run time; taken as true)",
                when.trim()
            );
            self.notice(Level::Info, Some(i), text);
            return Ok(true);
        }
        let rendered = self.renderer.raw(when, &self.data())?;
        Ok(template::truthy(&rendered))
    }

    /// A step that could not start (its `when` or command could not be rendered): failed,
    /// and the run stops unless the step says `continue`.
    pub(super) fn failed_before_start(&mut self, i: usize, reason: String) {
        let reason = self.masker.mask(&reason).into_owned();
        self.finish(i, StepStatus::Failed, Ending::because(reason));
        let step = &self.rb.steps[i];
        if step.on_failure != crate::runbook::OnFailure::Continue {
            let why = format!("step {} failed", step.id);
            self.schedule.stop(RunStatus::Failed, why);
        }
    }

    /// The command, environment and directory of a step (or of its rollback), rendered.
    pub(super) fn render(&self, step: &Step, phase: Phase) -> Result<Spec, String> {
        // A step with `hosts` renders for each host when it starts; this is what it shows.
        if let Some(i) = step
            .fleet
            .as_ref()
            .and_then(|_| self.rb.steps.iter().position(|s| s.id == step.id))
        {
            return Ok(Spec {
                shell: step.shell.argv.clone(),
                command: self.fleet_preview(i, phase),
                env: Vec::new(),
                dir: None,
                timeout: step.timeout,
                can_hold: false,
            });
        }
        let text = match (phase, &step.action) {
            (Phase::Rollback, _) => step.rollback.as_deref().unwrap_or_default(),
            (Phase::Run, Action::Run(r)) => r.as_str(),
            (Phase::Run, Action::Manual(_)) => "",
        };
        // Most steps read no variable: they need no copy of them all.
        let plain = is_plain(text)
            && step.env.iter().all(|(_, v)| is_plain(v))
            && step.dir.as_deref().is_none_or(is_plain);
        let data = if plain { Value::Null } else { self.data() };
        let command = self.renderer.shell(text, &data)?;
        let mut env = Vec::with_capacity(step.env.len() + command.env.len() + 2);
        for (k, v) in &step.env {
            env.push((k.clone(), self.renderer.process_text(v, &data)?));
        }
        env.extend(command.env);
        // Which run and step these processes belong to, for `resume` to find them should
        // the executor die (and for the step's own use).
        env.push(("RUNBOOK_RUN_ID".into(), self.opts.run_id.clone()));
        env.push(("RUNBOOK_STEP".into(), step.id.clone()));
        let dir = match &step.dir {
            Some(d) => Some(PathBuf::from(self.renderer.process_text(d, &data)?)),
            None => None,
        };
        Ok(Spec {
            shell: step.shell.argv.clone(),
            command: command.text,
            env,
            dir,
            timeout: step.timeout,
            can_hold: step.shell.can_hold(),
        })
    }

    /// Renders an automated step (or its rollback) and starts it as a task; an error is a
    /// command that could not be rendered, and nothing started.
    pub(super) fn start_auto(&mut self, i: usize, phase: Phase) -> Result<(), String> {
        if self.rb.steps[i].is_fleet() {
            return self.start_fleet(i, phase);
        }
        let rb = Arc::clone(&self.rb);
        let step = &rb.steps[i];
        let spec = self.render(step, phase)?;
        self.schedule.start(i);
        let progress = &mut self.progress[i];
        let (first_attempt, started) = match phase {
            Phase::Run => (
                progress.attempts + 1,
                *progress.started.get_or_insert_with(Instant::now),
            ),
            Phase::Rollback => (1, Instant::now()),
        };
        // A rehearsal runs each read-only check once: it practises the flow, not the waits.
        let retries = if phase == Phase::Run && !self.opts.dry_run {
            step.retries
        } else {
            0
        };
        let task = Task {
            step: step.id.clone(),
            phase,
            spec,
            dry: self.opts.dry_run && !step.readonly,
            capture: phase == Phase::Run && step.capture.is_some(),
            first_attempt,
            retries,
            retry_delay: step.retry_delay.unwrap_or(DEFAULT_RETRY_DELAY),
            retry_backoff: step.retry_backoff,
            started,
            timeout: step.timeout,
        };
        let emitter = self.emitter.clone();
        let masker = Arc::clone(&self.masker);
        let cancel = self.cancel.subscribe();
        self.spawn_task(i, phase, async move {
            task.run(&emitter, &masker, cancel).await
        });
        Ok(())
    }

    /// Runs a step's task (one process, or a fleet step's pass over its hosts) on the
    /// runtime; its result comes back as a message, even if the task panics.
    pub(super) fn spawn_task(
        &self,
        i: usize,
        phase: Phase,
        task: impl std::future::Future<Output = TaskResult> + Send + 'static,
    ) {
        let tx = self.tx.clone();
        // On the heap at once: a step's future is kilobytes, moved otherwise at every hand-on.
        let task = Box::pin(task);
        tokio::spawn(async move {
            let guard = PanicGuard {
                tx: Some(tx.clone()),
                step: i,
                phase,
            };
            let result = task.await;
            let _ = tx.send(Msg::Task {
                step: i,
                phase,
                result,
            });
            guard.disarm();
        });
    }

    /// An automated step's task ended: ask about a failure, keep a capture, record the end.
    pub(super) fn task_done(&mut self, i: usize, r: TaskResult) {
        self.progress[i].attempts += r.attempts;
        let step = Arc::clone(&self.rb);
        let step = &step.steps[i];
        let failed = matches!(r.status, StepStatus::Failed | StepStatus::TimedOut);
        let after = after_failure(step.on_failure, self.opts.dry_run, self.schedule.stopping());
        if failed && after == AfterFailure::Ask {
            self.schedule.queue(i);
            self.progress[i].failure = Some(r);
            self.prompts.push_back((PromptKind::Failure, i));
            return;
        }
        if let Some(var) = &step.capture {
            let dry = Value::String(format!("<dry-run:{var}>"));
            match (&r.capture, r.status) {
                (Some(v), StepStatus::Succeeded) => {
                    self.vars.insert(var.clone(), template::value_of(v));
                }
                (_, StepStatus::DryRun) => {
                    self.vars.insert(var.clone(), dry);
                }
                (_, _) if self.opts.dry_run => {
                    let text = format!(
                        "(dry run: {} failed; the rehearsal goes on with {var} unknown)",
                        step.id
                    );
                    self.notice(Level::Info, Some(i), text);
                    self.vars.insert(var.clone(), dry);
                }
                _ => {}
            }
        }
        let mut response = self.progress[i].confirmed.clone().unwrap_or_default();
        if r.status == StepStatus::Succeeded {
            response.captured = r.capture.as_ref().map(|v| self.masker.mask(v).into_owned());
        }
        let status = r.status;
        self.finish_task(i, r, response);
        if failed && after == AfterFailure::Stop {
            let why = format!("step {} {}", step.id, status.as_str().replace('_', " "));
            if let Some(a) = self.asking
                && !self.schedule.stopping()
            {
                let at = self.rb.steps[a.step].id.clone();
                let text = format!(
                    "{why} while you were at the prompt for {at}: no new step starts; answer the prompt, then the run ends failed"
                );
                self.notice(Level::Warning, Some(i), text);
            }
            self.schedule.stop(RunStatus::Failed, why);
        }
    }

    /// Records the end of an automated step from its task's result.
    pub(super) fn finish_task(&mut self, i: usize, r: TaskResult, response: Response) {
        let p = &self.progress[i];
        let ending = Ending {
            duration: p.started.map_or(r.duration, |t| t.elapsed()),
            attempts: p.attempts - p.earlier_attempts.min(p.attempts),
            exit_code: r.exit_code,
            response,
            reason: r.reason,
        };
        self.finish(i, r.status, ending);
    }

    /// Whether the step is waiting on a person.
    pub(super) fn is_queued(&self, i: usize) -> bool {
        self.schedule.state(i) == StepState::Queued
    }
}
