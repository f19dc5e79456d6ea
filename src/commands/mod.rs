//! The read-only commands of spec §2: `list`, `show`, `check`, `graph`.
//!
//! Each loads what it needs through [`crate::runbook`] and writes to stdout; diagnostics go
//! to stderr.

mod alerts;
mod check;
pub mod exec;
mod graph;
mod list;
mod manual;
mod serve;
mod show;

use std::io::Write;

pub(crate) use alerts::alerts;
pub(crate) use check::check;
pub(crate) use graph::graph;
pub(crate) use list::{list, table_of};
pub(crate) use manual::{completions, man};
pub(crate) use serve::serve;
pub(crate) use show::show;

use crate::config::Config;
use crate::error::Error;
use crate::format::{self, Shown};
use crate::runbook::{self, Runbook, lookup};

/// Finds and loads one runbook given as a name or a path.
fn load(config: &Config, arg: &str) -> Result<Runbook, Error> {
    let found = lookup::find(&config.dir, arg)?;
    Ok(runbook::load(&found.path, &found.name)?)
}

/// Writes `text` to stdout; a closed pipe (`| head`) is not an error worth reporting.
/// Everything a command prints passes [`format::visible`]: what a log, a runbook or an
/// operator wrote is shown, never obeyed by the terminal.
pub(crate) fn print(text: &str) -> Result<(), Error> {
    write_out(&format::visible(text, Shown::Text))
}

fn write_out(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(Error::Output)
}

/// Pretty JSON with a trailing newline.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::Output(e.into()))?;
    text.push('\n');
    write_out(&format::visible(&text, Shown::Json))
}
