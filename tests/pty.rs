//! `runbook exec` in a real pseudo-terminal (expectrl): the prompts are driven with key
//! presses as an operator would, and the run is judged by its exit status, what reached
//! the terminal (as text, and as a terminal would show it: vt100) and its JSONL log.

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
/// The terminal's size in the tests: wide enough for a status line, tall enough that
/// nothing scrolls away from [`Pty::screen`].
const COLS: u16 = 100;
const ROWS: u16 = 200;

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
        Self::start_with(runbook, &[])
    }

    /// [`Pty::start`] with more arguments after `exec x`.
    fn start_with(runbook: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let runbooks = dir.path().join("runbooks");
        std::fs::create_dir(&runbooks).unwrap_or_else(|e| panic!("mkdir: {e}"));
        // Runbook text may name files in the temporary directory as `TMP`.
        let text = runbook.replace("TMP", &dir.path().display().to_string());
        std::fs::write(runbooks.join("x.toml"), text).unwrap_or_else(|e| panic!("write: {e}"));
        // The terminal's size is set before runbook starts (set after the spawn, it could
        // come too late for a run that prints at once).
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "stty cols {COLS} rows {ROWS} && exec \"$0\" \"$@\""
            ))
            .arg(BIN)
            .arg("--dir")
            .arg(&runbooks)
            .arg("--log-dir")
            .arg(dir.path().join("logs"))
            .args(["exec", "x"])
            .args(args)
            .current_dir(dir.path())
            .env_remove("RUNBOOK_DIR")
            .env_remove("RUNBOOK_LOG_DIR")
            .env("HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("NO_COLOR", "1")
            .env("TERM", "xterm");
        let mut session = Session::spawn(cmd).unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
        let _ = session.get_process_mut().set_window_size(COLS, ROWS);
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

    /// Waits for the question that follows `header` and its menu, then presses `keys`.
    fn answer(&mut self, header: &str, keys: &str) {
        self.expect(header);
        self.expect("❯ ");
        self.send(keys);
    }

    /// Waits for the question that follows `header`, then moves `down` items down with the
    /// arrow key and presses Enter.
    fn choose(&mut self, header: &str, down: usize) {
        self.answer(header, "");
        for _ in 0..down {
            self.send(DOWN);
        }
        self.send(ENTER);
    }

    /// Adds a note with `n` at the menu of the question on screen.
    fn note(&mut self, text: &str) {
        self.expect("n adds a note");
        self.send("n");
        self.expect("note: ");
        self.send(text);
        self.send(ENTER);
        self.expect("(n changes it)");
    }

    /// Waits for the line prompt `prompt`, types `text` and presses Enter.
    fn type_line(&mut self, prompt: &str, text: &str) {
        self.expect(prompt);
        self.send(text);
        self.send(ENTER);
    }

    /// The terminal as a person sees it at the end: every byte so far through a vt100
    /// emulator, its rows trimmed.
    fn screen(&self) -> String {
        let size = |n: u16| std::num::NonZeroU16::new(n).unwrap();
        let mut parser = vt100::Parser::new(size(ROWS), size(COLS), 0);
        parser.process(&self.screen);
        let rows: Vec<String> = parser
            .screen()
            .rows(0, COLS)
            .map(|r| r.trim_end().to_string())
            .collect();
        rows.join("\n").trim_end().to_string()
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
    pty.answer("manual step fence: Fence the old primary", "");
    pty.note("powered off by hand");
    pty.send("d");
    pty.expect("✔ done (note: powered off by hand)");
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
    pty.answer("manual step fence: fence", "s");
    pty.expect("skipping leaves `who` unset, and announce will fail without it");
    pty.type_line(
        "type it to record the step done; Enter on nothing skips",
        "Ada",
    );
    pty.expect("fenced by Ada");
    let code = pty.finish();
    assert_eq!(code, 0, "--- screen:\n{}", pty.text());
    let log = pty.log();
    let fence = finished(&log, "fence");
    assert_eq!(fence["status"], "succeeded", "{fence}");
    assert_eq!(fence["value"], "Ada", "{fence}");

    // Skip, and leave it empty: skipped, and the run says at once what that means.
    let mut pty = Pty::start(&text);
    pty.answer("manual step fence: fence", "s");
    pty.type_line(
        "type it to record the step done; Enter on nothing skips",
        "",
    );
    // (The warning wraps at the terminal's width.)
    pty.expect("`who` is not set: step fence was skipped. One step needs it");
    pty.expect("announce (the run stops there)");
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
    // Two interactions: the key, then the value.
    pty.answer("manual step fence: fence", "d");
    pty.type_line("who: ", "Ada Lovelace");
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
    pty.answer("confirm step promote: Promote the replica", "");
    pty.note("not needed");
    // The arrows and Enter work as well as the keys.
    pty.send(DOWN);
    pty.send(ENTER);
    pty.expect("✔ skip (note: not needed)");
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
    pty.answer("confirm step promote: Promote the replica", "");
    pty.note("wrong replica");
    pty.send("a");
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
run = "echo $$ > TMP/pid; echo sleeping \"now\"; exec sleep 30"

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
    // On a terminal, Ctrl-C asks first; the step runs on meanwhile.
    pty.answer("Ctrl-C: stop here", "");
    assert!(
        matches!(proc_state(pid), Some(s) if s != 'Z'),
        "the step runs on while the question is asked"
    );
    pty.send("s");
    let code = pty.finish();
    let took = pressed.elapsed();
    let screen = pty.text();
    assert_eq!(code, 130, "exit status\n--- screen:\n{screen}");
    // Nothing of the live display is left behind: no spinner, no status line.
    let seen = pty.screen();
    assert!(
        !seen.contains(|c| ('\u{2801}'..='\u{28ff}').contains(&c)) && !seen.contains("· "),
        "a stale spinner or status line:\n{seen}"
    );
    assert!(
        seen.contains("sleeping now\n") && seen.ends_with(".jsonl"),
        "{seen}"
    );
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
    pty.answer("step flaky (Flaky check) failed with exit code 3", "r");
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
    pty.answer("confirm step promote: promote", "a");
    pty.choose("roll back step drain: Drain traffic", 0);
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
    pty.expect("a abort");
    wait_for_log(&pty, "bg's step_finished", |log| {
        !events(log, "step_finished", Some("bg")).is_empty()
    });
    // The display writes right after the log; give a loaded machine time to do so (an
    // absence cannot be expected).
    std::thread::sleep(Duration::from_millis(500));
    pty.send(ENTER);
    let code = pty.finish();
    let raw = String::from_utf8_lossy(&pty.screen).into_owned();
    assert_eq!(code, 0, "exit status\n--- screen:\n{}", pty.text());
    let answered = raw.find("✔ done").unwrap_or(usize::MAX);
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
    pty.expect("a abort");
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

/// Required params left out are asked for on a terminal, each with its description and
/// pattern, a wrong value asked again, rather than failing once per param.
#[test]
fn missing_params_are_asked_for_on_a_terminal() {
    let mut pty = Pty::start(
        r#"[runbook]
title = "Roll back"

[params.namespace]
description = "Kubernetes namespace"
required = true

[params.deployment]
description = "Deployment to roll back"
required = true
pattern = "^[a-z0-9-]+$"

[[step]]
id = "undo"
run = "echo rolling back {{namespace}}/{{deployment}}"
"#,
    );
    pty.expect("x needs 2 params that were not given");
    pty.expect("namespace: Kubernetes namespace");
    pty.type_line("namespace", "prod");
    pty.expect("deployment: Deployment to roll back; must match ^[a-z0-9-]+$");
    pty.type_line("deployment", "Bad Name");
    pty.expect("does not match");
    // dialoguer keeps what was typed: clear it, then type a good one.
    pty.send(&"\x7f".repeat(8));
    pty.send("web");
    pty.send(ENTER);
    pty.expect("rolling back prod/web");
    let code = pty.finish();
    assert_eq!(code, 0, "--- screen:\n{}", pty.text());
    let log = pty.log();
    let started = events(&log, "run_started", None);
    assert_eq!(started[0]["params"]["deployment"], "web", "{log:#?}");
}

/// The live screen: each command as it starts, the spinner's attempt and time against its
/// timeout, the line a step is still writing (shown before it ends), and the status line
/// with the incident clock, what runs and the next deadline.
#[test]
fn the_live_screen_shows_commands_attempts_partial_lines_and_the_status_line() {
    let mut pty = Pty::start_with(
        r#"[runbook]
title = "Wait"
timeout = "10m"

[[step]]
id = "wait"
run = "printf 'waiting for replica...'; sleep 3; echo ' ok'"
timeout = "30s"
retries = 2
"#,
        &["--detected-at", "10m ago"],
    );
    pty.expect("$ printf 'waiting for replica...'; sleep 3; echo ' ok'");
    let started = Instant::now();
    pty.expect("│ waiting for replica...");
    let shown = started.elapsed();
    assert!(
        shown < Duration::from_millis(2500),
        "the unfinished line is shown while the step sleeps ({shown:?})"
    );
    pty.expect("wait  attempt 1 of 3, ");
    pty.expect("s of 30s");
    pty.expect("incident 10m ");
    pty.expect("running wait ");
    pty.expect("wait times out in ");
    let code = pty.finish();
    assert_eq!(code, 0, "--- screen:\n{}", pty.text());
    let seen = pty.screen();
    assert!(seen.contains("\nwaiting for replica... ok\n"), "{seen}");
}

#[test]
fn a_retry_shows_its_attempt_on_the_spinner() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "flaky"
run = "test -e TMP/m || { touch TMP/m; exit 1; }; sleep 2"
retries = 2
retry_delay = "100ms"
timeout = "20s"
"#,
    ));
    pty.expect("flaky  attempt 2 of 3, ");
    pty.expect(" of 20s");
    let code = pty.finish();
    assert_eq!(code, 0, "--- screen:\n{}", pty.text());
    let seen = pty.screen();
    assert!(
        seen.contains("  -> flaky: attempt 2 of 3 (timeout 20s)"),
        "{seen}"
    );
    assert_eq!(
        seen.matches("$ test -e").count(),
        1,
        "the command once: {seen}"
    );
}

/// While a question is on screen, output of other steps waits, but is counted on the
/// prompt's status line, and a failure elsewhere is printed above the prompt at once.
#[test]
fn a_prompt_counts_the_output_it_holds_and_shows_a_failure_at_once() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "fence"
title = "Fence the old primary"
manual = "Do it."
needs = []

[[step]]
id = "bg"
run = "for i in 1 2 3; do echo line $i; sleep 0.3; done; echo broken >&2; exit 4"
needs = []
"#,
    ));
    pty.answer("manual step fence: Fence the old primary", "");
    pty.expect("lines of output held");
    pty.expect("FAILED bg");
    pty.expect("while you were at the prompt for fence");
    // The prompt is drawn again below what was printed, and still answers.
    pty.expect("❯ d done");
    pty.send("d");
    let code = pty.finish();
    assert_eq!(code, 1, "--- screen:\n{}", pty.text());
    let seen = pty.screen();
    let failed = seen.find("FAILED bg").unwrap_or(usize::MAX);
    let answered = seen.find("✔ done").unwrap_or(0);
    assert!(
        failed < answered,
        "the failure is above the answer:\n{seen}"
    );
    let held = seen.find("line 3").unwrap_or(0);
    assert!(
        held > answered,
        "the held output follows the answer:\n{seen}"
    );
}

#[test]
fn ctrl_c_then_carry_on_lets_the_run_go_on() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "slow"
run = "echo step-$((40 + 2))-up; sleep 2; echo \"finished\""
"#,
    ));
    // The step's own output, which its command line (shown as it starts) does not hold:
    // Ctrl-C comes once the step runs, not while it is being spawned.
    pty.expect("step-42-up");
    pty.send(CTRL_C);
    pty.answer("Ctrl-C: stop here", "c");
    pty.expect("carrying on");
    pty.expect("finished");
    let code = pty.finish();
    assert_eq!(code, 0, "--- screen:\n{}", pty.text());
    let log = pty.log();
    let closed = events(&log, "prompt_closed", None);
    assert_eq!(closed.len(), 1, "{log:#?}");
    assert_eq!(closed[0]["prompt"], "interrupt");
    assert_eq!(closed[0]["answer"], "carry_on");
    assert!(closed[0].get("step").is_none(), "{log:#?}");
    assert_eq!(finished(&log, "slow")["status"], "succeeded");
    assert_eq!(run_status(&log), "succeeded");
}

#[test]
fn ctrl_c_then_roll_back_undoes_the_completed_steps() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "drain"
run = "echo drained"
rollback = "touch TMP/undone"

[[step]]
id = "long"
run = "echo long \"running\"; sleep 30"
"#,
    ));
    pty.expect("long running");
    pty.send(CTRL_C);
    pty.answer(
        "completed steps that can be rolled back, newest first: drain",
        "r",
    );
    let code = pty.finish();
    assert_eq!(code, 1, "--- screen:\n{}", pty.text());
    assert!(pty.path().join("undone").exists(), "{}", pty.text());
    let log = pty.log();
    assert_eq!(run_status(&log), "aborted");
    assert_eq!(finished(&log, "long")["status"], "aborted");
    let rollback: Vec<&Value> = events(&log, "step_finished", Some("drain"))
        .into_iter()
        .filter(|e| e["phase"] == "rollback")
        .collect();
    assert_eq!(rollback.len(), 1, "{log:#?}");
    assert_eq!(rollback[0]["status"], "succeeded");
}

#[test]
fn a_second_ctrl_c_stops_at_once() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "stubborn"
run = "trap '' TERM; echo $$ > TMP/pid; echo ignoring \"TERM\"; sleep 30"
"#,
    ));
    pty.expect("ignoring TERM");
    pty.send(CTRL_C);
    pty.answer("Ctrl-C: stop here", "");
    let pressed = Instant::now();
    pty.send(CTRL_C);
    let code = pty.finish();
    let took = pressed.elapsed();
    assert_eq!(code, 130, "--- screen:\n{}", pty.text());
    assert!(
        took < Duration::from_millis(2500),
        "killed at once, not after TERM's grace: {took:?}"
    );
    let log = pty.log();
    assert_eq!(run_status(&log), "interrupted");
    assert_eq!(finished(&log, "stubborn")["status"], "aborted");
}

/// Ctrl-C at a manual step's prompt asks too; carrying on puts the step's question again,
/// and it is the same start of the step.
#[test]
fn ctrl_c_at_a_prompt_and_carry_on_asks_the_question_again() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "fence"
title = "Fence the old primary"
manual = "Power off db-1."
"#,
    ));
    pty.answer("manual step fence: Fence the old primary", CTRL_C);
    pty.answer("Ctrl-C: stop here", "c");
    pty.answer("manual step fence: Fence the old primary", "y");
    let code = pty.finish();
    assert_eq!(code, 0, "--- screen:\n{}", pty.text());
    let log = pty.log();
    assert_eq!(
        events(&log, "step_started", Some("fence")).len(),
        1,
        "{log:#?}"
    );
    assert_eq!(finished(&log, "fence")["answer"], "done");
}

/// A drill with --yes reads out every manual step's instructions, wrapped to the terminal
/// with their indentation.
#[test]
fn a_rehearsal_with_yes_shows_the_instructions_wrapped() {
    let mut pty = Pty::start_with(
        r#"[runbook]
title = "Drill"

[[step]]
id = "fence"
manual = """
Power off the old primary from the console of the hosting provider, then check from every application host that it no longer answers on port 5432.
"""
"#,
        &["--dry-run", "--yes"],
    );
    pty.expect("manual step fence:");
    let code = pty.finish();
    assert_eq!(code, 0, "--- screen:\n{}", pty.text());
    let seen = pty.screen();
    assert!(
        seen.contains("\n    Power off the old primary from the console of the hosting provider, then check from every\n    application host that it no longer answers on port 5432."),
        "{seen}"
    );
    assert!(seen.contains("rehearsal finished in "), "{seen}");
}

/// A step that ends in the middle of a line while a prompt is up: once the prompt closes,
/// its held output is shown with the line ended, and its end on a line of its own.
#[test]
fn an_unfinished_line_held_during_a_prompt_is_ended_after_it() {
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "fence"
manual = "Do it."
needs = []

[[step]]
id = "bg"
run = "sleep 0.3; printf 'half a line'"
needs = []
"#,
    ));
    pty.answer("manual step fence: fence", "");
    wait_for_log(&pty, "bg's step_finished", |log| {
        !events(log, "step_finished", Some("bg")).is_empty()
    });
    pty.send("d");
    let code = pty.finish();
    assert_eq!(code, 0, "--- screen:\n{}", pty.text());
    let seen = pty.screen();
    assert!(seen.contains("\nhalf a line\n  ok bg in "), "{seen}");
}

#[test]
fn a_large_stream_reaches_the_terminal_whole_with_its_spinner_cleared() {
    // 2.6 MB: most of it is read on the stdout's own thread, and shown from there.
    let mut pty = Pty::start(&runbook_with(
        r#"
[[step]]
id = "loud"
run = "seq 1 400000; printf 'waiting...'; sleep 0.5; echo done"
"#,
    ));
    pty.expect("waiting...");
    let code = pty.finish();
    let screen = pty.text();
    assert_eq!(
        code,
        0,
        "exit status\n--- tail:\n{}",
        &screen[screen.len() - 500..]
    );
    // Every line, in order. In this text, a line drawn right after a redraw of the spinner
    // follows it on the same line (on the terminal, it replaces it): its last word counts.
    let numbers: Vec<u32> = screen
        .lines()
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect();
    assert!(
        numbers.iter().copied().eq(1..=400_000),
        "lines lost or out of order"
    );
    let seen = pty.screen();
    assert!(
        !seen.contains(|c| ('\u{2801}'..='\u{28ff}').contains(&c)) && !seen.contains("· "),
        "a stale spinner or status line:\n{seen}"
    );
    assert!(seen.contains("waiting...done\n"), "{seen}");
    assert_eq!(finished(&pty.log(), "loud")["status"], "succeeded");
}
