//! `runbook alerts`: the alerts received by `runbook serve`, each with its runbook, what
//! its diagnostic rehearsal found, and the command that starts the response. Alerts that
//! match no runbook are listed too: a missing runbook is a finding of its own.

use serde::Serialize;

use super::{print, print_json};
use crate::alert::outcome::{self, Outcome};
use crate::alert::payload::{Labels, Status};
use crate::alert::state::Occurrence;
use crate::alert::store;
use crate::cli::AlertsArgs;
use crate::config::Config;
use crate::error::{Error, exit};
use crate::format;

/// Labels worth a column, in this order; the others follow by name.
const KEY_LABELS: &[&str] = &["instance", "service", "severity", "job", "namespace"];
const LABELS_SHOWN: usize = 3;

#[derive(Serialize)]
struct Entry<'a> {
    #[serde(flatten)]
    alert: &'a Occurrence,
    diagnostic_outcome: Option<Outcome>,
    /// The command that starts the response, when a runbook matches.
    command: Option<String>,
}

pub(crate) fn alerts(config: &Config, args: &AlertsArgs) -> Result<u8, Error> {
    let log_dir = config.log_dir()?;
    let read = store::read(log_dir).map_err(|source| Error::Io {
        action: "read the alerts journal in",
        path: store::dir(log_dir),
        source,
    })?;
    let mut shown: Vec<&Occurrence> = read
        .alerts
        .list
        .iter()
        .filter(|o| args.all || o.status == Status::Firing)
        .collect();
    shown.sort_by(|a, b| b.starts_at.cmp(&a.starts_at).then(a.id.cmp(&b.id)));
    let entries: Vec<Entry> = shown
        .iter()
        .map(|o| Entry {
            alert: o,
            diagnostic_outcome: o
                .diagnostic
                .as_ref()
                .and_then(|d| d.run_id.as_deref())
                .and_then(|id| outcome::of(log_dir, id)),
            command: o.route.runbook.as_ref().map(|r| command(config, r, &o.id)),
        })
        .collect();
    if read.skipped > 0 {
        eprintln!(
            "warning: {} line(s) of {}/journal.jsonl could not be read and were skipped",
            read.skipped,
            store::dir(log_dir).display()
        );
    }
    if args.json {
        print_json(&entries)?;
        return Ok(exit::OK);
    }
    if entries.is_empty() {
        let what = if args.all {
            "no alerts"
        } else {
            "no firing alerts"
        };
        let hint = if args.all || read.alerts.list.is_empty() {
            ""
        } else {
            " (--all shows resolved ones too)"
        };
        print(&format!(
            "{what} in {}{hint}\n",
            store::dir(log_dir).display()
        ))?;
        return Ok(exit::OK);
    }
    print(&render(&entries))?;
    Ok(exit::OK)
}

fn render(entries: &[Entry]) -> String {
    let now = chrono::Utc::now();
    let mut rows = vec![format::row(&[
        "ID",
        "STATUS",
        "ALERT",
        "LABELS",
        "SINCE",
        "RUNBOOK",
        "DIAGNOSTIC",
    ])];
    for e in entries {
        let o = e.alert;
        let since = format!(
            "{} ({} ago)",
            format::minute(o.starts_at),
            format::delta(now - o.starts_at)
        );
        let status = match (o.status, o.ends_at) {
            (Status::Resolved, Some(t)) => format!("resolved {}", format::clock(t)),
            (s, _) => s.as_str().to_string(),
        };
        let diagnostic = match (&o.diagnostic, &e.diagnostic_outcome) {
            (_, Some(out)) => out.text(),
            (Some(d), None) => match (&d.failed, &d.run_id) {
                (Some(why), _) => format!("did not run: {why}"),
                (None, Some(id)) => format!("run {id} (no log)"),
                (None, None) => "waiting to start".into(),
            },
            (None, None) => "-".into(),
        };
        rows.push(vec![
            o.id.clone(),
            status,
            o.name.clone(),
            key_labels(&o.labels),
            since,
            o.route.runbook.clone().unwrap_or_else(|| "NONE".into()),
            diagnostic,
        ]);
    }
    let mut out = format::table(&rows);
    let respond: Vec<&Entry> = entries.iter().filter(|e| e.command.is_some()).collect();
    if !respond.is_empty() {
        out.push_str("\nTo respond:\n");
        for e in respond {
            if let Some(c) = &e.command {
                out.push_str(&format!("  {c}\n"));
            }
        }
    }
    let unmatched: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.alert.route.runbook.is_none())
        .collect();
    if !unmatched.is_empty() {
        out.push_str(
            "\nNo runbook for these (a finding of its own: write one, or route the alert):\n",
        );
        for e in unmatched {
            let o = e.alert;
            let missing = if o.route.missing.is_empty() {
                String::new()
            } else {
                format!(
                    "; it names {}, not in the runbooks directory",
                    o.route.missing.join(", ")
                )
            };
            out.push_str(&format!(
                "  {} {}{missing}: add [alert] match = {{ alertname = {:?} }} to a runbook\n",
                o.id, o.name, o.name
            ));
        }
    }
    out
}

/// A few labels that tell alerts of one name apart.
fn key_labels(labels: &Labels) -> String {
    let mut keys: Vec<&str> = KEY_LABELS
        .iter()
        .copied()
        .filter(|k| labels.contains_key(*k))
        .collect();
    keys.extend(
        labels
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "alertname" && !KEY_LABELS.contains(k)),
    );
    let mut parts: Vec<String> = keys
        .iter()
        .take(LABELS_SHOWN)
        .map(|k| format!("{k}={}", labels.get(*k).map_or("", String::as_str)))
        .collect();
    if keys.len() > LABELS_SHOWN {
        parts.push(format!("+{}", keys.len() - LABELS_SHOWN));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

/// `runbook [--dir D] [--log-dir L] exec NAME --alert ID`, with the directories this
/// listing used whenever they are not the defaults, so it can be pasted as it is.
fn command(config: &Config, runbook: &str, id: &str) -> String {
    let quote = |p: &std::path::Path| {
        let s = p.display().to_string();
        shlex::try_quote(&s).map_or(s.clone(), |q| q.into_owned())
    };
    let mut c = String::from("runbook");
    if config.dir != std::path::Path::new("runbooks") {
        c.push_str(&format!(" --dir {}", quote(&config.dir)));
    }
    if let Some(l) = &config.log_dir
        && crate::log::default_dir().as_ref() != Some(l)
    {
        c.push_str(&format!(" --log-dir {}", quote(l)));
    }
    c.push_str(&format!(" exec {runbook} --alert {id}"));
    c
}
