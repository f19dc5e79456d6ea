//! The top-level error: what went wrong, and the exit code of spec §2 it maps to.

use crate::runbook::LoadError;
use crate::runbook::lookup::LookupError;

/// Exit codes of spec §2.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const LOCKED: u8 = 3;
    pub const INTERRUPTED: u8 = 130;
    /// The terminal hung up (128 + SIGHUP); the run is left open for `resume`.
    pub const HANGUP: u8 = 129;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    /// Bad input from the command line or environment, said in one sentence.
    #[error("{0}")]
    Usage(String),
    /// Another live execution holds the runbook's lock.
    #[error("{0}")]
    Locked(String),
    /// Errors already printed (diagnostics); only the exit code remains to be given.
    #[error("{0}")]
    Reported(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Lookup(_) | Error::Load(_) | Error::Reported(_) | Error::Usage(_) => {
                exit::BAD_INPUT
            }
            Error::Locked(_) => exit::LOCKED,
            Error::Output(_) => exit::FAILED,
        }
    }
}
