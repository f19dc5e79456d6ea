//! From the command line to a run ready to start: the runbook found and validated, the
//! params resolved and checked, the flags turned into [`Options`] once (for `resume`, the
//! options and values recorded in the log, with flags given again taking precedence).
//! Nothing downstream reads raw flags, and nothing here runs a step.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::plan::Plan;
use super::resume::Seed;
use super::secrets::{MASK, Masker};
use crate::cli::{ExecArgs, ResumeArgs, RunFlags};
use crate::config::Config;
use crate::error::{Error, ParamError};
use crate::event::{RollbackMode, RunOptions};
use crate::runbook::template::value_of;
use crate::runbook::{Runbook, lookup};

/// Most automated steps at once when `--parallel` is not given.
const DEFAULT_PARALLEL: usize = 4;
/// Output kept in the log per step attempt when `--log-output-cap` is not given.
const DEFAULT_OUTPUT_CAP: u64 = 1024 * 1024;

/// The validated options of one run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub run_id: String,
    pub dry_run: bool,
    pub yes: bool,
    pub run: RunOptions,
    pub incident: Option<String>,
    pub detected_at: Option<DateTime<Utc>>,
    pub operator: String,
    /// `--start-at`: the step the run starts at (its ancestors are recorded as done).
    pub start_at: Option<usize>,
}

/// Where the run's log goes.
pub(crate) enum LogPlace {
    /// A new log in this directory.
    New(PathBuf),
    /// An existing log to go on with (`resume`); `torn` if its last line was cut short.
    Existing { path: PathBuf, torn: bool },
}

/// A run ready to start.
pub(crate) struct Prepared {
    pub rb: Arc<Runbook>,
    pub plan: Plan,
    pub opts: Options,
    /// Template variables: params, `run_id`, `runbook`, `dry_run`, and (resumed) values
    /// captured or given before.
    pub vars: Map<String, Value>,
    /// The params as `run_started` records them (secrets masked).
    pub logged_params: Map<String, Value>,
    pub masker: Masker,
    pub log_dir: PathBuf,
    pub log: LogPlace,
    /// Where a resumed run stands.
    pub seed: Option<Seed>,
    /// Things found while preparing that the operator should know.
    pub warnings: Vec<String>,
}

/// `runbook exec`.
pub(crate) fn exec(config: &Config, args: &ExecArgs) -> Result<Prepared, Error> {
    let found = lookup::find(&config.dir, &args.name)?;
    let rb = crate::runbook::load(&found.path, &found.name)?;
    let params = resolve_params(&rb, &args.flags.vars)?;
    let now = Utc::now();
    let detected_at = args
        .detected_at
        .as_deref()
        .map(|t| {
            parse_time(t, now).map_err(|problem| Error::Flag {
                flag: "detected-at",
                value: t.to_string(),
                problem,
            })
        })
        .transpose()?;
    let start_at = match &args.start_at {
        None => None,
        Some(id) => Some(rb.steps.iter().position(|s| &s.id == id).ok_or_else(|| {
            let hint = crate::runbook::diagnostic::did_you_mean(
                id,
                rb.steps.iter().map(|s| s.id.as_str()),
            )
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
            Error::Flag {
                flag: "start-at",
                value: id.clone(),
                problem: format!("runbook `{}` has no such step{hint}", rb.name),
            }
        })?),
    };
    let opts = Options {
        run_id: new_run_id(now),
        dry_run: args.dry_run,
        yes: args.flags.yes,
        run: run_options(config, &args.flags, None)?,
        incident: args.incident.clone(),
        detected_at,
        operator: operator_name(args.flags.operator.as_deref()),
        start_at,
    };
    let log_dir = config.log_dir()?.to_path_buf();
    Ok(assemble(
        rb,
        opts,
        &params,
        log_dir.clone(),
        LogPlace::New(log_dir),
    ))
}

/// `runbook resume`: the run's own options and values, from its log.
pub(crate) fn resume(config: &Config, args: &ResumeArgs) -> Result<Prepared, Error> {
    let log_dir = config.log_dir()?.to_path_buf();
    let found = super::resume::find(&log_dir, &args.run, args.force)?;
    let rb = found.runbook.clone();
    let run = &found.run;
    // Params: as logged, except secrets (logged as ***), which come again from --var,
    // their environment variable or their default.
    let mut vars: Vec<String> = args.flags.vars.clone();
    for p in &rb.params {
        let given = args
            .flags
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
    let params =
        resolve_params(&rb, &vars).map_err(|e| Error::from(ParamError::NotLogged(Box::new(e))))?;
    let opts = Options {
        run_id: run.run_id.clone(),
        dry_run: run.mode == crate::event::Mode::DryRun,
        yes: args.flags.yes,
        run: run_options(config, &args.flags, found.options.as_ref())?,
        incident: run.incident.clone(),
        detected_at: run.detected_at,
        operator: operator_name(args.flags.operator.as_deref()),
        start_at: None,
    };
    let place = LogPlace::Existing {
        path: found.path.clone(),
        torn: found.torn,
    };
    let mut prepared = assemble(rb, opts, &params, log_dir, place);
    let seed = super::resume::seed(&prepared.rb, run, &found.skipped_lines, &mut prepared.vars);
    prepared.warnings = seed.warnings.clone();
    prepared.seed = Some(seed);
    Ok(prepared)
}

fn assemble(
    rb: Runbook,
    opts: Options,
    params: &[ParamValue],
    log_dir: PathBuf,
    log: LogPlace,
) -> Prepared {
    let (vars, logged_params, masker) = variables(params, &opts.run_id, &rb.name, opts.dry_run);
    Prepared {
        plan: Plan::new(&rb),
        rb: Arc::new(rb),
        opts,
        vars,
        logged_params,
        masker,
        log_dir,
        log,
        seed: None,
        warnings: Vec::new(),
    }
}

/// The run options: flags given now, else those recorded (resume), else the defaults.
fn run_options(
    config: &Config,
    flags: &RunFlags,
    recorded: Option<&RunOptions>,
) -> Result<RunOptions, Error> {
    let output_cap = match &flags.log_output_cap {
        Some(cap) => cap
            .parse::<bytesize::ByteSize>()
            .map_err(|problem| Error::Flag {
                flag: "log-output-cap",
                value: cap.clone(),
                problem,
            })?
            .as_u64(),
        None => recorded.map_or(DEFAULT_OUTPUT_CAP, |r| r.output_cap),
    };
    // Absolute, so that a resumed run finds it from any directory.
    let ssh_config = match flags
        .ssh_config
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
    {
        Some(path) => Some(
            std::fs::canonicalize(path)
                .ok()
                .filter(|p| p.is_file())
                .ok_or_else(|| Error::Flag {
                    flag: "ssh-config",
                    value: path.display().to_string(),
                    problem: "no such file (it is given to ssh as -F FILE)".into(),
                })?
                .display()
                .to_string(),
        ),
        None => recorded.and_then(|r| r.ssh_config.clone()),
    };
    Ok(RunOptions {
        ssh_config,
        parallel: flags
            .parallel
            .map(usize::from)
            .or(recorded.map(|r| r.parallel))
            .unwrap_or(DEFAULT_PARALLEL),
        output_cap,
        rollback: flags
            .rollback
            .or(recorded.map(|r| r.rollback))
            .unwrap_or_else(|| default_rollback(config.interactive)),
    })
}

/// Ask when a person is there to answer; otherwise list what stays applied.
fn default_rollback(interactive: bool) -> RollbackMode {
    if interactive {
        RollbackMode::Ask
    } else {
        RollbackMode::Never
    }
}

/// A param's final value, and whether it is secret.
struct ParamValue {
    name: String,
    value: String,
    secret: bool,
}

/// Resolves every param from `--var`, its environment variable, or its default; checks
/// names, patterns and required params before anything runs.
fn resolve_params(rb: &Runbook, vars: &[String]) -> Result<Vec<ParamValue>, ParamError> {
    let mut given: Vec<(String, String)> = Vec::new();
    for v in vars {
        let Some((k, val)) = v.split_once('=') else {
            return Err(ParamError::NotKeyValue(v.clone()));
        };
        if rb.params.iter().all(|p| p.name != k) {
            let names: Vec<&str> = rb.params.iter().map(|p| p.name.as_str()).collect();
            let hint = match crate::runbook::diagnostic::did_you_mean(k, names.iter().copied()) {
                Some(s) => format!("; did you mean `{s}`?"),
                None if names.is_empty() => "; this runbook has no params".into(),
                None => format!("; its params are {}", names.join(", ")),
            };
            return Err(ParamError::Unknown {
                name: k.to_string(),
                runbook: rb.name.clone(),
                hint,
            });
        }
        if given.iter().any(|(g, _)| g == k) {
            return Err(ParamError::Twice(k.to_string()));
        }
        given.push((k.to_string(), val.to_string()));
    }
    let mut out = Vec::new();
    for p in &rb.params {
        let from_var = given
            .iter()
            .find(|(k, _)| *k == p.name)
            .map(|(_, v)| v.clone());
        let from_env = p
            .env
            .as_ref()
            .and_then(|e| std::env::var(e).ok())
            .filter(|v| !v.is_empty());
        let value = match (from_var, from_env, &p.default) {
            (Some(v), _, _) | (None, Some(v), _) => v,
            (None, None, Some(d)) => d.clone(),
            (None, None, None) if p.required => {
                let env = p
                    .env
                    .as_ref()
                    .map(|e| format!(" (or set ${e})"))
                    .unwrap_or_default();
                let what = p
                    .description
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                return Err(ParamError::Missing {
                    name: p.name.clone(),
                    what,
                    env,
                });
            }
            (None, None, None) => String::new(),
        };
        if let Some(pat) = &p.pattern {
            let re = regex::Regex::new(pat).map_err(|e| ParamError::BadPattern {
                name: p.name.clone(),
                problem: e.to_string(),
            })?;
            if !re.is_match(&value) {
                let shown = if p.secret {
                    MASK.to_string()
                } else {
                    format!("{value:?}")
                };
                return Err(ParamError::Mismatch {
                    name: p.name.clone(),
                    shown,
                    pattern: pat.clone(),
                });
            }
        }
        out.push(ParamValue {
            name: p.name.clone(),
            value,
            secret: p.secret,
        });
    }
    Ok(out)
}

/// TIME for `--detected-at`: RFC 3339, or relative such as `15m ago`.
fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Some(ago) = s.strip_suffix("ago") {
        let d = humantime::parse_duration(ago.trim()).map_err(|e| e.to_string())?;
        let d = chrono::Duration::from_std(d).map_err(|_| "too long ago".to_string())?;
        return now
            .checked_sub_signed(d)
            .ok_or_else(|| "too long ago".to_string());
    }
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|e| {
            format!("neither RFC 3339 (2026-11-26T03:12:00Z) nor relative (15m ago): {e}")
        })?
        .with_timezone(&Utc);
    if t > now + chrono::Duration::seconds(60) {
        return Err("in the future".to_string());
    }
    Ok(t)
}

/// A run id that sorts by start time: UTC time to the millisecond and a random suffix.
fn new_run_id(now: DateTime<Utc>) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_i64(now.timestamp_nanos_opt().unwrap_or_default());
    format!(
        "{}-{:06x}",
        now.format("%Y%m%dT%H%M%S%3fZ"),
        h.finish() & 0xff_ffff
    )
}

fn operator_name(given: Option<&str>) -> String {
    if let Some(g) = given.filter(|g| !g.trim().is_empty()) {
        return g.trim().to_string();
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()))
}

/// Template variables, the params as logged (secrets masked), and the masker.
fn variables(
    params: &[ParamValue],
    run_id: &str,
    runbook: &str,
    dry_run: bool,
) -> (Map<String, Value>, Map<String, Value>, Masker) {
    let masker = Masker::new(params.iter().filter(|p| p.secret).map(|p| p.value.clone()));
    let mut vars = Map::new();
    let mut logged = Map::new();
    for p in params {
        vars.insert(p.name.clone(), value_of(&p.value));
        let shown = if p.secret {
            MASK.to_string()
        } else {
            p.value.clone()
        };
        logged.insert(p.name.clone(), Value::String(shown));
    }
    vars.insert("run_id".into(), Value::String(run_id.to_string()));
    vars.insert("runbook".into(), Value::String(runbook.to_string()));
    vars.insert("dry_run".into(), Value::Bool(dry_run));
    (vars, logged, masker)
}
