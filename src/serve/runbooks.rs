//! The runbooks of the directory as routing needs them (name, `[alert]`), reloaded when a
//! file changes: runbooks are edited while the receiver runs.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::alert::route::Candidate;
use crate::runbook::{self, lookup};

pub(crate) struct Runbooks {
    dir: PathBuf,
    /// Per file: the modification time and size it was loaded at, and what it gave
    /// (`None`: invalid, said once on stderr).
    files: HashMap<PathBuf, (Option<SystemTime>, u64, Option<Candidate>)>,
}

impl Runbooks {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Runbooks {
            dir,
            files: HashMap::new(),
        }
    }

    /// The valid runbooks now in the directory.
    pub(crate) fn current(&mut self) -> Vec<Candidate> {
        let found = match lookup::all(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                let _ = writeln!(std::io::stderr().lock(), "warning: {e}");
                Vec::new()
            }
        };
        let mut out = Vec::with_capacity(found.len());
        let mut seen = Vec::with_capacity(found.len());
        for f in found {
            if !lookup::is_valid_name(&f.name) {
                continue;
            }
            let meta = std::fs::metadata(&f.path).ok();
            let mtime = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
            let fresh = self
                .files
                .get(&f.path)
                .is_some_and(|(t, l, _)| *t == mtime && *l == len);
            if !fresh {
                let loaded = match runbook::load(&f.path, &f.name) {
                    Ok(rb) => Some(Candidate {
                        name: rb.name,
                        alert: rb.alert,
                    }),
                    Err(e) => {
                        let _ = writeln!(
                            std::io::stderr().lock(),
                            "warning: {} is not a valid runbook ({} problem{}); alerts are not routed to it: see `runbook check {}`",
                            f.path.display(),
                            e.count(),
                            if e.count() == 1 { "" } else { "s" },
                            f.name
                        );
                        None
                    }
                };
                self.files.insert(f.path.clone(), (mtime, len, loaded));
            }
            if let Some((_, _, Some(c))) = self.files.get(&f.path) {
                out.push(c.clone());
            }
            seen.push(f.path);
        }
        self.files.retain(|p, _| seen.contains(p));
        out
    }
}
