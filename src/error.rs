//! The top-level error: what went wrong, and the exit code of spec §2 it maps to.

use crate::runbook::LoadError;
use crate::runbook::lookup::LookupError;

/// Exit codes of spec §2.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const LOCKED: u8 = 3;
    /// Something the tool needs could not be read or written (the execution log on a full
    /// disk, for one); a run that stops for this is left open for `resume`.
    pub const IO: u8 = 4;
    pub const INTERRUPTED: u8 = 130;
    /// The terminal hung up (128 + SIGHUP); the run is left open for `resume`.
    pub const HANGUP: u8 = 129;
}

/// Why a command could not do its job. Messages are lowercase fragments that say what and
/// where; [`Error::exit_code`] is the one place that maps them to spec §2's exit codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // Bad input: exit 2.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A flag whose value cannot be used.
    #[error("--{flag} `{value}`: {problem}")]
    Flag {
        flag: &'static str,
        value: String,
        problem: String,
    },
    #[error("no log directory: set --log-dir or RUNBOOK_LOG_DIR (HOME is not set)")]
    NoLogDir,
    /// A run id that names no run, or more than one.
    #[error(transparent)]
    RunRef(crate::log::reader::FindError),
    /// A log that is not one, or is from a newer version.
    #[error(transparent)]
    BadLog(crate::log::reader::ReadError),
    #[error("run {run_id} succeeded; there is nothing to resume")]
    Finished { run_id: String },
    #[error(
        "the runbook {path} changed since run {run_id} started (sha256 {then} then, {now} now); resuming could run steps that are not the ones begun; check the change, then resume with --force"
    )]
    RunbookChanged {
        path: String,
        run_id: String,
        then: String,
        now: String,
    },
    /// A flag given without another one it needs.
    #[error("--{flag} needs --{needs}: {hint}")]
    FlagNeeds {
        flag: &'static str,
        needs: &'static str,
        hint: &'static str,
    },
    /// An alert that cannot be found or used (`exec --alert`, `--alert-file`).
    #[error(transparent)]
    Alert(crate::alert::AlertError),
    #[error("--template renders text; it cannot be combined with --format json")]
    TemplateWithJson,
    /// A report template that cannot be rendered.
    #[error("template {name}: {problem}")]
    Template { name: String, problem: String },
    /// A file named on the command line that cannot be read or written: bad input when the
    /// path is wrong (missing, a directory, not allowed), an I/O failure otherwise.
    #[error("cannot {action} {}: {source}", path.display())]
    Path {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    // Another live run holds the lock: exit 3.
    #[error("{0}")]
    Locked(String),

    // Something could not be read or written: exit 4.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    LogFailed(#[from] crate::event::LogFailed),
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A bug: something the tool itself ships failed (a report template, say).
    #[error("internal error (a bug in runbook: please report it): {0}")]
    Internal(String),
}

/// A `--var` or a param that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error("--var `{0}` is not KEY=VALUE")]
    NotKeyValue(String),
    #[error("--var {name}: runbook `{runbook}` has no param `{name}`{hint}")]
    Unknown {
        name: String,
        runbook: String,
        hint: String,
    },
    #[error("--var {0} is given twice")]
    Twice(String),
    /// Every required param that was not given, so one attempt names them all.
    #[error("{}", missing_text(.0))]
    Missing(Vec<crate::runbook::Param>),
    /// A param read from an environment variable that is not set, and with no default.
    #[error(
        "param `{name}` comes from ${env}, which is not set (or is empty): set it before running{}",
        if *secret { String::new() } else { format!(", or give --var {name}=VALUE") }
    )]
    EnvUnset {
        name: String,
        env: String,
        secret: bool,
    },
    #[error("param `{name}`: {problem}")]
    BadPattern { name: String, problem: String },
    #[error("param `{name}` = {shown} does not match its pattern `{pattern}`")]
    Mismatch {
        name: String,
        shown: String,
        pattern: String,
    },
    /// On resume: a param the log does not hold (a secret) is missing or wrong.
    #[error("{0} (secrets are not in the log: give them again)")]
    NotLogged(Box<ParamError>),
}

/// `param `x` is required: ...; give it with --var x=VALUE`, or a list when several are.
fn missing_text(missing: &[crate::runbook::Param]) -> String {
    let how = |p: &crate::runbook::Param| {
        let env = p
            .env
            .as_ref()
            .map(|e| format!(" (or set ${e})"))
            .unwrap_or_default();
        format!("--var {}=VALUE{env}", p.name)
    };
    let what = |p: &crate::runbook::Param| {
        let mut w = p.description.clone().unwrap_or_default();
        if let Some(pat) = &p.pattern {
            w.push_str(&format!(
                "{}matching {pat}",
                if w.is_empty() { "" } else { ", " }
            ));
        }
        w
    };
    match missing {
        [p] => {
            let w = what(p);
            let w = if w.is_empty() { w } else { format!(" ({w})") };
            format!("param `{}` is required{w}; give it with {}", p.name, how(p))
        }
        _ => {
            let names: Vec<&str> = missing.iter().map(|p| p.name.as_str()).collect();
            let mut text = format!(
                "{} params are required and not given: {}; give them with",
                missing.len(),
                names.join(", ")
            );
            for p in missing {
                let w = what(p);
                text.push_str(&format!("\n  {}", how(p)));
                if !w.is_empty() {
                    text.push_str(&format!("  {w}"));
                }
            }
            text
        }
    }
}

impl From<crate::log::reader::FindError> for Error {
    fn from(e: crate::log::reader::FindError) -> Self {
        use crate::log::reader::FindError;
        match e {
            FindError::Dir { path, source } => Error::Io {
                action: "read the log directory",
                path,
                source,
            },
            other => Error::RunRef(other),
        }
    }
}

impl From<crate::log::reader::ReadError> for Error {
    fn from(e: crate::log::reader::ReadError) -> Self {
        use crate::log::reader::ReadError;
        match e {
            ReadError::Io { path, source } => Error::Io {
                action: "read",
                path,
                source,
            },
            other => Error::BadLog(other),
        }
    }
}

impl From<crate::alert::AlertError> for Error {
    fn from(e: crate::alert::AlertError) -> Self {
        use crate::alert::AlertError;
        match e {
            // A saved payload named on the command line that cannot be read: like any
            // such file (bad input when the path is wrong, I/O otherwise).
            AlertError::Io {
                action: "read",
                path,
                source,
            } => Error::Path {
                action: "read",
                path,
                source,
            },
            AlertError::Io {
                action,
                path,
                source,
            } => Error::Io {
                action,
                path,
                source,
            },
            other => Error::Alert(other),
        }
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Lookup(_)
            | Error::Load(_)
            | Error::Param(_)
            | Error::Flag { .. }
            | Error::NoLogDir
            | Error::RunRef(_)
            | Error::BadLog(_)
            | Error::Finished { .. }
            | Error::RunbookChanged { .. }
            | Error::FlagNeeds { .. }
            | Error::TemplateWithJson
            | Error::Template { .. }
            | Error::Alert(_) => exit::BAD_INPUT,
            Error::Path { source, .. } => {
                use std::io::ErrorKind as K;
                match source.kind() {
                    K::NotFound
                    | K::PermissionDenied
                    | K::IsADirectory
                    | K::NotADirectory
                    | K::InvalidFilename => exit::BAD_INPUT,
                    _ => exit::IO,
                }
            }
            Error::Locked(_) => exit::LOCKED,
            Error::Io { .. }
            | Error::LogFailed(_)
            | Error::Output(_)
            | Error::Runtime(_)
            | Error::Internal(_) => exit::IO,
        }
    }
}
