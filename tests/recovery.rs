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
