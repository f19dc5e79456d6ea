//! The dispatcher of spec §3. It walks the plan, starts ready steps in file order (at most
//! `parallel` automated ones at once), puts one question at a time to the operator while
//! automated steps keep running, and reports every fact as an event through the
//! [`Emitter`]. What to do next is decided by [`super::schedule`] and [`super::ask`];
//! running a step is [`super::task`]'s; this file holds the loop and the records.
//!
//! - `steps.rs`: starting steps (`when`, confirm, rendering, tasks) and their ends;
//! - `prompts.rs`: the questions, one at a time, and what the answers do;
//! - `rollback.rs`: undoing succeeded steps after a failed run;
//! - `fleet.rs`: steps with `hosts`, run on each host through ssh.

mod diagnose;
mod fleet;
mod interrupt;
mod prompts;
mod rollback;
mod steps;
mod unset;

use crate::event as ev;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};

use super::ask::{PromptError, Prompter, Reply};
use super::emit::Emitter;
use super::plan::Plan;
use super::prepare::Options;
use super::process::Cancel;
use super::resume::{Seed, Undecided};
use super::schedule::Schedule;
use super::secrets::Masker;
use super::signals::{Caught, Signals};
use super::task::TaskResult;
use crate::event::{Event, Kind, Level, Phase, PromptKind, Response, RunStatus, StepStatus};
use crate::runbook::Runbook;
use crate::runbook::template::Renderer;

/// How long a hang-up waits for killed steps to be reaped before leaving.
const HANG_UP_GRACE: Duration = Duration::from_secs(5);

/// What the executor knows of one step beyond its place in the schedule.
#[derive(Debug, Default)]
struct Progress {
    /// Attempts made so far (a resumed run counts the earlier ones).
    attempts: u32,
    /// Attempts of earlier executions of the step (it was rolled back, or resumed
    /// `--from` before it): they number the attempts on, but are not this execution's.
    earlier_attempts: u32,
    /// When the step first started in this process.
    started: Option<Instant>,
    /// The operator's yes to a `confirm` (or to a retry of a step in doubt).
    confirmed: Option<Response>,
    /// `when` was decided (it is decided once, when the step first becomes ready).
    when_decided: bool,
    /// A failure waiting for the operator's decision.
    failure: Option<TaskResult>,
    /// On resume: what the log says of a step it does not settle.
    undecided: Option<Undecided>,
}

/// The question on screen.
#[derive(Debug, Clone, Copy)]
struct Asking {
    kind: PromptKind,
    step: usize,
    opened: Instant,
    /// Its [`super::ask::Question::seq`], to take it back.
    seq: u64,
}

enum Msg {
    Task {
        step: usize,
        phase: Phase,
        result: TaskResult,
    },
    Answer {
        kind: PromptKind,
        step: usize,
        reply: Result<Reply, PromptError>,
        waited: Duration,
    },
    /// The processes of a step left running by an earlier executor are gone.
    Gone { step: usize },
}

/// The result of a whole run.
pub(crate) struct RunOutcome {
    pub status: RunStatus,
    /// Ended by a hang-up, with the run left open for `resume`.
    pub hung_up: bool,
    /// The log could not be written at some point: the record is incomplete.
    pub log_failed: bool,
}

/// How a step ended, for its `step_finished`.
#[derive(Debug, Default)]
struct Ending {
    duration: Duration,
    attempts: u32,
    exit_code: Option<i32>,
    response: Response,
    reason: Option<String>,
}

impl Ending {
    fn because(reason: impl Into<String>) -> Self {
        Ending {
            reason: Some(reason.into()),
            ..Ending::default()
        }
    }
}

pub(crate) struct Executor {
    rb: Arc<Runbook>,
    opts: Options,
    emitter: Emitter,
    masker: Arc<Masker>,
    renderer: Renderer,
    prompter: Arc<Mutex<Box<dyn Prompter>>>,
    vars: Map<String, Value>,
    plan: Plan,
    schedule: Schedule,
    progress: Vec<Progress>,
    /// Questions waiting to be put, in order.
    prompts: VecDeque<(PromptKind, usize)>,
    asking: Option<Asking>,
    /// Questions put so far (each question's `seq`).
    questions: u64,
    /// Where to say a question is taken back, when the prompter can give one up.
    withdrawn: Option<super::ask::Withdrawn>,
    /// Ctrl-C on a terminal: the question "stop, roll back or carry on?" is on screen
    /// (its seq and since when); nothing new starts until it is answered.
    deciding: Option<(u64, Instant)>,
    /// The question that was on screen when Ctrl-C came, put again if the run carries on.
    set_aside: Option<(PromptKind, usize)>,
    /// Steps whose rollback ran and succeeded.
    rolled_back: Vec<usize>,
    interrupts: u32,
    /// The terminal hung up under a prompt: the run is to be left open.
    hung_up: bool,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    cancel: watch::Sender<Cancel>,
    run_start: Instant,
    /// Time the run had already taken before this process (a resumed run).
    earlier: Duration,
    /// Steps with `hosts`: how each host ended, and the run's ssh connections.
    fleets: fleet::Fleets,
}

impl Executor {
    pub(crate) fn new(
        prepared: super::prepare::Prepared,
        emitter: Emitter,
        prompter: Box<dyn Prompter>,
    ) -> (Self, Option<Seed>) {
        let super::prepare::Prepared {
            rb,
            plan,
            opts,
            vars,
            masker,
            secrets,
            seed,
            ..
        } = prepared;
        let (tx, rx) = mpsc::unbounded_channel();
        let n = rb.steps.len();
        let withdrawn = prompter.withdrawn();
        let executor = Executor {
            schedule: Schedule::new(&plan),
            plan,
            progress: (0..n).map(|_| Progress::default()).collect(),
            rb,
            opts,
            emitter,
            masker: Arc::new(masker),
            renderer: Renderer::with_secrets(secrets),
            prompter: Arc::new(Mutex::new(prompter)),
            vars,
            prompts: VecDeque::new(),
            asking: None,
            questions: 0,
            withdrawn,
            deciding: None,
            set_aside: None,
            rolled_back: Vec::new(),
            interrupts: 0,
            hung_up: false,
            tx,
            rx,
            cancel: watch::channel(Cancel::None).0,
            run_start: Instant::now(),
            earlier: Duration::ZERO,
            fleets: fleet::Fleets::default(),
        };
        (executor, seed)
    }

    /// Emits an event; a log that cannot be written stops the run (no new step starts).
    fn emit(&mut self, event: Event) {
        if let Err(e) = self.emitter.emit(&event) {
            self.schedule.stop(RunStatus::Failed, e.to_string());
        }
    }

    fn notice(&mut self, level: Level, step: Option<usize>, text: String) {
        let step = step.map(|i| self.rb.steps[i].id.clone());
        self.emit(Event::Notice(ev::Notice { level, text, step }));
    }

    /// Runs the whole runbook; `run_started` (or `run_resumed`) has already been written.
    pub(crate) async fn run(mut self, seed: Option<Seed>) -> RunOutcome {
        let mut signals = Signals::install();
        let far = Duration::from_secs(100 * 365 * 24 * 3600);
        let deadline = tokio::time::Instant::now() + self.rb.timeout.unwrap_or(far);
        if let Some(seed) = seed {
            self.resume_from(seed);
        }
        if let Some(start) = self.opts.start_at.clone() {
            self.skip_ancestors(&start);
        }
        loop {
            self.start_ready();
            self.next_prompt();
            if self.hung_up {
                return self.hang_up().await;
            }
            if self.idle() {
                break;
            }
            let stopping = self.schedule.stopping();
            tokio::select! {
                Some(msg) = self.rx.recv() => self.handle(msg),
                caught = signals.next() => match caught {
                    Caught::HangUp => return self.hang_up().await,
                    other => self.interrupt(other),
                },
                _ = tokio::time::sleep_until(deadline), if self.rb.timeout.is_some() && !stopping => {
                    self.timed_out();
                }
            }
        }
        self.end(&mut signals).await
    }

    /// The run went past its `timeout`: running steps are stopped, no new step starts, and
    /// a person at a prompt is told at once what that means.
    fn timed_out(&mut self) {
        let t = self
            .rb
            .timeout
            .map(|t| humantime::format_duration(t).to_string())
            .unwrap_or_default();
        let why = format!("the run went past its timeout of {t}");
        if let Some(a) = self.asking {
            let step = self.rb.steps[a.step].id.clone();
            let text = format!(
                "{why}: running steps are being stopped and no new step starts; answer the prompt for {step}, then the run ends failed"
            );
            self.notice(Level::Warning, None, text);
        }
        self.schedule.stop(RunStatus::Failed, why);
        let _ = self.cancel.send(Cancel::Graceful);
    }

    /// Nothing runs, nothing is asked, and nothing more will start.
    fn idle(&self) -> bool {
        let stopping = self.schedule.stopping();
        self.schedule.running() == 0
            && self.asking.is_none()
            && self.deciding.is_none()
            && (stopping || (self.prompts.is_empty() && self.schedule.ready().is_empty()))
    }

    async fn end(mut self, signals: &mut Signals) -> RunOutcome {
        let (mut status, reason) = self.schedule.end();
        if status != RunStatus::Succeeded && !self.opts.dry_run {
            if matches!(status, RunStatus::Failed | RunStatus::Aborted)
                && self.emitter.failure().is_none()
                && self.roll_back(signals).await.is_err()
            {
                return self.hang_up().await;
            }
            if self.interrupts > 0 {
                status = RunStatus::Interrupted;
            }
            self.list_not_rolled_back();
        }
        let duration_ms = (self.earlier + self.run_start.elapsed()).as_millis() as u64;
        self.emit(Event::RunFinished(ev::RunFinished {
            status,
            duration_ms,
            reason,
        }));
        RunOutcome {
            status,
            hung_up: false,
            log_failed: self.emitter.failure().is_some(),
        }
    }

    /// The terminal went away (SIGHUP): the operator is gone, not done. Running steps are
    /// killed and the log is left as it stands, with no end for them and no end for the
    /// run, so `runbook resume` can pick it up and ask honestly about the steps in flight.
    async fn hang_up(mut self) -> RunOutcome {
        let _ = self.cancel.send(Cancel::Kill);
        if !self.opts.dry_run {
            // Nobody is there to roll back: what stays applied is recorded, for whoever
            // resumes the run.
            self.list_not_rolled_back();
        }
        let deadline = tokio::time::Instant::now() + HANG_UP_GRACE;
        while self.schedule.running() > 0 {
            tokio::select! {
                Some(msg) = self.rx.recv() => {
                    if let Msg::Task { .. } = msg {
                        self.schedule.task_ended();
                    }
                }
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        RunOutcome {
            status: RunStatus::Interrupted,
            hung_up: true,
            log_failed: self.emitter.failure().is_some(),
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Task {
                step,
                phase,
                result,
            } => {
                self.schedule.task_ended();
                if phase == Phase::Run && self.rb.steps[step].is_fleet() {
                    self.fleet_done(step, result);
                } else if phase == Phase::Run {
                    self.task_done(step, result);
                }
            }
            Msg::Answer {
                kind,
                step,
                reply,
                waited,
            } => self.answered(kind, step, reply, waited),
            Msg::Gone { step } => {
                self.schedule.task_ended();
                self.orphan_gone(step);
            }
        }
    }

    /// Puts a resumed run where its log left it: settled steps are not run again, and the
    /// operator decides on the others (still running, in doubt, stopped) first.
    fn resume_from(&mut self, seed: Seed) {
        for (i, attempts) in seed.attempts {
            self.progress[i].attempts = attempts;
        }
        for i in seed.restarted {
            self.progress[i].earlier_attempts = self.progress[i].attempts;
        }
        for (i, status) in seed.done {
            self.schedule.finish(i, status);
        }
        self.fleet_resume(seed.fleet);
        for u in seed.undecided {
            let i = u.step;
            // A fleet step puts its hosts in doubt to the operator one by one.
            if u.kind == PromptKind::InDoubt && self.fleet_in_doubt(i) {
                continue;
            }
            self.schedule.queue(i);
            self.prompts.push_back((u.kind, i));
            // It started before: its `when` was true then.
            self.progress[i].when_decided = true;
            self.progress[i].undecided = Some(u);
        }
        self.earlier = seed.elapsed;
    }

    /// `--start-at`: the target's ancestors are recorded as done by hand before the run,
    /// with the values given for what they would have captured or been told.
    fn skip_ancestors(&mut self, start: &super::start_at::StartAt) {
        for i in self.plan.ancestors(start.step) {
            let step = &self.rb.steps[i];
            let given = |var: &Option<String>| {
                let var = var.as_deref()?;
                let v = start.values.iter().find(|(k, _)| k == var)?;
                Some(self.masker.mask(&v.1).into_owned())
            };
            let response = Response {
                note: Some("done before the run".into()),
                operator: Some(self.opts.operator.clone()),
                captured: given(&step.capture),
                value: given(&step.ask),
                ..Response::default()
            };
            self.finish(
                i,
                StepStatus::Skipped,
                Ending {
                    response,
                    ..Ending::default()
                },
            );
        }
    }

    /// Records a step's end in the run phase and releases its dependents.
    fn finish(&mut self, i: usize, status: StepStatus, ending: Ending) {
        let skipped_by_answer = ending.response.answer == Some(crate::event::Answer::Skip);
        self.emit_finished(i, Phase::Run, status, ending);
        if status == StepStatus::Succeeded
            && let Some(m) = self.rb.steps[i].milestone
        {
            let step = self.rb.steps[i].id.clone();
            self.emit(Event::Milestone(ev::Milestone {
                name: m.as_str().into(),
                step,
            }));
        }
        self.schedule.finish(i, status);
        self.check_provided(i, status, skipped_by_answer);
    }

    /// Writes a step's (or its rollback's) `step_finished`.
    fn emit_finished(&mut self, i: usize, phase: Phase, status: StepStatus, e: Ending) {
        let step = &self.rb.steps[i];
        let event = Event::StepFinished(ev::StepFinished {
            step: step.id.clone(),
            kind: if step.is_manual() {
                Kind::Manual
            } else {
                Kind::Auto
            },
            status,
            duration_ms: e.duration.as_millis() as u64,
            attempts: e.attempts,
            exit_code: e.exit_code,
            phase,
            response: e.response,
            reason: e.reason,
            host: None,
            host_counts: self.fleets.counts(i, phase),
        });
        self.emit(event);
    }

    /// The record of a person's answer.
    fn response(&self, reply: &Reply, waited: Duration) -> Response {
        Response {
            answer: Some(reply.answer),
            operator: Some(self.opts.operator.clone()),
            note: reply
                .note
                .as_ref()
                .map(|n| self.masker.mask(n).into_owned()),
            wait_ms: Some(waited.as_millis() as u64),
            value: None,
            captured: None,
        }
    }

    fn data(&self) -> Value {
        Value::Object(self.vars.clone())
    }
}

/// Reports a step as failed if its task unwinds, so a bug cannot leave the run waiting.
struct PanicGuard {
    tx: Option<mpsc::UnboundedSender<Msg>>,
    step: usize,
    phase: Phase,
}

impl PanicGuard {
    fn disarm(mut self) {
        self.tx = None;
    }
}

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let result = TaskResult {
                attempts: 1,
                ..TaskResult::not_run(
                    StepStatus::Failed,
                    "internal error in runbook while running this step (a bug: please report it)"
                        .into(),
                )
            };
            let _ = tx.send(Msg::Task {
                step: self.step,
                phase: self.phase,
                result,
            });
        }
    }
}
