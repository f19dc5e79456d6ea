//! `runbook list`: every runbook in the directory, one line each.

use std::io::Write;

use serde::Serialize;

use super::{print, print_json};
use crate::config::Config;
use crate::error::{Error, exit};
use crate::format::{self, Shown, visible};
use crate::runbook::{self, Runbook, lookup};

#[derive(Serialize)]
struct Entry<'a> {
    name: &'a str,
    title: &'a str,
    steps: usize,
    manual_steps: usize,
    owner: Option<&'a str>,
    service: Option<&'a str>,
    tags: &'a [String],
    path: String,
}

pub(crate) fn list(config: &Config, json: bool) -> Result<u8, Error> {
    let (loaded, invalid) = load_dir(config)?;
    if json {
        let entries: Vec<Entry> = loaded
            .iter()
            .map(|rb| Entry {
                name: &rb.name,
                title: &rb.title,
                steps: rb.steps.len(),
                manual_steps: rb.manual_steps(),
                owner: rb.owner.as_deref(),
                service: rb.service.as_deref(),
                tags: &rb.tags,
                path: rb.path.display().to_string(),
            })
            .collect();
        print_json(&entries)?;
    } else if !loaded.is_empty() || invalid.is_empty() {
        print(&table(config, &loaded))?;
    }
    if invalid.is_empty() {
        return Ok(exit::OK);
    }
    let mut err = std::io::stderr().lock();
    for line in &invalid {
        let _ = writeln!(err, "error: {}", visible(line, Shown::Text));
    }
    Ok(exit::BAD_INPUT)
}

/// The valid runbooks of the directory as a table (for `exec` without a name).
pub(crate) fn table_of(config: &Config) -> Result<String, Error> {
    let (loaded, _) = load_dir(config)?;
    Ok(table(config, &loaded))
}

fn table(config: &Config, loaded: &[Runbook]) -> String {
    if loaded.is_empty() {
        return format!("no runbooks in {}\n", config.dir.display());
    }
    let mut rows = vec![format::row(&["NAME", "TITLE", "STEPS", "MANUAL", "OWNER"])];
    for rb in loaded {
        rows.push(vec![
            rb.name.clone(),
            rb.title.clone(),
            rb.steps.len().to_string(),
            rb.manual_steps().to_string(),
            rb.owner.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    format::table(&rows)
}

/// Every runbook of the directory, loaded, and a line for each one that is not valid.
fn load_dir(config: &Config) -> Result<(Vec<Runbook>, Vec<String>), Error> {
    let found = lookup::all(&config.dir)?;
    let mut loaded = Vec::new();
    let mut invalid = Vec::new();
    for f in &found {
        if !lookup::is_valid_name(&f.name) {
            invalid.push(format!(
                "{}: the file name is not a valid runbook name",
                f.path.display()
            ));
            continue;
        }
        match runbook::load(&f.path, &f.name) {
            Ok(rb) => loaded.push(rb),
            Err(e) => invalid.push(format!(
                "{}: invalid ({} error{}); see `runbook check {}`",
                f.path.display(),
                e.count(),
                if e.count() == 1 { "" } else { "s" },
                f.name
            )),
        }
    }
    Ok((loaded, invalid))
}
