//! The runbook: the file format of spec §1 turned into a validated, owned step graph.
//!
//! Data flows file -> [`raw`] (TOML with spans, shape checks) -> [`validate`] (references,
//! graph, templates) -> [`Runbook`]. Every problem is a located [`Diagnostic`]; a file
//! either yields a `Runbook` or the full list of what is wrong with it.

pub mod diagnostic;
pub(crate) mod graph;
pub mod helpers;
pub mod hosts;
pub(crate) mod lookup;
mod raw;
pub mod shell;
pub(crate) mod template;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use diagnostic::{Diagnostic, Report};
pub use hosts::{Fleet, Groups, HostsFile, Share};
pub use raw::MAX_DURATION;
pub use shell::Shell;

/// A runbook that passed every check of spec §1.
#[derive(Debug, Clone, Serialize)]
pub struct Runbook {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub title: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub service: Option<String>,
    pub tags: Vec<String>,
    #[serde(with = "opt_duration")]
    pub timeout: Option<Duration>,
    pub lock: bool,
    /// What runs commands when a step names no `shell`.
    pub shell: Shell,
    pub params: Vec<Param>,
    pub steps: Vec<Step>,
    /// Step indices in run order: dependencies first, ties broken by file order.
    #[serde(skip)]
    pub order: Vec<usize>,
    /// `[alert]`: the alerts that start this runbook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertSpec>,
    /// The host groups of `hosts.toml` beside the runbook (empty without fleet steps).
    #[serde(skip)]
    pub groups: Groups,
}

/// The `[alert]` table of a runbook: an alert whose labels equal every one of `matchers`
/// starts it; with `diagnose`, `runbook serve` rehearses its read-only steps at once.
#[derive(Debug, Clone, Serialize)]
pub struct AlertSpec {
    #[serde(rename = "match", serialize_with = "pairs_as_map")]
    pub matchers: Vec<(String, String)>,
    pub diagnose: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Param {
    pub name: String,
    pub description: Option<String>,
    pub required: bool,
    pub default: Option<String>,
    pub pattern: Option<String>,
    pub env: Option<String>,
    pub secret: bool,
    /// Filled from this label of the alert the run starts from (`exec --alert`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_label: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Run(String),
    Manual(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    Abort,
    Continue,
    Prompt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    Mitigated,
    Resolved,
}

impl Milestone {
    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Mitigated => "mitigated",
            Milestone::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub id: String,
    pub title: String,
    #[serde(flatten)]
    pub action: Action,
    /// Ids of the steps this one waits for (resolved from `needs` or file order).
    pub needs: Vec<String>,
    #[serde(skip)]
    pub need_indices: Vec<usize>,
    pub when: Option<String>,
    pub confirm: bool,
    #[serde(with = "opt_duration")]
    pub timeout: Option<Duration>,
    pub retries: u32,
    #[serde(with = "opt_duration")]
    pub retry_delay: Option<Duration>,
    pub retry_backoff: f64,
    pub on_failure: OnFailure,
    pub capture: Option<String>,
    pub ask: Option<String>,
    pub env: Vec<(String, String)>,
    pub dir: Option<String>,
    pub readonly: bool,
    pub rollback: Option<String>,
    pub milestone: Option<Milestone>,
    /// What runs its command and rollback: the step's `shell`, else the runbook's.
    pub shell: Shell,
    /// `hosts`, `batch`, `max_failed`: the step runs on each host through `ssh`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<Fleet>,
    /// 1-based line of the step's `[[step]]` header, for messages.
    pub line: usize,
}

impl Step {
    pub fn is_manual(&self) -> bool {
        matches!(self.action, Action::Manual(_))
    }

    pub fn kind(&self) -> &'static str {
        if self.is_manual() { "manual" } else { "auto" }
    }

    /// Whether the step runs on hosts (`hosts`).
    pub fn is_fleet(&self) -> bool {
        self.fleet.is_some()
    }
}

impl Param {
    /// The param's `pattern` as it is applied: to the whole value. An unanchored
    /// `db-[0-9]+` would otherwise accept `db-1; rm -rf /` by finding `db-1` in it.
    pub fn pattern_regex(&self) -> Option<Result<regex::Regex, regex::Error>> {
        self.pattern.as_deref().map(whole)
    }
}

/// `pattern` compiled to match the whole of a value, whether or not it says `^...$`.
pub(crate) fn whole(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!(r"\A(?:{pattern})\z"))
}

impl Runbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn manual_steps(&self) -> usize {
        self.steps.iter().filter(|s| s.is_manual()).count()
    }
}

/// Why a runbook could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is {size} bytes; runbooks are limited to {limit} bytes")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{}", .0.render(false).trim_end())]
    Invalid(Box<Report>),
    /// The runbook has steps with `hosts`, and the host groups file beside it has errors.
    #[error("{}", .0.render(false).trim_end())]
    Hosts(Box<Report>),
}

impl LoadError {
    /// How many distinct problems this error stands for.
    pub fn count(&self) -> usize {
        match self {
            LoadError::Invalid(r) | LoadError::Hosts(r) => r.diagnostics.len(),
            _ => 1,
        }
    }
}

/// Largest runbook file accepted: four times a 50,000-step runbook, and small enough that
/// even a file of pure syntax errors parses in about a second and half a GiB.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Reads, parses and validates the runbook at `path`, named `name`.
pub fn load(path: &Path, name: &str) -> Result<Runbook, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    parse_with(path, name, bytes, HostsFile::beside(path))
}

/// Parses and validates runbook text already in memory (with no host groups file).
pub fn parse(path: &Path, name: &str, bytes: Vec<u8>) -> Result<Runbook, LoadError> {
    parse_with(path, name, bytes, HostsFile::Missing(None))
}

/// Parses and validates runbook text, with the host groups its fleet steps may name.
fn parse_with(
    path: &Path,
    name: &str,
    bytes: Vec<u8>,
    hosts_file: HostsFile,
) -> Result<Runbook, LoadError> {
    use sha2::Digest;
    let sha256 = format!("{:x}", sha2::Sha256::digest(&bytes));
    let invalid = |source: String, diagnostics: Vec<Diagnostic>| {
        LoadError::Invalid(Box::new(Report {
            path: path.to_path_buf(),
            source,
            diagnostics,
        }))
    };
    let source = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let good = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let source = String::from_utf8_lossy(&bytes[..good]).into_owned();
            let at = source.len();
            let d = Diagnostic::new(at..at, "the file is not valid UTF-8 text")
                .with_help("runbooks are TOML, which must be UTF-8; is this a binary or a file in another encoding?");
            return Err(invalid(source, vec![d]));
        }
    };
    if source.trim().is_empty() {
        let d = Diagnostic::new(0..0, "the file is empty")
            .with_help("a runbook needs a [runbook] table with a title and at least one [[step]]");
        return Err(invalid(source, vec![d]));
    }
    let mut diagnostics = Vec::new();
    let raw = raw::read(&source, &mut diagnostics);
    // Without a hosts file every `@group` is unknown; with an invalid one, that file's own
    // errors are the ones to show.
    let no_groups = Groups::default();
    let groups = match &hosts_file {
        HostsFile::Loaded(g) => Some(g),
        HostsFile::Missing(_) => Some(&no_groups),
        HostsFile::Invalid(_) => None,
    };
    let runbook = raw.and_then(|raw| {
        validate::validate(raw, &source, path, name, sha256, groups, &mut diagnostics)
    });
    match runbook {
        Some(rb) if diagnostics.is_empty() => {
            if !rb.steps.iter().any(Step::is_fleet) {
                return Ok(rb);
            }
            match hosts_file {
                HostsFile::Loaded(groups) => Ok(Runbook { groups, ..rb }),
                HostsFile::Missing(_) => Ok(rb),
                HostsFile::Invalid(report) => Err(LoadError::Hosts(report)),
            }
        }
        _ => {
            diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
            diagnostics.dedup();
            Err(invalid(source, diagnostics))
        }
    }
}

/// `[("alertname", "X")]` as `{"alertname": "X"}`, as the file writes it.
fn pairs_as_map<S: serde::Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

mod opt_duration {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
}
