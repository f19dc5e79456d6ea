//! How a step's shell is started (src/exec/spawn.rs): what it inherits from runbook, where
//! its program is found, and what a step says when its shell cannot start.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use crate::test::{BIN, Test, runbook_with};

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs `BEFORE exec runbook exec --log-dir LOGS ARGS` through `sh -c` in `t`'s directory,
/// for what `Command` cannot set up (closed fds 0-2, a lower limit), and returns its output
/// and the text of its log.
fn exec_through_sh(t: &Test, before: &str, args: &str) -> (Output, String) {
    let logs = t.path().join("logs");
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "{before}exec '{BIN}' exec --log-dir '{}' {args}",
            logs.display()
        ))
        .current_dir(t.path())
        .env("HOME", t.path())
        .env("XDG_STATE_HOME", t.path().join("state"))
        .env_remove("RUNBOOK_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = crate::test::Ran::logs_in(t.path());
    let text = log
        .last()
        .map(|l| std::fs::read_to_string(l).unwrap())
        .unwrap_or_default();
    (out, text)
}

#[test]
fn a_shell_that_cannot_start_fails_its_step_with_the_reason_and_the_run_goes_on() {
    let t = Test::new().file("not-a-program", b"just text\n");
    let text = runbook_with(
        "[[step]]\nid = \"missing\"\nrun = \"true\"\nshell = [\"no-such-shell\", \"-c\"]\non_failure = \"continue\"\n\n\
         [[step]]\nid = \"not-executable\"\nrun = \"true\"\nshell = [\"./not-a-program\", \"-c\"]\non_failure = \"continue\"\n\n\
         [[step]]\nid = \"no-dir\"\nrun = \"true\"\ndir = \"no/such/dir\"\non_failure = \"continue\"\n\n\
         [[step]]\nid = \"after\"\nrun = \"echo still running\"\n",
    );
    let ran = t
        .runbook("x", &text)
        .args(&["exec", "x"])
        .stdout_has("still running")
        .run();
    for (step, reason) in [
        (
            "missing",
            "cannot start `no-such-shell`: No such file or directory (os error 2)",
        ),
        (
            "not-executable",
            "cannot start `./not-a-program`: Permission denied (os error 13)",
        ),
        (
            "no-dir",
            "cannot start `/bin/sh`: cannot change to directory no/such/dir: No such file or directory (os error 2)",
        ),
    ] {
        let finished = ran.finished(step);
        assert_eq!(finished["status"], "failed", "{finished}");
        assert_eq!(finished["reason"], reason, "{finished}");
        // Nothing started: no process was recorded for the step.
        assert!(
            ran.events("step_spawned").iter().all(|e| e["step"] != step),
            "{step} spawned"
        );
    }
    assert_eq!(ran.finished("after")["status"], "succeeded");
}

#[test]
fn a_step_has_an_empty_signal_mask_default_sigpipe_and_its_own_process_group() {
    let ran = Test::new()
        .runbook(
            "x",
            &runbook_with(
                "[[step]]\nid = \"state\"\nrun = '''\n\
                 grep -E '^Sig(Blk|Ign):' /proc/self/status\n\
                 read -r pid comm state ppid pgrp rest < /proc/self/stat\n\
                 [ \"$pid\" = \"$pgrp\" ] && echo own-group\n'''\n\n\
                 [[step]]\nid = \"pipe\"\nrun = \"kill -PIPE $$; echo survived\"\non_failure = \"continue\"\n\n\
                 [[step]]\nid = \"head\"\nrun = \"yes | head -n 2\"\n",
            ),
        )
        .args(&["exec", "x"])
        .stdout_has("own-group")
        .run();
    let out = ran.stdout();
    // Nothing blocked; SIGPIPE (bit 13, ignored inside runbook) is back to its default.
    assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
    let ignored = out
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:\t"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no SigIgn in {out}"));
    assert_eq!(ignored & (1 << (13 - 1)), 0, "SIGPIPE ignored: {out}");
    let pipe = ran.finished("pipe");
    assert_eq!(pipe["reason"], "killed by signal 13", "{pipe}");
    assert!(!out.contains("survived"), "{out}");
    assert_eq!(ran.finished("head")["status"], "succeeded");
}

#[test]
fn a_shell_named_without_a_path_is_found_in_the_steps_path_as_execvp_would() {
    let t = Test::new()
        .file("a/mysh", b"#!/bin/sh\necho wrong shell\n")
        .file(
            "b/mysh",
            b"#!/bin/sh\necho right shell; exec /bin/sh \"$@\"\n",
        );
    // The first one found cannot be run: the search goes on, as execvp's does.
    chmod(&t.path().join("a/mysh"), 0o644);
    chmod(&t.path().join("b/mysh"), 0o755);
    let dir = t.path().display().to_string();
    let text = runbook_with(&format!(
        "[[step]]\nid = \"custom\"\nrun = \"echo command ran\"\nshell = [\"mysh\", \"-c\"]\n\
         env = {{ PATH = \"{dir}/none:{dir}/a:{dir}/b:/usr/bin:/bin\" }}\n"
    ));
    t.runbook("x", &text)
        .args(&["exec", "x"])
        .stdout_has("right shell\n")
        .stdout_has("command ran\n")
        .run();
}

#[test]
fn runbook_started_without_stdin_stdout_and_stderr_still_gives_its_steps_their_own() {
    let t = Test::new().runbook(
        "x",
        &runbook_with(
            "[[step]]\nid = \"fds\"\nrun = '''\n\
             echo out; echo err >&2\n\
             echo \"stdin $(readlink /proc/self/fd/0)\"\n\
             cat\n'''\n",
        ),
    );
    let (out, text) = exec_through_sh(&t, "", "x <&- >&- 2>&-");
    assert_eq!(out.status.code(), Some(0));
    for want in [
        "out\\n",
        "err\\n",
        "stdin /dev/null\\n",
        "\"status\":\"succeeded\"",
    ] {
        assert!(text.contains(want), "{want} not in the log:\n{text}");
    }
}

#[test]
fn without_pidfds_a_thread_waits_and_every_outcome_is_the_same() {
    // RUNBOOK_TEST_NO_PIDFD (debug builds only) takes the path of kernels before 5.3.
    let ran = Test::new()
        .runbook(
            "x",
            &runbook_with(
                "[[step]]\nid = \"exits\"\nrun = \"exit 3\"\non_failure = \"continue\"\n\n\
                 [[step]]\nid = \"slow\"\nrun = \"sleep 5\"\ntimeout = \"300ms\"\non_failure = \"continue\"\n\n\
                 [[step]]\nid = \"talks\"\nrun = \"for i in 1 2 3; do echo line $i; sleep 0.05; done\"\n",
            ),
        )
        .env("RUNBOOK_TEST_NO_PIDFD", "1")
        .args(&["exec", "x"])
        .stdout_has("line 1\nline 2\nline 3\n")
        .run();
    assert_eq!(ran.finished("exits")["exit_code"], 3);
    assert_eq!(ran.finished("slow")["status"], "timed_out");
    assert_eq!(ran.finished("talks")["status"], "succeeded");
}

#[test]
fn a_variable_set_twice_reaches_the_step_once_with_runbooks_value_last() {
    // The step's `env` may not hide which step and run its processes belong to (`resume`
    // finds them by these).
    let ran = Test::new()
        .runbook(
            "x",
            &runbook_with(
                "[[step]]\nid = \"real\"\nrun = 'echo \"$RUNBOOK_STEP $A\"; env | grep -c ^RUNBOOK_STEP='\n\
                 env = { RUNBOOK_STEP = \"fake\", A = \"1\" }\n",
            ),
        )
        .args(&["exec", "x"])
        .stdout("real 1\n1\n")
        .run();
    assert_eq!(ran.finished("real")["status"], "succeeded");
}

#[test]
fn out_of_file_descriptors_the_steps_that_cannot_start_fail_with_the_reason() {
    let mut steps = String::new();
    for i in 1..=8 {
        steps.push_str(&format!(
            "[[step]]\nid = \"s{i}\"\nrun = \"sleep 0.3\"\nneeds = []\non_failure = \"continue\"\n\n"
        ));
    }
    let t = Test::new().runbook("x", &runbook_with(&steps));
    // Room for runbook's own files and a few steps' pipes, not for eight at once.
    let (out, text) = exec_through_sh(&t, "ulimit -n 24 && ", "--parallel 8 x");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let finished: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "step_finished")
        .collect();
    assert_eq!(finished.len(), 8, "{text}");
    let failed = finished.iter().filter(|e| e["status"] == "failed").count();
    assert!(failed > 0, "every step started: {text}");
    for e in &finished {
        match e["status"].as_str() {
            Some("succeeded") => {}
            Some("failed") => assert_eq!(
                e["reason"], "cannot start `/bin/sh`: Too many open files (os error 24)",
                "{e}"
            ),
            _ => panic!("{e}"),
        }
    }
}
