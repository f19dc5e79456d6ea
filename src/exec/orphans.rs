//! Step processes that outlive their executor. A `kill -9` of `runbook` (or a crash) leaves
//! each running step's process group running: nothing can make a whole group die with its
//! parent, so `runbook` does not pretend to. Instead every spawn is recorded
//! (`step_spawned`: process group, the shell's start time, the boot id) and every step's
//! environment carries `RUNBOOK_RUN_ID` and `RUNBOOK_STEP`, so `resume` can tell a group
//! that still runs from one that is gone, and never starts a step again while it lives.

use std::sync::OnceLock;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::watch;

use super::process::{Cancel, GRACE};
use crate::log::run::Spawned;

/// How often a group being waited for is looked at.
const POLL: Duration = Duration::from_millis(100);

/// This boot's id: a group recorded under another boot is gone.
pub(crate) fn boot_id() -> String {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
    .clone()
}

/// Field `n` of `/proc/PID/stat` after the command name: the state is field 0, the
/// process group 2 and the start time (clock ticks since boot) 19.
fn stat_field<T: std::str::FromStr>(pid: u32, n: usize) -> Option<T> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces or parentheses.
    let after = text.get(text.rfind(')')? + 1..)?;
    after.split_ascii_whitespace().nth(n)?.parse().ok()
}

/// When process `pid` started, in clock ticks since boot.
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    stat_field(pid, 19)
}

/// The start time `/proc` would give a process created now: the kernel stamps a new
/// process with `CLOCK_BOOTTIME` and shows it in ticks of `CLK_TCK`, rounded down.
pub(crate) fn ticks_now() -> Option<u64> {
    static HZ: OnceLock<Option<u64>> = OnceLock::new();
    let hz = (*HZ.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|hz| u64::try_from(hz).ok())
            .filter(|&hz| hz > 0 && NANOS % hz == 0)
    }))?;
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
    let secs = u64::try_from(now.tv_sec()).ok()?;
    let nanos = u64::try_from(now.tv_nsec()).ok()?;
    Some(secs * hz + nanos / (NANOS / hz))
}

const NANOS: u64 = 1_000_000_000;

/// The start time of `pid`, a process created between two readings of [`ticks_now`]: when
/// both fell in the same tick (a spawn takes microseconds, a tick is 10 ms) that tick is
/// the answer without a look at `/proc`.
pub(crate) fn spawned_at(pid: u32, before: Option<u64>, after: Option<u64>) -> Option<u64> {
    match (before, after) {
        (Some(b), Some(a)) if a == b => Some(b),
        _ => start_ticks(pid),
    }
}

/// Whether any live process is in group `pgid`. Zombies do not count: a process killed
/// and not yet reaped (by init, once its parent is gone) runs nothing.
fn group_exists(pgid: u32) -> bool {
    let Ok(raw) = i32::try_from(pgid) else {
        return false;
    };
    if matches!(killpg(Pid::from_raw(raw), None), Err(Errno::ESRCH)) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    let group = pgid.to_string();
    entries.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            return false;
        };
        stat_field::<String>(pid, 2) == Some(group.clone())
            && stat_field::<String>(pid, 0).is_some_and(|state| state != "Z")
    })
}

/// Whether the group recorded in `spawned` still runs. A process group id cannot be given
/// to a new process while any member of the group lives, so the group is ours unless its
/// id now leads a younger process (the whole group ended and the id was reused).
pub(crate) fn alive(spawned: &Spawned) -> bool {
    if spawned.boot_id != boot_id() || !group_exists(spawned.pgid) {
        return false;
    }
    match start_ticks(spawned.pgid) {
        Some(t) => t == spawned.start_ticks,
        // The shell is gone but members of its group remain.
        None => true,
    }
}

/// A group running a step of `run_id` found by its environment, for a spawn the log did
/// not get to record (the executor died between the spawn and the record).
pub(crate) fn find(run_id: &str, step: &str) -> Option<u32> {
    let want_run = format!("RUNBOOK_RUN_ID={run_id}");
    let want_step = format!("RUNBOOK_STEP={step}");
    let entries = std::fs::read_dir("/proc").ok()?;
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
        let has = |w: &str| vars.contains(&w.as_bytes());
        if has(&want_run) && has(&want_step) {
            return stat_field(pid, 2);
        }
    }
    None
}

fn signal(pgid: u32, sig: Signal) {
    if let Ok(raw) = i32::try_from(pgid) {
        // ESRCH (the group is gone) is the expected end.
        let _ = killpg(Pid::from_raw(raw), sig);
    }
}

/// Waits until group `pgid` is gone. A cancel (the run is interrupted) stops it the way a
/// running step is stopped: TERM, then KILL after the grace period.
pub(crate) async fn wait_gone(pgid: u32, mut cancel: watch::Receiver<Cancel>) {
    let mut kill_at = None;
    loop {
        if !group_exists(pgid) {
            return;
        }
        let how = *cancel.borrow_and_update();
        match how {
            Cancel::None => {}
            Cancel::Graceful if kill_at.is_none() => {
                signal(pgid, Signal::SIGTERM);
                kill_at = Some(tokio::time::Instant::now() + GRACE);
            }
            Cancel::Graceful => {}
            Cancel::Kill => signal(pgid, Signal::SIGKILL),
        }
        if kill_at.is_some_and(|t| tokio::time::Instant::now() >= t) {
            signal(pgid, Signal::SIGKILL);
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = cancel.changed() => {}
        }
    }
}

/// Stops group `pgid` (TERM, then KILL after the grace period) and waits until it is gone.
pub(crate) async fn stop(pgid: u32) {
    let (tx, rx) = watch::channel(Cancel::Graceful);
    wait_gone(pgid, rx).await;
    drop(tx);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_alive_until_it_ends_and_a_reused_id_is_not_ours() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id();
        let ours = Spawned {
            attempt: 1,
            pgid,
            start_ticks: start_ticks(pgid).unwrap(),
            boot_id: boot_id(),
        };
        assert!(alive(&ours));
        let younger = Spawned {
            start_ticks: ours.start_ticks + 1,
            ..ours.clone()
        };
        assert!(
            !alive(&younger),
            "a leader younger than the record is someone else"
        );
        let rebooted = Spawned {
            boot_id: "another boot".into(),
            ..ours.clone()
        };
        assert!(!alive(&rebooted));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!alive(&ours));
    }
}
