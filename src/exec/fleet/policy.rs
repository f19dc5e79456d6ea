//! The fleet policy as plain functions of where the hosts stand: how many hosts run at once
//! (`batch`), how many may fail (`max_failed`), which host starts next, which hosts a pass
//! runs (the first, a retry of the failed ones, a rollback), and how the step ends. No
//! processes, no I/O: the runner in [`super::run`] asks, and does.

use crate::event::{HostCounts, StepStatus};
use crate::runbook::Share;

/// Hosts at once: `batch` of `hosts` (a percentage rounds up, so `25%` of 3 hosts is 1),
/// all of them without one, and never more than `limit` (the run's bound on sessions).
pub(crate) fn at_once(batch: Option<Share>, hosts: usize, limit: usize) -> usize {
    let n = match batch {
        None => hosts,
        Some(Share::Count(n)) => n as usize,
        Some(Share::Percent(p)) => (hosts * p as usize).div_ceil(100),
    };
    n.min(hosts).min(limit).max(1)
}

/// Failed hosts a step tolerates: `max_failed` of `hosts` (a percentage rounds down, so
/// `10%` of 5 hosts is 0: no host may fail).
pub(crate) fn failures_allowed(max_failed: Share, hosts: usize) -> usize {
    match max_failed {
        Share::Count(n) => n as usize,
        Share::Percent(p) => hosts * p as usize / 100,
    }
}

/// Which hosts a pass of the step runs, by their place in the step's host list, given
/// how each ended in earlier passes: those that never ended, and those that failed (a
/// retry runs only them). Hosts that succeeded or were skipped stay as they are.
pub(crate) fn to_run(earlier: &[Option<StepStatus>]) -> Vec<usize> {
    earlier
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none_or(|s| s.is_failure() || s == StepStatus::Aborted))
        .map(|(i, _)| i)
        .collect()
}

/// The hosts a rollback runs on: those where the step succeeded.
pub(crate) fn to_roll_back(ended: &[Option<StepStatus>]) -> Vec<usize> {
    ended
        .iter()
        .enumerate()
        .filter(|(_, s)| **s == Some(StepStatus::Succeeded))
        .map(|(i, _)| i)
        .collect()
}

/// Where one host of a pass stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostState {
    Waiting,
    Running,
    Ended,
}

/// One pass over some hosts of a step: they start in order, at most `at_once` at a time;
/// once more have failed than allowed, or the run is stopping, no new host starts and the
/// running ones finish.
#[derive(Debug)]
pub(crate) struct Rollout {
    state: Vec<HostState>,
    at_once: usize,
    /// Failures the step tolerates (`None`: any number, for a rollback).
    allowed: Option<usize>,
    failed: usize,
    running: usize,
    /// The next host that may start (hosts start in order).
    next: usize,
    stopped: bool,
}

impl Rollout {
    /// `allowed`: failures tolerated before no new host starts (`None`: never stop, as a
    /// rollback, which goes to every host it has).
    pub(crate) fn new(hosts: usize, at_once: usize, allowed: Option<usize>) -> Self {
        Rollout {
            state: vec![HostState::Waiting; hosts],
            at_once: at_once.max(1),
            allowed,
            failed: 0,
            running: 0,
            next: 0,
            stopped: false,
        }
    }

    /// How many hosts may start now.
    pub(crate) fn room(&self) -> usize {
        if self.stopped || self.over() {
            return 0;
        }
        let waiting = self.state.len() - self.next;
        self.at_once.saturating_sub(self.running).min(waiting)
    }

    /// Marks the next `n` hosts (at most [`Rollout::room`]) running, and returns them.
    pub(crate) fn start(&mut self, n: usize) -> std::ops::Range<usize> {
        let n = n.min(self.room());
        let from = self.next;
        for s in &mut self.state[from..from + n] {
            *s = HostState::Running;
        }
        self.next += n;
        self.running += n;
        from..from + n
    }

    pub(crate) fn ended(&mut self, i: usize, status: StepStatus) {
        if self.state[i] == HostState::Running {
            self.running -= 1;
        }
        self.state[i] = HostState::Ended;
        if status.is_failure() {
            self.failed += 1;
        }
    }

    /// No new host starts (an interrupt).
    pub(crate) fn stop(&mut self) {
        self.stopped = true;
    }

    /// More hosts failed than the step tolerates.
    pub(crate) fn over(&self) -> bool {
        self.allowed.is_some_and(|a| self.failed > a)
    }

    /// Nothing runs, and nothing more will start.
    pub(crate) fn done(&self) -> bool {
        self.running == 0 && self.room() == 0
    }

    /// Hosts that never started (the pass stopped first).
    #[cfg(test)]
    fn not_started(&self) -> usize {
        self.state.len() - self.next
    }
}

/// How a fleet step ends, from how each of its hosts ended (`None`: never started).
pub(crate) struct Verdict {
    pub(crate) status: StepStatus,
    pub(crate) counts: HostCounts,
    pub(crate) reason: Option<String>,
}

/// Most hosts named in a reason; the rest are counted.
const NAMED: usize = 10;

/// The step's end: aborted when interrupted, a dry run when nothing ran, skipped when no
/// host ran, failed when more hosts failed than `max_failed` allows (`allowed` of them),
/// else succeeded. A rollback (`max_failed` `None`) fails when any host's rollback failed.
/// Hosts that never started count as skipped. The reason names the hosts that failed.
pub(crate) fn verdict(
    hosts: &[(&str, Option<StepStatus>, Option<&str>)],
    allowed: usize,
    interrupted: bool,
    max_failed: Option<Share>,
) -> Verdict {
    let mut counts = HostCounts::default();
    for (_, s, _) in hosts {
        counts.add(s.unwrap_or(StepStatus::Skipped));
    }
    let failures = counts.failures() as usize;
    let failed: Vec<String> = hosts
        .iter()
        .filter(|(_, s, _)| s.is_some_and(StepStatus::is_failure))
        .map(|(h, s, why)| {
            let what = match (s, why) {
                (_, Some(w)) => (*w).to_string(),
                (Some(s), None) => s.as_str().replace('_', " "),
                (None, None) => String::new(),
            };
            format!("{h} ({what})")
        })
        .collect();
    let mut named = failed
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if failed.len() > NAMED {
        named.push_str(&format!(" and {} more", failed.len() - NAMED));
    }
    let total = hosts.len();
    let (status, reason) = if interrupted {
        (
            StepStatus::Aborted,
            Some("stopped: the run was interrupted".to_string()),
        )
    } else if counts.dry_run > 0 && counts.dry_run + counts.skipped == total as u32 {
        (StepStatus::DryRun, None)
    } else if counts.skipped as usize == total {
        (StepStatus::Skipped, Some("it ran on no host".to_string()))
    } else if max_failed.is_none() {
        let ran = hosts.iter().filter(|(_, s, _)| s.is_some()).count();
        match failures {
            0 => (StepStatus::Succeeded, None),
            _ => (
                StepStatus::Failed,
                Some(format!(
                    "the rollback failed on {failures} of {ran} hosts: {named}"
                )),
            ),
        }
    } else if failures > allowed {
        let not_started = hosts.iter().filter(|(_, s, _)| s.is_none()).count();
        let mut why = format!(
            "{failures} of {total} hosts failed, more than max_failed = {} allows: {named}",
            max_failed.map_or_else(String::new, Share::text)
        );
        if not_started > 0 {
            why.push_str(&format!("; {not_started} not started"));
        }
        (StepStatus::Failed, Some(why))
    } else if failures > 0 {
        let why = format!(
            "{failures} of {total} hosts failed, within max_failed = {}: {named}",
            max_failed.map_or_else(String::new, Share::text)
        );
        (StepStatus::Succeeded, Some(why))
    } else {
        (StepStatus::Succeeded, None)
    };
    Verdict {
        status,
        counts,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StepStatus::*;

    #[test]
    fn a_batch_is_a_count_or_a_percentage_rounded_up_and_bounded() {
        assert_eq!(at_once(None, 40, 256), 40);
        assert_eq!(at_once(None, 1000, 256), 256);
        assert_eq!(at_once(Some(Share::Percent(25)), 40, 256), 10);
        assert_eq!(at_once(Some(Share::Percent(25)), 3, 256), 1);
        assert_eq!(at_once(Some(Share::Percent(1)), 150, 256), 2);
        assert_eq!(at_once(Some(Share::Count(5)), 3, 256), 3);
    }

    #[test]
    fn failures_allowed_round_down() {
        assert_eq!(failures_allowed(Share::Count(1), 20), 1);
        assert_eq!(failures_allowed(Share::Percent(10), 20), 2);
        assert_eq!(failures_allowed(Share::Percent(10), 5), 0);
        assert_eq!(failures_allowed(Share::Percent(100), 7), 7);
    }

    #[test]
    fn a_rolling_pass_never_runs_more_than_the_batch() {
        let mut r = Rollout::new(5, 2, Some(0));
        assert_eq!(r.start(r.room()), 0..2);
        assert_eq!(r.room(), 0);
        r.ended(0, Succeeded);
        assert_eq!(r.start(r.room()), 2..3);
        r.ended(1, Succeeded);
        r.ended(2, Succeeded);
        assert_eq!(r.start(5), 3..5, "never beyond the room");
        r.ended(3, Succeeded);
        r.ended(4, Succeeded);
        assert!(r.done());
        assert_eq!(r.not_started(), 0);
    }

    #[test]
    fn past_max_failed_no_new_host_starts_and_the_running_ones_finish() {
        let mut r = Rollout::new(6, 3, Some(1));
        r.start(r.room());
        r.ended(0, Failed);
        assert!(!r.over());
        assert_eq!(r.start(r.room()), 3..4);
        r.ended(1, Unreachable);
        assert!(r.over());
        assert_eq!(r.room(), 0);
        assert!(!r.done(), "hosts 2 and 3 still run");
        r.ended(2, Succeeded);
        r.ended(3, TimedOut);
        assert!(r.done());
        assert_eq!(r.not_started(), 2);
    }

    #[test]
    fn a_rollback_goes_to_every_host_whatever_fails() {
        let mut r = Rollout::new(3, 1, None);
        for i in 0..3 {
            assert_eq!(r.start(r.room()), i..i + 1);
            r.ended(i, Failed);
        }
        assert!(r.done());
    }

    #[test]
    fn an_interrupt_starts_nothing_more() {
        let mut r = Rollout::new(4, 2, Some(0));
        r.start(r.room());
        r.stop();
        assert_eq!(r.room(), 0);
        r.ended(0, Aborted);
        r.ended(1, Aborted);
        assert!(r.done());
        assert_eq!(r.not_started(), 2);
    }

    #[test]
    fn a_retry_runs_the_failed_and_unstarted_hosts_and_a_rollback_the_succeeded() {
        let earlier = [
            Some(Succeeded),
            Some(Failed),
            None,
            Some(Skipped),
            Some(Unreachable),
            Some(TimedOut),
        ];
        assert_eq!(to_run(&earlier), [1, 2, 4, 5]);
        assert_eq!(to_roll_back(&earlier), [0]);
    }

    #[test]
    fn the_step_fails_only_past_max_failed_and_names_the_hosts() {
        let hosts = [
            ("web-1", Some(Succeeded), None),
            ("web-2", Some(Failed), Some("exit code 3")),
            ("web-3", Some(Unreachable), None),
            ("web-4", None, None),
        ];
        let v = verdict(&hosts, 1, false, Some(Share::Count(1)));
        assert_eq!(v.status, Failed);
        assert_eq!(
            v.reason.as_deref(),
            Some(
                "2 of 4 hosts failed, more than max_failed = 1 allows: web-2 (exit code 3), web-3 (unreachable); 1 not started"
            )
        );
        assert_eq!(
            (
                v.counts.succeeded,
                v.counts.failed,
                v.counts.unreachable,
                v.counts.skipped
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(
            verdict(&hosts, 2, false, Some(Share::Count(2))).status,
            Succeeded
        );
        assert_eq!(
            verdict(&hosts, 2, true, Some(Share::Count(2))).status,
            Aborted
        );
        let skipped = [("a", Some(Skipped), None), ("b", None, None)];
        assert_eq!(
            verdict(&skipped, 0, false, Some(Share::Count(0))).status,
            Skipped
        );
        let dry = [("a", Some(DryRun), None), ("b", Some(Skipped), None)];
        assert_eq!(
            verdict(&dry, 0, false, Some(Share::Count(0))).status,
            DryRun
        );
        // A rollback: on the hosts it ran on, any failure fails it.
        let rollback = [
            ("a", Some(Succeeded), None),
            ("b", Some(Failed), Some("exit code 1")),
            ("c", None, None),
        ];
        let v = verdict(&rollback, 0, false, None);
        assert_eq!(v.status, Failed);
        assert_eq!(
            v.reason.as_deref(),
            Some("the rollback failed on 1 of 2 hosts: b (exit code 1)")
        );
    }
}
