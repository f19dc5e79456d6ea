//! `runbook check`: exit codes, the summary line, the shipped runbooks, and hostile files
//! that must get a clear error and exit 2, never a panic or a hang.

use crate::test::{Test, runbook_with, shipped};

const OK_STEP: &str = "[[step]]\nid = \"a\"\nrun = \"true\"\n";

#[test]
fn shipped_runbooks_are_valid() {
    let dir = shipped();
    let dir = dir.to_string_lossy();
    let out = Test::new()
        .args(&["--dir", &dir, "check"])
        .stdout_has("ok: ")
        .run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The demo and db-failover must be among them, and at least four real runbooks besides.
    for name in ["demo", "db-failover"] {
        assert!(
            shipped().join(format!("{name}.toml")).is_file(),
            "{name}.toml is missing"
        );
    }
    let count: usize = stdout
        .trim_start_matches("ok: ")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        count >= 5,
        "expected at least five shipped runbooks: {stdout}"
    );
}

#[test]
fn no_argument_checks_every_runbook_in_the_directory() {
    Test::new()
        .runbook("one", &runbook_with(OK_STEP))
        .runbook("two", &runbook_with(OK_STEP))
        .file("runbooks/notes.md", b"not a runbook")
        .args(&["check"])
        .stdout("ok: 2 runbooks valid (2 steps)\n")
        .stderr("")
        .run();
}

#[test]
fn one_invalid_runbook_makes_the_whole_check_fail() {
    Test::new()
        .runbook("good", &runbook_with(OK_STEP))
        .runbook("bad", &runbook_with("[[step]]\nid = \"a\"\n"))
        .args(&["check"])
        .status(2)
        .stdout("failed: 1 of 2 runbooks invalid, 1 error\n")
        .stderr_has("runbooks/bad.toml:5:6: error: step `a` has neither `run` nor `manual`")
        .run();
}

#[test]
fn check_takes_names_and_paths() {
    let t = Test::new()
        .runbook("good", &runbook_with(OK_STEP))
        .file("elsewhere/other.toml", runbook_with(OK_STEP).as_bytes());
    t.args(&["check", "good", "elsewhere/other.toml"])
        .stdout("ok: 2 runbooks valid (2 steps)\n")
        .run();
}

#[test]
fn an_unknown_runbook_is_bad_input_with_a_suggestion() {
    Test::new()
        .runbook("db-failover", &runbook_with(OK_STEP))
        .args(&["check", "db-failvoer"])
        .status(2)
        .stderr("error: no runbook named `db-failvoer` in runbooks (did you mean `db-failover`?)\n")
        .stdout("failed: 1 of 1 runbook invalid, 1 error\n")
        .run();
}

#[test]
fn names_never_escape_the_runbooks_directory() {
    let t = Test::new().file("secret.toml", runbook_with(OK_STEP).as_bytes());
    for name in ["../secret", "/etc/passwd", "a/../../secret", "..", "UPPER"] {
        Test::new()
            .args(&[
                "--dir",
                &t.path().join("runbooks").to_string_lossy(),
                "show",
                name,
            ])
            .status(2)
            .stderr_has(&format!("error: `{name}` is not a runbook name"))
            .run();
    }
}

#[test]
fn an_empty_directory_is_an_error() {
    Test::new()
        .args(&["check"])
        .status(2)
        .stderr("error: no runbooks (*.toml) in runbooks\n")
        .run();
}

#[test]
fn a_missing_directory_is_an_error() {
    Test::new()
        .args(&["--dir", "nowhere", "check"])
        .status(2)
        .stderr_has("error: the runbooks directory /")
        .stderr_has("/nowhere does not exist; name the directory with --dir DIR or RUNBOOK_DIR=DIR")
        .run();
}

#[test]
fn not_utf8_is_reported_at_the_first_bad_byte() {
    Test::new()
        .file("runbooks/latin1.toml", b"[runbook]\ntitle = \"Caf\xe9\"\n")
        .args(&["check", "latin1"])
        .status(2)
        .stderr_has("runbooks/latin1.toml:2:13: error: the file is not valid UTF-8 text")
        .run();
}

#[test]
fn random_bytes_get_a_clear_error() {
    // A fixed pseudo-random stream (xorshift), so the test is repeatable.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    Test::new()
        .file("runbooks/noise.toml", &bytes)
        .args(&["check", "noise"])
        .status(2)
        .stderr_has("runbooks/noise.toml:1:")
        .stderr_has("error:")
        .run();
}

#[test]
fn deeply_nested_toml_is_refused() {
    let text = format!(
        "[runbook]\ntitle = \"x\"\na = {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    Test::new()
        .runbook("deep", &text)
        .args(&["check", "deep"])
        .status(2)
        .stderr_has("error: TOML syntax: cannot recurse further")
        .run();
}

#[test]
fn deeply_nested_templates_are_refused() {
    let blocks = format!(
        "{}x{}",
        "{{#if a}}".repeat(10_000),
        "{{/if}}".repeat(10_000)
    );
    let parens = format!("{{{{{}a{}}}}}", "(not ".repeat(10_000), ")".repeat(10_000));
    for run in [blocks, parens] {
        let text = runbook_with(&format!(
            "[params.a]\ndefault = \"1\"\n\n[[step]]\nid = \"a\"\nrun = \"{run}\"\n"
        ));
        Test::new()
            .runbook("deep", &text)
            .args(&["check", "deep"])
            .status(2)
            .stderr_has("error: template nests deeper than 32 levels")
            .run();
    }
}

#[test]
fn huge_files_are_refused_before_parsing() {
    let mut text = runbook_with(OK_STEP);
    text.push_str(&format!("# {}\n", "x".repeat(9 * 1024 * 1024)));
    Test::new()
        .runbook("huge", &text)
        .args(&["check", "huge"])
        .status(2)
        .stderr_has("runbooks are limited to 8388608 bytes")
        .run();
}

#[test]
fn a_twenty_thousand_step_chain_is_valid() {
    let mut text = String::from("[runbook]\ntitle = \"Chain\"\n");
    for i in 0..20_000 {
        text.push_str(&format!("[[step]]\nid = \"s{i}\"\nrun = \"true\"\n"));
    }
    Test::new()
        .runbook("chain", &text)
        .args(&["check", "chain"])
        .stdout("ok: 1 runbook valid (20000 steps)\n")
        .run();
}

#[test]
fn colour_only_on_a_terminal() {
    // stderr is a pipe here, so no escape codes, whatever NO_COLOR says.
    let out = Test::new()
        .runbook("bad", &runbook_with("[[step]]\nid = \"a\"\n"))
        .args(&["check", "bad"])
        .status(2)
        .run();
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\x1b'));
}

#[test]
fn more_than_fifty_thousand_steps_is_refused() {
    let mut text = String::from("[runbook]\ntitle = \"Chain\"\n");
    for i in 0..50_001 {
        text.push_str(&format!("[[step]]\nid = \"s{i}\"\nrun = \"true\"\n"));
    }
    Test::new()
        .runbook("chain", &text)
        .args(&["check", "chain"])
        .status(2)
        .stderr_has("runbooks/chain.toml:150003:1: error: the runbook has 50001 steps; at most 50000 are accepted")
        .run();
}

#[test]
fn thousands_of_errors_are_counted_and_the_first_hundred_shown() {
    // Every step names a missing dependency: each gets an error, the output stays bounded.
    let mut text = String::from("[runbook]\ntitle = \"Bad\"\n");
    for i in 0..5_000 {
        text.push_str(&format!(
            "[[step]]\nid = \"s{i}\"\nrun = \"true\"\nneeds = [\"missing{i}\"]\n"
        ));
    }
    let ran = Test::new()
        .runbook("bad", &text)
        .args(&["check", "bad"])
        .status(2)
        .stdout("failed: 1 of 1 runbook invalid, 5000 errors\n")
        .stderr_has("runbooks/bad.toml: ... and 4900 more errors not shown\n")
        .run();
    assert_eq!(ran.stderr().matches(": error: ").count(), 100);
}

#[test]
fn many_cycles_are_reported_up_to_ten() {
    let mut text = String::from("[runbook]\ntitle = \"Loops\"\n");
    for i in 0..100 {
        text.push_str(&format!(
            "[[step]]\nid = \"a{i}\"\nrun = \"true\"\nneeds = [\"b{i}\"]\n[[step]]\nid = \"b{i}\"\nrun = \"true\"\nneeds = [\"a{i}\"]\n"
        ));
    }
    let ran = Test::new()
        .runbook("loops", &text)
        .args(&["check", "loops"])
        .status(2)
        .run();
    assert_eq!(
        ran.stderr().matches("error: dependency cycle: ").count(),
        10
    );
}
