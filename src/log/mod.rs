//! The execution log of spec §4: one JSON Lines file per run, written durably.

pub(crate) mod reader;
pub(crate) mod run;
pub(crate) mod sync;
pub mod writer;

use std::path::PathBuf;

/// The log directory: `--log-dir`, else `$RUNBOOK_LOG_DIR`, else the user's state directory.
pub(crate) fn default_dir() -> Option<PathBuf> {
    let nonempty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = nonempty("RUNBOOK_LOG_DIR") {
        return Some(d);
    }
    if let Some(state) = nonempty("XDG_STATE_HOME") {
        return Some(state.join("runbook/runs"));
    }
    nonempty("HOME").map(|h| h.join(".local/state/runbook/runs"))
}
