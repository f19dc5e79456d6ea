//! What an alert gives the run that responds to it (`exec --alert ID` or
//! `--alert-file FILE`): params from its labels (`from_label`), the detection time from its
//! `startsAt`, the incident id from its group, and the record `run_started` keeps.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::AlertError;
use super::payload::Status;
use super::state::{Alerts, Occurrence};
use super::store;
use crate::event::AlertRecord;
use crate::runbook::Runbook;

/// Where the alert comes from.
pub enum Source<'a> {
    /// An id `runbook alerts` showed (a unique prefix is enough).
    Id(&'a str),
    /// A saved webhook payload; `-` is stdin.
    File(&'a str),
}

/// What the run takes from the alert.
#[derive(Debug)]
pub struct Inputs {
    /// `NAME=VALUE` for each param with a `from_label` the alert has, not given by --var.
    pub vars: Vec<String>,
    pub detected_at: DateTime<Utc>,
    pub incident: String,
    pub record: AlertRecord,
    pub warnings: Vec<String>,
}

/// Finds the alert and turns it into the run's inputs. `given` are the `--var` flags,
/// which win over labels.
pub fn inputs(
    log_dir: &Path,
    source: Source<'_>,
    rb: &Runbook,
    given: &[String],
) -> Result<Inputs, AlertError> {
    let journal = store::read(log_dir).map_err(|source| AlertError::Io {
        action: "read the alerts journal in",
        path: store::dir(log_dir),
        source,
    })?;
    let mut warnings = Vec::new();
    let occurrence = match source {
        Source::Id(id) => by_id(&journal.alerts, id, log_dir)?,
        Source::File(path) => {
            let (o, w) = from_file(path, rb, &journal.alerts)?;
            warnings.extend(w);
            o
        }
    };
    if occurrence.status == Status::Resolved {
        let when = occurrence
            .ends_at
            .map(|t| format!(" at {}", crate::format::stamp(t)))
            .unwrap_or_default();
        warnings.push(format!("alert {} resolved{when}", occurrence.id));
    }
    if let Some(other) = &occurrence.route.runbook
        && *other != rb.name
    {
        warnings.push(format!(
            "alert {} is routed to runbook `{other}`, not `{}`",
            occurrence.id, rb.name
        ));
    }
    let mut vars = Vec::new();
    for p in &rb.params {
        let Some(label) = &p.from_label else { continue };
        let by_var = given
            .iter()
            .any(|v| v.split_once('=').is_some_and(|(k, _)| k == p.name));
        if by_var {
            continue;
        }
        match occurrence.labels.get(label) {
            Some(value) => vars.push(format!("{}={value}", p.name)),
            None if p.required && p.default.is_none() => {
                return Err(AlertError::MissingLabel {
                    param: p.name.clone(),
                    label: label.clone(),
                    alert: occurrence.id.clone(),
                });
            }
            None => {}
        }
    }
    Ok(Inputs {
        vars,
        detected_at: occurrence.starts_at,
        incident: incident_id(&occurrence.group_key, &occurrence.fingerprint),
        record: record(&occurrence),
        warnings,
    })
}

fn by_id(alerts: &Alerts, id: &str, log_dir: &Path) -> Result<Occurrence, AlertError> {
    match alerts.find(id).as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(AlertError::Unknown {
            id: id.to_string(),
            dir: store::dir(log_dir).display().to_string(),
        }),
        many => Err(AlertError::Ambiguous {
            id: id.to_string(),
            matches: many.iter().map(|o| o.id.clone()).collect(),
        }),
    }
}

/// The alert of a saved payload meant for `rb`: the one routed to it (else any), firing
/// first. When the journal holds the same firing, its id and rehearsal are used.
fn from_file(
    path: &str,
    rb: &Runbook,
    journal: &Alerts,
) -> Result<(Occurrence, Vec<String>), AlertError> {
    // Read one byte past the limit, so a larger file is refused without reading it all.
    let limit = super::payload::MAX_BODY as u64 + 1;
    let mut bytes = Vec::new();
    let read = if path == "-" {
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::io::stdin().lock(), limit),
            &mut bytes,
        )
    } else {
        std::fs::File::open(path).and_then(|f| {
            std::io::Read::read_to_end(&mut std::io::Read::take(f, limit), &mut bytes)
        })
    };
    read.map_err(|source| AlertError::Io {
        action: "read",
        path: path.into(),
        source,
    })?;
    let notification = super::parse(&bytes).map_err(|problem| AlertError::File {
        path: path.to_string(),
        problem,
    })?;
    let candidates = [crate::alert::route::Candidate {
        name: rb.name.clone(),
        alert: rb.alert.clone(),
    }];
    let mut scratch = Alerts::default();
    scratch.apply(
        Utc::now(),
        &store::Record::Notification {
            notification: notification.clone(),
            routed: Vec::new(),
        },
    );
    let routed_here = |o: &Occurrence| {
        super::route::route(&o.labels, &o.annotations, &candidates)
            .runbook
            .is_some()
    };
    let mut pick: Vec<&Occurrence> = scratch.list.iter().filter(|o| routed_here(o)).collect();
    if pick.is_empty() {
        pick = scratch.list.iter().collect();
    }
    pick.sort_by_key(|o| o.status != Status::Firing);
    let mut warnings = Vec::new();
    let Some(chosen) = pick.first() else {
        return Err(AlertError::File {
            path: path.to_string(),
            problem: super::PayloadError::Invalid("it holds no alerts".into()),
        });
    };
    if pick.len() > 1 {
        warnings.push(format!(
            "{path} holds {} alerts; using {} ({})",
            pick.len(),
            chosen.fingerprint,
            chosen.name
        ));
    }
    let mut o = (*chosen).clone();
    match journal.get(&o.fingerprint, o.starts_at) {
        Some(known) => {
            o.id.clone_from(&known.id);
            o.diagnostic.clone_from(&known.diagnostic);
            o.route.clone_from(&known.route);
        }
        None => o.route = Default::default(),
    }
    Ok((o, warnings))
}

/// The incident id of an alert group: the same for every notification of the group.
/// Alertmanager's group key is long and quoted; a short hash of it reads better.
pub fn incident_id(group_key: &str, fingerprint: &str) -> String {
    use sha2::Digest;
    let key = if group_key.is_empty() {
        fingerprint
    } else {
        group_key
    };
    let hash = sha2::Sha256::digest(key.as_bytes());
    let hex: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("am-{hex}")
}

/// What `run_started` records of an alert.
pub fn record(o: &Occurrence) -> AlertRecord {
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    AlertRecord {
        id: o.id.clone(),
        name: o.name.clone(),
        status: o.status.as_str().to_string(),
        fingerprint: o.fingerprint.clone(),
        starts_at: crate::event::timestamp(o.starts_at),
        labels: o.labels.clone().into_iter().collect::<BTreeMap<_, _>>(),
        annotations: o.annotations.clone(),
        generator_url: nonempty(&o.generator_url),
        group_key: nonempty(&o.group_key),
        diagnostic_run: o.diagnostic.as_ref().and_then(|d| d.run_id.clone()),
    }
}
