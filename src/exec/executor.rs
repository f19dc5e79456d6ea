//! The scheduler of spec §3. It walks the validated graph, starts ready steps in file
//! order (at most `parallel` automated ones at once), serialises prompts through one
//! blocking thread while automated steps keep running, and reports everything as events to
//! its sinks: the durable log first, then the display.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};

use super::display::Display;
use super::process::{self, Cancel, Outcome};
use super::prompt::{PromptError, Prompter, Question, Reply};
use super::secrets::{LineSplitter, Masker};
use super::{Options, RollbackMode};
use crate::event::{Answer, Event, Kind, Phase, Response, RunStatus, StepStatus, Stream};
use crate::log::writer::LogWriter;
use crate::runbook::template::{self, Renderer};
use crate::runbook::{Action, OnFailure, Runbook, Step};

/// Most of a step's stdout kept for `capture`.
const CAPTURE_LIMIT: usize = 1024 * 1024;
/// Wait between attempts when a step has `retries` but no `retry_delay`.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Where events go: the log (which must succeed) and the display.
pub struct Sinks {
    pub log: LogWriter,
    pub display: Display,
}

impl Sinks {
    /// Writes `run_started`; the run does not begin unless it is on disk.
    pub fn emit_started(&mut self, event: &Event) -> std::io::Result<()> {
        self.emit(event)
    }

    fn emit(&mut self, event: &Event) -> std::io::Result<()> {
        let written = self.log.write(event);
        self.display.event(event);
        written
    }
}

/// What every task shares.
struct Shared {
    sinks: Mutex<Sinks>,
    masker: Masker,
    output_cap: u64,
}

impl Shared {
    fn sinks(&self) -> MutexGuard<'_, Sinks> {
        // A panic while holding the lock must not lose the rest of the log.
        self.sinks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Queued,
    Running,
    Done(StepStatus),
}

/// The end of one execution of an automated step (all its attempts).
#[derive(Debug)]
struct TaskResult {
    status: StepStatus,
    exit_code: Option<i32>,
    attempts: u32,
    duration: Duration,
    capture: Option<String>,
    reason: Option<String>,
}

enum Job {
    Manual(usize),
    Confirm(usize),
    Failure(usize, TaskResult),
    /// On resume: a step that started and never finished.
    InDoubt(usize, String),
}

/// Where a resumed run stands, from its log: what finished, what is in doubt.
#[derive(Debug, Default)]
pub struct Seed {
    /// Steps recorded as finished, in the order they finished, with their status.
    pub done: Vec<(usize, StepStatus)>,
    /// Attempts already made per step.
    pub attempts: Vec<(usize, u32)>,
    /// Steps that started and have no finish line, with when they started.
    pub in_doubt: Vec<(usize, String)>,
    /// Time since the run first started.
    pub elapsed: Duration,
}

enum Msg {
    Task(usize, Phase, TaskResult),
    Prompt(Job, Result<Reply, PromptError>, Duration),
}

/// The result of a whole run.
pub struct RunOutcome {
    pub status: RunStatus,
    pub log_path: PathBuf,
    /// Ended by a hangup, with the run left open for `resume`.
    pub hung_up: bool,
}

pub struct Executor {
    rb: Arc<Runbook>,
    opts: Options,
    shared: Arc<Shared>,
    renderer: Renderer,
    prompter: Arc<Mutex<Box<dyn Prompter>>>,
    vars: Map<String, Value>,
    state: Vec<State>,
    /// Unfinished dependencies per step, and who waits for whom.
    waiting: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    ready: BTreeSet<usize>,
    attempts: Vec<u32>,
    started_at: Vec<Option<Instant>>,
    confirmed: Vec<Option<Response>>,
    succeeded_order: Vec<usize>,
    running_auto: usize,
    /// How many steps have finished, to see whether scheduling made progress.
    finished: usize,
    prompts: VecDeque<Job>,
    prompt_busy: bool,
    /// The manual step whose prompt is on screen, if any.
    prompt_manual: Option<usize>,
    /// Set when no new step may start: the run's end status and why.
    stop: Option<(RunStatus, String)>,
    interrupts: u32,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    cancel: watch::Sender<Cancel>,
    run_start: Instant,
    /// Time the run had already taken before this process (a resumed run).
    earlier: Duration,
    run_id: String,
}

impl Executor {
    pub fn new(
        rb: Arc<Runbook>,
        opts: Options,
        sinks: Sinks,
        masker: Masker,
        vars: Map<String, Value>,
        prompter: Box<dyn Prompter>,
    ) -> Self {
        let n = rb.steps.len();
        let mut dependents = vec![Vec::new(); n];
        let mut waiting = vec![0; n];
        for (i, s) in rb.steps.iter().enumerate() {
            waiting[i] = s.need_indices.len();
            for &d in &s.need_indices {
                dependents[d].push(i);
            }
        }
        let ready = (0..n).filter(|&i| waiting[i] == 0).collect();
        let (tx, rx) = mpsc::unbounded_channel();
        let output_cap = opts.output_cap;
        let run_id = vars
            .get("run_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Executor {
            rb,
            opts,
            shared: Arc::new(Shared {
                sinks: Mutex::new(sinks),
                masker,
                output_cap,
            }),
            renderer: Renderer::new(),
            prompter: Arc::new(Mutex::new(prompter)),
            vars,
            state: vec![State::Pending; n],
            waiting,
            dependents,
            ready,
            attempts: vec![0; n],
            started_at: vec![None; n],
            confirmed: vec![None; n],
            succeeded_order: Vec::new(),
            running_auto: 0,
            finished: 0,
            prompts: VecDeque::new(),
            prompt_busy: false,
            prompt_manual: None,
            stop: None,
            interrupts: 0,
            tx,
            rx,
            cancel: watch::channel(Cancel::None).0,
            run_start: Instant::now(),
            earlier: Duration::ZERO,
            run_id,
        }
    }

    fn emit(&self, event: Event) {
        if let Err(e) = self.shared.sinks().emit(&event) {
            self.shared
                .sinks()
                .display
                .line(&format!("error: cannot write the execution log: {e}"));
        }
    }

    fn say(&self, text: &str) {
        self.shared.sinks().display.line(text);
    }

    /// Runs the whole runbook; `run_started` has already been written.
    pub async fn run(mut self) -> RunOutcome {
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigint = signal(SignalKind::interrupt()).ok();
        let mut sigterm = signal(SignalKind::terminate()).ok();
        let mut sighup = signal(SignalKind::hangup()).ok();
        let deadline = self.rb.timeout.map(|t| tokio::time::Instant::now() + t);
        let far = tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);

        if let Some(target) = self.opts.start_at {
            self.skip_ancestors(target);
        }
        loop {
            self.schedule();
            self.next_prompt();
            if self.running_auto == 0
                && !self.prompt_busy
                && (self.stop.is_some() || self.prompts.is_empty())
            {
                let runnable = self.ready.iter().any(|&i| self.state[i] == State::Pending);
                if self.stop.is_some() || !runnable {
                    break;
                }
            }
            tokio::select! {
                Some(msg) = self.rx.recv() => self.handle(msg),
                Some(_) = recv(&mut sigint) => self.interrupt("SIGINT"),
                Some(_) = recv(&mut sigterm) => self.interrupt("SIGTERM"),
                Some(_) = recv(&mut sighup) => return self.hang_up().await,
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() && self.stop.is_none() => {
                    let t = self.rb.timeout.map(|t| humantime::format_duration(t).to_string()).unwrap_or_default();
                    self.stop_run(RunStatus::Failed, format!("the run went past its timeout of {t}"));
                    let _ = self.cancel.send(Cancel::Graceful);
                }
            }
        }

        let (mut status, mut reason) = match self.stop.take() {
            Some((s, r)) => (s, Some(r)),
            None => (RunStatus::Succeeded, None),
        };
        if self
            .state
            .iter()
            .any(|s| matches!(s, State::Pending | State::Queued))
            && status == RunStatus::Succeeded
        {
            status = RunStatus::Failed;
            reason = Some("some steps could not run".into());
        }
        if matches!(status, RunStatus::Failed | RunStatus::Aborted) && !self.opts.dry_run {
            self.rollbacks(&mut sigint, &mut sigterm).await;
            if self.interrupts > 0 {
                status = RunStatus::Interrupted;
            }
        }
        let duration_ms = (self.earlier + self.run_start.elapsed()).as_millis() as u64;
        self.emit(Event::RunFinished {
            status,
            duration_ms,
            reason,
        });
        let mut sinks = self.shared.sinks();
        sinks.display.finish();
        let log_path = sinks.log.path().to_path_buf();
        sinks.display.line(&format!(
            "  run {}  log {}",
            self.run_id,
            log_path.display()
        ));
        RunOutcome {
            status,
            log_path,
            hung_up: false,
        }
    }

    /// The terminal went away (SIGHUP): the operator is gone, not done. Running steps are
    /// killed and the log is left as it stands, with no end for them and no end for the
    /// run, so `runbook resume` can pick it up and ask honestly about the steps in flight.
    async fn hang_up(mut self) -> RunOutcome {
        let _ = self.cancel.send(Cancel::Kill);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.running_auto > 0 {
            tokio::select! {
                Some(Msg::Task(..)) = self.rx.recv() => self.running_auto -= 1,
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let log_path = self.shared.sinks().log.path().to_path_buf();
        RunOutcome {
            status: RunStatus::Interrupted,
            log_path,
            hung_up: true,
        }
    }

    fn skip_ancestors(&mut self, target: usize) {
        let needs: Vec<Vec<usize>> = self
            .rb
            .steps
            .iter()
            .map(|s| s.need_indices.clone())
            .collect();
        let mut ancestors = crate::runbook::graph::ancestors(&needs, target);
        ancestors.sort_unstable();
        for i in ancestors {
            let rb = Arc::clone(&self.rb);
            let step = &rb.steps[i];
            self.finish(
                i,
                Phase::Run,
                StepStatus::Skipped,
                Duration::ZERO,
                0,
                None,
                Response {
                    note: Some("done before the run".into()),
                    operator: Some(self.opts.operator.clone()),
                    ..Response::default()
                },
                None,
            );
            // A value this step would have provided is not known.
            if let Some(var) = step.capture.as_ref().or(step.ask.as_ref()) {
                self.say(&format!(
                    "  note: {var} (from {}) is not set; steps that use it will fail",
                    step.id
                ));
            }
        }
    }

    fn stop_run(&mut self, status: RunStatus, reason: String) {
        if self.stop.is_none() {
            self.stop = Some((status, reason));
        }
    }

    fn interrupt(&mut self, which: &str) {
        self.interrupts += 1;
        if self.interrupts == 1 {
            self.say(&format!(
                "{which}: stopping the running steps (again to kill them at once)"
            ));
            self.stop = Some((RunStatus::Interrupted, format!("interrupted by {which}")));
            let _ = self.cancel.send(Cancel::Graceful);
            // A prompt on screen cannot be taken back; its answer, if any, is ignored.
            if self.prompt_busy {
                self.prompt_busy = false;
                self.shared.sinks().display.resume();
                // A manual step on screen was started; it ends here, not done.
                if let Some(i) = self.prompt_manual.take() {
                    let waited = self.started_at[i].map_or(Duration::ZERO, |t| t.elapsed());
                    self.finish(
                        i,
                        Phase::Run,
                        StepStatus::Aborted,
                        waited,
                        1,
                        None,
                        Response::default(),
                        Some(format!("interrupted by {which} at the prompt")),
                    );
                }
            }
        } else {
            self.say(&format!("{which} again: killing the running steps"));
            let _ = self.cancel.send(Cancel::Kill);
        }
    }

    /// Starts every ready step that may start now. Steps that end without running (a false
    /// `when`) release their dependents at once, so this goes round until nothing changes.
    fn schedule(&mut self) {
        loop {
            let finished = self.finished;
            self.schedule_once();
            if self.finished == finished {
                return;
            }
        }
    }

    fn schedule_once(&mut self) {
        if self.stop.is_some() {
            return;
        }
        let ready: Vec<usize> = self.ready.iter().copied().collect();
        for i in ready {
            if self.stop.is_some() {
                return;
            }
            if self.state[i] != State::Pending {
                self.ready.remove(&i);
                continue;
            }
            let step = &self.rb.steps[i];
            // `when` is decided when the step becomes ready.
            if self.confirmed[i].is_none()
                && let Some(when) = step.when.clone()
            {
                match self.decide_when(&when) {
                    Ok(true) => {}
                    Ok(false) => {
                        self.ready.remove(&i);
                        self.finish(
                            i,
                            Phase::Run,
                            StepStatus::Skipped,
                            Duration::ZERO,
                            0,
                            None,
                            Response::default(),
                            Some("its `when` condition is false".into()),
                        );
                        continue;
                    }
                    Err(e) => {
                        self.ready.remove(&i);
                        self.failed_before_start(i, format!("cannot decide `when`: {e}"));
                        continue;
                    }
                }
            }
            match &step.action {
                Action::Manual(_) => {
                    self.ready.remove(&i);
                    self.state[i] = State::Queued;
                    if self.opts.dry_run && self.opts.yes {
                        self.answer_manual(i, Ok(auto_reply(Answer::Done)), Duration::ZERO);
                    } else {
                        self.prompts.push_back(Job::Manual(i));
                    }
                }
                Action::Run(_) => {
                    if step.confirm && self.confirmed[i].is_none() {
                        if !self.opts.yes {
                            self.ready.remove(&i);
                            self.state[i] = State::Queued;
                            self.prompts.push_back(Job::Confirm(i));
                            continue;
                        }
                        self.confirmed[i] = Some(Response {
                            answer: Some(Answer::Yes),
                            operator: Some(self.opts.operator.clone()),
                            note: Some("confirmed by --yes".into()),
                            wait_ms: Some(0),
                            value: None,
                            captured: None,
                        });
                    }
                    if self.running_auto >= self.opts.parallel {
                        continue;
                    }
                    self.ready.remove(&i);
                    self.start_auto(i, Phase::Run);
                }
            }
        }
    }

    /// Renders a `when`; in a dry run, one that reads a value no command produced is taken
    /// as true (it is decided at run time).
    fn decide_when(&self, when: &str) -> Result<bool, String> {
        if self.opts.dry_run
            && let Ok(refs) = template::analyse(when)
            && refs.iter().any(|r| {
                self.vars
                    .get(&r.name)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.starts_with("<dry-run:"))
            })
        {
            self.say(&format!(
                "  (dry run: `{}` is decided at run time; taken as true)",
                when.trim()
            ));
            return Ok(true);
        }
        let rendered = self.renderer.raw(when, &Value::Object(self.vars.clone()))?;
        Ok(template::truthy(&rendered))
    }

    fn failed_before_start(&mut self, i: usize, reason: String) {
        let on_failure = self.rb.steps[i].on_failure;
        self.finish(
            i,
            Phase::Run,
            StepStatus::Failed,
            Duration::ZERO,
            0,
            None,
            Response::default(),
            Some(self.shared.masker.mask(&reason).into_owned()),
        );
        if on_failure != OnFailure::Continue {
            self.stop_run(
                RunStatus::Failed,
                format!("step {} failed", self.rb.steps[i].id),
            );
        }
    }

    fn data(&self) -> Value {
        Value::Object(self.vars.clone())
    }

    /// Renders and starts an automated step (or its rollback) as a task.
    fn start_auto(&mut self, i: usize, phase: Phase) {
        let step = self.rb.steps[i].clone();
        let data = self.data();
        let text = match (phase, &step.action) {
            (Phase::Rollback, _) => step.rollback.clone().unwrap_or_default(),
            (_, Action::Run(r)) => r.clone(),
            (_, Action::Manual(_)) => return,
        };
        let rendered = (|| -> Result<process::Spec, String> {
            let command = self.renderer.shell(&text, &data)?;
            let mut env = Vec::with_capacity(step.env.len());
            for (k, v) in &step.env {
                env.push((k.clone(), self.renderer.raw(v, &data)?));
            }
            let dir = match &step.dir {
                Some(d) => Some(PathBuf::from(self.renderer.raw(d, &data)?)),
                None => None,
            };
            Ok(process::Spec {
                command,
                env,
                dir,
                timeout: step.timeout,
            })
        })();
        let spec = match rendered {
            Ok(spec) => spec,
            Err(e) => {
                let what = if phase == Phase::Rollback {
                    "rollback"
                } else {
                    "command"
                };
                self.failed_before_start(i, format!("cannot render the {what}: {e}"));
                return;
            }
        };
        self.state[i] = State::Running;
        self.running_auto += 1;
        let first_attempt = self.attempts[i] + 1;
        let started = match phase {
            Phase::Run => *self.started_at[i].get_or_insert_with(Instant::now),
            Phase::Rollback => Instant::now(),
        };
        let shared = Arc::clone(&self.shared);
        let tx = self.tx.clone();
        let cancel = self.cancel.subscribe();
        let dry = self.opts.dry_run && !step.readonly;
        // A rehearsal runs each read-only check once: it practises the flow, not the waits.
        let retries = if phase == Phase::Run && !self.opts.dry_run {
            step.retries
        } else {
            0
        };
        tokio::spawn(async move {
            // Should the task panic, the executor still hears that the step ended.
            let guard = PanicGuard {
                tx: Some(tx.clone()),
                step: i,
                phase,
            };
            let result = if dry {
                dry_task(&shared, &step, &spec, first_attempt)
            } else {
                auto_task(
                    &shared,
                    &step,
                    &spec,
                    phase,
                    first_attempt,
                    retries,
                    started,
                    cancel,
                )
                .await
            };
            let _ = tx.send(Msg::Task(i, phase, result));
            guard.disarm();
        });
    }

    fn next_prompt(&mut self) {
        if self.stop.is_some() {
            // No new step starts once the run is stopping; a failure waiting for a decision
            // stands as it is.
            while let Some(job) = self.prompts.pop_front() {
                match job {
                    Job::Manual(i) | Job::Confirm(i) | Job::InDoubt(i, _) => {
                        self.state[i] = State::Pending
                    }
                    Job::Failure(i, r) => {
                        let response = self.confirmed[i].clone().unwrap_or_default();
                        self.finish_task(i, r, response);
                    }
                }
            }
            return;
        }
        if self.prompt_busy {
            return;
        }
        let Some(job) = self.prompts.pop_front() else {
            return;
        };
        let question = match &job {
            Job::Manual(i) => {
                let step = &self.rb.steps[*i];
                let text = match &step.action {
                    Action::Manual(m) => m.clone(),
                    Action::Run(_) => String::new(),
                };
                let instructions = match self.renderer.raw(&text, &self.data()) {
                    Ok(t) => t,
                    Err(e) => {
                        let i = *i;
                        self.failed_before_start(i, format!("cannot render the instructions: {e}"));
                        return;
                    }
                };
                self.started_at[*i] = Some(Instant::now());
                self.prompt_manual = Some(*i);
                self.emit(Event::StepStarted {
                    step: step.id.clone(),
                    kind: Kind::Manual,
                    attempt: 1,
                    command: None,
                    phase: Phase::Run,
                });
                Question::Manual {
                    step: step.id.clone(),
                    title: step.title.clone(),
                    instructions: self.shared.masker.mask(&instructions).into_owned(),
                    ask: step.ask.clone(),
                }
            }
            Job::Confirm(i) => {
                let step = &self.rb.steps[*i];
                let command = match &step.action {
                    Action::Run(r) => self
                        .renderer
                        .shell(r, &self.data())
                        .unwrap_or_else(|_| r.clone()),
                    Action::Manual(_) => String::new(),
                };
                Question::Confirm {
                    step: step.id.clone(),
                    title: step.title.clone(),
                    command: self.shared.masker.mask(&command).into_owned(),
                }
            }
            Job::InDoubt(i, started) => {
                let step = &self.rb.steps[*i];
                let what = match &step.action {
                    Action::Run(r) => {
                        let cmd = self
                            .renderer
                            .shell(r, &self.data())
                            .unwrap_or_else(|_| r.clone());
                        format!("its command: {}", self.shared.masker.mask(cmd.trim()))
                    }
                    Action::Manual(_) => "a manual step whose prompt was on screen".to_string(),
                };
                Question::InDoubt {
                    step: step.id.clone(),
                    title: step.title.clone(),
                    what,
                    started: started.clone(),
                }
            }
            Job::Failure(i, r) => {
                let step = &self.rb.steps[*i];
                Question::Failure {
                    step: step.id.clone(),
                    title: step.title.clone(),
                    what: describe_failure(r),
                }
            }
        };
        self.prompt_busy = true;
        self.shared.sinks().display.pause();
        let prompter = Arc::clone(&self.prompter);
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let asked = Instant::now();
            let reply = prompter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .ask(&question);
            let _ = tx.send(Msg::Prompt(job, reply, asked.elapsed()));
        });
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Task(i, phase, result) => {
                self.running_auto = self.running_auto.saturating_sub(1);
                if phase == Phase::Rollback {
                    return;
                }
                self.task_done(i, result);
            }
            Msg::Prompt(job, reply, waited) => {
                if !self.prompt_busy {
                    // Answered after an interrupt took the prompt back: ignored.
                    return;
                }
                self.prompt_busy = false;
                self.prompt_manual = None;
                self.shared.sinks().display.resume();
                match job {
                    Job::Manual(i) => self.answer_manual(i, reply, waited),
                    Job::Confirm(i) => self.answer_confirm(i, reply, waited),
                    Job::Failure(i, r) => self.answer_failure(i, r, reply, waited),
                    Job::InDoubt(i, _) => self.answer_in_doubt(i, reply, waited),
                }
            }
        }
    }

    fn response(&self, reply: &Reply, waited: Duration) -> Response {
        Response {
            answer: Some(reply.answer),
            operator: Some(self.opts.operator.clone()),
            note: reply
                .note
                .as_ref()
                .map(|n| self.shared.masker.mask(n).into_owned()),
            wait_ms: Some(waited.as_millis() as u64),
            value: None,
            captured: None,
        }
    }

    /// What a prompt that could not be answered means for the run.
    fn unanswered(&mut self, i: usize, e: PromptError, waited: Duration) {
        let step = self.rb.steps[i].id.clone();
        match e {
            PromptError::Interrupted => {
                // The prompt saw Ctrl-C itself; the SIGINT it raises may come first or next.
                self.prompt_busy = true;
                self.prompt_manual = self.rb.steps[i].is_manual().then_some(i);
                if self.interrupts == 0 {
                    self.interrupt("SIGINT");
                } else {
                    self.prompt_busy = false;
                }
                if self.state[i] == State::Queued {
                    self.state[i] = State::Pending;
                }
            }
            other => {
                let why = match other {
                    PromptError::EndOfInput => {
                        format!("end of input at the prompt for step {step}: aborting the run")
                    }
                    e => format!("{e} at the prompt for step {step}: aborting the run"),
                };
                self.say(&format!("error: {why}"));
                self.finish(
                    i,
                    Phase::Run,
                    StepStatus::Aborted,
                    waited,
                    self.attempts[i],
                    None,
                    Response {
                        operator: Some(self.opts.operator.clone()),
                        wait_ms: Some(waited.as_millis() as u64),
                        ..Response::default()
                    },
                    Some("no answer: end of input".into()),
                );
                self.stop_run(RunStatus::Aborted, why);
            }
        }
    }

    fn answer_manual(&mut self, i: usize, reply: Result<Reply, PromptError>, waited: Duration) {
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return self.unanswered(i, e, waited),
        };
        let mut response = self.response(&reply, waited);
        let step = self.rb.steps[i].clone();
        let status = match reply.answer {
            Answer::Done | Answer::Yes | Answer::Run => StepStatus::Succeeded,
            Answer::Skip => StepStatus::Skipped,
            _ => StepStatus::Aborted,
        };
        if status == StepStatus::Succeeded
            && let (Some(var), Some(value)) = (&step.ask, &reply.value)
        {
            self.vars.insert(var.clone(), template::value_of(value));
            response.value = Some(self.shared.masker.mask(value).into_owned());
        }
        if self.opts.dry_run && self.opts.yes {
            response.note = Some("answered by --yes (dry run)".into());
            if let Some(var) = &step.ask {
                self.vars
                    .insert(var.clone(), Value::String(format!("<dry-run:{var}>")));
            }
        }
        self.finish(i, Phase::Run, status, waited, 1, None, response, None);
        if status == StepStatus::Aborted {
            self.stop_run(
                RunStatus::Aborted,
                format!("aborted by {} at step {}", self.opts.operator, step.id),
            );
        }
    }

    fn answer_confirm(&mut self, i: usize, reply: Result<Reply, PromptError>, waited: Duration) {
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return self.unanswered(i, e, waited),
        };
        let response = self.response(&reply, waited);
        match reply.answer {
            Answer::Yes | Answer::Done | Answer::Run => {
                self.confirmed[i] = Some(response);
                self.state[i] = State::Pending;
                self.ready.insert(i);
            }
            Answer::Skip => self.finish(
                i,
                Phase::Run,
                StepStatus::Skipped,
                waited,
                0,
                None,
                response,
                None,
            ),
            _ => {
                self.finish(
                    i,
                    Phase::Run,
                    StepStatus::Aborted,
                    waited,
                    0,
                    None,
                    response,
                    None,
                );
                let id = self.rb.steps[i].id.clone();
                self.stop_run(
                    RunStatus::Aborted,
                    format!("aborted by {} at step {id}", self.opts.operator),
                );
            }
        }
    }

    fn answer_failure(
        &mut self,
        i: usize,
        r: TaskResult,
        reply: Result<Reply, PromptError>,
        waited: Duration,
    ) {
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                // No one to ask: the failure stands and the run aborts (spec §3).
                self.finish_task(i, r, self.confirmed[i].clone().unwrap_or_default());
                let id = self.rb.steps[i].id.clone();
                if !matches!(e, PromptError::Interrupted) {
                    self.say(&format!(
                        "error: {e} at the prompt for step {id}: aborting the run"
                    ));
                }
                self.stop_run(RunStatus::Failed, format!("step {id} failed"));
                return;
            }
        };
        let response = self.response(&reply, waited);
        let id = self.rb.steps[i].id.clone();
        match reply.answer {
            Answer::Retry => {
                self.state[i] = State::Pending;
                self.start_auto(i, Phase::Run);
            }
            Answer::Skip => {
                // The failure is recorded; dependents go on as if it had succeeded.
                self.finish_task(i, r, response);
            }
            _ => {
                self.finish_task(i, r, response);
                self.stop_run(
                    RunStatus::Aborted,
                    format!("aborted by {} after step {id} failed", self.opts.operator),
                );
            }
        }
    }

    fn answer_in_doubt(&mut self, i: usize, reply: Result<Reply, PromptError>, waited: Duration) {
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return self.unanswered(i, e, waited),
        };
        let response = self.response(&reply, waited);
        let step = Arc::clone(&self.rb);
        let step = &step.steps[i];
        match reply.answer {
            Answer::Retry if step.is_manual() => self.prompts.push_front(Job::Manual(i)),
            Answer::Retry => {
                // Asked once already; the retry is the operator's decision, not a new confirm.
                self.confirmed[i] = Some(response);
                self.state[i] = State::Pending;
                self.ready.insert(i);
            }
            Answer::Done => {
                if let Some(var) = step.capture.as_ref().or(step.ask.as_ref()) {
                    self.say(&format!(
                        "  note: {var} (from {}) is not known; steps that use it will fail",
                        step.id
                    ));
                }
                let attempts = self.attempts[i];
                self.finish(
                    i,
                    Phase::Run,
                    StepStatus::Succeeded,
                    Duration::ZERO,
                    attempts,
                    None,
                    response,
                    Some("in doubt after a crash; the operator recorded it as done".into()),
                );
            }
            Answer::Skip => {
                let attempts = self.attempts[i];
                self.finish(
                    i,
                    Phase::Run,
                    StepStatus::Skipped,
                    Duration::ZERO,
                    attempts,
                    None,
                    response,
                    None,
                );
            }
            _ => {
                let attempts = self.attempts[i];
                self.finish(
                    i,
                    Phase::Run,
                    StepStatus::Aborted,
                    Duration::ZERO,
                    attempts,
                    None,
                    response,
                    None,
                );
                self.stop_run(
                    RunStatus::Aborted,
                    format!("aborted by {} at step {}", self.opts.operator, step.id),
                );
            }
        }
    }

    /// Puts a resumed run where its log left it: finished steps are not run again, values
    /// they captured or were given are restored (in `vars`), steps in doubt are asked about.
    pub fn resume_from(&mut self, seed: Seed) {
        for (i, attempts) in seed.attempts {
            self.attempts[i] = attempts;
        }
        for (i, status) in seed.done {
            if status == StepStatus::Succeeded {
                self.succeeded_order.push(i);
            }
            self.ready.remove(&i);
            self.mark_done(i, status);
        }
        for (i, started) in seed.in_doubt {
            self.ready.remove(&i);
            self.state[i] = State::Queued;
            self.prompts.push_back(Job::InDoubt(i, started));
        }
        self.ready.retain(|&i| self.state[i] == State::Pending);
        self.earlier = seed.elapsed;
    }

    fn task_done(&mut self, i: usize, r: TaskResult) {
        self.attempts[i] += r.attempts;
        let step = &self.rb.steps[i];
        let failed = matches!(r.status, StepStatus::Failed | StepStatus::TimedOut);
        // In a rehearsal a read-only check may fail because the systems are not reachable
        // from where the drill runs: it is recorded, and the drill goes on.
        let on_failure = if self.opts.dry_run {
            OnFailure::Continue
        } else {
            step.on_failure
        };
        if failed && on_failure == OnFailure::Prompt && self.stop.is_none() {
            self.state[i] = State::Queued;
            self.prompts.push_back(Job::Failure(i, r));
            return;
        }
        if let Some(var) = &step.capture {
            match (&r.capture, r.status) {
                (Some(v), StepStatus::Succeeded) => {
                    self.vars.insert(var.clone(), template::value_of(v));
                }
                (_, StepStatus::DryRun) => {
                    self.vars
                        .insert(var.clone(), Value::String(format!("<dry-run:{var}>")));
                }
                (_, _) if self.opts.dry_run => {
                    self.say(&format!(
                        "  (dry run: {} failed; the rehearsal goes on with {var} unknown)",
                        step.id
                    ));
                    self.vars
                        .insert(var.clone(), Value::String(format!("<dry-run:{var}>")));
                }
                _ => {}
            }
        }
        let id = step.id.clone();
        let mut response = self.confirmed[i].clone().unwrap_or_default();
        if r.status == StepStatus::Succeeded {
            response.captured = r
                .capture
                .as_ref()
                .map(|v| self.shared.masker.mask(v).into_owned());
        }
        let status = r.status;
        self.finish_task(i, r, response);
        if failed && on_failure != OnFailure::Continue {
            self.stop_run(
                RunStatus::Failed,
                format!("step {id} {}", status.as_str().replace('_', " ")),
            );
        }
    }

    fn finish_task(&mut self, i: usize, r: TaskResult, response: Response) {
        let duration = self.started_at[i].map_or(r.duration, |t| t.elapsed());
        let attempts = self.attempts[i];
        self.finish(
            i,
            Phase::Run,
            r.status,
            duration,
            attempts,
            r.exit_code,
            response,
            r.reason,
        );
    }

    /// Records a step's end and releases its dependents.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        i: usize,
        phase: Phase,
        status: StepStatus,
        duration: Duration,
        attempts: u32,
        exit_code: Option<i32>,
        response: Response,
        reason: Option<String>,
    ) {
        self.emit_finished(
            i, phase, status, duration, attempts, exit_code, response, reason,
        );
        let step = &self.rb.steps[i];
        if status == StepStatus::Succeeded {
            self.succeeded_order.push(i);
            if let Some(m) = step.milestone {
                self.emit(Event::Milestone {
                    name: m.as_str().into(),
                    step: step.id.clone(),
                });
            }
        }
        self.mark_done(i, status);
    }

    /// Marks a step as ended and makes the steps waiting only for it ready.
    fn mark_done(&mut self, i: usize, status: StepStatus) {
        self.state[i] = State::Done(status);
        self.finished += 1;
        for &d in &self.dependents[i] {
            self.waiting[d] = self.waiting[d].saturating_sub(1);
            if self.waiting[d] == 0 {
                self.ready.insert(d);
            }
        }
    }

    /// Offers the rollbacks of succeeded steps, newest first (spec §3).
    async fn rollbacks(
        &mut self,
        sigint: &mut Option<tokio::signal::unix::Signal>,
        sigterm: &mut Option<tokio::signal::unix::Signal>,
    ) {
        let candidates: Vec<usize> = self
            .succeeded_order
            .iter()
            .rev()
            .copied()
            .filter(|&i| self.rb.steps[i].rollback.is_some())
            .collect();
        if candidates.is_empty() || self.interrupts > 0 {
            return;
        }
        if self.opts.rollback == RollbackMode::Never {
            self.say("not rolled back (undo by hand if needed, newest first):");
            for &i in &candidates {
                let s = &self.rb.steps[i];
                let cmd = self
                    .renderer
                    .shell(s.rollback.as_deref().unwrap_or_default(), &self.data())
                    .unwrap_or_default();
                self.say(&format!(
                    "  {}: {}",
                    s.id,
                    self.shared.masker.mask(cmd.trim())
                ));
            }
            return;
        }
        let _ = self.cancel.send(Cancel::None);
        self.say("rolling back, newest first:");
        for i in candidates {
            let mut response = Response::default();
            if self.opts.rollback == RollbackMode::Ask {
                let s = &self.rb.steps[i];
                let command = self
                    .renderer
                    .shell(s.rollback.as_deref().unwrap_or_default(), &self.data())
                    .unwrap_or_default();
                let q = Question::Rollback {
                    step: s.id.clone(),
                    title: s.title.clone(),
                    command: self.shared.masker.mask(&command).into_owned(),
                };
                self.shared.sinks().display.pause();
                let prompter = Arc::clone(&self.prompter);
                let asked_at = Instant::now();
                let asked = tokio::task::spawn_blocking(move || {
                    prompter.lock().unwrap_or_else(|p| p.into_inner()).ask(&q)
                });
                let reply = tokio::select! {
                    r = asked => r.ok(),
                    Some(_) = recv(sigint) => { self.interrupts += 1; None }
                    Some(_) = recv(sigterm) => { self.interrupts += 1; None }
                };
                self.shared.sinks().display.resume();
                let reply = match reply {
                    Some(Ok(r)) => r,
                    _ => {
                        self.say("  rollback stopped: no answer");
                        return;
                    }
                };
                response = self.response(&reply, asked_at.elapsed());
                match reply.answer {
                    Answer::Run | Answer::Yes | Answer::Done => {}
                    Answer::Skip => {
                        self.emit_finished(
                            i,
                            Phase::Rollback,
                            StepStatus::Skipped,
                            Duration::ZERO,
                            0,
                            None,
                            response,
                            None,
                        );
                        continue;
                    }
                    _ => {
                        self.emit_finished(
                            i,
                            Phase::Rollback,
                            StepStatus::Skipped,
                            Duration::ZERO,
                            0,
                            None,
                            response,
                            Some("rollback stopped here".into()),
                        );
                        self.say("  rollback stopped");
                        return;
                    }
                }
            }
            self.start_auto(i, Phase::Rollback);
            // One rollback at a time, in order.
            loop {
                tokio::select! {
                    Some(msg) = self.rx.recv() => {
                        if let Msg::Task(j, Phase::Rollback, r) = msg {
                            self.running_auto = self.running_auto.saturating_sub(1);
                            let response = std::mem::take(&mut response);
                            self.emit_finished(j, Phase::Rollback, r.status, r.duration, r.attempts, r.exit_code, response, r.reason);
                            break;
                        }
                    }
                    Some(_) = recv(sigint) => self.interrupt_rollback(),
                    Some(_) = recv(sigterm) => self.interrupt_rollback(),
                }
                if self.running_auto == 0 {
                    break;
                }
            }
            if self.interrupts > 0 {
                return;
            }
        }
    }

    /// Writes a step's (or its rollback's) `step_finished`.
    #[allow(clippy::too_many_arguments)]
    fn emit_finished(
        &self,
        i: usize,
        phase: Phase,
        status: StepStatus,
        duration: Duration,
        attempts: u32,
        exit_code: Option<i32>,
        response: Response,
        reason: Option<String>,
    ) {
        let step = &self.rb.steps[i];
        self.emit(Event::StepFinished {
            step: step.id.clone(),
            kind: kind(step),
            status,
            duration_ms: duration.as_millis() as u64,
            attempts,
            exit_code,
            phase,
            response,
            reason,
        });
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
            let _ = tx.send(Msg::Task(
                self.step,
                self.phase,
                TaskResult {
                    status: StepStatus::Failed,
                    exit_code: None,
                    attempts: 1,
                    duration: Duration::ZERO,
                    capture: None,
                    reason: Some("internal error in runbook while running this step (a bug: please report it)".into()),
                },
            ));
        }
    }
}

async fn recv(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

fn auto_reply(answer: Answer) -> Reply {
    Reply {
        answer,
        note: None,
        value: None,
    }
}

fn kind(step: &Step) -> Kind {
    if step.is_manual() {
        Kind::Manual
    } else {
        Kind::Auto
    }
}

fn describe_failure(r: &TaskResult) -> String {
    match (r.status, r.exit_code, &r.reason) {
        (_, _, Some(reason)) => format!("failed: {reason}"),
        (StepStatus::TimedOut, _, _) => "timed out".into(),
        (_, Some(c), _) => format!("failed with exit code {c}"),
        _ => "failed".into(),
    }
}

/// A dry run of a step that changes things: recorded and shown, never executed.
fn dry_task(shared: &Shared, step: &Step, spec: &process::Spec, attempt: u32) -> TaskResult {
    let command = shared.masker.mask(&spec.command).into_owned();
    let mut sinks = shared.sinks();
    let _ = sinks.emit(&Event::StepStarted {
        step: step.id.clone(),
        kind: Kind::Auto,
        attempt,
        command: Some(command.clone()),
        phase: Phase::Run,
    });
    if sinks.display_is_fancy() {
        sinks
            .display
            .line(&format!("  would run {}: {}", step.id, command.trim()));
    }
    TaskResult {
        status: StepStatus::DryRun,
        exit_code: None,
        attempts: 1,
        duration: Duration::ZERO,
        capture: None,
        reason: None,
    }
}

impl Sinks {
    fn display_is_fancy(&self) -> bool {
        self.display.is_fancy()
    }
}

/// Runs every attempt of an automated step (or one rollback).
#[allow(clippy::too_many_arguments)]
async fn auto_task(
    shared: &Shared,
    step: &Step,
    spec: &process::Spec,
    phase: Phase,
    first_attempt: u32,
    retries: u32,
    started: Instant,
    mut cancel: watch::Receiver<Cancel>,
) -> TaskResult {
    let command = shared.masker.mask(&spec.command).into_owned();
    let mut delay = step.retry_delay.unwrap_or(DEFAULT_RETRY_DELAY);
    let mut attempts = 0;
    let mut capture = Vec::new();
    loop {
        attempts += 1;
        let attempt = first_attempt + attempts - 1;
        let started_event = Event::StepStarted {
            step: step.id.clone(),
            kind: Kind::Auto,
            attempt,
            command: Some(command.clone()),
            phase,
        };
        // The start must be on disk before the process exists (spec §4).
        if let Err(e) = shared.sinks().emit(&started_event) {
            return TaskResult {
                status: StepStatus::Failed,
                exit_code: None,
                attempts,
                duration: started.elapsed(),
                capture: None,
                reason: Some(format!("not started: cannot write the execution log: {e}")),
            };
        }
        capture.clear();
        let mut out = StepOutput::new(shared, &step.id, phase);
        let outcome = process::run(
            spec,
            |stream, bytes| {
                if stream == Stream::Stdout
                    && step.capture.is_some()
                    && capture.len() < CAPTURE_LIMIT
                {
                    let room = CAPTURE_LIMIT - capture.len();
                    capture.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
                out.push(stream, bytes);
            },
            cancel.clone(),
        )
        .await;
        out.finish();
        let (status, exit_code, reason) = match outcome {
            Ok(Outcome::Exited(0)) => (StepStatus::Succeeded, Some(0), None),
            Ok(Outcome::Exited(c)) => (StepStatus::Failed, Some(c), None),
            Ok(Outcome::Signalled(s)) => (
                StepStatus::Failed,
                None,
                Some(format!("killed by signal {s}")),
            ),
            Ok(Outcome::TimedOut) => (
                StepStatus::TimedOut,
                None,
                spec.timeout
                    .map(|t| format!("timed out after {}", humantime::format_duration(t))),
            ),
            Ok(Outcome::Cancelled) => (
                StepStatus::Aborted,
                None,
                Some("stopped: the run was interrupted".into()),
            ),
            Err(e) => (
                StepStatus::Failed,
                None,
                Some(format!("cannot start `sh`: {e}")),
            ),
        };
        let give_up = status == StepStatus::Succeeded
            || status == StepStatus::Aborted
            || attempts > retries
            || *cancel.borrow() != Cancel::None;
        if give_up {
            let capture = (status == StepStatus::Succeeded && step.capture.is_some())
                .then(|| String::from_utf8_lossy(&capture).trim().to_string());
            return TaskResult {
                status,
                exit_code,
                attempts,
                duration: started.elapsed(),
                capture,
                reason,
            };
        }
        shared.sinks().display.line(&format!(
            "  {} attempt {attempt} {}; retrying in {}",
            step.id,
            reason.unwrap_or_else(|| format!("exited with {}", exit_code.unwrap_or(-1))),
            humantime::format_duration(delay)
        ));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.changed() => {}
        }
        delay = delay.mul_f64(step.retry_backoff);
    }
}

/// One attempt's output on its way to the display and the log: split into lines, masked,
/// and logged up to the per-step cap.
struct StepOutput<'a> {
    shared: &'a Shared,
    step: &'a str,
    phase: Phase,
    split: [LineSplitter; 2],
    logged: u64,
    dropped: u64,
}

impl<'a> StepOutput<'a> {
    fn new(shared: &'a Shared, step: &'a str, phase: Phase) -> Self {
        StepOutput {
            shared,
            step,
            phase,
            split: [LineSplitter::default(), LineSplitter::default()],
            logged: 0,
            dropped: 0,
        }
    }

    fn push(&mut self, stream: Stream, bytes: &[u8]) {
        let k = stream as usize;
        if let Some(piece) = self.split[k].push(bytes, &self.shared.masker) {
            self.emit(stream, &piece);
        }
    }

    /// Passes a piece to the display as it is, and to the log as text up to the cap.
    fn emit(&mut self, stream: Stream, piece: &[u8]) {
        let mut sinks = self.shared.sinks();
        sinks.display.output(self.step, stream, piece);
        let room = self.shared.output_cap.saturating_sub(self.logged) as usize;
        let keep = piece.len().min(room);
        self.dropped += (piece.len() - keep) as u64;
        if keep == 0 {
            return;
        }
        self.logged += keep as u64;
        let _ = sinks.log.write(&Event::StepOutput {
            step: self.step.to_string(),
            stream,
            text: String::from_utf8_lossy(&piece[..keep]).into_owned(),
            phase: self.phase,
            truncated_bytes: None,
        });
    }

    fn finish(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some(piece) = self.split[stream as usize].finish(&self.shared.masker) {
                self.emit(stream, &piece);
            }
        }
        if self.dropped > 0 {
            let _ = self.shared.sinks().log.write(&Event::StepOutput {
                step: self.step.to_string(),
                stream: Stream::Stdout,
                text: String::new(),
                phase: self.phase,
                truncated_bytes: Some(self.dropped),
            });
        }
    }
}
