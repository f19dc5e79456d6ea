//! `runbook exec` in a real pseudo-terminal (expectrl): the dialoguer prompts are driven
//! with key presses as an operator would, and the run is judged by its exit status, what
//! reached the terminal and its JSONL log.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use expectrl::{Eof, Session, WaitStatus};
use serde_json::Value;

use crate::test::{BIN, runbook_with};

/// How long any one thing may take to appear on the terminal.
const TIMEOUT: Duration = Duration::from_secs(10);

const ENTER: &str = "\r";
const DOWN: &str = "\x1b[B";
const CTRL_C: &str = "\x03";

/// One `runbook exec x` in a pseudo-terminal, with everything it printed so far.
struct Pty {
    dir: tempfile::TempDir,
    session: Session,
    /// The raw bytes read from the terminal so far.
    screen: Vec<u8>,
}

impl Pty {
    /// Writes `runbooks/x.toml` into a fresh directory and starts
    /// `runbook --dir .../runbooks --log-dir .../logs exec x` in a pseudo-terminal.
    fn start(runbook: &str) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let runbooks = dir.path().join("runbooks");
        std::fs::create_dir(&runbooks).unwrap_or_else(|e| panic!("mkdir: {e}"));
        // Runbook text may name files in the temporary directory as `TMP`.
        let text = runbook.replace("TMP", &dir.path().display().to_string());
        std::fs::write(runbooks.join("x.toml"), text).unwrap_or_else(|e| panic!("write: {e}"));
        let mut cmd = Command::new(BIN);
        cmd.arg("--dir")
            .arg(&runbooks)
            .arg("--log-dir")
            .arg(dir.path().join("logs"))
            .args(["exec", "x"])
            .current_dir(dir.path())
            .env_remove("RUNBOOK_DIR")
            .env_remove("RUNBOOK_LOG_DIR")
            .env("HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("NO_COLOR", "1")
            .env("TERM", "xterm");
        let mut session = Session::spawn(cmd).unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
        session.set_expect_timeout(Some(TIMEOUT));
        Pty {
            dir,
            session,
            screen: Vec::new(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// What the terminal showed so far, without escape sequences and carriage returns.
    fn text(&self) -> String {
        plain(&self.screen)
    }

    /// Waits until `what` appears on the terminal.
    fn expect(&mut self, what: &str) {
        match self.session.expect(what) {
            Ok(found) => self.screen.extend_from_slice(found.as_bytes()),
            Err(e) => {
                self.drain();
                panic!(
                    "waiting for {what:?} on the terminal: {e}\n--- screen:\n{}",
                    self.text()
                );
            }
        }
    }

    /// Moves whatever is readable now into `screen`.
    fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.session.try_read(&mut buf) {
                Ok(0) => return,
                Ok(n) => self.screen.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn send(&mut self, keys: &str) {
        self.session
            .send(keys)
            .unwrap_or_else(|e| panic!("send {keys:?}: {e}"));
    }

    /// Waits for the Select prompt that follows `header`, then moves `down` items down
    /// and presses Enter.
    fn choose(&mut self, header: &str, down: usize) {
        self.expect(header);
        self.expect("answer");
        for _ in 0..down {
            self.send(DOWN);
        }
        self.send(ENTER);
    }

    /// Waits for the text prompt `prompt`, types `text` and presses Enter.
    fn type_line(&mut self, prompt: &str, text: &str) {
        self.expect(prompt);
        self.send(text);
        self.send(ENTER);
    }

    /// Reads to the end of the output and returns the exit code.
    fn finish(&mut self) -> i32 {
        match self.session.expect(Eof) {
            Ok(found) => self.screen.extend_from_slice(found.as_bytes()),
            Err(e) => {
                self.drain();
                panic!(
                    "waiting for the run to end: {e}\n--- screen:\n{}",
                    self.text()
                );
            }
        }
        match self.session.get_process().wait() {
            Ok(WaitStatus::Exited(_, code)) => code,
            other => panic!(
                "runbook did not exit normally: {other:?}\n--- screen:\n{}",
                self.text()
            ),
        }
    }

    /// Every line of the one log file in `logs/`.
    fn log(&self) -> Vec<Value> {
        let logs = self.path().join("logs");
        let files: Vec<PathBuf> = std::fs::read_dir(&logs)
            .unwrap_or_else(|e| panic!("read {}: {e}", logs.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        assert_eq!(
            files.len(),
            1,
            "one log file in {}: {files:?}",
            logs.display()
        );
        let text = std::fs::read_to_string(&files[0])
            .unwrap_or_else(|e| panic!("read {}: {e}", files[0].display()));
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
            .collect()
    }
}

/// Terminal output as text: CSI and OSC escape sequences and carriage returns removed.
fn plain(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let re = regex::Regex::new(
        r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]",
    )
    .unwrap_or_else(|e| panic!("regex: {e}"));
    re.replace_all(&text, "").replace('\r', "")
}

/// The events of `log` named `event` (and for `step`, if given).
fn events<'a>(log: &'a [Value], event: &str, step: Option<&str>) -> Vec<&'a Value> {
    log.iter()
        .filter(|e| e["event"] == event)
        .filter(|e| step.is_none_or(|s| e["step"] == s))
        .collect()
}

/// The one `step_finished` of `step` (phase `run`).
fn finished<'a>(log: &'a [Value], step: &str) -> &'a Value {
    let found = events(log, "step_finished", Some(step));
    assert_eq!(found.len(), 1, "one step_finished for {step}: {log:#?}");
    found[0]
}

fn run_status(log: &[Value]) -> &str {
    let found = events(log, "run_finished", None);
    assert_eq!(found.len(), 1, "one run_finished: {log:#?}");
    found[0]["status"].as_str().unwrap_or_default()
}

fn operator(log: &[Value]) -> String {
    let started = events(log, "run_started", None);
    assert_eq!(started.len(), 1, "one run_started: {log:#?}");
    started[0]["operator"]
        .as_str()
        .unwrap_or_else(|| panic!("run_started has no operator: {log:#?}"))
        .to_string()
}

#[test]
fn a_manual_step_is_answered_done_with_a_note() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "fence"
title = "Fence the old primary"
manual = """
Power off db-1 from the console.
Check it no longer answers.
"""
"#,
    ));
    pty.choose("manual step fence: Fence the old primary", 0);
    pty.type_line("note (optional)", "powered off by hand");
    let code = pty.finish();
    let screen = pty.text();
    assert_eq!(code, 0, "exit status\n--- screen:\n{screen}");
    assert!(
        screen.contains("    Power off db-1 from the console.\n    Check it no longer answers."),
        "the instructions are shown, indented\n--- screen:\n{screen}"
    );
    assert!(
        screen.contains("ok fence") && screen.contains("(note: powered off by hand)"),
        "the finished step is shown with its note\n--- screen:\n{screen}"
    );

    let log = pty.log();
    let op = operator(&log);
    let step = finished(&log, "fence");
    assert_eq!(step["kind"], "manual", "{step}");
    assert_eq!(step["status"], "succeeded", "{step}");
    assert_eq!(step["answer"], "done", "{step}");
    assert_eq!(step["note"], "powered off by hand", "{step}");
    assert_eq!(step["operator"], op.as_str(), "{step}");
    assert!(step["wait_ms"].is_u64(), "wait_ms is a number: {step}");
    assert_eq!(
        events(&log, "step_started", Some("fence")).len(),
        1,
        "{log:#?}"
    );
    assert_eq!(run_status(&log), "succeeded");
}

#[test]
fn skipping_an_ask_offers_to_type_the_value_instead() {
    let text = runbook_with(
        r#"
[[step]]
id = "fence"
manual = "Power off db-1, then say who did it."
ask = "who"

[[step]]
id = "announce"
run = "echo fenced by {{who}}"
"#,
    );
    // Skip, then type the value after all: the step is done with it.
    let mut pty = Pty::start(&text);
    pty.choose("manual step fence: fence", 1);
    pty.expect("skipping leaves `who` unset, and announce will fail without it");
    pty.type_line("who (type it to record the step done; empty skips)", "Ada");
    pty.type_line("note (optional)", "");
    pty.expect("fenced by Ada");
    let code = pty.finish();
    assert_eq!(code, 0, "--- screen:\n{}", pty.text());
    let log = pty.log();
    let fence = finished(&log, "fence");
    assert_eq!(fence["status"], "succeeded", "{fence}");
    assert_eq!(fence["value"], "Ada", "{fence}");

    // Skip, and leave it empty: skipped, and the run says at once what that means.
    let mut pty = Pty::start(&text);
    pty.choose("manual step fence: fence", 1);
    pty.type_line("who (type it to record the step done; empty skips)", "");
    pty.type_line("note (optional)", "");
    pty.expect("`who` is not set: step fence was skipped. One step needs it and will fail when it starts: announce (the run stops there)");
    let code = pty.finish();
    assert_eq!(code, 1, "--- screen:\n{}", pty.text());
    let log = pty.log();
    assert_eq!(finished(&log, "fence")["status"], "skipped");
    assert_eq!(finished(&log, "announce")["status"], "failed");
}

#[test]
fn an_asked_value_is_used_by_a_later_step() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "fence"
manual = "Power off db-1, then say who did it."
ask = "who"

[[step]]
id = "announce"
run = "echo got {{who}}"
"#,
    ));
    pty.choose("manual step fence: fence", 0);
    pty.type_line("who", "Ada Lovelace");
    pty.type_line("note (optional)", "");
    // The value has a space: it reaches the shell as one quoted word.
    pty.expect("got Ada Lovelace");
    let code = pty.finish();
    let screen = pty.text();
    assert_eq!(code, 0, "exit status\n--- screen:\n{screen}");
    assert!(screen.contains("ok announce"), "--- screen:\n{screen}");

    let log = pty.log();
    let fence = finished(&log, "fence");
    assert_eq!(fence["status"], "succeeded", "{fence}");
    assert_eq!(fence["answer"], "done", "{fence}");
    assert_eq!(fence["value"], "Ada Lovelace", "{fence}");
    assert!(
        fence.get("note").is_none(),
        "an empty note is not logged: {fence}"
    );
    let started = events(&log, "step_started", Some("announce"));
    assert_eq!(started.len(), 1, "{log:#?}");
    assert_eq!(started[0]["command"], "echo got 'Ada Lovelace'", "{log:#?}");
    let output: Vec<&str> = events(&log, "step_output", Some("announce"))
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(output.concat().trim_end(), "got Ada Lovelace", "{log:#?}");
    let announce = finished(&log, "announce");
    assert_eq!(announce["status"], "succeeded", "{announce}");
    assert_eq!(announce["exit_code"], 0, "{announce}");
    assert_eq!(run_status(&log), "succeeded");
}

const CONFIRMED: &str = r#"
[[step]]
id = "promote"
title = "Promote the replica"
run = "touch TMP/promoted"
confirm = true

[[step]]
id = "after"
run = "echo after the promotion"
"#;

#[test]
fn a_confirmed_step_can_be_skipped() {
    let mut pty = Pty::start(&runbook_with(CONFIRMED));
    pty.choose("confirm step promote: Promote the replica", 1);
    pty.type_line("note (optional)", "not needed");
    pty.expect("after the promotion");
    let code = pty.finish();
    let screen = pty.text();
    assert_eq!(code, 0, "exit status\n--- screen:\n{screen}");
    assert!(
        screen.contains("    will run: touch "),
        "the command is shown before it is confirmed\n--- screen:\n{screen}"
    );
    assert!(
        !pty.path().join("promoted").exists(),
        "a skipped step does not run\n--- screen:\n{screen}"
    );

    let log = pty.log();
    let promote = finished(&log, "promote");
    assert_eq!(promote["status"], "skipped", "{promote}");
    assert_eq!(promote["answer"], "skip", "{promote}");
    assert_eq!(promote["note"], "not needed", "{promote}");
    assert_eq!(promote["operator"], operator(&log).as_str(), "{promote}");
    assert!(promote["wait_ms"].is_u64(), "{promote}");
    assert!(
        events(&log, "step_started", Some("promote")).is_empty(),
        "a skipped step is never started: {log:#?}"
    );
    assert_eq!(finished(&log, "after")["status"], "succeeded", "{log:#?}");
    assert_eq!(run_status(&log), "succeeded");
}

#[test]
fn a_confirmed_step_can_abort_the_run() {
    let mut pty = Pty::start(&runbook_with(CONFIRMED));
    pty.choose("confirm step promote: Promote the replica", 2);
    pty.type_line("note (optional)", "wrong replica");
    let code = pty.finish();
    let screen = pty.text();
    assert_eq!(code, 1, "exit status\n--- screen:\n{screen}");
    assert!(screen.contains("run aborted"), "--- screen:\n{screen}");
    assert!(
        !pty.path().join("promoted").exists(),
        "an aborted step does not run\n--- screen:\n{screen}"
    );

    let log = pty.log();
    let promote = finished(&log, "promote");
    assert_eq!(promote["status"], "aborted", "{promote}");
    assert_eq!(promote["answer"], "abort", "{promote}");
    assert_eq!(promote["note"], "wrong replica", "{promote}");
    assert!(
        events(&log, "step_started", Some("promote")).is_empty(),
        "{log:#?}"
    );
    assert!(
        events(&log, "step_started", Some("after")).is_empty(),
        "nothing starts after an abort: {log:#?}"
    );
    assert_eq!(run_status(&log), "aborted");
}

/// The state letter of `/proc/PID/stat`, or None when there is no such process.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) STATE ...: comm may hold spaces and parentheses, so read after the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Live (not zombie) processes whose process group is `pgid`.
fn live_in_group(pgid: i32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // After comm: state, ppid, pgrp.
            let (state, pgrp) = (fields.first()?, fields.get(2)?.parse::<i32>().ok()?);
            (pgrp == pgid && *state != "Z").then(|| format!("{head}) {state}"))
        })
        .collect()
}

#[test]
fn ctrl_c_interrupts_a_running_step() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "wait"
run = "echo $$ > TMP/pid; echo sleeping now; exec sleep 30"

[[step]]
id = "never"
run = "echo never"
"#,
    ));
    pty.expect("sleeping now");
    let pid: i32 = std::fs::read_to_string(pty.path().join("pid"))
        .unwrap_or_else(|e| panic!("the step wrote no pid: {e}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid: {e}"));
    assert!(
        matches!(proc_state(pid), Some(s) if s != 'Z'),
        "the sleep is running before Ctrl-C"
    );
    let pressed = Instant::now();
    pty.send(CTRL_C);
    let code = pty.finish();
    let took = pressed.elapsed();
    let screen = pty.text();
    assert_eq!(code, 130, "exit status\n--- screen:\n{screen}");
    assert!(
        took < Duration::from_secs(10),
        "Ctrl-C ends the run well before the sleep would ({took:?})\n--- screen:\n{screen}"
    );
    assert!(screen.contains("run interrupted"), "--- screen:\n{screen}");
    assert!(
        matches!(proc_state(pid), None | Some('Z')),
        "the sleep (pid {pid}) is gone: state {:?}",
        proc_state(pid)
    );
    // The step ran in its own process group, led by the shell (which became the sleep).
    let left = live_in_group(pid);
    assert!(left.is_empty(), "processes left in group {pid}: {left:?}");

    let log = pty.log();
    let wait = finished(&log, "wait");
    assert_eq!(wait["status"], "aborted", "{wait}");
    assert!(
        events(&log, "step_started", Some("never")).is_empty(),
        "{log:#?}"
    );
    assert_eq!(run_status(&log), "interrupted");
}

#[test]
fn a_failed_step_is_retried_from_the_prompt() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "flaky"
title = "Flaky check"
run = "test -e TMP/again || { touch TMP/again; echo first try fails; exit 3; }"
on_failure = "prompt"
"#,
    ));
    pty.choose("step flaky (Flaky check) failed with exit code 3", 0);
    pty.type_line("note (optional)", "try once more");
    let code = pty.finish();
    let screen = pty.text();
    assert_eq!(code, 0, "exit status\n--- screen:\n{screen}");
    assert!(screen.contains("first try fails"), "--- screen:\n{screen}");

    let log = pty.log();
    let attempts: Vec<&Value> = events(&log, "step_started", Some("flaky"))
        .iter()
        .map(|e| &e["attempt"])
        .collect();
    assert_eq!(attempts, [1, 2], "{log:#?}");
    let flaky = finished(&log, "flaky");
    assert_eq!(flaky["status"], "succeeded", "{flaky}");
    assert_eq!(flaky["attempts"], 2, "{flaky}");
    assert_eq!(run_status(&log), "succeeded");
}

#[test]
fn an_aborted_run_offers_its_rollbacks() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "drain"
title = "Drain traffic"
run = "echo drained"
rollback = "touch TMP/undone"

[[step]]
id = "promote"
run = "echo promoted"
confirm = true
"#,
    ));
    pty.choose("confirm step promote: promote", 2);
    pty.type_line("note (optional)", "");
    pty.choose("roll back step drain: Drain traffic", 0);
    pty.type_line("note (optional)", "");
    let code = pty.finish();
    let screen = pty.text();
    assert_eq!(code, 1, "exit status\n--- screen:\n{screen}");
    assert!(
        pty.path().join("undone").exists(),
        "the rollback ran\n--- screen:\n{screen}"
    );

    let log = pty.log();
    let runs: Vec<&Value> = events(&log, "step_finished", Some("drain"));
    assert_eq!(runs.len(), 2, "the step and its rollback: {log:#?}");
    assert_eq!(runs[0]["phase"], "run", "{log:#?}");
    assert_eq!(runs[1]["phase"], "rollback", "{log:#?}");
    assert_eq!(runs[1]["status"], "succeeded", "{log:#?}");
    assert_eq!(run_status(&log), "aborted");
}

/// Waits until the log holds a line for which `done` is true.
fn wait_for_log(pty: &Pty, what: &str, done: impl Fn(&[Value]) -> bool) {
    let logs = pty.path().join("logs");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let lines: Vec<Value> = std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect::<Vec<Value>>()
            })
            .collect();
        if done(&lines) {
            return;
        }
        assert!(Instant::now() < deadline, "waiting for {what} in the log");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The status line of a step that finishes while a prompt is on screen must wait for the
/// prompt, as its output does: written under the menu, it breaks dialoguer's redraw (the
/// menu shows `❯ done` twice) and is then erased.
#[test]
fn a_status_line_waits_for_the_prompt_on_screen() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "fence"
manual = "Do it."
needs = []

[[step]]
id = "bg"
run = "sleep 1; echo from bg"
needs = []
"#,
    ));
    pty.expect("  abort");
    wait_for_log(&pty, "bg's step_finished", |log| {
        !events(log, "step_finished", Some("bg")).is_empty()
    });
    // The display writes right after the log; give a loaded machine time to do so (an
    // absence cannot be expected).
    std::thread::sleep(Duration::from_millis(500));
    pty.send(ENTER);
    pty.type_line("note (optional)", "");
    let code = pty.finish();
    let raw = String::from_utf8_lossy(&pty.screen).into_owned();
    assert_eq!(code, 0, "exit status\n--- screen:\n{}", pty.text());
    let answered = raw.find("✔ answer").unwrap_or(usize::MAX);
    let status = raw.find("ok bg").unwrap_or(0);
    assert!(
        status > answered,
        "`ok bg` was written while the menu was on screen:\n{raw:?}"
    );
}

/// SIGTERM while a prompt waits for a key ends the run (130), and must give the
/// operator's terminal back as it found it: cooked mode and a visible cursor.
#[test]
fn sigterm_at_a_prompt_restores_the_terminal() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "fence"
manual = "Do it."
"#,
    ));
    pty.expect("  abort");
    let pid = pty.session.get_process().pid().as_raw();
    let tty = std::fs::read_link(format!("/proc/{pid}/fd/2"))
        .unwrap_or_else(|e| panic!("the terminal of {pid}: {e}"));
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap_or_else(|e| panic!("kill: {e}"));
    assert!(killed.success());
    let code = pty.finish();
    assert_eq!(code, 130, "exit status\n--- screen:\n{}", pty.text());
    assert_eq!(run_status(&pty.log()), "interrupted");
    let stty = Command::new("stty")
        .arg("-F")
        .arg(&tty)
        .arg("-a")
        .output()
        .unwrap_or_else(|e| panic!("stty: {e}"));
    let modes = String::from_utf8_lossy(&stty.stdout);
    let words: Vec<&str> = modes.split_whitespace().collect();
    assert!(
        words.contains(&"icanon") && words.contains(&"isig") && words.contains(&"icrnl"),
        "the terminal is back in cooked mode:\n{modes}"
    );
    let raw = String::from_utf8_lossy(&pty.screen).into_owned();
    assert!(
        raw.rfind("\x1b[?25h") > raw.rfind("\x1b[?25l"),
        "the cursor is shown again:\n{raw:?}"
    );
}
