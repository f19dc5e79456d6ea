//! The unhappy paths of a run (issue 10): a log that cannot be written, files planted where
//! the tool writes, a run resumed while it still executes, and values that could overflow.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::test::{Test, runbook_with};

#[test]
fn a_duration_of_centuries_is_refused_by_check() {
    Test::new()
        .runbook(
            "x",
            &runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\ntimeout = \"584542046090y\"\n"),
        )
        .args(&["check", "x"])
        .status(2)
        .stderr_has("error: `timeout` is longer than 1year, the longest accepted")
        .run();
}

#[test]
fn many_retries_with_a_steep_backoff_do_not_overflow() {
    // 40 retries at x10 would overflow any duration type; the delay is capped instead.
    // The run is stopped by its own timeout long before the delays grow.
    let text = "[runbook]\ntitle = \"T\"\ntimeout = \"1s\"\n\n[[step]]\nid = \"a\"\nrun = \"false\"\nretries = 40\nretry_delay = \"1ms\"\nretry_backoff = 10.0\n";
    Test::new()
        .runbook("x", text)
        .args(&["exec", "x"])
        .status(1)
        .stderr_has("the run went past its timeout of 1s")
        .run();
}

#[test]
fn an_existing_log_directory_keeps_its_permissions() {
    let t = Test::new().runbook("x", &runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"));
    let logs = t.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ran = t.args(&["exec", "x"]).run();
    let mode = std::fs::metadata(ran.dir.join("logs"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let log = &ran.log_files()[0];
    let mode = std::fs::metadata(log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the log itself is private");
}

#[test]
fn a_symlink_planted_at_the_lock_is_not_followed() {
    let t = Test::new().runbook(
        "x",
        &runbook_with("[[step]]\nid = \"a\"\nrun = \"touch ran\"\n"),
    );
    let victim = t.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::create_dir_all(t.path().join("logs/locks")).unwrap();
    std::os::unix::fs::symlink(&victim, t.path().join("logs/locks/x.lock")).unwrap();
    let ran = t
        .args(&["exec", "x"])
        .status(4)
        .stderr_has("error: cannot open the lock in ")
        .run();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        !ran.dir.join("ran").exists(),
        "nothing runs without the lock"
    );
}

#[test]
fn a_symlink_planted_at_a_log_being_resumed_is_not_followed() {
    let t = Test::new().runbook(
        "x",
        &runbook_with("[[step]]\nid = \"a\"\nmanual = \"Do it.\"\n"),
    );
    // A run that stops at its manual step (end of input) and is left... finished; make an
    // unfinished one by hand: its run_started only.
    let ran = t.args(&["exec", "x"]).status(1).run();
    let log = ran.log_files()[0].clone();
    let first = std::fs::read_to_string(&log).unwrap();
    let first = first.lines().next().unwrap().to_string();
    let victim = ran.dir.join("victim");
    std::fs::write(&victim, format!("{first}\n")).unwrap();
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    Test::new()
        .in_dir(&ran.dir)
        .args(&["resume", "latest"])
        .stdin("done\n")
        .status(4)
        .stderr_has("error: cannot append to ")
        .run();
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        format!("{first}\n"),
        "the planted target is untouched"
    );
}

#[test]
fn a_log_deleted_mid_run_stops_the_run() {
    let steps = r#"[[step]]
id = "wipe"
run = "rm -rf \"$RUNBOOK_LOG_DIR\""

[[step]]
id = "after"
run = "touch after"
"#;
    let ran = Test::new()
        .runbook("x", &runbook_with(steps))
        .args(&["exec", "x"])
        .status(4)
        .stderr_has("cannot write the execution log")
        .stderr_has("was deleted while the run was writing it")
        .run();
    assert!(!ran.dir.join("after").exists(), "no step starts unrecorded");
}

#[test]
fn a_run_still_executing_cannot_be_resumed_twice() {
    // No runbook lock and a dry run: only the log's own lock stands in the way.
    let text = "[runbook]\ntitle = \"T\"\nlock = false\n\n[[step]]\nid = \"a\"\nrun = \"echo a >> count; sleep 5\"\nreadonly = true\n";
    let t = Test::new().runbook("x", text);
    let dir = t.path().to_path_buf();
    let mut child = crate::test::spawn(&dir, &["exec", "x", "--dry-run"]);
    let start = Instant::now();
    while std::fs::read_to_string(dir.join("count"))
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "step a never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Test::new()
        .in_dir(&dir)
        .args(&["resume", "latest"])
        .status(3)
        .stderr_has("is still executing in another runbook process")
        .run();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("count")).unwrap(), "a\n");
    drop(t);
}

/// Runs `runbook ARGS` in `dir` with `dir/logs` on a tmpfs of `kib` KiB, in a mount
/// namespace of its own, with `env` added; `None` when this machine cannot make one.
fn on_tiny_disk(
    dir: &std::path::Path,
    kib: u32,
    args: &[&str],
    env: &[(&str, &str)],
) -> Option<std::process::Output> {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let root = nix::unistd::getuid().is_root();
    let mut cmd = std::process::Command::new("unshare");
    cmd.arg(if root { "-m" } else { "-rm" })
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "mount -t tmpfs -o size={kib}k tmpfs logs || exit 97; exec \"$0\" \"$@\""
        ))
        .arg(crate::test::BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUNBOOK_DIR")
        .env("HOME", dir)
        .env("RUNBOOK_LOG_DIR", dir.join("logs"))
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null());
    // Step output is not read while the run runs: it goes nowhere, so no pipe fills up.
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let out = crate::test::wait_with_timeout(child, Duration::from_secs(30));
    (out.status.code() != Some(97)).then_some(out)
}

#[test]
fn a_full_disk_stops_the_run_at_once_with_exit_4_at_every_point() {
    full_disk_at_every_point(&[]);
}

/// The same with every step's shell held while its start is synced (a sync on tmpfs is
/// cheap, so the shells are not held unless syncs are made slow): the disk that fills
/// while a shell waits at its gate ends that shell unrun.
#[test]
fn a_full_disk_stops_a_run_of_held_shells_at_once_with_exit_4_at_every_point() {
    full_disk_at_every_point(&[("RUNBOOK_TEST_SLOW_SYNC_MS", "1")]);
}

/// The disk fills while a large stdout is read on its own thread (issue 15), and logged
/// there: the run stops the same way.
#[test]
fn a_full_disk_during_a_large_stream_stops_the_run_with_exit_4() {
    let steps = "[[step]]\nid = \"loud\"\nrun = \"head -c 8000000 /dev/zero | tr '\\\\0' x\"\n\n\
                 [[step]]\nid = \"last\"\nrun = \"touch ../last-ran\"\n";
    let t = Test::new().runbook("x", &runbook_with(steps));
    let dir = t.path().to_path_buf();
    std::fs::create_dir_all(dir.join("work")).unwrap();
    let args = ["exec", "x", "--log-output-cap", "16MiB"];
    let Some(out) = on_tiny_disk(&dir, 2048, &args, &[]) else {
        crate::test::skip("this machine cannot mount a tmpfs in a namespace (unshare -m)");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains("output of step loud is not recorded"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.join("last-ran").exists(), "`last` ran unrecorded");
}

fn full_disk_at_every_point(env: &[(&str, &str)]) {
    // Ten steps of 12 KB of output each: the log grows past its first chunks at different
    // steps, so a small disk fills at different points of the run.
    let mut steps: String = (1..=10)
        .map(|n| {
            format!(
                "[[step]]\nid = \"s{n}\"\nrun = \"touch ../ran-s{n}; head -c 12000 /dev/zero | tr '\\\\0' x; echo\"\n\n"
            )
        })
        .collect();
    steps.push_str("[[step]]\nid = \"last\"\nrun = \"touch ../last-ran\"\n");
    let mut seen_points = std::collections::BTreeSet::new();
    for kib in [4, 12, 24, 48, 80, 136] {
        let t = Test::new().runbook("x", &runbook_with(&steps));
        let dir = t.path().to_path_buf();
        std::fs::create_dir_all(dir.join("work")).unwrap();
        let Some(out) = on_tiny_disk(&dir, kib, &["exec", "x"], env) else {
            crate::test::skip("this machine cannot mount a tmpfs in a namespace (unshare -m)");
            return;
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{kib} KiB\n{stderr}");
        assert!(
            stderr.contains("No space left on device"),
            "{kib} KiB\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        // How far it got: the last step never starts once the log is full.
        assert!(
            !dir.join("last-ran").exists(),
            "{kib} KiB: `last` ran unrecorded"
        );
        // Where it stopped: how many steps it started. No command ran beyond them (a
        // started step may have run; one never shown as started must not have).
        let started = stderr.matches("  -> ").count();
        for n in started + 1..=10 {
            assert!(
                !dir.join(format!("ran-s{n}")).exists(),
                "{kib} KiB: s{n} ran but only {started} steps were shown started\n{stderr}"
            );
        }
        seen_points.insert(started);
    }
    assert!(
        seen_points.len() >= 3,
        "the disk filled at too few points to prove much: {seen_points:?}"
    );
}

// ── Runs watched while they run ──────────────────────────────────────────────────────────

/// A `runbook` process started in a test's directory, its stderr collected as it comes and
/// its stdin held open for answers.
struct Live {
    child: std::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    stdin: Option<std::process::ChildStdin>,
}

impl Live {
    fn start(dir: &std::path::Path, args: &[&str]) -> Live {
        let mut child = std::process::Command::new(crate::test::BIN)
            .args(args)
            .current_dir(dir)
            .env_remove("RUNBOOK_DIR")
            .env_remove("NO_COLOR")
            .env("HOME", dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("RUNBOOK_LOG_DIR", dir.join("logs"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut pipe, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let stdin = child.stdin.take();
        Live {
            child,
            stderr,
            stdin,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until stderr holds `what` (failing after 10 s), and returns how long it took.
    fn expect(&self, what: &str) -> Duration {
        let start = Instant::now();
        while !self.text().contains(what) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "waiting for {what:?}\n--- stderr:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        start.elapsed()
    }

    fn answer(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// Waits for the exit (at most `limit`) and returns its code.
    fn exit_within(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                start.elapsed() < limit,
                "still running after {limit:?}\n--- stderr:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const AT_A_PROMPT: &str = r#"[[step]]
id = "long"
needs = []
run = "sleep 30"

[[step]]
id = "ask"
needs = []
manual = "Look at the graphs."
"#;

#[test]
fn sigint_and_sigterm_at_a_line_prompt_act_within_a_second() {
    for (sig, code) in [
        (nix::sys::signal::Signal::SIGINT, 130),
        (nix::sys::signal::Signal::SIGTERM, 130),
    ] {
        let t = Test::new().runbook("x", &runbook_with(AT_A_PROMPT));
        let mut live = Live::start(t.path(), &["exec", "x"]);
        live.expect("optional note:");
        let at = Instant::now();
        live.signal(sig);
        assert_eq!(live.exit_within(Duration::from_secs(5)), Some(code));
        assert!(
            at.elapsed() < Duration::from_secs(1),
            "{sig}: took {:?}\n{}",
            at.elapsed(),
            live.text()
        );
        let log = std::fs::read_to_string(&crate::test::Ran::logs_in(t.path())[0]).unwrap();
        assert!(log.contains(r#""status":"interrupted""#), "{log}");
    }
}

#[test]
fn a_failure_elsewhere_is_shown_at_once_at_a_prompt() {
    let steps = r#"[[step]]
id = "ask"
needs = []
manual = "Look at the graphs."

[[step]]
id = "breaks"
needs = []
run = "sleep 0.3; echo 'replica lag 900s' >&2; exit 3"
"#;
    let t = Test::new().runbook("x", &runbook_with(steps));
    let mut live = Live::start(t.path(), &["exec", "x"]);
    live.expect("optional note:");
    // Nobody has answered: the failure must still be on screen, with what it means.
    live.expect("FAILED breaks");
    live.expect("step breaks failed while you were at the prompt for ask: no new step starts");
    live.answer("done\n");
    assert_eq!(live.exit_within(Duration::from_secs(5)), Some(1));
}

#[test]
fn a_run_timeout_during_a_manual_step_is_shown_at_once() {
    let text = "[runbook]\ntitle = \"T\"\ntimeout = \"300ms\"\n\n[[step]]\nid = \"ask\"\nmanual = \"Call the vendor.\"\n";
    let t = Test::new().runbook("x", text);
    let mut live = Live::start(t.path(), &["exec", "x"]);
    live.expect("optional note:");
    live.expect("the run went past its timeout of 300ms: running steps are being stopped");
    live.answer("done called\n");
    assert_eq!(live.exit_within(Duration::from_secs(5)), Some(1));
}

// ── Going on after a failure ─────────────────────────────────────────────────────────────

const FAILS_UNTIL_FIXED: &str = r#"[[step]]
id = "a"
run = "echo a >> count"

[[step]]
id = "b"
run = "echo b >> count; if [ -e fixed ]; then exit 0; fi; echo 'disk is full' >&2; exit 3"

[[step]]
id = "c"
run = "echo c >> count"
"#;

fn count(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("count"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_failed_run_is_resumed_and_the_failed_step_put_to_the_operator() {
    let failed = Test::new()
        .runbook("x", &runbook_with(FAILS_UNTIL_FIXED))
        .args(&["exec", "x", "--operator", "alice"])
        .status(1)
        .run();
    std::fs::write(failed.dir.join("fixed"), "").unwrap();
    let resumed = Test::new()
        .in_dir(&failed.dir)
        .args(&["resume", "latest", "--operator", "bob"])
        .stdin("retry cleaned up /var\n")
        .stderr_has("step b (b) failed with exit code 3 at ")
        .stderr_has("its last output:\n      disk is full")
        .stderr_has("its command: echo b >> count;")
        .run();
    assert_eq!(
        count(&resumed.dir),
        ["a", "b", "b", "c"],
        "a is not run again"
    );
    let log = resumed.log();
    let resumed_by: Vec<_> = log
        .iter()
        .filter(|e| e["event"] == "run_resumed")
        .map(|e| e["operator"].clone())
        .collect();
    assert_eq!(resumed_by, ["bob"]);
    assert_eq!(log.last().unwrap()["status"], "succeeded");
    // The hand-over shows in the review: both operators.
    Test::new()
        .in_dir(&failed.dir)
        .args(&["report", "latest"])
        .stdout_has("alice")
        .stdout_has("bob")
        .run();
}

#[test]
fn an_aborted_run_is_resumed_at_the_step_it_stopped() {
    let steps = r#"[[step]]
id = "a"
run = "echo a >> count"

[[step]]
id = "m"
manual = "Fence the primary."

[[step]]
id = "c"
run = "echo c >> count"
"#;
    let aborted = Test::new()
        .runbook("x", &runbook_with(steps))
        .args(&["exec", "x"])
        .stdin("abort not now\n")
        .status(1)
        .run();
    let resumed = Test::new()
        .in_dir(&aborted.dir)
        .args(&["resume", "latest"])
        .stdin("retry\ndone fenced\n")
        .stderr_has("step m (m) was aborted")
        .stderr_has("manual step m")
        .run();
    assert_eq!(count(&resumed.dir), ["a", "c"]);
}

#[test]
fn an_interrupted_run_is_resumed() {
    let steps = "[[step]]\nid = \"a\"\nrun = \"echo a >> count; sleep 30\"\n\n[[step]]\nid = \"b\"\nrun = \"echo b >> count\"\n";
    let t = Test::new().runbook("x", &runbook_with(steps));
    let mut live = Live::start(t.path(), &["exec", "x"]);
    let start = Instant::now();
    while count(t.path()).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
    live.signal(nix::sys::signal::Signal::SIGINT);
    assert_eq!(live.exit_within(Duration::from_secs(5)), Some(130));
    let dir = t.path().to_path_buf();
    std::fs::write(
        dir.join("runbooks/x.toml"),
        runbook_with(&steps.replace("; sleep 30", "")),
    )
    .unwrap();
    let ran = Test::new()
        .in_dir(&dir)
        .args(&["resume", "latest", "--force"])
        .stdin("retry\n")
        .stderr_has("step a (a) was aborted")
        .run();
    assert_eq!(count(&dir), ["a", "a", "b"]);
    drop(ran);
}

#[test]
fn resume_from_goes_back_to_an_earlier_step() {
    let failed = Test::new()
        .runbook("x", &runbook_with(FAILS_UNTIL_FIXED))
        .args(&["exec", "x"])
        .status(1)
        .run();
    std::fs::write(failed.dir.join("fixed"), "").unwrap();
    let resumed = Test::new()
        .in_dir(&failed.dir)
        .args(&["resume", "latest", "--from", "a"])
        .run();
    assert_eq!(count(&resumed.dir), ["a", "b", "a", "b", "c"]);
    assert_eq!(
        resumed
            .events("run_resumed")
            .first()
            .map(|e| e["from"].clone()),
        Some(serde_json::json!("a"))
    );
    Test::new()
        .in_dir(&failed.dir)
        .args(&["resume", "latest", "--from", "zz"])
        .status(2)
        .run();
}

#[test]
fn rolled_back_steps_run_again_on_resume() {
    let steps = r#"[[step]]
id = "one"
run = "echo one >> count"
rollback = "echo undo-one >> count"

[[step]]
id = "two"
run = "echo two >> count; [ -e fixed ]"
"#;
    let failed = Test::new()
        .runbook("x", &runbook_with(steps))
        .args(&["exec", "x", "--rollback", "auto"])
        .status(1)
        .run();
    assert_eq!(count(&failed.dir), ["one", "two", "undo-one"]);
    std::fs::write(failed.dir.join("fixed"), "").unwrap();
    Test::new()
        .in_dir(&failed.dir)
        .args(&["resume", "latest"])
        .stdin("retry\n")
        .stderr_has("step one was rolled back after the run failed: it runs again")
        .run();
    assert_eq!(count(&failed.dir), ["one", "two", "undo-one", "one", "two"]);
}

#[test]
fn a_run_that_ends_with_changes_applied_says_which() {
    let steps = r#"[[step]]
id = "one"
run = "true"
rollback = "echo undo one"

[[step]]
id = "two"
run = "exit 1"
"#;
    let ran = Test::new()
        .runbook("x", &runbook_with(steps))
        .args(&["exec", "x"])
        .status(1)
        .run();
    let left = ran.events("not_rolled_back");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["steps"][0]["step"], "one");
    assert_eq!(left[0]["steps"][0]["command"], "echo undo one");
    Test::new()
        .in_dir(&ran.dir)
        .args(&["log", "show", "latest"])
        .stdout_has("not rolled back")
        .stdout_has("echo undo one")
        .run();
    Test::new()
        .in_dir(&ran.dir)
        .args(&["report", "latest"])
        .stdout_has("echo undo one")
        .run();
}

// ── Starting part-way ────────────────────────────────────────────────────────────────────

const LAG: &str = r#"[[step]]
id = "check-lag"
run = "echo 12"
capture = "lag"

[[step]]
id = "fence"
manual = "Fence it."
ask = "fenced_by"

[[step]]
id = "promote"
run = "echo promote lag={{lag}} >> count"
when = "{{lt lag 30}}"
"#;

#[test]
fn start_at_names_the_values_skipped_steps_would_have_provided() {
    Test::new()
        .runbook("x", &runbook_with(LAG))
        .args(&["exec", "x", "--start-at", "promote"])
        .status(2)
        .stderr("error: --start-at `promote`: the steps that will run use values that the skipped steps would have provided: `lag` (from check-lag, used by promote); give them with --var lag=VALUE\n")
        .run();
    let ran = Test::new()
        .runbook("x", &runbook_with(LAG))
        .args(&["exec", "x", "--start-at", "promote", "--var", "lag=7"])
        .run();
    assert_eq!(count(&ran.dir), ["promote lag=7"]);
    let skipped = ran.finished("check-lag");
    assert_eq!(skipped["status"], "skipped");
    assert_eq!(skipped["captured"], "7", "kept for a resume");
}

// ── A lost terminal ──────────────────────────────────────────────────────────────────────

/// Runs `runbook ARGS` in `dir` on a real pseudo-terminal (Python's `pty`, the terminal a
/// lost SSH session leaves), waits for `marker` on it, then closes the terminal: the
/// hang-up. Returns the exit code and what the terminal showed, or `None` without python3.
fn hang_up_at(dir: &std::path::Path, args: &[&str], marker: &str) -> Option<(i32, String)> {
    const SCRIPT: &str = r#"
import os, pty, sys, time
marker = sys.argv[1].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
seen = b""
deadline = time.time() + 10
while marker not in seen and time.time() < deadline:
    try:
        seen += os.read(fd, 4096)
    except OSError:
        break
os.close(fd)
_, status = os.waitpid(pid, 0)
sys.stdout.write(str(os.waitstatus_to_exitcode(status)) + "\n")
sys.stdout.write(seen.decode(errors="replace"))
"#;
    let python =
        crate::test::require_program(&["/usr/bin/python3", "/usr/local/bin/python3"], "python3")?;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(marker)
        .arg(crate::test::BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUNBOOK_DIR")
        .env("HOME", dir)
        .env("RUNBOOK_LOG_DIR", dir.join("logs"))
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, screen) = text.split_once('\n').unwrap_or((&text, ""));
    Some((code.trim().parse().unwrap_or(-1), screen.to_string()))
}

#[test]
fn a_terminal_lost_at_a_prompt_leaves_the_run_open_and_says_what_stays_applied() {
    let steps = r#"[[step]]
id = "change"
run = "echo change >> count"
rollback = "echo undo >> count"

[[step]]
id = "look"
manual = "Look at the graphs."

[[step]]
id = "after"
run = "echo after >> count"
"#;
    let t = Test::new().runbook("x", &runbook_with(steps));
    let Some((code, screen)) = hang_up_at(t.path(), &["exec", "x"], "answer") else {
        return;
    };
    assert_eq!(code, 129, "{screen}");
    let log = std::fs::read_to_string(&crate::test::Ran::logs_in(t.path())[0]).unwrap();
    assert!(!log.contains("run_finished"), "left open: {log}");
    assert!(
        !log.contains(r#""step_finished","step":"look""#),
        "the prompt on screen has no answer: {log}"
    );
    assert!(log.contains(r#""event":"not_rolled_back""#), "{log}");
    // The next person resumes: the manual step is put again, nothing done is redone.
    Test::new()
        .in_dir(t.path())
        .args(&["resume", "latest"])
        .stdin("retry\ndone\n")
        .run();
    assert_eq!(count(t.path()), ["change", "after"]);
}

// ── kill -9 at any instant ───────────────────────────────────────────────────────────────

/// Answers a resume's prompts as an operator who looks before answering: a step still
/// running is waited for; a step in doubt is `done` if its side effect is in `count`, and
/// `retry` (the operator's choice) if not. Returns the resume's exit code and stderr.
fn resume_like_an_operator(dir: &std::path::Path) -> (Option<i32>, String) {
    let mut live = Live::start(dir, &["resume", "latest"]);
    let mut answered = 0;
    let start = Instant::now();
    loop {
        if let Some(status) = live.child.try_wait().unwrap() {
            return (status.code(), live.text());
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "resume hung\n{}",
            live.text()
        );
        let text = live.text();
        let prompts = text.matches("optional note: ").count();
        if prompts > answered {
            answered = prompts;
            // The question is the text since the previous answer.
            let question = text.rsplit("optional note: ").nth(1).unwrap_or_default();
            let step = question
                .rsplit("step ")
                .next()
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or_default()
                .to_string();
            let line = if question.contains("is still running") {
                "wait\n".to_string()
            } else if count(dir).contains(&step) {
                "done side effect found\n".to_string()
            } else {
                "retry side effect missing\n".to_string()
            };
            live.answer(&line);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn kill_9_at_random_instants_never_runs_a_step_twice_unasked_nor_loses_one() {
    let steps: String = (1..=10)
        .map(|n| {
            format!(
                "[[step]]\nid = \"s{n}\"\nrun = \"sleep 0.0{}; echo s{n} >> count; sleep 0.0{}\"\n\n",
                n % 4 + 1,
                (n + 2) % 4
            )
        })
        .collect();
    let text = runbook_with(&steps);
    // A fixed seed: a failure can be replayed.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let wanted: Vec<String> = (1..=10).map(|n| format!("s{n}")).collect();
    let mut killed_mid_step = 0;
    for trial in 0..40 {
        let t = Test::new().runbook("x", &text);
        let dir = t.path().to_path_buf();
        let mut child = crate::test::spawn(&dir, &["exec", "x"]);
        // A run takes about 0.5 s in all.
        std::thread::sleep(Duration::from_millis(next() % 600));
        child.kill().unwrap();
        child.wait().unwrap();
        if crate::test::Ran::logs_in(&dir).is_empty() {
            // Killed before its log existed: nothing can have run.
            assert!(count(&dir).is_empty(), "trial {trial}: ran unrecorded");
            continue;
        }
        let log = std::fs::read_to_string(&crate::test::Ran::logs_in(&dir)[0]).unwrap();
        if !log.contains("run_started") {
            // Killed between creating its log and recording its start: nothing ran.
            assert!(count(&dir).is_empty(), "trial {trial}: ran unrecorded");
            continue;
        }
        if log.contains("run_finished") {
            assert_eq!(count(&dir), wanted, "trial {trial}");
            continue;
        }
        let (code, stderr) = resume_like_an_operator(&dir);
        assert_eq!(code, Some(0), "trial {trial}\n{stderr}");
        if stderr.contains("has no recorded end") {
            killed_mid_step += 1;
        }
        let mut got = count(&dir);
        // Each `retry` the operator chose may add one line; the operator only retries a
        // step whose line is missing, so every step appears exactly once.
        assert_eq!(
            got, wanted,
            "trial {trial}: each step once, in order\n{stderr}"
        );
        got.dedup();
        assert_eq!(got.len(), 10);
    }
    assert!(
        killed_mid_step >= 10,
        "too few kills landed inside a step to prove much: {killed_mid_step} of 40"
    );
}

#[test]
fn a_rollback_that_cannot_be_rendered_fails_alone_and_the_run_ends() {
    let text = r#"[runbook]
title = "T"

[params.flag]
default = "no"

[[step]]
id = "probe"
run = "echo 5"
capture = "v"
when = "{{eq flag \"yes\"}}"

[[step]]
id = "change"
run = "true"
rollback = "echo undo {{v}}"

[[step]]
id = "breaks"
run = "exit 1"
"#;
    let ran = Test::new()
        .runbook("x", text)
        .args(&["exec", "x", "--rollback", "auto"])
        .status(1)
        .run();
    let rollback: Vec<_> = ran
        .events("step_finished")
        .into_iter()
        .filter(|e| e["step"] == "change")
        .map(|e| (e["phase"].clone(), e["status"].clone()))
        .collect();
    assert_eq!(
        rollback,
        [
            (serde_json::json!("run"), serde_json::json!("succeeded")),
            (serde_json::json!("rollback"), serde_json::json!("failed")),
        ],
        "the step stays succeeded; its rollback failed"
    );
    assert_eq!(
        ran.events("not_rolled_back")[0]["steps"][0]["step"],
        "change"
    );
}

#[test]
fn the_log_grows_in_zeroed_chunks_that_a_crash_leaves_and_readers_skip() {
    let steps = "[[step]]\nid = \"a\"\nrun = \"echo a >> count\"\n\n[[step]]\nid = \"b\"\nrun = \"echo b >> count; sleep 30\"\n";
    let t = Test::new().runbook("x", &runbook_with(steps));
    let dir = t.path().to_path_buf();
    let mut child = crate::test::spawn(&dir, &["exec", "x"]);
    let start = Instant::now();
    while count(&dir).len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let path = crate::test::Ran::logs_in(&dir)[0].clone();
    let bytes = std::fs::read(&path).unwrap();
    let records = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    assert!(
        records < bytes.len(),
        "a crashed log keeps its zero-filled room"
    );
    assert!(bytes[records..].iter().all(|&b| b == 0));
    Test::new()
        .in_dir(&dir)
        .args(&["log", "show", "latest"])
        .stdout_has("in doubt")
        .run();
    // Resumed, the records go on right after the last one, and the end cuts the file.
    Test::new()
        .in_dir(&dir)
        .args(&["resume", "latest"])
        .stdin("stop\ndone\n")
        .run();
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.contains(&0), "a finished log holds records only");
    assert!(bytes.ends_with(b"\n"));
    for line in String::from_utf8(bytes).unwrap().lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
}

#[test]
fn kill_9_while_a_step_waits_for_its_start_to_be_synced_runs_nothing() {
    // The shell is started while the step's start is being synced, and holds the command
    // until it is. Debug builds can slow every sync down (RUNBOOK_TEST_SLOW_SYNC_MS), which
    // puts the kill exactly there: the shell exists, the command must not run.
    let t = Test::new().runbook(
        "x",
        &runbook_with("[[step]]\nid = \"a\"\nrun = \"touch ran\"\n"),
    );
    let dir = t.path();
    let mut child = crate::test::spawn_with(
        dir,
        &["exec", "x"],
        &[("RUNBOOK_TEST_SLOW_SYNC_MS", "2000")],
    );
    // The shell's process group, once runbook has recorded it (the record is written at
    // once; only its sync is slow).
    let start = Instant::now();
    let pgid = loop {
        let logs = crate::test::Ran::logs_in(dir);
        let log = logs.first().and_then(|l| std::fs::read_to_string(l).ok());
        let spawned = log.as_deref().and_then(|log| {
            log.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|e| e["event"] == "step_spawned")
        });
        if let Some(pgid) = spawned.and_then(|e| e["pgid"].as_i64()) {
            break pgid as i32;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no step_spawned");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "the sync was not slowed"
    );
    let shell = std::path::PathBuf::from(format!("/proc/{pgid}"));
    assert!(shell.exists(), "the shell is held, not gone");
    child.kill().unwrap();
    child.wait().unwrap();
    // The shell sees its stdin end and exits (a zombie, if nobody reaps it) without
    // running the command.
    let gone = |p: &std::path::Path| {
        std::fs::read_to_string(p.join("stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or_default()
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
    };
    let start = Instant::now();
    while !gone(&shell) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the held shell outlived runbook"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !dir.join("ran").exists(),
        "the command ran before its start was synced"
    );
}
