//! `runbook exec`: everything between a validated runbook and a finished, logged run.
//! [`prepare`] checks the operator's input (params, times, flags) before anything runs;
//! [`executor`] runs the graph and emits events; [`display`] and the log are its sinks.

pub mod display;
pub mod executor;
pub mod lock;
pub mod process;
pub mod prompt;
pub mod resume;
pub mod secrets;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::error::{Error, exit};
use crate::event::{Event, Mode, RunStatus, SCHEMA_VERSION};
use crate::runbook::template::value_of;
use crate::runbook::{Runbook, lookup};
use executor::{Executor, Sinks};
use secrets::{MASK, Masker};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RollbackMode {
    Ask,
    Auto,
    Never,
}

/// The validated form of `exec`'s flags.
#[derive(Debug, Clone)]
pub struct Options {
    pub dry_run: bool,
    pub yes: bool,
    pub parallel: usize,
    pub incident: Option<String>,
    pub detected_at: Option<DateTime<Utc>>,
    pub operator: String,
    pub start_at: Option<usize>,
    pub rollback: RollbackMode,
    pub output_cap: u64,
}

/// `exec`'s flags as given on the command line.
pub struct ExecArgs<'a> {
    pub target: &'a str,
    pub dry_run: bool,
    pub vars: &'a [String],
    pub yes: bool,
    pub parallel: usize,
    pub incident: Option<&'a str>,
    pub detected_at: Option<&'a str>,
    pub operator: Option<&'a str>,
    pub start_at: Option<&'a str>,
    pub rollback: Option<RollbackMode>,
    pub log_output_cap: &'a str,
}

/// A param's final value, and whether it is secret.
struct ParamValue {
    name: String,
    value: String,
    secret: bool,
}

/// Resolves every param from `--var`, its environment variable, or its default; checks
/// names, patterns and required params before anything runs.
fn resolve_params(rb: &Runbook, vars: &[String]) -> Result<Vec<ParamValue>, Error> {
    let mut given: Vec<(String, String)> = Vec::new();
    for v in vars {
        let Some((k, val)) = v.split_once('=') else {
            return Err(Error::Usage(format!("--var `{v}` is not KEY=VALUE")));
        };
        if rb.params.iter().all(|p| p.name != k) {
            let names: Vec<&str> = rb.params.iter().map(|p| p.name.as_str()).collect();
            let hint = match crate::runbook::diagnostic::did_you_mean(k, names.iter().copied()) {
                Some(s) => format!("; did you mean `{s}`?"),
                None if names.is_empty() => "; this runbook has no params".into(),
                None => format!("; its params are {}", names.join(", ")),
            };
            return Err(Error::Usage(format!(
                "--var {k}: runbook `{}` has no param `{k}`{hint}",
                rb.name
            )));
        }
        if given.iter().any(|(g, _)| g == k) {
            return Err(Error::Usage(format!("--var {k} is given twice")));
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
                return Err(Error::Usage(format!(
                    "param `{}` is required{what}; give it with --var {}=VALUE{env}",
                    p.name, p.name
                )));
            }
            (None, None, None) => String::new(),
        };
        if let Some(pat) = &p.pattern {
            let re = regex::Regex::new(pat)
                .map_err(|e| Error::Usage(format!("param `{}`: {e}", p.name)))?;
            if !re.is_match(&value) {
                let shown = if p.secret {
                    MASK.to_string()
                } else {
                    format!("{value:?}")
                };
                return Err(Error::Usage(format!(
                    "param `{}` = {shown} does not match its pattern `{pat}`",
                    p.name
                )));
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

/// The terminal's settings at the start, put back at the end: a prompt interrupted by a
/// signal leaves raw mode on and the cursor hidden.
struct TerminalState(nix::sys::termios::Termios);

impl TerminalState {
    fn save() -> Option<Self> {
        nix::sys::termios::tcgetattr(std::io::stdin())
            .ok()
            .map(TerminalState)
    }

    fn restore(&self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.0,
        );
        let _ = console::Term::stderr().show_cursor();
    }
}

/// TIME for `--detected-at`: RFC 3339, or relative such as `15m ago`.
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Some(ago) = s.strip_suffix("ago") {
        let d = humantime::parse_duration(ago.trim()).map_err(|e| format!("`{s}`: {e}"))?;
        let d = chrono::Duration::from_std(d).map_err(|_| format!("`{s}` is too long ago"))?;
        return now
            .checked_sub_signed(d)
            .ok_or_else(|| format!("`{s}` is too long ago"));
    }
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|e| {
            format!("`{s}` is neither RFC 3339 (2026-11-26T03:12:00Z) nor relative (15m ago): {e}")
        })?
        .with_timezone(&Utc);
    if t > now + chrono::Duration::seconds(60) {
        return Err(format!("`{s}` is in the future"));
    }
    Ok(t)
}

/// A run id that sorts by start time: UTC time to the millisecond and a random suffix.
pub fn new_run_id(now: DateTime<Utc>) -> String {
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

pub fn exec(config: &Config, args: &ExecArgs) -> Result<u8, Error> {
    let found = lookup::find(&config.dir, args.target)?;
    let rb = crate::runbook::load(&found.path, &found.name)?;
    let params = resolve_params(&rb, args.vars)?;
    let now = Utc::now();
    let detected_at = args
        .detected_at
        .map(|t| parse_time(t, now))
        .transpose()
        .map_err(|e| Error::Usage(format!("--detected-at {e}")))?;
    let start_at = match args.start_at {
        None => None,
        Some(id) => Some(rb.steps.iter().position(|s| s.id == id).ok_or_else(|| {
            Error::Usage(format!(
                "--start-at: runbook `{}` has no step `{id}`",
                rb.name
            ))
        })?),
    };
    let output_cap = args
        .log_output_cap
        .parse::<bytesize::ByteSize>()
        .map_err(|e| Error::Usage(format!("--log-output-cap `{}`: {e}", args.log_output_cap)))?
        .as_u64();
    let opts = Options {
        dry_run: args.dry_run,
        yes: args.yes,
        parallel: args.parallel,
        incident: args.incident.map(str::to_string),
        detected_at,
        operator: operator_name(args.operator),
        start_at,
        rollback: args.rollback.unwrap_or_else(default_rollback),
        output_cap,
    };
    let log_dir = log_dir(config)?;
    let run_id = new_run_id(now);
    let (vars, logged_params, masker) = variables(&params, &run_id, &rb.name, opts.dry_run);
    let host = host_name();
    // A live run of a locked runbook holds the lock until the process ends.
    let _lock = take_lock(&rb, &opts, &log_dir, &run_id, &host)?;
    let log = crate::log::writer::LogWriter::create(&log_dir, &run_id).map_err(|e| {
        Error::Usage(format!(
            "cannot create the execution log in {}: {e}",
            log_dir.display()
        ))
    })?;
    let mut sinks = sinks(config, log);
    let started = Event::RunStarted {
        schema_version: SCHEMA_VERSION,
        run_id: run_id.clone(),
        runbook: rb.name.clone(),
        runbook_path: std::fs::canonicalize(&rb.path)
            .unwrap_or_else(|_| rb.path.clone())
            .display()
            .to_string(),
        runbook_sha256: rb.sha256.clone(),
        title: rb.title.clone(),
        mode: if opts.dry_run {
            Mode::DryRun
        } else {
            Mode::Live
        },
        params: logged_params,
        operator: opts.operator.clone(),
        host,
        incident: opts.incident.clone(),
        detected_at: opts.detected_at.map(crate::event::timestamp),
        version: env!("CARGO_PKG_VERSION").into(),
        log_path: sinks.log.path().display().to_string(),
    };
    sinks
        .emit_started(&started)
        .map_err(|e| Error::Usage(format!("cannot write the execution log: {e}")))?;
    let executor = Executor::new(
        Arc::new(rb),
        opts,
        sinks,
        masker,
        vars,
        prompt::for_this_process(),
    );
    drive(executor)
}

fn default_rollback() -> RollbackMode {
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        RollbackMode::Ask
    } else {
        RollbackMode::Never
    }
}

fn log_dir(config: &Config) -> Result<PathBuf, Error> {
    config.log_dir.clone().ok_or_else(|| {
        Error::Usage("no log directory: set --log-dir or RUNBOOK_LOG_DIR (HOME is not set)".into())
    })
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
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

/// The runbook's lock, for a live run of a runbook with `lock = true`.
fn take_lock(
    rb: &Runbook,
    opts: &Options,
    log_dir: &std::path::Path,
    run_id: &str,
    host: &str,
) -> Result<Option<lock::RunLock>, Error> {
    if !rb.lock || opts.dry_run {
        return Ok(None);
    }
    let holder = lock::Holder {
        run_id: run_id.to_string(),
        operator: opts.operator.clone(),
        host: host.to_string(),
        pid: std::process::id(),
        since: crate::event::timestamp(Utc::now()),
    };
    lock::acquire(log_dir, &rb.name, &holder).map(Some)
}

fn sinks(config: &Config, log: crate::log::writer::LogWriter) -> Sinks {
    let fancy = !config.quiet && std::io::stderr().is_terminal();
    Sinks {
        log,
        display: display::Display::new(fancy, config.colour),
    }
}

/// Runs the executor to the end and turns its outcome into the exit code of spec §2.
fn drive(executor: Executor) -> Result<u8, Error> {
    // One thread: steps spend their time in their own processes, and hand-offs between
    // worker threads cost more per step than everything the executor itself does.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the runtime: {e}")))?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let terminal = interactive.then(TerminalState::save).flatten();
    let outcome = runtime.block_on(executor.run());
    // A prompt left waiting on input (after an interrupt) must not keep the process alive,
    // nor leave the terminal in the raw mode it put it in.
    runtime.shutdown_background();
    if let Some(t) = terminal {
        t.restore();
    }
    if outcome.hung_up {
        return Ok(exit::HANGUP);
    }
    Ok(match outcome.status {
        RunStatus::Succeeded => exit::OK,
        RunStatus::Failed | RunStatus::Aborted => exit::FAILED,
        RunStatus::Interrupted => exit::INTERRUPTED,
    })
}
