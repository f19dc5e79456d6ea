//! `runbook log list` and `runbook log show`, on logs made by running real runbooks.

use crate::test::{Test, runbook_with};

const TWO: &str = r#"[[step]]
id = "check"
run = "echo checking"

[[step]]
id = "fence"
title = "Fence the primary"
manual = "Power it off."

[[step]]
id = "boom"
run = "echo first line; sleep 0.3; echo 'it broke' >&2; exit 4"
"#;

/// Runs `x` twice in one directory (a failure, then a dry run) and returns the directory.
fn two_runs() -> Test {
    let t = Test::new().runbook("x", &runbook_with(TWO));
    let dir = t.path().to_path_buf();
    let run = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut child = crate::test::spawn(&dir, args);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait().unwrap()
    };
    assert_eq!(
        run(
            &["exec", "x", "--operator", "alice", "--incident", "INC-7"],
            "done fenced at the PDU\n"
        )
        .code(),
        Some(1)
    );
    assert_eq!(
        run(&["exec", "x", "--dry-run", "--yes"], "").code(),
        Some(0)
    );
    t
}

#[test]
fn log_list_is_newest_first() {
    let ran = two_runs().args(&["log", "list"]).run();
    let out = ran.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("RUN ID") && lines[0].contains("OUTCOME"),
        "{out}"
    );
    assert!(
        lines[1].contains(" dry-run ") && lines[1].ends_with("succeeded"),
        "{out}"
    );
    assert!(
        lines[2].contains(" live ")
            && lines[2].contains("alice")
            && lines[2].contains("INC-7")
            && lines[2].ends_with("failed"),
        "{out}"
    );
}

#[test]
fn log_list_json_and_filter() {
    let t = two_runs();
    let ran = t.args(&["log", "list", "--json"]).run();
    let v: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    assert_eq!(v[0]["mode"], "dry_run");
    assert_eq!(v[1]["outcome"], "failed");
    assert_eq!(v[1]["operator"], "alice");
    assert!(v[1]["duration_ms"].is_i64());
    let ran = Test::new()
        .args(&[
            "--log-dir",
            &ran.tempdir.path().join("logs").to_string_lossy(),
            "log",
            "list",
            "--runbook",
            "other",
        ])
        .run();
    assert_eq!(
        ran.stdout().lines().count(),
        1,
        "only the header: {}",
        ran.stdout()
    );
}

#[test]
fn log_show_is_a_timeline_with_answers_and_the_failed_output() {
    let t = two_runs();
    let logs = t.path().join("logs");
    let first = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .min()
        .unwrap();
    let id = first.trim_end_matches(".jsonl").to_string();
    // A unique prefix is enough: the time to the millisecond.
    let ran = t.args(&["log", "show", &id[..19]]).run();
    let out = ran.stdout();
    assert!(out.starts_with(&format!("run {id}  x: Test\n")), "{out}");
    assert!(out.contains("mode live  operator alice"), "{out}");
    assert!(out.contains("incident INC-7"), "{out}");
    assert!(out.contains("outcome failed"), "{out}");
    let fence = out.lines().find(|l| l.contains(" fence ")).unwrap_or("");
    assert!(
        fence.contains("succeeded")
            && fence.contains("done by alice")
            && fence.contains("note: fenced at the PDU"),
        "{out}"
    );
    let boom = out.lines().find(|l| l.contains(" boom")).unwrap_or("");
    assert!(boom.contains("failed"), "{out}");
    assert!(
        out.contains("last output of boom:\n    | first line\n    | it broke\n"),
        "{out}"
    );
}

#[test]
fn log_show_latest_and_bad_ids() {
    let t = two_runs();
    let logs = t.path().join("logs").to_string_lossy().to_string();
    Test::new()
        .args(&["--log-dir", &logs, "log", "show", "latest"])
        .stdout_has("mode dry-run")
        .run();
    Test::new()
        .args(&["--log-dir", &logs, "log", "show", "../../etc/passwd"])
        .status(2)
        .stderr("error: `../../etc/passwd` is not a run id (run ids look like 20261126T031200123Z-a1b2c3)\n")
        .run();
    Test::new()
        .args(&["--log-dir", &logs, "log", "show", "1999"])
        .status(2)
        .stderr_has("error: no run `1999`")
        .run();
    Test::new()
        .args(&["--log-dir", &logs, "log", "show", "2"])
        .status(2)
        .stderr_has("matches 2 runs")
        .run();
    Test::new()
        .args(&["log", "show", "latest"])
        .status(2)
        .stderr_has("error: no runs in")
        .run();
}

#[test]
fn a_torn_last_line_is_tolerated_and_reported() {
    let t = two_runs();
    let logs = t.path().join("logs");
    let newest = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .max()
        .unwrap();
    let mut text = std::fs::read_to_string(&newest).unwrap();
    // Cut the final record in half, as a crash mid-write would.
    let cut = text.trim_end().len() - 20;
    text.truncate(cut);
    std::fs::write(&newest, text).unwrap();
    let logs = logs.to_string_lossy().to_string();
    Test::new()
        .args(&["--log-dir", &logs, "log", "show", "latest"])
        .stderr_has("was cut short (a crash while writing); it is ignored")
        .stdout_has("outcome unfinished")
        .run();
    Test::new()
        .args(&["--log-dir", &logs, "log", "list"])
        .stdout_has("unfinished")
        .run();
}

#[test]
fn unreadable_lines_are_skipped_and_reported() {
    let t = two_runs();
    let logs = t.path().join("logs");
    let newest = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .max()
        .unwrap();
    let text = std::fs::read_to_string(&newest).unwrap();
    // A known event with a field of the wrong type, in the middle of the log.
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(
        1,
        r#"{"ts":"2026-11-26T03:00:00.000Z","event":"milestone","name":7}"#,
    );
    std::fs::write(&newest, lines.join("\n") + "\n").unwrap();
    let logs = logs.to_string_lossy().to_string();
    Test::new()
        .args(&["--log-dir", &logs, "log", "show", "latest"])
        .stderr_has("warning: line 2 of ")
        .stderr_has(" could not be read; it is ignored")
        .stdout_has("outcome succeeded")
        .run();
}

#[test]
fn a_log_from_a_newer_schema_gets_a_clear_message() {
    let t = Test::new().file(
        "logs/20990101T000000000Z-abcdef.jsonl",
        br#"{"ts":"2099-01-01T00:00:00.000Z","event":"run_started","schema_version":7,"run_id":"20990101T000000000Z-abcdef"}
"#,
    );
    t.args(&["log", "show", "latest"])
        .status(2)
        .stderr_has("was written by a newer runbook (log schema 7")
        .run();
}
