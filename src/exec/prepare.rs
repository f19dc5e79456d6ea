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
use super::secrets::{MASK, Masker, SECRET_SEARCH_MIN};
use super::start_at::StartAt;
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
    /// `--start-at`: the step the run starts at (its ancestors are recorded as done), and
    /// the values given for them.
    pub start_at: Option<StartAt>,
    /// `--diagnose`: a rehearsal that asks no one (manual steps are left waiting).
    pub diagnose: bool,
    /// A person at a terminal: Ctrl-C asks what to do rather than stopping at once.
    pub ask_on_interrupt: bool,
}

/// Where the run's log goes.
pub(crate) enum LogPlace {
    /// A new log in this directory.
    New(PathBuf),
    /// An existing log to go on with (`resume`).
    Existing { path: PathBuf },
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
    /// Secret params and their values, which commands read from their environment.
    pub secrets: Vec<(String, String)>,
    pub log_dir: PathBuf,
    pub log: LogPlace,
    /// Where a resumed run stands.
    pub seed: Option<Seed>,
    /// `resume --from STEP`: the step the run goes back to.
    pub from: Option<String>,
    /// Things found while preparing that the operator should know.
    pub warnings: Vec<String>,
    /// The alert the run responds to (`--alert`, `--alert-file`).
    pub alert: Option<crate::event::AlertRecord>,
}

/// `runbook exec`.
pub(crate) fn exec(config: &Config, name: &str, args: &ExecArgs) -> Result<Prepared, Error> {
    let found = lookup::find(&config.dir, name)?;
    let rb = crate::runbook::load(&found.path, &found.name)?;
    let plan = Plan::new(&rb);
    let start_at = match &args.start_at {
        None => None,
        Some(id) => Some(step_index(&rb, "start-at", id)?),
    };
    let from_alert = alert_inputs(config, args, &rb)?;
    let mut given = args.flags.vars.clone();
    if let Some(a) = &from_alert {
        given.extend(a.vars.iter().cloned());
    }
    let (param_vars, start_at) = match start_at {
        Some(target) => {
            let (params, start) = super::start_at::split(&rb, &plan, target, &given)?;
            (params, Some(start))
        }
        None => (given, None),
    };
    let params = resolve_params(&rb, &param_vars)?;
    let now = Utc::now();
    let detected_at = args
        .detected_at
        .as_deref()
        .map(|t| {
            super::detected_at::parse(t, now, &chrono::Local).map_err(|problem| Error::Flag {
                flag: "detected-at",
                value: t.to_string(),
                problem,
            })
        })
        .transpose()?
        .or(from_alert.as_ref().map(|a| a.detected_at));
    let opts = Options {
        run_id: new_run_id(now),
        // A diagnostic rehearsal is a dry run whose confirmations are given: it asks no one.
        dry_run: args.dry_run || args.diagnose,
        yes: args.flags.yes || args.diagnose,
        run: run_options(config, &args.flags, None)?,
        incident: args
            .incident
            .clone()
            .or(from_alert.as_ref().map(|a| a.incident.clone())),
        detected_at,
        operator: operator_name(args.flags.operator.as_deref()),
        start_at,
        diagnose: args.diagnose,
        ask_on_interrupt: config.interactive && !args.diagnose,
    };
    let log_dir = config.log_dir()?.to_path_buf();
    let mut prepared = assemble(rb, opts, &params, log_dir.clone(), LogPlace::New(log_dir));
    if let Some(start) = &prepared.opts.start_at {
        for (k, v) in &start.values {
            prepared.vars.insert(k.clone(), value_of(v));
        }
    }
    if let Some(a) = from_alert {
        prepared.warnings = a.warnings;
        prepared.alert = Some(a.record);
    }
    Ok(prepared)
}

/// `--alert ID` / `--alert-file FILE`: the alert found (in the log directory's alerts
/// journal, or in the file) and turned into params (`from_label`), the detection time, the
/// incident id and the record `run_started` keeps. Flags given explicitly win.
fn alert_inputs(
    config: &Config,
    args: &ExecArgs,
    rb: &Runbook,
) -> Result<Option<crate::alert::run::Inputs>, Error> {
    use crate::alert::run::{Source, inputs};
    let source = match (&args.alert, &args.alert_file) {
        (Some(id), _) => Source::Id(id),
        (None, Some(file)) => Source::File(file),
        (None, None) => return Ok(None),
    };
    Ok(Some(inputs(
        config.log_dir()?,
        source,
        rb,
        &args.flags.vars,
    )?))
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
        diagnose: false,
        ask_on_interrupt: config.interactive,
    };
    let place = LogPlace::Existing {
        path: found.path.clone(),
    };
    let mut prepared = assemble(rb, opts, &params, log_dir, place);
    let from = match &args.from {
        None => None,
        Some(id) => Some(step_index(&prepared.rb, "from", id)?),
    };
    let seed = super::resume::seed(
        &prepared.rb,
        &prepared.plan,
        run,
        from,
        &found.skipped_lines,
        &mut prepared.vars,
    );
    prepared.from = args.from.clone();
    prepared
        .warnings
        .splice(0..0, seed.warnings.iter().cloned());
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
    let secrets = params
        .iter()
        .filter(|p| p.secret)
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect();
    Prepared {
        plan: Plan::new(&rb),
        warnings: secret_warnings(&rb, params),
        rb: Arc::new(rb),
        opts,
        vars,
        logged_params,
        masker,
        secrets,
        log_dir,
        log,
        seed: None,
        from: None,
        alert: None,
    }
}

/// The index of step `id`, for a flag that names a step.
fn step_index(rb: &Runbook, flag: &'static str, id: &str) -> Result<usize, Error> {
    rb.steps.iter().position(|s| s.id == id).ok_or_else(|| {
        let ids = rb.steps.iter().map(|s| s.id.as_str());
        let hint = crate::runbook::diagnostic::did_you_mean(id, ids)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        Error::Flag {
            flag,
            value: id.to_string(),
            problem: format!("runbook `{}` has no such step{hint}", rb.name),
        }
    })
}

/// What the operator should know about the secrets of this run: one given on the command
/// line sits where others can read it; one too short to search for is not masked in output.
fn secret_warnings(rb: &Runbook, params: &[ParamValue]) -> Vec<String> {
    let mut out = Vec::new();
    for p in params.iter().filter(|p| p.secret) {
        if p.from_var {
            let env = rb
                .params
                .iter()
                .find(|q| q.name == p.name)
                .and_then(|q| q.env.clone());
            let instead = match env {
                Some(e) => format!("set ${e} instead (the param reads it), and leave out --var"),
                None => format!(
                    "give the param `env = \"NAME\"` in the runbook and set $NAME instead of --var {}=...",
                    p.name
                ),
            };
            out.push(format!(
                "secret `{}` was given with --var: its value is in this runbook process's command line (/proc/{}/cmdline, readable by every local user while the run lasts) and in your shell's history; {instead}",
                p.name,
                std::process::id()
            ));
        }
        if !p.value.is_empty() && p.value.len() < SECRET_SEARCH_MIN {
            out.push(format!(
                "secret `{}` is {} characters long, too short to search for in step output without hiding ordinary text: it is not masked there (it still never appears in a command line, the log's params, a command shown or a manual step's text)",
                p.name,
                p.value.chars().count()
            ));
        }
    }
    out
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

/// A param's final value, whether it is secret, and whether it came from --var.
struct ParamValue {
    name: String,
    value: String,
    secret: bool,
    from_var: bool,
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
    // Every required param left out is named at once; then the first unset variable.
    let mut missing = Vec::new();
    let mut env_unset = None;
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
        let given_on_command_line = from_var.is_some();
        let value = match (from_var, from_env, &p.default) {
            (Some(v), _, _) | (None, Some(v), _) => v,
            (None, None, Some(d)) => d.clone(),
            (None, None, None) if p.required => {
                missing.push(p.clone());
                continue;
            }
            // A param that names its variable expects it: an unset one is a mistake to
            // stop on before anything runs, not an empty string in a command.
            (None, None, None) if p.env.is_some() => {
                env_unset.get_or_insert(ParamError::EnvUnset {
                    name: p.name.clone(),
                    env: p.env.clone().unwrap_or_default(),
                    secret: p.secret,
                });
                continue;
            }
            (None, None, None) => String::new(),
        };
        if let (Some(pat), Some(re)) = (&p.pattern, p.pattern_regex()) {
            let re = re.map_err(|e| ParamError::BadPattern {
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
            from_var: given_on_command_line,
        });
    }
    if !missing.is_empty() {
        return Err(ParamError::Missing(missing));
    }
    if let Some(e) = env_unset {
        return Err(e);
    }
    Ok(out)
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
    let uid = nix::unistd::getuid();
    account_name(uid)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// The name of `uid`'s account, through the C library (and so LDAP or sssd, as configured).
#[cfg(not(target_feature = "crt-static"))]
fn account_name(uid: nix::unistd::Uid) -> Option<String> {
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The name of `uid`'s account in `/etc/passwd`. A statically linked build does not ask
/// the C library: its lookup loads the system's NSS modules, which work only with the very
/// C library they were built for, not the copy linked into runbook.
#[cfg(target_feature = "crt-static")]
fn account_name(uid: nix::unistd::Uid) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    name_in_passwd(&passwd, uid.as_raw())
}

/// The first account with `uid` in the text of a passwd file (`name:password:uid:...`).
#[cfg(any(test, target_feature = "crt-static"))]
fn name_in_passwd(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (!name.is_empty() && !name.starts_with('#') && id.parse() == Ok(uid))
            .then(|| name.to_string())
    })
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

#[cfg(test)]
mod tests {
    use super::name_in_passwd;

    #[test]
    fn an_account_is_found_by_its_uid_in_a_passwd_file() {
        let passwd = "# comment:x:1000:\n\
                      root:x:0:0:root:/root:/bin/bash\n\
                      short:x\n\
                      :x:1000:1000::/:/bin/sh\n\
                      odd:x:10OO:1000::/:/bin/sh\n\
                      alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n\
                      alias:x:1000:1000::/:/bin/sh\n";
        assert_eq!(name_in_passwd(passwd, 0).as_deref(), Some("root"));
        assert_eq!(name_in_passwd(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(name_in_passwd(passwd, 4242), None);
        assert_eq!(name_in_passwd("", 0), None);
    }
}
