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
/// namespace of its own; `None` when this machine cannot make one.
fn on_tiny_disk(dir: &std::path::Path, kib: u32, args: &[&str]) -> Option<std::process::Output> {
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
        .stdin(std::process::Stdio::null());
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let out = crate::test::wait_with_timeout(child, Duration::from_secs(30));
    (out.status.code() != Some(97)).then_some(out)
}

#[test]
fn a_full_disk_stops_the_run_at_once_with_exit_4_at_every_point() {
    let steps = r#"[[step]]
id = "one"
run = "head -c 3000 /dev/zero | tr '\\0' a; echo"

[[step]]
id = "two"
run = "head -c 6000 /dev/zero | tr '\\0' b; echo"

[[step]]
id = "three"
run = "head -c 50000 /dev/zero | tr '\\0' c; echo"

[[step]]
id = "last"
run = "touch ../last-ran"
"#;
    let mut seen_points = std::collections::BTreeSet::new();
    for kib in [4, 8, 12, 16, 24, 40, 56] {
        let t = Test::new().runbook("x", &runbook_with(steps));
        let dir = t.path().to_path_buf();
        std::fs::create_dir_all(dir.join("work")).unwrap();
        let Some(out) = on_tiny_disk(&dir, kib, &["exec", "x"]) else {
            crate::test::skip(
                "a_full_disk_stops_the_run",
                "this machine cannot mount a tmpfs in a namespace (unshare -m)",
            );
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
        // Where it stopped: how many steps it started.
        seen_points.insert(stderr.matches("  -> ").count());
    }
    assert!(
        seen_points.len() >= 3,
        "the disk filled at too few points to prove much: {seen_points:?}"
    );
}
