//! Alerts from Prometheus Alertmanager: the webhook payload ([`payload`]), which runbook an
//! alert starts ([`route`]), the durable journal of what was received ([`store`]) and the
//! alerts it adds up to ([`state`]), and what an alert gives the run that responds to it
//! ([`run`]) and what its diagnostic rehearsal found ([`outcome`]).
//!
//! The HTTP receiver lives in `crate::serve`; this module knows nothing of the network.

pub mod outcome;
pub mod payload;
pub mod route;
pub mod run;
pub mod state;
pub mod store;

pub use payload::{PayloadError, parse};

/// Why an alert could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("no alert `{id}` has been received in {dir}; `runbook alerts --all` lists them")]
    Unknown { id: String, dir: String },
    #[error("alert id `{id}` is ambiguous: it starts {}", .matches.join(", "))]
    Ambiguous { id: String, matches: Vec<String> },
    #[error("{path}: {problem}")]
    File { path: String, problem: PayloadError },
    #[error(
        "param `{param}` is filled from the alert's label `{label}`, which alert {alert} does not have; give it with --var {param}=VALUE"
    )]
    MissingLabel {
        param: String,
        label: String,
        alert: String,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}
