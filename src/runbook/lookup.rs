//! Finding runbooks: a NAME in the runbooks directory (never outside it), or a path to a
//! `.toml` file.

use std::path::{Path, PathBuf};

/// A runbook file that was found, and the name it goes by.
#[derive(Debug, Clone)]
pub struct Found {
    pub name: String,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(
        "`{0}` is not a runbook name: names are lowercase letters, digits, `-` and `_` (a path to a file must end in .toml)"
    )]
    BadName(String),
    #[error("no runbook named `{name}` in {dir}{hint}")]
    NotFound {
        name: String,
        dir: String,
        hint: String,
    },
    #[error("no such file: {0}")]
    NoFile(PathBuf),
    #[error("{0} holds the host groups of fleet steps, not a runbook")]
    HostsFile(PathBuf),
    #[error(
        "the file name `{0}` does not make a runbook name: use lowercase letters, digits, `-` and `_`"
    )]
    BadFileName(PathBuf),
    #[error(
        "the runbooks directory {0} does not exist; name the directory with --dir DIR or RUNBOOK_DIR=DIR (without either, it is ./runbooks in the current directory)"
    )]
    NoDir(String),
    #[error("cannot read the runbooks directory {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
}

pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The directory is missing: named by its absolute path, which says where it was looked for.
fn no_dir(dir: &Path) -> LookupError {
    let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    LookupError::NoDir(shown.display().to_string())
}

/// Resolves `arg`: a path when it ends in `.toml`, else a name inside `dir`.
pub fn find(dir: &Path, arg: &str) -> Result<Found, LookupError> {
    if arg.ends_with(".toml") {
        let path = PathBuf::from(arg);
        if !path.is_file() {
            return Err(LookupError::NoFile(path));
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if !is_valid_name(name) {
            return Err(LookupError::BadFileName(path));
        }
        return Ok(Found {
            name: name.to_string(),
            path,
        });
    }
    if !is_valid_name(arg) {
        return Err(LookupError::BadName(arg.to_string()));
    }
    let path = dir.join(format!("{arg}.toml"));
    if path
        .file_name()
        .is_some_and(|n| n == super::hosts::HOSTS_FILE)
    {
        return Err(LookupError::HostsFile(path));
    }
    if path.is_file() {
        return Ok(Found {
            name: arg.to_string(),
            path,
        });
    }
    if !dir.is_dir() {
        return Err(no_dir(dir));
    }
    let names: Vec<String> = all(dir)?.into_iter().map(|f| f.name).collect();
    let hint = match super::diagnostic::did_you_mean(arg, names.iter().map(String::as_str)) {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None if names.is_empty() => String::from(" (the directory has no .toml files)"),
        None => format!(" (runbooks here: {})", names.join(", ")),
    };
    Err(LookupError::NotFound {
        name: arg.to_string(),
        dir: dir.display().to_string(),
        hint,
    })
}

/// Every `*.toml` file in `dir` but the host groups file, sorted by name. Files whose stem
/// is not a valid name are included (with the stem as their name) so that `check` can
/// report them.
pub fn all(dir: &Path) -> Result<Vec<Found>, LookupError> {
    let io = |source| LookupError::Io {
        dir: dir.display().to_string(),
        source,
    };
    if !dir.is_dir() {
        return Err(no_dir(dir));
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let hosts_file = path
            .file_name()
            .is_some_and(|n| n == super::hosts::HOSTS_FILE);
        if path.extension().is_some_and(|e| e == "toml") && !hosts_file && path.is_file() {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(Found { name, path });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
