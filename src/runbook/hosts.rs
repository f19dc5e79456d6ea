//! Fleet steps in the runbook format: what `hosts`, `batch` and `max_failed` hold, the
//! host groups of an optional `hosts.toml` beside the runbooks, and turning the words of a
//! rendered `hosts` into the list of host names a step runs on.
//!
//! A host name goes on the `ssh` command line, so it is checked before it gets there: a
//! word that starts with `-` would be read as an option.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, Report, did_you_mean};

/// The name of the host groups file, in the runbooks directory.
pub const HOSTS_FILE: &str = "hosts.toml";

/// The variable a step with `hosts` sets to each host's name.
pub const HOST_VAR: &str = "host";

/// Most hosts one step may run on: a bound on the log and on what a person can follow.
pub const MAX_HOSTS: usize = 10_000;

/// The fleet part of a step: it runs on each of these hosts through `ssh`.
#[derive(Debug, Clone, Serialize)]
pub struct Fleet {
    /// `hosts`: templates, each rendered and split on commas and whitespace into host names
    /// and `@group`s.
    pub hosts: Vec<String>,
    /// `batch`: most hosts at a time (all of them when absent).
    pub batch: Option<Share>,
    /// `max_failed`: hosts that may fail before the step fails (default 0).
    pub max_failed: Share,
}

/// A number of hosts, or a percentage of the step's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Share {
    Count(u32),
    Percent(u32),
}

impl Share {
    /// Reads `25%` or `3` (a string; TOML integers are read by the caller).
    pub fn parse(s: &str) -> Option<Share> {
        let s = s.trim();
        match s.strip_suffix('%') {
            Some(p) => p.trim().parse().ok().map(Share::Percent),
            None => s.parse().ok().map(Share::Count),
        }
    }

    /// The share as written, for messages: `3` or `25%`.
    pub fn text(self) -> String {
        match self {
            Share::Count(n) => n.to_string(),
            Share::Percent(p) => format!("{p}%"),
        }
    }
}

/// Host groups: name -> host names, from `hosts.toml`.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// Where they were read from (absent: there is no hosts file).
    pub path: Option<PathBuf>,
    pub groups: BTreeMap<String, Vec<String>>,
}

/// The hosts file beside a runbook, as found.
#[derive(Debug)]
pub enum HostsFile {
    /// No `hosts.toml` there (or no runbooks directory: text parsed from memory).
    Missing(Option<PathBuf>),
    Loaded(Groups),
    /// It is there and has errors: fleet steps cannot use it.
    Invalid(Box<Report>),
}

impl HostsFile {
    /// The `hosts.toml` in the directory of `runbook` (the runbooks directory). Read only
    /// when it exists; an unreadable one is an invalid one.
    pub fn beside(runbook: &Path) -> HostsFile {
        let path = runbook
            .parent()
            .map_or_else(|| PathBuf::from(HOSTS_FILE), |d| d.join(HOSTS_FILE));
        if !path.is_file() {
            return HostsFile::Missing(Some(path));
        }
        let source = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => {
                let d = Diagnostic::new(0..0, format!("cannot read the host groups: {e}"));
                return HostsFile::Invalid(Box::new(Report {
                    path,
                    source: String::new(),
                    diagnostics: vec![d],
                }));
            }
        };
        match parse_groups(&source) {
            Ok(groups) => HostsFile::Loaded(Groups {
                path: Some(path),
                groups,
            }),
            Err(diagnostics) => HostsFile::Invalid(Box::new(Report {
                path,
                source,
                diagnostics,
            })),
        }
    }

    /// Where the file is (or would be), for messages.
    pub fn path(&self) -> Option<&Path> {
        match self {
            HostsFile::Missing(p) => p.as_deref(),
            HostsFile::Loaded(g) => g.path.as_deref(),
            HostsFile::Invalid(r) => Some(&r.path),
        }
    }
}

/// Reads `hosts.toml`: top-level keys are group names, each an array of host names.
pub fn parse_groups(source: &str) -> Result<BTreeMap<String, Vec<String>>, Vec<Diagnostic>> {
    let doc = DeTable::parse(source).map_err(|e| {
        vec![Diagnostic::new(
            e.span().unwrap_or(0..0),
            format!("TOML syntax: {}", e.message().trim_end()),
        )]
    })?;
    let mut diags = Vec::new();
    let mut groups = BTreeMap::new();
    for (key, value) in doc.get_ref() {
        let name = key.get_ref().to_string();
        if !is_group_name(&name) {
            diags.push(
                Diagnostic::new(key.span(), format!("`{name}` is not a valid group name"))
                    .with_help("group names are letters, digits, `-` and `_`"),
            );
        }
        let DeValue::Array(items) = value.get_ref() else {
            diags.push(
                Diagnostic::new(
                    value.span(),
                    format!(
                        "group `{name}` must be an array of host names, found {}",
                        value.get_ref().type_str()
                    ),
                )
                .with_help(format!("write {name} = [\"host-1\", \"host-2\"]")),
            );
            continue;
        };
        let mut hosts = Vec::with_capacity(items.len());
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => {
                    match host_problem(s) {
                        None => hosts.push(s.to_string()),
                        Some(problem) => {
                            let mut d = Diagnostic::new(item.span(), problem);
                            if s.starts_with('@') {
                                d = d.with_help("a group holds host names; list the hosts of the other group here");
                            }
                            diags.push(d);
                        }
                    }
                }
                other => diags.push(Diagnostic::new(
                    item.span(),
                    format!(
                        "group `{name}` must hold only host names, found {}",
                        other.type_str()
                    ),
                )),
            }
        }
        groups.insert(name, hosts);
    }
    if diags.is_empty() {
        Ok(groups)
    } else {
        Err(diags)
    }
}

fn is_group_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Why `word` cannot be a host name, if it cannot: `[user@]host`, where the host is a name,
/// an IPv4 or an IPv6 address (as ssh takes it: `fe80::1%eth0`, no brackets), and nothing
/// starts with `-`.
pub fn host_problem(word: &str) -> Option<String> {
    let (user, host) = match word.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, word),
    };
    let user_ok = user.is_none_or(|u| {
        !u.is_empty()
            && !u.starts_with('-')
            && u.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    });
    let host_ok = !host.is_empty()
        && !host.starts_with('-')
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '%'));
    if user_ok && host_ok {
        return None;
    }
    let shown: String = word.escape_debug().collect();
    Some(if word.starts_with('-') {
        format!("`{shown}` is not a host name: it would be read as an ssh option")
    } else if word.starts_with('@') {
        format!("`{shown}` is a group reference inside a group: groups cannot nest")
    } else {
        format!(
            "`{shown}` is not a host name: use letters, digits, `.`, `-`, `_` (and `user@`, and `:`, `%` for IPv6)"
        )
    })
}

/// Splits a rendered `hosts` value into words: names and `@group`s, separated by commas or
/// whitespace.
pub fn words(rendered: &str) -> impl Iterator<Item = &str> {
    rendered
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
}

/// The host names that rendered `hosts` values name, in order, each once: groups expanded,
/// every name checked. An error says what is wrong, for a step's failure reason.
pub fn resolve<'a>(
    rendered: impl IntoIterator<Item = &'a str>,
    groups: &Groups,
) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut push = |h: &str, out: &mut Vec<String>| {
        if seen.insert(h.to_string()) {
            out.push(h.to_string());
        }
    };
    for text in rendered {
        for word in words(text) {
            if let Some(g) = word.strip_prefix('@') {
                let Some(members) = groups.groups.get(g) else {
                    return Err(unknown_group(g, groups));
                };
                for m in members {
                    push(m, &mut out);
                }
            } else if let Some(problem) = host_problem(word) {
                return Err(problem);
            } else {
                push(word, &mut out);
            }
        }
        if out.len() > MAX_HOSTS {
            return Err(format!(
                "`hosts` names more than {MAX_HOSTS} hosts; split the step"
            ));
        }
    }
    if out.is_empty() {
        return Err("`hosts` names no host".into());
    }
    Ok(out)
}

/// The message for `@name` that no group has.
pub fn unknown_group(name: &str, groups: &Groups) -> String {
    match &groups.path {
        None => {
            format!("no group `{name}`: there is no {HOSTS_FILE} beside the runbook to define it")
        }
        Some(path) => {
            let hint = did_you_mean(name, groups.groups.keys().map(String::as_str))
                .map(|s| format!(" (did you mean `@{s}`?)"))
                .unwrap_or_default();
            format!("no group `{name}` in {}{hint}", path.display())
        }
    }
}

/// The literal words of a `hosts` string checked when the runbook is loaded: names, and
/// groups that `groups` has (`None`: the groups file is broken, and reported itself).
/// Words of templates are checked when the step runs. `span` is the string's; `verbatim_at`
/// where its text starts in the file, when it is there as is (each word is pointed at).
pub(crate) fn check_literal(
    text: &str,
    span: Range<usize>,
    verbatim_at: Option<usize>,
    groups: Option<&Groups>,
    diags: &mut Vec<Diagnostic>,
) {
    if !super::template::is_plain(text) {
        return;
    }
    for word in words(text) {
        let span = match verbatim_at {
            // `word` is a slice of `text`.
            Some(base) => {
                let at = base + (word.as_ptr() as usize - text.as_ptr() as usize);
                at..at + word.len()
            }
            None => span.clone(),
        };
        if let Some(g) = word.strip_prefix('@') {
            if let Some(groups) = groups
                && !groups.groups.contains_key(g)
            {
                diags.push(Diagnostic::new(span, unknown_group(g, groups)));
            }
        } else if let Some(problem) = host_problem(word) {
            diags.push(Diagnostic::new(span, problem));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Groups {
        Groups {
            path: Some(PathBuf::from("runbooks/hosts.toml")),
            groups: BTreeMap::from([(
                "web".to_string(),
                vec!["web-1".to_string(), "web-2".to_string()],
            )]),
        }
    }

    #[test]
    fn words_split_on_commas_and_whitespace_and_groups_expand_once() {
        let got = resolve(["web-2, db-1\n@web  db-1,,"], &groups()).unwrap();
        assert_eq!(got, ["web-2", "db-1", "web-1"]);
    }

    #[test]
    fn an_option_a_shell_word_or_an_unknown_group_is_refused() {
        assert!(
            resolve(["-oProxyCommand=x"], &groups())
                .unwrap_err()
                .contains("ssh option")
        );
        assert!(resolve(["a;b"], &groups()).is_err());
        assert!(resolve(["$(id)"], &groups()).is_err());
        assert!(
            resolve(["@wbe"], &groups())
                .unwrap_err()
                .contains("did you mean `@web`")
        );
        assert_eq!(
            resolve([" , "], &groups()).unwrap_err(),
            "`hosts` names no host"
        );
        for ok in ["root@db-1", "10.0.0.7", "fe80::1%eth0", "db_2.example.com"] {
            assert_eq!(host_problem(ok), None, "{ok}");
        }
        for bad in ["[::1]", "web-1;", "x@", "@", "-x@h", "h\u{1b}[0m"] {
            assert!(host_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn shares_read_as_counts_or_percentages() {
        assert_eq!(Share::parse("25%"), Some(Share::Percent(25)));
        assert_eq!(Share::parse(" 3 "), Some(Share::Count(3)));
        assert_eq!(Share::parse("x%"), None);
        assert_eq!(Share::Percent(5).text(), "5%");
    }

    #[test]
    fn the_groups_file_is_checked_with_locations() {
        let g = parse_groups("web = [\"web-1\", \"web-2\"]\ndb = [\"db-1\"]\n").unwrap();
        assert_eq!(g["web"], ["web-1", "web-2"]);
        let errs = parse_groups("web = \"web-1\"\nx = [\"@web\", 3]\n").unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }
}
