//! Hostile steps and inputs: huge lines, closed pipes, daemons, secrets split across reads,
//! names and ids that try to leave their directories, very large runbooks.

use std::time::{Duration, Instant};

use crate::test::{Test, runbook_with};

#[test]
fn a_ten_megabyte_line_of_output_is_streamed_and_capped() {
    let ran = Test::new()
        .runbook("x", &runbook_with("[[step]]\nid = \"loud\"\nrun = \"head -c 10000000 /dev/zero | tr '\\\\0' x; echo\"\n"))
        .args(&["exec", "x"])
        .run();
    assert_eq!(ran.stdout.len(), 10_000_001);
    let outputs = ran.events("step_output");
    let kept: usize = outputs
        .iter()
        .map(|e| e["text"].as_str().unwrap_or("").len())
        .sum();
    assert_eq!(kept, 1024 * 1024, "the default cap is 1 MiB");
    assert_eq!(
        outputs.last().unwrap()["truncated_bytes"],
        10_000_001 - 1024 * 1024
    );
}

#[test]
fn a_step_that_closes_its_stdout_early_still_finishes() {
    let ran = Test::new()
        .runbook(
            "x",
            &runbook_with(
                "[[step]]\nid = \"a\"\nrun = \"exec 1>&-; sleep 0.3; echo still here >&2\"\n",
            ),
        )
        .args(&["exec", "x"])
        .stderr_has("still here")
        .run();
    assert_eq!(ran.finished("a")["status"], "succeeded");
}

#[test]
fn a_daemon_holding_the_pipes_does_not_hang_the_run() {
    let start = Instant::now();
    let ran = Test::new()
        .runbook("x", &runbook_with("[[step]]\nid = \"a\"\nrun = \"sleep 30 & echo $! > daemon.pid; echo started\"\n\n[[step]]\nid = \"b\"\nrun = \"echo next\"\n"))
        .args(&["exec", "x"])
        .stdout("started\nnext\n")
        .run();
    assert!(start.elapsed() < Duration::from_secs(10));
    let pid: i32 = std::fs::read_to_string(ran.tempdir.path().join("daemon.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // It was started on purpose and the step succeeded: it is left running.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[test]
fn a_daemon_is_cleaned_up_with_its_group_on_timeout() {
    let ran = Test::new()
        .runbook(
            "x",
            &runbook_with("[[step]]\nid = \"a\"\nrun = \"sh -c 'trap \\\"\\\" TERM; sleep 30' & echo $! > daemon.pid; sleep 30\"\ntimeout = \"300ms\"\n"),
        )
        .args(&["exec", "x"])
        .status(1)
        .run();
    assert_eq!(ran.finished("a")["status"], "timed_out");
    let pid: i32 = std::fs::read_to_string(ran.tempdir.path().join("daemon.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "a process that ignores TERM outlived the group's KILL: {stat}"
    );
}

#[test]
fn a_secret_split_across_reads_is_still_masked() {
    let text = "[runbook]\ntitle = \"s\"\n\n[params.token]\nsecret = true\nrequired = true\n\n[[step]]\nid = \"leak\"\nrun = \"printf 'token=hun'; sleep 0.3; printf 'ter2-long\\\\n'\"\n";
    let ran = Test::new()
        .runbook("x", text)
        .args(&["exec", "x", "--var", "token=hunter2-long"])
        .stdout("token=***\n")
        .run();
    let log = std::fs::read_to_string(&ran.log_files()[0]).unwrap();
    assert!(!log.contains("hunter2") && !log.contains("hun\""), "{log}");
    // `token=` is shown while the step sleeps; `hun` waits for what follows.
    assert_eq!(ran.logged_output(None), "token=***\n", "{log}");
}

#[test]
fn a_secret_in_a_bad_var_is_not_echoed() {
    let text = "[runbook]\ntitle = \"s\"\n\n[params.token]\nsecret = true\npattern = \"^[a-z]+$\"\n\n[[step]]\nid = \"a\"\nrun = \"true\"\n";
    Test::new()
        .runbook("x", text)
        .args(&["exec", "x", "--var", "token=Hunter2"])
        .status(2)
        .stderr("error: param `token` = *** does not match its pattern `^[a-z]+$`\n")
        .run();
}

#[test]
fn run_ids_never_leave_the_log_directory() {
    for id in ["../x", "/etc/passwd", "..", "a/b", "latest/../../x"] {
        for cmd in [&["log", "show"][..], &["resume"][..], &["report"][..]] {
            let mut args = cmd.to_vec();
            args.push(id);
            Test::new()
                .args(&args)
                .status(2)
                .stderr_has("is not a run id")
                .run();
        }
    }
}

#[test]
fn a_twenty_thousand_step_runbook_rehearses() {
    let mut text = String::from("[runbook]\ntitle = \"Chain\"\n");
    for i in 0..20_000 {
        text.push_str(&format!("[[step]]\nid = \"s{i}\"\nrun = \"true\"\n"));
    }
    let ran = Test::new()
        .runbook("chain", &text)
        .args(&["exec", "chain", "--dry-run", "--quiet"])
        .run();
    assert_eq!(ran.events("step_finished").len(), 20_000);
    assert_eq!(ran.log().last().unwrap()["status"], "succeeded");
}

#[test]
fn output_bytes_pass_through_unchanged() {
    // Not UTF-8, and a long line of multi-byte characters with no newline (split across
    // reads): the terminal gets exactly what the step wrote.
    let ran = Test::new()
        .runbook(
            "x",
            &runbook_with("[[step]]\nid = \"a\"\nrun = \"printf '\\\\377\\\\376 raw\\\\n'; i=0; while [ $i -lt 2000 ]; do printf '€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€'; i=$((i+1)); done\"\n"),
        )
        .args(&["exec", "x"])
        .run();
    let mut expected = b"\xff\xfe raw\n".to_vec();
    expected.extend("€".repeat(100_000).as_bytes());
    assert!(
        ran.stdout == expected,
        "{} bytes, expected {}",
        ran.stdout.len(),
        expected.len()
    );
    // The log holds text: the invalid bytes become U+FFFD there, the euros stay whole.
    let text = ran.logged_output(None);
    assert!(text.starts_with("\u{fffd}\u{fffd} raw\n") && !text[10..].contains('\u{fffd}'));
}
