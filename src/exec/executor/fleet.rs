//! Fleet steps in the executor: what the dispatcher does differently for a step with
//! `hosts`. Starting one renders its hosts once (a retry, a rollback and `resume` go on
//! with the same list), decides `when` and renders the command for each host with
//! `{{host}}` set, and hands a pass to [`crate::exec::fleet::run`] as one task; its end is
//! an automated step's end, with the hosts' `capture`s as a table. On resume, each host in
//! doubt is put to the operator on its own.

use crate::event as ev;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Ending, Executor};
use crate::event::{Event, HostCounts, Kind, Level, Phase, PromptKind, Response, StepStatus};
use crate::exec::ask::{Question, Reply, Verdict};
use crate::exec::fleet::resume::FleetSeed;
use crate::exec::fleet::ssh::{Ssh, remote_command};
use crate::exec::fleet::{
    Attempts, HostEnd, HostJob, HostTable, Pass, SharedTable, lock, policy, run,
};
use crate::exec::task::TaskResult;
use crate::runbook::hosts::HOST_VAR;
use crate::runbook::{Action, OnFailure, Step, hosts, template};

/// Wait between attempts when a step has `retries` but no `retry_delay`.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Hosts named in a prompt; the rest are counted.
const PREVIEW_HOSTS: usize = 5;
/// A word of `hosts` in a rehearsal that stands for hosts a skipped command would give.
const DRY_PREFIX: &str = "<dry-run:";

/// The fleet steps of a run: how each host of each step ended, the run's ssh client
/// (made at the first fleet step that runs; its connections close when it is dropped),
/// and the hosts still in doubt on resume.
#[derive(Default)]
pub(super) struct Fleets {
    tables: HashMap<usize, SharedTable>,
    ssh: Option<Arc<Ssh>>,
    in_doubt: HashMap<usize, VecDeque<(usize, String)>>,
}

impl Fleets {
    /// The hosts of step `i` by status, for its `step_finished` in `phase`.
    pub(super) fn counts(&self, i: usize, phase: Phase) -> Option<HostCounts> {
        self.tables
            .get(&i)
            .and_then(|t| lock(t).counts[phase as usize])
    }

    fn ssh(&mut self, config: Option<&str>) -> Result<Arc<Ssh>, String> {
        if let Some(s) = &self.ssh {
            return Ok(Arc::clone(s));
        }
        let ssh = Ssh::new(config.map(Into::into))
            .map_err(|e| format!("cannot make a directory for the ssh connections: {e}"))?;
        let ssh = Arc::new(ssh);
        self.ssh = Some(Arc::clone(&ssh));
        Ok(ssh)
    }
}

impl Executor {
    /// Starts a pass of fleet step `i`: its hosts that have not ended well (the run), or
    /// those where it succeeded (the rollback). An error means nothing started.
    pub(super) fn start_fleet(&mut self, i: usize, phase: Phase) -> Result<(), String> {
        let rb = Arc::clone(&self.rb);
        let step = &rb.steps[i];
        let fleet = step.fleet.as_ref().ok_or("not a fleet step")?;
        let table = self.host_table(i, step)?;
        let (hosts, runs) = {
            let t = lock(&table);
            (t.hosts.clone(), t.run.clone())
        };
        let statuses: Vec<Option<StepStatus>> =
            runs.iter().map(|e| e.as_ref().map(|e| e.status)).collect();
        let todo = match phase {
            Phase::Run => policy::to_run(&statuses),
            Phase::Rollback => policy::to_roll_back(&statuses),
        };
        let pseudo = hosts.iter().any(|h| h.starts_with(DRY_PREFIX));
        let dry = self.opts.dry_run && (!step.readonly || pseudo);
        let ssh = if dry {
            None
        } else {
            Some(self.fleets.ssh(self.opts.run.ssh_config.as_deref())?)
        };
        let attempt = match phase {
            Phase::Run => self.progress[i].attempts + 1,
            Phase::Rollback => 1,
        };
        let mut prelude = vec![Event::StepStarted(ev::StepStarted {
            step: step.id.clone(),
            kind: Kind::Auto,
            attempt,
            command: None,
            phase,
            last_attempt: None,
            timeout_ms: None,
            instructions: None,
            host: None,
            hosts: Some(hosts.clone()),
        })];
        let mut jobs = Vec::with_capacity(todo.len());
        let mut data = self.data();
        let mut told_dry_when = false;
        for h in todo {
            let host = &hosts[h];
            if let Value::Object(m) = &mut data {
                m.insert(HOST_VAR.into(), Value::String(host.clone()));
            }
            let first_attempt = match phase {
                Phase::Run => runs[h].as_ref().map_or(0, |e| e.attempts) + 1,
                Phase::Rollback => 1,
            };
            let job = match self.host_job(step, phase, &data, &mut told_dry_when) {
                Ok(Some((command, remote))) => HostJob {
                    index: h,
                    host: host.clone(),
                    command,
                    remote,
                    first_attempt,
                },
                Ok(None) => {
                    let end =
                        HostEnd::because(StepStatus::Skipped, "its `when` condition is false");
                    prelude.push(self.ended_before(&table, step, phase, host, h, end));
                    continue;
                }
                Err(e) => {
                    let end = HostEnd::because(StepStatus::Failed, e);
                    prelude.push(self.ended_before(&table, step, phase, host, h, end));
                    continue;
                }
            };
            jobs.push(job);
        }
        let session_limit = ssh.as_ref().map_or(usize::MAX, |s| s.session_limit);
        let pass = Pass {
            step: step.id.clone(),
            phase,
            at_once: policy::at_once(fleet.batch, jobs.len(), session_limit),
            jobs,
            dry,
            attempts: Attempts {
                timeout: step.timeout,
                // A rehearsal runs each read-only check once; a rollback once per host.
                retries: if phase == Phase::Run && !self.opts.dry_run {
                    step.retries
                } else {
                    0
                },
                retry_delay: step.retry_delay.unwrap_or(DEFAULT_RETRY_DELAY),
                retry_backoff: step.retry_backoff,
                capture: phase == Phase::Run && step.capture.is_some(),
            },
            allowed: (phase == Phase::Run)
                .then(|| policy::failures_allowed(fleet.max_failed, hosts.len())),
            max_failed: fleet.max_failed,
            prelude,
            started: Instant::now(),
            table,
        };
        self.schedule.start(i);
        if phase == Phase::Run {
            self.progress[i].started.get_or_insert_with(Instant::now);
        }
        let emitter = self.emitter.clone();
        let masker = Arc::clone(&self.masker);
        let cancel = self.cancel.subscribe();
        self.spawn_task(i, phase, async move {
            run::run(pass, ssh, emitter, masker, cancel).await
        });
        Ok(())
    }

    /// The step's host table: made when the step first starts, from `hosts` rendered then.
    fn host_table(&mut self, i: usize, step: &Step) -> Result<SharedTable, String> {
        if let Some(t) = self.fleets.tables.get(&i) {
            return Ok(Arc::clone(t));
        }
        let hosts = self.render_hosts(step)?;
        let table = Arc::new(Mutex::new(HostTable::new(hosts)));
        self.fleets.tables.insert(i, Arc::clone(&table));
        Ok(table)
    }

    /// `hosts`, rendered and resolved into names. In a rehearsal, a word that a command not
    /// run would have given stays, as a host that is shown and never contacted.
    fn render_hosts(&self, step: &Step) -> Result<Vec<String>, String> {
        let fleet = step.fleet.as_ref().ok_or("not a fleet step")?;
        let data = self.data();
        let mut texts = Vec::with_capacity(fleet.hosts.len());
        for t in &fleet.hosts {
            let r = self
                .renderer
                .raw(t, &data)
                .map_err(|e| format!("`hosts`: {e}"))?;
            texts.push(r);
        }
        let mut pseudo = Vec::new();
        if self.opts.dry_run {
            for t in &mut texts {
                let kept: Vec<&str> = hosts::words(t)
                    .filter(|w| {
                        let dry = w.starts_with(DRY_PREFIX);
                        if dry && !pseudo.iter().any(|p| p == w) {
                            pseudo.push(w.to_string());
                        }
                        !dry
                    })
                    .collect();
                *t = kept.join(" ");
            }
            if !pseudo.is_empty() && texts.iter().all(|t| t.trim().is_empty()) {
                return Ok(pseudo);
            }
        }
        let mut names = hosts::resolve(texts.iter().map(String::as_str), &self.rb.groups)
            .map_err(|e| format!("`hosts`: {e}"))?;
        names.extend(pseudo);
        Ok(names)
    }

    /// One host's command: `None` when its `when` is false. `data` has `host` set.
    fn host_job(
        &mut self,
        step: &Step,
        phase: Phase,
        data: &Value,
        told_dry_when: &mut bool,
    ) -> Result<Option<(String, String)>, String> {
        if phase == Phase::Run
            && let Some(when) = &step.when
        {
            if self.opts.dry_run && depends_on_rehearsal(when, data) {
                if !*told_dry_when {
                    *told_dry_when = true;
                    let text = format!(
                        "(dry run: `{}` is decided at run time; taken as true on every host)",
                        when.trim()
                    );
                    self.emit(Event::Notice(ev::Notice {
                        level: Level::Info,
                        text,
                        step: Some(step.id.clone()),
                    }));
                }
            } else {
                let rendered = self
                    .renderer
                    .raw(when, data)
                    .map_err(|e| format!("cannot decide `when`: {e}"))?;
                if !template::truthy(&rendered) {
                    return Ok(None);
                }
            }
        }
        let text = match (phase, &step.action) {
            (Phase::Rollback, _) => step.rollback.as_deref().unwrap_or_default(),
            (Phase::Run, Action::Run(r)) => r.as_str(),
            (Phase::Run, Action::Manual(_)) => "",
        };
        let rendering = |e: String| format!("cannot render the command: {e}");
        // Secrets never reach a fleet step's command (`check` refuses them): the command is
        // text for the remote shell, with no local environment to carry a reference.
        let command = self.renderer.shell(text, data).map_err(rendering)?.text;
        let mut env = Vec::with_capacity(step.env.len());
        for (k, v) in &step.env {
            env.push((
                k.clone(),
                self.renderer.process_text(v, data).map_err(rendering)?,
            ));
        }
        let dir = match &step.dir {
            Some(d) => Some(self.renderer.process_text(d, data).map_err(rendering)?),
            None => None,
        };
        let remote = remote_command(&command, &env, dir.as_deref().map(Path::new))
            .map_err(|e| e.to_string())?;
        let shown = self.masker.mask(command.trim()).into_owned();
        Ok(Some((shown, remote)))
    }

    /// A host that ended before the pass (a false `when`, a command that cannot be
    /// rendered): kept in the table, and its record for the pass's first write.
    fn ended_before(
        &self,
        table: &SharedTable,
        step: &Step,
        phase: Phase,
        host: &str,
        h: usize,
        end: HostEnd,
    ) -> Event {
        let reason = end
            .reason
            .as_ref()
            .map(|r| self.masker.mask(r).into_owned());
        let event = Event::StepFinished(ev::StepFinished {
            step: step.id.clone(),
            kind: Kind::Auto,
            status: end.status,
            duration_ms: 0,
            attempts: 0,
            exit_code: None,
            phase,
            response: Response::default(),
            reason,
            host: Some(host.to_string()),
            host_counts: None,
        });
        if let Some(slot) = lock(table).phase_mut(phase).get_mut(h) {
            *slot = Some(end);
        }
        event
    }

    /// A pass of fleet step `i` ended: the step ends as an automated step does, and its
    /// `capture` is the table of its hosts' outputs.
    pub(super) fn fleet_done(&mut self, i: usize, mut r: TaskResult) {
        let rb = Arc::clone(&self.rb);
        let step = &rb.steps[i];
        let table = self.fleets.tables.get(&i).map(Arc::clone);
        let captures = table
            .as_ref()
            .map(|t| lock(t).captures())
            .unwrap_or_default();
        if r.status == StepStatus::Succeeded && step.capture.is_some() {
            r.capture = Some(Value::Object(captures.clone()).to_string());
        }
        if r.status == StepStatus::Failed
            && step.on_failure == OnFailure::Prompt
            && !self.opts.dry_run
        {
            let why = r.reason.take().unwrap_or_else(|| "hosts failed".into());
            r.reason = Some(format!(
                "{why} (retry runs only the hosts that failed or did not start)"
            ));
        }
        let status = r.status;
        self.task_done(i, r);
        let Some(var) = &step.capture else { return };
        // In a rehearsal the table keeps its shape (`lookup` and `each` work), with a
        // placeholder for each host, whether the step was only shown or its check failed.
        let table = match status {
            StepStatus::Succeeded => captures,
            _ if self.opts.dry_run => table
                .map(|t| lock(&t).hosts.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|h| (h, Value::String(format!("{DRY_PREFIX}{var}>"))))
                .collect(),
            _ => return,
        };
        self.vars.insert(var.clone(), Value::Object(table));
    }

    /// On resume: how each host of each fleet step ended, from the log.
    pub(super) fn fleet_resume(&mut self, seeds: Vec<FleetSeed>) {
        for s in seeds {
            if !s.in_doubt.is_empty() {
                self.fleets.in_doubt.insert(s.step, s.in_doubt.into());
            }
            self.fleets
                .tables
                .insert(s.step, Arc::new(Mutex::new(s.table)));
        }
    }

    /// On resume, a fleet step that started and did not end: each of its hosts in doubt is
    /// asked about; then it goes on with the hosts that did not end. False for other steps.
    pub(super) fn fleet_in_doubt(&mut self, i: usize) -> bool {
        if !self.rb.steps[i].is_fleet() {
            return false;
        }
        // It started before: its `when` was decided then, host by host.
        self.progress[i].when_decided = true;
        if self.fleets.in_doubt.get(&i).is_some_and(|q| !q.is_empty()) {
            self.schedule.queue(i);
            self.prompts.push_back((PromptKind::InDoubt, i));
        }
        true
    }

    /// The question about the first host in doubt of fleet step `i`.
    pub(super) fn fleet_question(&mut self, i: usize) -> Option<Question> {
        let (h, started) = self.fleets.in_doubt.get(&i)?.front()?.clone();
        let step = &self.rb.steps[i];
        let host = self
            .fleets
            .tables
            .get(&i)
            .and_then(|t| lock(t).hosts.get(h).cloned())?;
        let mut data = self.data();
        if let Value::Object(m) = &mut data {
            m.insert(HOST_VAR.into(), Value::String(host.clone()));
        }
        let command = match &step.action {
            Action::Run(r) => self
                .renderer
                .shell(r, &data)
                .map_or_else(|_| r.clone(), |c| c.text),
            Action::Manual(_) => String::new(),
        };
        Some(Question {
            kind: PromptKind::InDoubt,
            step: step.id.clone(),
            title: format!("{}, on host {host}", step.title),
            body: self
                .masker
                .mask(&format!("its command on {host}: {}", command.trim()))
                .into_owned(),
            ask: None,
            needed_by: Vec::new(),
            started: Some(started),
            seq: self.next_seq(),
            can_roll_back: false,
        })
    }

    /// The operator's answer about the first host in doubt of fleet step `i`.
    pub(super) fn fleet_answer_in_doubt(
        &mut self,
        i: usize,
        v: Verdict,
        reply: &Reply,
        waited: Duration,
    ) {
        let Some((h, _)) = self
            .fleets
            .in_doubt
            .get_mut(&i)
            .and_then(VecDeque::pop_front)
        else {
            return;
        };
        let response = self.response(reply, waited);
        let table = self.fleets.tables.get(&i).map(Arc::clone);
        let host = table
            .as_ref()
            .and_then(|t| lock(t).hosts.get(h).cloned())
            .unwrap_or_default();
        let step = self.rb.steps[i].id.clone();
        let ended = match v {
            // It stays without an end: the pass runs it again.
            Verdict::Go => {
                self.progress[i].confirmed = Some(response.clone());
                None
            }
            Verdict::Done => Some((
                StepStatus::Succeeded,
                "in doubt after a crash; the operator recorded it as done",
            )),
            Verdict::Skip => Some((StepStatus::Skipped, "in doubt after a crash; skipped")),
            Verdict::Abort => Some((
                StepStatus::Aborted,
                "in doubt after a crash; the run was aborted",
            )),
        };
        if let (Some((status, why)), Some(t)) = (ended, &table) {
            if let Some(slot) = lock(t).run.get_mut(h) {
                *slot = Some(HostEnd::because(status, why));
            }
            self.emit(Event::StepFinished(ev::StepFinished {
                step: step.clone(),
                kind: Kind::Auto,
                status,
                duration_ms: 0,
                attempts: 0,
                exit_code: None,
                phase: Phase::Run,
                response: response.clone(),
                reason: Some(why.into()),
                host: Some(host),
                host_counts: None,
            }));
        }
        if v == Verdict::Abort {
            let ending = Ending {
                attempts: self.progress[i].attempts,
                response,
                ..Ending::because("aborted while hosts were in doubt")
            };
            self.finish(i, StepStatus::Aborted, ending);
            let why = format!("aborted by {} at step {step}", self.opts.operator);
            self.schedule.stop(crate::event::RunStatus::Aborted, why);
            return;
        }
        if self.fleets.in_doubt.get(&i).is_some_and(|q| !q.is_empty()) {
            self.prompts.push_front((PromptKind::InDoubt, i));
        } else {
            self.schedule.requeue(i);
        }
    }

    /// What a fleet step will run, for a confirmation or a rollback: the hosts, and the
    /// command as rendered for the first of them.
    pub(super) fn fleet_preview(&self, i: usize, phase: Phase) -> String {
        let step = &self.rb.steps[i];
        let hosts: Vec<String> = match self.fleets.tables.get(&i) {
            Some(t) => {
                let t = lock(t);
                match phase {
                    Phase::Run => t.hosts.clone(),
                    Phase::Rollback => policy::to_roll_back(&t.statuses(Phase::Run))
                        .into_iter()
                        .map(|h| t.hosts[h].clone())
                        .collect(),
                }
            }
            None => self.render_hosts(step).unwrap_or_default(),
        };
        let text = match (phase, &step.action) {
            (Phase::Rollback, _) => step.rollback.clone().unwrap_or_default(),
            (Phase::Run, Action::Run(r)) => r.clone(),
            (Phase::Run, Action::Manual(_)) => String::new(),
        };
        let mut data = self.data();
        if let (Value::Object(m), Some(first)) = (&mut data, hosts.first()) {
            m.insert(HOST_VAR.into(), Value::String(first.clone()));
        }
        let command = self.renderer.shell(&text, &data).map_or(text, |c| c.text);
        let mut named = hosts
            .iter()
            .take(PREVIEW_HOSTS)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if hosts.len() > PREVIEW_HOSTS {
            named.push_str(&format!(", and {} more", hosts.len() - PREVIEW_HOSTS));
        }
        let on = match hosts.first() {
            Some(first) if hosts.len() > 1 => format!(" (as on {first})"),
            _ => String::new(),
        };
        format!(
            "on {} host{} ({named}){on}: {}",
            hosts.len(),
            if hosts.len() == 1 { "" } else { "s" },
            command.trim()
        )
    }
}

/// Whether a `when` reads a value that a rehearsal did not produce (on any host).
fn depends_on_rehearsal(when: &str, data: &Value) -> bool {
    let is_dry = |v: &Value| v.as_str().is_some_and(|s| s.starts_with(DRY_PREFIX));
    template::analyse(when).is_ok_and(|refs| {
        refs.iter().any(|r| match data.get(&r.name) {
            Some(Value::Object(m)) => m.values().any(is_dry),
            Some(v) => is_dry(v),
            None => false,
        })
    })
}
