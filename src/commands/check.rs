//! `runbook check`: validate runbooks, print every diagnostic, and one summary line.

use std::io::Write;

use super::print;
use crate::config::Config;
use crate::error::{Error, exit};
use crate::format::{Shown, visible};
use crate::runbook::{self, LoadError, lookup};

pub(crate) fn check(config: &Config, targets: &[String]) -> Result<u8, Error> {
    let mut found = Vec::new();
    let mut errors = 0usize;
    let mut bad_files = 0usize;
    let mut err = std::io::stderr().lock();
    if targets.is_empty() {
        found = lookup::all(&config.dir)?;
        if found.is_empty() {
            let _ = writeln!(
                err,
                "error: no runbooks (*.toml) in {}",
                config.dir.display()
            );
            return Ok(exit::BAD_INPUT);
        }
    } else {
        for t in targets {
            match lookup::find(&config.dir, t) {
                Ok(f) => found.push(f),
                Err(e) => {
                    let _ = writeln!(err, "error: {}", visible(&e.to_string(), Shown::Text));
                    errors += 1;
                    bad_files += 1;
                }
            }
        }
    }
    let mut steps = 0usize;
    for f in &found {
        if !lookup::is_valid_name(&f.name) {
            let _ = writeln!(
                err,
                "{}: error: `{}` is not a valid runbook name: use lowercase letters, digits, `-` and `_`",
                f.path.display(),
                f.name
            );
            errors += 1;
            bad_files += 1;
            continue;
        }
        match runbook::load(&f.path, &f.name) {
            Ok(rb) => steps += rb.steps.len(),
            Err(e) => {
                match &e {
                    LoadError::Invalid(report) | LoadError::Hosts(report) => {
                        let _ = write!(err, "{}", report.render(config.colour));
                    }
                    other => {
                        let text = other.to_string();
                        let _ = writeln!(err, "error: {}", visible(&text, Shown::Text));
                    }
                }
                errors += e.count();
                bad_files += 1;
            }
        }
    }
    drop(err);
    let total = found.len() + targets.len().saturating_sub(found.len());
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if errors == 0 {
        print(&format!(
            "ok: {} valid ({})\n",
            plural(total, "runbook"),
            plural(steps, "step")
        ))?;
        Ok(exit::OK)
    } else {
        print(&format!(
            "failed: {} of {} invalid, {}\n",
            bad_files,
            plural(total, "runbook"),
            plural(errors, "error")
        ))?;
        Ok(exit::BAD_INPUT)
    }
}
