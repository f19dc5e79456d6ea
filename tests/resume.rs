//! `runbook resume`: kill -9 at several points of a run, then resume it, counting how many
//! times each step's side effect happened.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::test::Test;

const COUNTED: &str = r#"[runbook]
title = "Counted"

[[step]]
id = "one"
run = "echo one >> count; echo value-1"
capture = "v"

[[step]]
id = "two"
run = "echo two >> count; touch two.started; sleep 30"

[[step]]
id = "fence"
manual = "Fence it."
ask = "who"

[[step]]
id = "three"
run = "echo three {{v}} {{who}} >> count"
"#;

struct Crash {
    test: Test,
}

impl Crash {
    fn dir(&self) -> PathBuf {
        self.test.path().to_path_buf()
    }

    /// Starts `exec x` with its stdin open and empty (so a prompt waits), then kills it with
    /// SIGKILL once `marker` exists.
    fn kill_when(text: &str, marker: &str) -> Crash {
        let test = Test::new().runbook("x", text);
        let dir = test.path().to_path_buf();
        let mut child: Child = crate::test::spawn(&dir, &["exec", "x"]);
        wait_for(&dir, marker);
        child.kill().unwrap();
        child.wait().unwrap();
        Crash { test }
    }

    fn resume(self, args: &[&str], input: &str) -> crate::test::Ran {
        self.resume_status(args, input, 0)
    }

    fn resume_status(self, args: &[&str], input: &str, status: i32) -> crate::test::Ran {
        let mut all = vec!["resume", "latest"];
        all.extend_from_slice(args);
        self.test.args(&all).stdin(input).status(status).run()
    }

    fn count(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("count"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn wait_for(dir: &Path, marker: &str) {
    let start = Instant::now();
    while !marker_seen(dir, marker) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{marker} never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A file in the directory, or text in the run's log (`log:TEXT`).
fn marker_seen(dir: &Path, marker: &str) -> bool {
    match marker.strip_prefix("log:") {
        Some(text) => std::fs::read_dir(dir.join("logs"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
                    .any(|e| {
                        std::fs::read_to_string(e.path())
                            .unwrap_or_default()
                            .contains(text)
                    })
            })
            .unwrap_or(false),
        None => dir.join(marker).exists(),
    }
}

#[test]
fn killed_during_a_step_the_step_is_in_doubt_and_done_means_not_run_again() {
    let crash = Crash::kill_when(COUNTED, "two.started");
    let dir = crash.dir();
    // `two`'s shell outlived the executor: resume finds it running, and the operator stops
    // it; then whether it completed is theirs to say.
    let ran = crash.resume(&[], "stop\ndone it finished\nalice\n");
    assert_eq!(Crash::count(&dir), ["one", "two", "three value-1 alice"]);
    let err = ran.stderr();
    assert!(
        err.contains("step two (two) is still running: its process group"),
        "{err}"
    );
    assert!(
        err.contains("step two (two) started at") && err.contains("has no recorded end"),
        "{err}"
    );
    let log = ran.log();
    assert!(log.iter().any(|e| e["event"] == "run_resumed"));
    assert_eq!(log.last().unwrap()["event"], "run_finished");
    assert_eq!(log.last().unwrap()["status"], "succeeded");
    let two: Vec<_> = log
        .iter()
        .filter(|e| e["event"] == "step_finished" && e["step"] == "two")
        .collect();
    assert_eq!(two.len(), 1);
    assert_eq!(
        (two[0]["answer"].as_str(), two[0]["note"].as_str()),
        (Some("done"), Some("it finished"))
    );
}

#[test]
fn retry_runs_the_step_in_doubt_again_by_the_operators_choice() {
    let text = COUNTED.replace(
        "touch two.started; sleep 30",
        "if [ -e two.started ]; then true; else touch two.started; sleep 30; fi",
    );
    let crash = Crash::kill_when(&text, "two.started");
    let dir = crash.dir();
    let ran = crash.resume(&[], "stop\nretry\nbob\n");
    assert_eq!(
        Crash::count(&dir),
        ["one", "two", "two", "three value-1 bob"]
    );
    let started: Vec<_> = ran
        .events("step_started")
        .into_iter()
        .filter(|e| e["step"] == "two")
        .map(|e| e["attempt"].clone())
        .collect();
    assert_eq!(started, [1, 2], "the retry is the second attempt");
}

#[test]
fn killed_at_a_prompt_the_manual_step_is_asked_again() {
    let crash = Crash::kill_when(
        COUNTED
            .replace("touch two.started; sleep 30", "true")
            .as_str(),
        "log:\"step\":\"fence\",\"kind\":\"manual\"",
    );
    let dir = crash.dir();
    // Keep the run (and its directory) alive while counting.
    let _ran = crash.resume(&[], "retry\ncarol\n");
    assert_eq!(
        Crash::count(&dir),
        ["one", "two", "three value-1 carol"],
        "nothing finished is run again"
    );
}

#[test]
fn killed_after_steps_finished_they_are_not_run_again() {
    // `one` and `two` finish and `fence` waits at its prompt: killed there, `fence` is in
    // doubt (its prompt was on screen), and `one` and `two` are never run again.
    let text = COUNTED.replace("touch two.started; sleep 30", "touch two.started");
    let crash = Crash::kill_when(&text, "log:\"step\":\"fence\",\"kind\":\"manual\"");
    let dir = crash.dir();
    let ran = crash.resume_status(&[], "skip\n", 1);
    assert_eq!(Crash::count(&dir)[..2], ["one", "two"]);
    assert_eq!(ran.finished("fence")["status"], "skipped");
    // `three` needs `who`, which the skipped step never set: it fails, clearly.
    assert_eq!(ran.finished("three")["status"], "failed");
    assert!(
        ran.finished("three")["reason"]
            .as_str()
            .unwrap_or("")
            .contains("variable `who` is not set")
    );
}

#[test]
fn a_finished_run_is_refused() {
    let t = Test::new()
        .runbook(
            "x",
            "[runbook]\ntitle = \"t\"\n\n[[step]]\nid = \"a\"\nrun = \"true\"\n",
        )
        .args(&["exec", "x"])
        .run();
    let logs = t.tempdir.path().join("logs").to_string_lossy().to_string();
    Test::new()
        .args(&["--log-dir", &logs, "resume", "latest"])
        .status(2)
        .stderr_has("succeeded; there is nothing to resume")
        .run();
}

#[test]
fn a_changed_runbook_is_refused_unless_forced() {
    let crash = Crash::kill_when(COUNTED, "two.started");
    let dir = crash.dir();
    std::fs::write(
        dir.join("runbooks/x.toml"),
        COUNTED.replace("Fence it.", "Fence it now."),
    )
    .unwrap();
    Test::new()
        .in_dir(&dir)
        .args(&["resume", "latest"])
        .status(2)
        .stderr_has("changed since run")
        .stderr_has("resume with --force")
        .run();
    let ran = Test::new()
        .in_dir(&dir)
        .args(&["resume", "latest", "--force"])
        .stdin("stop\ndone\ndave\n")
        .run();
    assert_eq!(ran.stderr().matches("has no recorded end").count(), 1);
    assert_eq!(Crash::count(&dir), ["one", "two", "three value-1 dave"]);
}

#[test]
fn a_torn_log_is_resumed() {
    let crash = Crash::kill_when(COUNTED, "two.started");
    let dir = crash.dir();
    let log = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(
        &mut f,
        br#"{"ts":"2026-11-26T03:00:00.000Z","event":"step_fin"#,
    )
    .unwrap();
    let ran = crash.resume(&[], "stop\ndone\nerin\n");
    assert_eq!(Crash::count(&dir), ["one", "two", "three value-1 erin"]);
    let _ = ran;
    Test::new()
        .in_dir(&dir)
        .args(&["log", "show", "latest"])
        .stdout_has("outcome succeeded")
        .run();
}

#[test]
fn end_of_input_at_the_prompt_aborts_the_resumed_run_which_can_be_resumed_again() {
    let crash = Crash::kill_when(COUNTED, "two.started");
    let dir = crash.dir();
    let ran = Test::new()
        .in_dir(&dir)
        .args(&["resume", "latest"])
        .status(1)
        .stderr_has("end of input")
        .run();
    assert_eq!(ran.log().last().unwrap()["status"], "aborted");
    assert_eq!(Crash::count(&dir), ["one", "two"]);
    // An aborted run can be resumed again; its step is still running, untouched.
    Test::new()
        .in_dir(&dir)
        .args(&["resume", "latest"])
        .stdin("stop\ndone\ngreg\n")
        .stderr_has("is still running")
        .run();
    assert_eq!(Crash::count(&dir), ["one", "two", "three value-1 greg"]);
}

#[test]
fn a_lost_terminal_leaves_the_run_open_for_resume() {
    let test = Test::new().runbook("x", COUNTED);
    let dir = test.path().to_path_buf();
    let mut child = crate::test::spawn(&dir, &["exec", "x"]);
    wait_for(&dir, "two.started");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(129));
    let crash = Crash { test };
    let log = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        !text.contains("run_finished") && !text.contains(r#""step_finished","step":"two""#),
        "{text}"
    );
    let ran = crash.resume(&[], "done\nfrank\n");
    assert!(
        ran.stderr().contains("step two (two) started at"),
        "{}",
        ran.stderr()
    );
    assert_eq!(Crash::count(&dir), ["one", "two", "three value-1 frank"]);
}
