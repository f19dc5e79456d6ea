//! The bounded runner of diagnostic rehearsals. Each is the runbook binary itself as a
//! child process, `exec NAME --dry-run --diagnose --alert ID` (a dry run that asks no one), with
//! stdin closed, in a process group of its own: the executor's dry-run rule is what keeps
//! every step that is not `readonly` from running, here as for a person's rehearsal. At
//! most `max` run at once; the rest wait their turn, up to [`MAX_WAITING`].

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use super::intake::{Intake, Job};

/// Rehearsals waiting for a free slot; beyond this, an alert storm's rehearsals are
/// recorded as not run rather than queued for hours.
const MAX_WAITING: usize = 100;
/// Longest a rehearsal may take before it is stopped (TERM, then KILL after the grace).
const LIMIT: Duration = Duration::from_secs(15 * 60);
const GRACE: Duration = Duration::from_secs(5);
/// Stderr kept from a rehearsal, for the reason it did not start.
const STDERR_KEPT: usize = 16 * 1024;

pub(crate) struct Runner {
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    /// Set when the server stops: rehearsals still waiting are not started.
    stopping: std::sync::atomic::AtomicBool,
    /// Process ids of the rehearsals running now, to stop them when the server stops.
    running: Arc<Mutex<HashSet<i32>>>,
    exe: PathBuf,
    dir: PathBuf,
    log_dir: PathBuf,
    /// Never passed on: the rehearsal's steps have no business with the receiver's token.
    token_env: Option<String>,
    intake: Arc<Mutex<Intake>>,
}

impl Runner {
    pub(crate) fn new(
        max: usize,
        exe: PathBuf,
        dir: PathBuf,
        log_dir: PathBuf,
        token_env: Option<String>,
        intake: Arc<Mutex<Intake>>,
    ) -> Self {
        Runner {
            slots: Arc::new(Semaphore::new(max)),
            waiting: Arc::new(AtomicUsize::new(0)),
            stopping: std::sync::atomic::AtomicBool::new(false),
            running: Arc::new(Mutex::new(HashSet::new())),
            exe,
            dir,
            log_dir,
            token_env,
            intake,
        }
    }

    /// Starts the rehearsal of `job` when a slot is free.
    pub(crate) fn start(self: &Arc<Self>, job: Job) {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            let why = format!("not run: {MAX_WAITING} rehearsals were already waiting");
            self.record_failure(&job, why);
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let permit = Arc::clone(&this.slots).acquire_owned().await;
            this.waiting.fetch_sub(1, Ordering::SeqCst);
            let Ok(_permit) = permit else { return };
            if this.stopping.load(Ordering::SeqCst) {
                this.record_failure(&job, "not run: the server stopped first".into());
                return;
            }
            if let Err(why) = this.run(&job).await {
                this.record_failure(&job, why);
            }
        });
    }

    /// Rehearsals running or waiting.
    pub(crate) fn busy(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
            || !self
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
    }

    /// Asks every running rehearsal to stop (it records itself as interrupted).
    pub(crate) fn stop_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let pids: Vec<i32> = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }

    async fn run(&self, job: &Job) -> Result<(), String> {
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg("--dir")
            .arg(&self.dir)
            .arg("--log-dir")
            .arg(&self.log_dir)
            .arg("--quiet")
            .args([
                "exec",
                &job.runbook,
                "--dry-run",
                "--diagnose",
                "--alert",
                &job.alert,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(var) = &self.token_env {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        if let Some(pid) = pid {
            self.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(pid);
        }
        let mut stderr = child.stderr.take();
        let read_stderr = async {
            let mut kept = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    kept.extend_from_slice(&buf[..n]);
                    let excess = kept.len().saturating_sub(STDERR_KEPT);
                    kept.drain(..excess);
                }
            }
            kept
        };
        let waited = async {
            match tokio::time::timeout(LIMIT, child.wait()).await {
                Ok(status) => status.map_err(|e| e.to_string()),
                Err(_) => {
                    if let Some(pid) = pid {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGTERM,
                        );
                    }
                    match tokio::time::timeout(GRACE, child.wait()).await {
                        Ok(_) => {}
                        Err(_) => {
                            let _ = child.kill().await;
                        }
                    }
                    Err(format!(
                        "stopped after {}",
                        humantime::format_duration(LIMIT)
                    ))
                }
            }
        };
        let (kept, status) = tokio::join!(read_stderr, waited);
        if let Some(pid) = pid {
            self.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&pid);
        }
        let status = status?;
        // 0 and 1: the rehearsal ran, and its own log says how it went.
        match status.code() {
            Some(0 | 1) => Ok(()),
            code => {
                let text = String::from_utf8_lossy(&kept);
                let last = text
                    .lines()
                    .rev()
                    .find(|l| l.starts_with("error:"))
                    .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))
                    .unwrap_or("")
                    .trim()
                    .to_string();
                let how = match code {
                    Some(c) => format!("exit {c}"),
                    None => "killed by a signal".to_string(),
                };
                Err(format!("{how}: {last}"))
            }
        }
    }

    fn record_failure(&self, job: &Job, why: String) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "rehearsal of {} for alert {}: {why}",
            job.runbook,
            job.alert
        );
        let mut intake = self.intake.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = intake.failed(&job.alert, why) {
            let _ = writeln!(
                std::io::stderr().lock(),
                "error: cannot write {}: {e}",
                intake.journal.path().display()
            );
        }
    }
}
