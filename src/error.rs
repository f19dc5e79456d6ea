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
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Lookup(_) | Error::Load(_) | Error::Usage(_) => exit::BAD_INPUT,
            Error::Locked(_) => exit::LOCKED,
            Error::Output(_) => exit::FAILED,
        }
    }
}
