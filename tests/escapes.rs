//! Text from outside never drives the terminal (issue 11, point 6): what a runbook, a log,
//! an operator or a step's value holds is shown with its control characters written out
//! (`\u{1b}`), while step output itself is passed through as the bytes it was.

use crate::test::{Test, runbook_with};

/// An OSC 52 clipboard write, a window retitle, a screen clear and a C1 CSI: what a hostile
/// string replays on a terminal that obeys it.
const CLIPBOARD: &str = "\u{1b}]52;c;cm0gLXJmIC8K\u{7}";
const RETITLE: &str = "\u{1b}]0;owned\u{7}";
const CLEAR: &str = "\u{1b}[2J\u{1b}[H";
const C1_CSI: &str = "\u{9b}2J";

fn raw_escape(text: &str) -> bool {
    text.chars()
        .any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\u{9b}')
}

#[test]
fn check_rejects_control_characters_in_runbook_text() {
    let text = format!(
        "[runbook]\ntitle = \"Fix it{}\"\n\n[[step]]\nid = \"a\"\nmanual = \"\"\"\nLook.{}[2J\nnow\"\"\"\n",
        "\\u001b]0;owned\\u0007", "\\u001b"
    );
    let ran = Test::new()
        .runbook("x", &text)
        .args(&["check", "x"])
        .status(2)
        .stderr_has("x.toml:2:9: error: `title` holds the control character U+001B")
        .stderr_has("error: `manual` holds the control character U+001B")
        .run();
    assert!(!raw_escape(&ran.stderr()), "{:?}", ran.stderr());
    // Newlines, tabs and CRLF line ends are text.
    Test::new()
        .runbook(
            "x",
            "[runbook]\r\ntitle = \"ok\"\r\n\r\n[[step]]\r\nid = \"a\"\r\nmanual = \"\"\"\r\nLook\tthere.\r\n\"\"\"\r\n",
        )
        .args(&["check", "x"])
        .run();
}

#[test]
fn names_notes_and_values_are_shown_not_obeyed() {
    // A captured value with escapes reaches a command, a failure reason and a manual step;
    // the operator name, the incident and a typed note carry escapes too.
    let steps = r#"[[step]]
id = "grab"
run = "printf 'v\\033]0;owned\\007'"
capture = "v"

[[step]]
id = "look"
manual = "The value: {{v}}"

[[step]]
id = "fail"
run = "echo {{v}}; exit 3"
"#;
    let t = Test::new().runbook("x", &runbook_with(steps));
    let dir = t.path().to_path_buf();
    let ran = t
        .args(&[
            "exec",
            "x",
            "--operator",
            &format!("eve{CLIPBOARD}"),
            "--incident",
            &format!("INC{CLEAR}{C1_CSI}"),
        ])
        .stdin(&format!("done fixed{RETITLE}\n"))
        .status(1)
        .run();
    let err = ran.stderr();
    assert!(!raw_escape(&err), "stderr obeys escapes: {err:?}");
    assert!(
        err.contains("incident INC\\u{1b}[2J\\u{1b}[H\\u{9b}2J"),
        "{err}"
    );
    assert!(err.contains("The value: v\\u{1b}]0;owned\\u{7}"), "{err}");
    assert!(err.contains("(note: fixed\\u{1b}]0;owned\\u{7})"), "{err}");
    // Step output is the step's own bytes, passed through as they came.
    assert!(
        ran.stdout().contains("v\u{1b}]0;owned\u{7}"),
        "{:?}",
        ran.stdout()
    );

    for args in [
        &["log", "show", "latest"][..],
        &["log", "list"][..],
        &["report", "latest"][..],
        &["report", "latest", "--format", "html"][..],
        &["stats"][..],
    ] {
        let ran = Test::new().in_dir(&dir).args(args).run();
        let out = ran.stdout();
        assert!(!raw_escape(&out), "{args:?} obeys escapes: {out:?}");
        if args[0] == "log" {
            assert!(out.contains("eve\\u{1b}]52;c;cm0gLXJmIC8K\\u{7}"), "{out}");
        }
    }
    let shown = Test::new()
        .in_dir(&dir)
        .args(&["log", "show", "latest"])
        .run()
        .stdout();
    assert!(
        shown.contains("note: fixed\\u{1b}]0;owned\\u{7}"),
        "{shown}"
    );

    // JSON stays JSON, with nothing raw in it either.
    for args in [
        &["log", "list", "--json"][..],
        &["report", "latest", "--format", "json"][..],
    ] {
        let ran = Test::new().in_dir(&dir).args(args).run();
        let out = ran.stdout();
        assert!(!raw_escape(&out), "{args:?}: {out:?}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(v.to_string().contains("INC\\u001b[2J"), "{v}");
    }
}

#[test]
fn a_log_written_by_someone_else_is_shown_not_obeyed() {
    // A log edited by hand (or by a hostile tool): every text field carries escapes.
    let evil = format!("{CLEAR}{RETITLE}{C1_CSI}");
    let lines = [
        serde_json::json!({"ts": "2026-11-26T03:00:00.000Z", "event": "run_started", "schema_version": 1,
            "run_id": "20261126T030000000Z-abcdef", "runbook": format!("rb{evil}"), "runbook_path": "/x",
            "runbook_sha256": "0", "title": format!("T{evil}"), "mode": "live", "params": {},
            "operator": format!("op{evil}"), "host": format!("h{evil}"), "incident": null,
            "detected_at": null, "version": "0", "log_path": "/x"}),
        serde_json::json!({"ts": "2026-11-26T03:00:01.000Z", "event": "step_started", "step": "a",
            "kind": "auto", "attempt": 1, "command": format!("echo {evil}"), "phase": "run"}),
        serde_json::json!({"ts": "2026-11-26T03:00:01.500Z", "event": "step_output", "step": "a",
            "stream": "stdout", "text": format!("out{evil}\n"), "phase": "run"}),
        serde_json::json!({"ts": "2026-11-26T03:00:02.000Z", "event": "step_finished", "step": "a",
            "kind": "auto", "status": "failed", "duration_ms": 1000, "attempts": 1, "exit_code": 1,
            "phase": "run", "note": format!("n{evil}"), "reason": format!("r{evil}")}),
        serde_json::json!({"ts": "2026-11-26T03:00:03.000Z", "event": "run_finished",
            "status": "failed", "duration_ms": 3000, "reason": format!("why{evil}")}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let t = Test::new().file("logs/20261126T030000000Z-abcdef.jsonl", text.as_bytes());
    let dir = t.path().to_path_buf();
    for args in [
        &["log", "show", "latest"][..],
        &["log", "list"][..],
        &["report", "latest"][..],
        &["stats"][..],
    ] {
        let ran = Test::new().in_dir(&dir).args(args).run();
        let out = ran.stdout();
        assert!(!raw_escape(&out), "{args:?} obeys escapes: {out:?}");
        assert!(out.contains("\\u{1b}[2J"), "{args:?}: {out}");
    }
}
