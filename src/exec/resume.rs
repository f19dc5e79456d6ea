//! `runbook resume RUN_ID`: continue a run that did not finish (a crash, a lost terminal,
//! a killed process) in the same log. Finished steps are not run again, captured and asked
//! values come back from the log, and a step that started without a recorded end is *in
//! doubt*: the operator says whether to retry it, record it as done, skip it, or abort.

use std::io::Write;
use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;

use super::executor::{Executor, Seed};
use super::{Options, ParamValue, RollbackMode};
use crate::config::Config;
use crate::error::Error;
use crate::event::{Event, Mode, Phase, StepStatus};
use crate::log::run::Run;
use crate::log::{reader, writer::LogWriter};
use crate::runbook::template::value_of;

pub struct ResumeArgs<'a> {
    pub run: &'a str,
    pub force: bool,
    pub vars: &'a [String],
    pub yes: bool,
    pub operator: Option<&'a str>,
    pub rollback: Option<RollbackMode>,
}

pub fn resume(config: &Config, args: &ResumeArgs) -> Result<u8, Error> {
    let log_dir = super::log_dir(config)?;
    let path = reader::find(&log_dir, args.run)?;
    let log = reader::read(&path).map_err(|e| Error::Usage(e.to_string()))?;
    let run = Run::from_log(&log)
        .ok_or_else(|| Error::Usage(format!("{} has no run_started record", path.display())))?;
    if let Some(status) = run.status {
        return Err(Error::Usage(format!(
            "run {} already finished ({}); there is nothing to resume",
            run.run_id,
            status.as_str()
        )));
    }
    let runbook_path = log.records.iter().find_map(|(_, e)| match e {
        Event::RunStarted {
            runbook_path,
            runbook_sha256,
            ..
        } => Some((runbook_path.clone(), runbook_sha256.clone())),
        _ => None,
    });
    let (rb_path, sha) = runbook_path.unwrap_or_default();
    let rb = crate::runbook::load(std::path::Path::new(&rb_path), &run.runbook)?;
    if rb.sha256 != sha && !args.force {
        return Err(Error::Usage(format!(
            "the runbook {rb_path} changed since run {} started (sha256 {} then, {} now); resuming could run steps that are not the ones begun; check the change, then resume with --force",
            run.run_id,
            short(&sha),
            short(&rb.sha256)
        )));
    }

    // Params: as logged, except secrets (logged as ***), which come again from --var,
    // their environment variable or their default.
    let mut vars: Vec<String> = args.vars.to_vec();
    for p in &rb.params {
        let given = args
            .vars
            .iter()
            .any(|v| v.split_once('=').is_some_and(|(k, _)| k == p.name));
        if p.secret || given {
            continue;
        }
        if let Some(Value::String(v)) = run.params.get(&p.name) {
            vars.push(format!("{}={v}", p.name));
        }
    }
    let params: Vec<ParamValue> = super::resolve_params(&rb, &vars).map_err(|e| match e {
        Error::Usage(m) => {
            Error::Usage(format!("{m} (secrets are not in the log: give them again)"))
        }
        other => other,
    })?;

    let opts = Options {
        dry_run: run.mode == Mode::DryRun,
        yes: args.yes,
        parallel: 4,
        incident: run.incident.clone(),
        detected_at: run.detected_at,
        operator: super::operator_name(args.operator),
        start_at: None,
        rollback: args.rollback.unwrap_or_else(super::default_rollback),
        output_cap: 1024 * 1024,
    };
    let (mut tvars, _, masker) = super::variables(&params, &run.run_id, &rb.name, opts.dry_run);
    let host = super::host_name();
    let _lock = super::take_lock(&rb, &opts, &log_dir, &run.run_id, &host)?;

    // Where the run stands.
    let mut seed = Seed {
        elapsed: (Utc::now() - run.started).to_std().unwrap_or_default(),
        ..Seed::default()
    };
    let mut finished: Vec<(chrono::DateTime<Utc>, usize, StepStatus)> = Vec::new();
    for s in run.steps.iter().filter(|s| s.phase == Phase::Run) {
        let Some(i) = rb.steps.iter().position(|r| r.id == s.step) else {
            eprintln!(
                "warning: step {} of the log is no longer in the runbook; ignored",
                s.step
            );
            continue;
        };
        seed.attempts.push((i, s.attempts));
        match (s.status, s.started) {
            (Some(status), _) => {
                finished.push((s.finished.unwrap_or(run.started), i, status));
                if status == StepStatus::Succeeded {
                    let step = &rb.steps[i];
                    if let (Some(var), Some(v)) = (&step.capture, &s.captured) {
                        tvars.insert(var.clone(), value_of(v));
                    }
                    if let (Some(var), Some(v)) = (&step.ask, &s.value) {
                        tvars.insert(var.clone(), value_of(v));
                    }
                }
            }
            (None, Some(started)) => seed
                .in_doubt
                .push((i, started.format("%Y-%m-%d %H:%M:%S UTC").to_string())),
            (None, None) => {}
        }
    }
    finished.sort_by_key(|(t, _, _)| *t);
    seed.done = finished.into_iter().map(|(_, i, st)| (i, st)).collect();

    // A crash mid-write leaves a torn line: end it, so the next record starts on its own.
    if log.torn
        && let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&path)
    {
        let _ = f.write_all(b"\n");
    }
    let writer = LogWriter::append(&path)
        .map_err(|e| Error::Usage(format!("cannot append to {}: {e}", path.display())))?;
    let mut sinks = super::sinks(config, writer);
    sinks
        .emit_started(&Event::RunResumed {
            run_id: run.run_id.clone(),
            operator: opts.operator.clone(),
        })
        .map_err(|e| Error::Usage(format!("cannot write the execution log: {e}")))?;
    sinks.display.line(&format!(
        "  {}: {}  (started {}; {} steps finished, {} in doubt)",
        run.runbook,
        run.title,
        run.started.format("%Y-%m-%d %H:%M:%S UTC"),
        seed.done.len(),
        seed.in_doubt.len()
    ));
    let mut executor = Executor::new(
        Arc::new(rb),
        opts,
        sinks,
        masker,
        tvars,
        super::prompt::for_this_process(),
    );
    executor.resume_from(seed);
    super::drive(executor)
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
