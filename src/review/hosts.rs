//! A fleet step's hosts, summed up for people: how many ended how, which failed or could
//! not be reached (by name, with why), which are in doubt, and which were slowest. One
//! summary for `log show`, the report and `stats`, so that a 200-host step is a row and a
//! few names, not 200 rows.

use serde::Serialize;

use crate::event::{HostCounts, StepStatus};
use crate::format::millis;
use crate::log::run::StepRun;

/// Slowest hosts named.
const SLOWEST: usize = 3;

/// One host of a fleet step.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HostLine {
    pub(crate) host: String,
    /// `succeeded`, `failed`, `timed_out`, `unreachable`, `skipped`, `dry_run`, `aborted`,
    /// or `in doubt` (it started and has no recorded end).
    pub(crate) status: String,
    pub(crate) duration_ms: Option<u64>,
    pub(crate) duration: Option<String>,
    pub(crate) attempts: u32,
    pub(crate) exit_code: Option<i32>,
    pub(crate) reason: Option<String>,
    /// The last lines of its output.
    #[serde(skip)]
    pub(crate) output_tail: Vec<String>,
}

/// The hosts of one fleet step.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Hosts {
    pub(crate) total: usize,
    pub(crate) counts: HostCounts,
    /// `19 succeeded, 1 unreachable`.
    pub(crate) counts_text: String,
    /// Failed or timed out.
    pub(crate) failed: Vec<HostLine>,
    pub(crate) unreachable: Vec<HostLine>,
    pub(crate) in_doubt: Vec<HostLine>,
    /// The slowest hosts that ran, slowest first.
    pub(crate) slowest: Vec<HostLine>,
    /// Every host that has a record, in the order they first started or ended.
    pub(crate) hosts: Vec<HostLine>,
}

impl HostLine {
    fn of(h: &StepRun) -> HostLine {
        HostLine {
            host: h.host.clone().unwrap_or_default(),
            status: h.status.map_or("in doubt", StepStatus::as_str).to_string(),
            duration_ms: h.duration_ms,
            duration: h.duration_ms.map(|ms| millis(ms as i64)),
            attempts: h.attempts,
            exit_code: h.exit_code,
            reason: h.reason.clone(),
            output_tail: h.output_tail.clone(),
        }
    }

    /// `web-3 (exit code 1)`, `down-1 (ssh could not connect ...)`.
    pub(crate) fn named(&self) -> String {
        match (&self.reason, self.exit_code) {
            (Some(r), _) => format!("{} ({r})", self.host),
            (None, Some(c)) if c != 0 => format!("{} (exit code {c})", self.host),
            _ => format!("{} ({})", self.host, self.status.replace('_', " ")),
        }
    }
}

/// The hosts of step `s`, if it is a fleet step. The counts are the step's own (its last
/// `step_finished`) when it has them, else they are counted from the hosts' records, with
/// the hosts that never started as skipped.
pub(crate) fn of(s: &StepRun) -> Option<Hosts> {
    if !s.is_fleet() {
        return None;
    }
    let hosts: Vec<HostLine> = s.hosts.iter().map(HostLine::of).collect();
    let total = s.planned_hosts.len().max(hosts.len());
    let counts = s.host_counts.unwrap_or_else(|| {
        let mut c = HostCounts::default();
        for h in &s.hosts {
            c.add(h.status.unwrap_or(StepStatus::Skipped));
        }
        c.skipped += (total - hosts.len()) as u32;
        c
    });
    let pick = |want: &dyn Fn(Option<StepStatus>) -> bool| -> Vec<HostLine> {
        s.hosts
            .iter()
            .zip(&hosts)
            .filter(|(h, _)| want(h.status))
            .map(|(_, l)| l.clone())
            .collect()
    };
    let mut slowest: Vec<HostLine> = s
        .hosts
        .iter()
        .zip(&hosts)
        .filter(|(h, _)| {
            h.status
                .is_some_and(|st| st != StepStatus::Skipped && st != StepStatus::DryRun)
        })
        .filter(|(_, l)| l.duration_ms.is_some())
        .map(|(_, l)| l.clone())
        .collect();
    slowest.sort_by(|a, b| b.duration_ms.cmp(&a.duration_ms).then(a.host.cmp(&b.host)));
    slowest.truncate(SLOWEST);
    Some(Hosts {
        total,
        counts,
        counts_text: counts.text(),
        failed: pick(&|st| matches!(st, Some(StepStatus::Failed | StepStatus::TimedOut))),
        unreachable: pick(&|st| st == Some(StepStatus::Unreachable)),
        in_doubt: pick(&|st| st.is_none()),
        slowest,
        hosts,
    })
}

impl Hosts {
    /// `20 hosts: 19 succeeded, 1 unreachable`.
    pub(crate) fn headline(&self) -> String {
        format!(
            "{} host{}: {}",
            self.total,
            if self.total == 1 { "" } else { "s" },
            self.counts_text
        )
    }

    /// The lines `log show` prints under the timeline for this step.
    pub(crate) fn lines(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let named = |ls: &[HostLine]| {
            ls.iter()
                .map(HostLine::named)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.failed.is_empty() {
            out.push(("failed", named(&self.failed)));
        }
        if !self.unreachable.is_empty() {
            out.push(("unreachable", named(&self.unreachable)));
        }
        if !self.in_doubt.is_empty() {
            let hosts: Vec<&str> = self.in_doubt.iter().map(|h| h.host.as_str()).collect();
            out.push(("in doubt", hosts.join(", ")));
        }
        if !self.slowest.is_empty() {
            let s: Vec<String> = self
                .slowest
                .iter()
                .map(|h| format!("{} {}", h.host, h.duration.as_deref().unwrap_or("-")))
                .collect();
            out.push(("slowest", s.join(", ")));
        }
        out
    }
}
