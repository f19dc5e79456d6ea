//! Which runbook an alert starts. In this order, the first that names a runbook in the
//! directory wins:
//!
//! 1. the alert's `runbook` label (a runbook name);
//! 2. its `runbook` annotation, then its `runbook_url` annotation: the last path segment
//!    of the URL, without query, fragment or extension (`.../runbooks/db-failover.md` ->
//!    `db-failover`);
//! 3. the runbooks' `[alert] match`: every listed label equal; the runbook with the most
//!    labels in its `match` wins (the most specific), then the first by name.
//!
//! A label or annotation that names no runbook in the directory is remembered as a
//! finding (`missing`) and the next rule is tried.

use serde::{Deserialize, Serialize};

use super::payload::Labels;
use crate::runbook::AlertSpec;
use crate::runbook::lookup::is_valid_name;

/// A runbook as routing sees it: its name and its `[alert]`, if any.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub name: String,
    pub alert: Option<AlertSpec>,
}

/// How an alert's runbook was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    Label,
    Annotation,
    Match,
}

/// Where an alert goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The runbook, and how it was chosen; `None`: no runbook matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<By>,
    /// Runbooks the alert names (label or annotation) that the directory does not hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// Routes one alert over the runbooks of the directory (in any order).
pub fn route(labels: &Labels, annotations: &Labels, runbooks: &[Candidate]) -> Route {
    let mut out = Route::default();
    let named = [
        (
            labels.get("runbook").map(|s| s.trim().to_string()),
            By::Label,
        ),
        (
            annotations.get("runbook").map(|s| name_of(s)),
            By::Annotation,
        ),
        (
            annotations.get("runbook_url").map(|s| name_of(s)),
            By::Annotation,
        ),
    ];
    for (name, by) in named {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            continue;
        };
        if runbooks.iter().any(|c| c.name == name) {
            out.runbook = Some(name);
            out.by = Some(by);
            return out;
        }
        if !out.missing.contains(&name) {
            out.missing.push(name);
        }
    }
    let best = runbooks
        .iter()
        .filter_map(|c| {
            let spec = c.alert.as_ref()?;
            let all = !spec.matchers.is_empty()
                && spec
                    .matchers
                    .iter()
                    .all(|(k, v)| labels.get(k).is_some_and(|l| l == v));
            all.then_some((spec.matchers.len(), c))
        })
        // Most labels first, then the first name.
        .min_by(|(n1, c1), (n2, c2)| n2.cmp(n1).then_with(|| c1.name.cmp(&c2.name)));
    if let Some((_, c)) = best {
        out.runbook = Some(c.name.clone());
        out.by = Some(By::Match);
    }
    out
}

/// The runbook name an annotation gives: a plain name, or the last path segment of a URL
/// without its query, fragment and extension. Anything that is not a valid name is `""`.
fn name_of(value: &str) -> String {
    let v = value.trim();
    let v = v.split(['?', '#']).next().unwrap_or_default();
    let last = v
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let stem = match last.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => last,
    };
    if is_valid_name(stem) {
        stem.to_string()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn candidates() -> Vec<Candidate> {
        let spec = |m: &[(&str, &str)]| {
            Some(AlertSpec {
                matchers: m
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                diagnose: false,
            })
        };
        vec![
            Candidate {
                name: "disk-full".into(),
                alert: spec(&[("alertname", "DiskFull")]),
            },
            Candidate {
                name: "disk-full-db".into(),
                alert: spec(&[("alertname", "DiskFull"), ("service", "db")]),
            },
            Candidate {
                name: "db-failover".into(),
                alert: None,
            },
        ]
    }

    #[test]
    fn label_then_annotation_then_the_most_specific_match() {
        let c = candidates();
        let disk = labels(&[("alertname", "DiskFull"), ("service", "db")]);
        let r = route(&disk, &Labels::new(), &c);
        assert_eq!(
            (r.runbook.as_deref(), r.by),
            (Some("disk-full-db"), Some(By::Match))
        );
        let url = labels(&[("runbook_url", "https://wiki/x/db-failover.md?a=1#b")]);
        let r = route(&disk, &url, &c);
        assert_eq!(
            (r.runbook.as_deref(), r.by),
            (Some("db-failover"), Some(By::Annotation))
        );
        let mut by_label = disk.clone();
        by_label.insert("runbook".into(), "disk-full".into());
        let r = route(&by_label, &url, &c);
        assert_eq!(
            (r.runbook.as_deref(), r.by),
            (Some("disk-full"), Some(By::Label))
        );
    }

    #[test]
    fn names_of_runbooks_not_there_are_findings() {
        let c = candidates();
        let r = route(
            &labels(&[("alertname", "Other"), ("runbook", "nope")]),
            &labels(&[("runbook_url", "https://wiki/Weird Name.md")]),
            &c,
        );
        assert_eq!(r.runbook, None);
        assert_eq!(r.missing, ["nope"]);
    }

    #[test]
    fn annotation_names() {
        assert_eq!(name_of("db-failover"), "db-failover");
        assert_eq!(name_of("https://w/r/disk-full.md"), "disk-full");
        assert_eq!(name_of("https://w/r/disk-full/"), "disk-full");
        assert_eq!(name_of("https://w/r/x.y.md"), "");
        assert_eq!(name_of(""), "");
    }

    #[test]
    fn the_shipped_runbooks_take_the_alerts_they_name() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
        let mut c = Vec::new();
        for f in crate::runbook::lookup::all(&dir).unwrap_or_default() {
            let rb = crate::runbook::load(&f.path, &f.name).unwrap_or_else(|e| panic!("{e}"));
            c.push(Candidate {
                name: rb.name,
                alert: rb.alert,
            });
        }
        for (alertname, extra, want) in [
            (
                "PostgresPrimaryDown",
                ("service", "orders-db"),
                "db-failover",
            ),
            (
                "NodeFilesystemAlmostOutOfSpace",
                ("mountpoint", "/var"),
                "disk-full",
            ),
            (
                "KubeDeploymentRolloutStuck",
                ("namespace", "shop"),
                "k8s-rollback",
            ),
        ] {
            let l = labels(&[("alertname", alertname), extra]);
            let r = route(&l, &Labels::new(), &c);
            assert_eq!(r.runbook.as_deref(), Some(want), "{alertname}");
        }
    }
}
