//! `runbook exec` through the real binary, with answers on stdin (the line protocol of
//! spec §3), checking what a user sees and what the log records (spec §4).

use std::time::{Duration, Instant};

use crate::test::{Test, runbook_with};

fn exec(text: &str) -> Test {
    Test::new().runbook("x", text).args(&["exec", "x"])
}

#[test]
fn automated_steps_run_in_order_and_are_logged() {
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"one\"\nrun = \"echo first\"\n\n[[step]]\nid = \"two\"\nrun = \"echo second; echo oops >&2\"\n",
    ))
    .stdout("first\nsecond\n")
    .stderr_has("oops")
    .run();
    let log = ran.log();
    let names: Vec<&str> = log
        .iter()
        .map(|e| e["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "run_started",
            "step_started",
            "step_spawned",
            "step_output",
            "step_finished",
            "step_started",
            "step_spawned",
            "step_output",
            "step_output",
            "step_finished",
            "run_finished"
        ]
    );
    let started = &log[0];
    assert_eq!(started["schema_version"], 1);
    assert_eq!(started["mode"], "live");
    assert_eq!(started["runbook"], "x");
    assert_eq!(started["runbook_sha256"].as_str().map(str::len), Some(64));
    for key in ["run_id", "runbook_path", "operator", "host", "version"] {
        assert!(started[key].is_string(), "{key} in {started}");
    }
    // Every line has an RFC 3339 UTC timestamp with milliseconds.
    for e in &log {
        let ts = e["ts"].as_str().unwrap_or("");
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(
            ts.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
            "{ts}"
        );
    }
    assert_eq!(log[1]["command"], "echo first");
    assert_eq!(log[1]["kind"], "auto");
    assert_eq!(log[1]["phase"], "run");
    assert_eq!(log[2]["step"], "one");
    assert!(log[2]["pgid"].as_u64().is_some_and(|p| p > 1), "{}", log[2]);
    assert_eq!(log[3]["text"], "first\n");
    assert_eq!(log[4]["status"], "succeeded");
    assert_eq!(log[4]["exit_code"], 0);
    assert_eq!(log[4]["attempts"], 1);
    assert_eq!(log[9]["status"], "succeeded");
    // The run id and the log path are printed at the start and at the end.
    let run_id = started["run_id"].as_str().unwrap_or("?");
    let stderr = ran.stderr();
    let first = stderr.lines().take(3).collect::<Vec<_>>().join("\n");
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        first.contains(run_id) && first.contains(".jsonl"),
        "{stderr}"
    );
    assert!(last.contains(run_id) && last.contains(".jsonl"), "{stderr}");
}

#[test]
fn the_log_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let ran = exec(&runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n")).run();
    let file = &ran.log_files()[0];
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    };
    assert_eq!(mode(file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    assert!(
        file.file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with(".jsonl")
    );
}

#[test]
fn run_ids_sort_by_start_time() {
    let t = Test::new().runbook("x", &runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"));
    let logs = t.path().join("logs");
    let logs = logs.to_string_lossy().to_string();
    let dir = t.path().join("runbooks");
    let dir = dir.to_string_lossy().to_string();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let ran = Test::new()
            .args(&["--dir", &dir, "--log-dir", &logs, "exec", "x"])
            .run();
        let _ = ran;
    }
    for entry in std::fs::read_dir(&logs).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".jsonl") {
            ids.push(name);
        }
    }
    assert_eq!(ids.len(), 3);
    let mut by_name = ids.clone();
    by_name.sort();
    let mut by_time = ids.clone();
    by_time.sort_by_key(|f| {
        let text = std::fs::read_to_string(std::path::Path::new(&logs).join(f)).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        first["ts"].as_str().unwrap().to_string()
    });
    assert_eq!(by_name, by_time);
}

#[test]
fn a_failed_step_aborts_the_run_by_default() {
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"bad\"\nrun = \"exit 3\"\n\n[[step]]\nid = \"after\"\nrun = \"echo never\"\n",
    ))
    .status(1)
    .stderr_has("FAILED bad")
    .stderr_has("run failed")
    .run();
    assert!(!ran.stdout().contains("never"));
    assert_eq!(ran.finished("bad")["exit_code"], 3);
    assert_eq!(ran.finished("bad")["status"], "failed");
    assert!(
        ran.events("step_started")
            .iter()
            .all(|e| e["step"] != "after")
    );
    assert_eq!(ran.events("run_finished")[0]["status"], "failed");
}

#[test]
fn on_failure_continue_records_the_failure_and_goes_on() {
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"bad\"\nrun = \"exit 3\"\non_failure = \"continue\"\n\n[[step]]\nid = \"after\"\nrun = \"echo still here\"\n",
    ))
    .stdout("still here\n")
    .run();
    assert_eq!(ran.finished("bad")["status"], "failed");
    assert_eq!(ran.finished("after")["status"], "succeeded");
    assert_eq!(ran.events("run_finished")[0]["status"], "succeeded");
}

const FLAKY: &str = r#"[[step]]
id = "flaky"
run = "if [ -e marker ]; then echo recovered; else touch marker; exit 1; fi"
on_failure = "prompt"

[[step]]
id = "after"
run = "echo after"
"#;

#[test]
fn on_failure_prompt_retry() {
    let ran = exec(&runbook_with(FLAKY))
        .stdin("retry try again\n")
        .stdout("recovered\nafter\n")
        .run();
    let f = ran.finished("flaky");
    assert_eq!(f["status"], "succeeded");
    assert_eq!(f["attempts"], 2);
    let attempts: Vec<_> = ran
        .events("step_started")
        .iter()
        .filter(|e| e["step"] == "flaky")
        .map(|e| e["attempt"].clone())
        .collect();
    assert_eq!(attempts, [1, 2]);
}

#[test]
fn on_failure_prompt_skip_and_abort() {
    let ran = exec(&runbook_with(FLAKY))
        .stdin("skip known issue\n")
        .stdout("after\n")
        .run();
    let f = ran.finished("flaky");
    assert_eq!(
        (
            f["status"].as_str(),
            f["answer"].as_str(),
            f["note"].as_str()
        ),
        (Some("failed"), Some("skip"), Some("known issue"))
    );

    let ran = exec(&runbook_with(FLAKY)).stdin("abort\n").status(1).run();
    assert_eq!(ran.events("run_finished")[0]["status"], "aborted");
    assert!(!ran.stdout().contains("after"));
}

#[test]
fn on_failure_prompt_without_anyone_to_ask_aborts() {
    let ran = exec(&runbook_with(FLAKY))
        .status(1)
        .stderr_has("end of input at the prompt for step flaky")
        .run();
    assert_eq!(ran.finished("flaky")["status"], "failed");
    assert_eq!(ran.events("run_finished")[0]["status"], "failed");
}

#[test]
fn retries_wait_with_backoff_and_count_attempts() {
    let start = Instant::now();
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"r\"\nrun = \"n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; [ $n -ge 2 ]\"\nretries = 3\nretry_delay = \"200ms\"\nretry_backoff = 2.0\n",
    ))
    .run();
    // Attempts 1 and 2 fail, 3 succeeds: waits of 200ms and 400ms.
    assert!(start.elapsed() >= Duration::from_millis(600));
    let f = ran.finished("r");
    assert_eq!(
        (f["status"].as_str(), f["attempts"].as_u64()),
        (Some("succeeded"), Some(3))
    );
}

#[test]
fn retries_give_up_after_the_last_attempt() {
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"r\"\nrun = \"exit 7\"\nretries = 1\nretry_delay = \"10ms\"\n",
    ))
    .status(1)
    .run();
    let f = ran.finished("r");
    assert_eq!(
        (
            f["status"].as_str(),
            f["attempts"].as_u64(),
            f["exit_code"].as_i64()
        ),
        (Some("failed"), Some(2), Some(7))
    );
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    // The shell starts a grandchild and waits; the timeout must end both.
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"slow\"\nrun = \"sleep 30 & echo $! > pid; wait\"\ntimeout = \"500ms\"\n",
    ))
    .status(1)
    .stderr_has("TIMED OUT slow")
    .run();
    let f = ran.finished("slow");
    assert_eq!(f["status"], "timed_out");
    let pid: i32 = std::fs::read_to_string(ran.tempdir.path().join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ");
    assert!(!alive, "the grandchild {pid} outlived the timeout");
}

const BRANCHES: &str = r#"[[step]]
id = "a"
run = "date +%s.%N > a.start; sleep 0.6; date +%s.%N > a.end"
needs = []

[[step]]
id = "b"
run = "date +%s.%N > b.start; sleep 0.6; date +%s.%N > b.end"
needs = []
"#;

fn read_time(dir: &std::path::Path, f: &str) -> f64 {
    std::fs::read_to_string(dir.join(f))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn parallel_branches_overlap_in_time() {
    let ran = exec(&runbook_with(BRANCHES)).run();
    let d = ran.tempdir.path();
    let (a0, a1, b0, b1) = (
        read_time(d, "a.start"),
        read_time(d, "a.end"),
        read_time(d, "b.start"),
        read_time(d, "b.end"),
    );
    assert!(
        a0 < b1 && b0 < a1,
        "a [{a0}, {a1}] and b [{b0}, {b1}] did not overlap"
    );
}

#[test]
fn parallel_one_runs_one_step_at_a_time() {
    let ran = Test::new()
        .runbook("x", &runbook_with(BRANCHES))
        .args(&["exec", "x", "--parallel", "1"])
        .run();
    let d = ran.tempdir.path();
    assert!(
        read_time(d, "a.end") <= read_time(d, "b.start"),
        "file order first, and not at once"
    );
}

#[test]
fn output_of_parallel_steps_is_prefixed_by_step_id() {
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"a\"\nrun = \"sleep 0.3; echo from-a\"\nneeds = []\n\n[[step]]\nid = \"b\"\nrun = \"sleep 0.3; echo from-b\"\nneeds = []\n",
    ))
    .run();
    let out = ran.stdout();
    assert!(
        out.contains("[a] from-a\n") && out.contains("[b] from-b\n"),
        "{out}"
    );
}

#[test]
fn an_unfinished_line_of_a_parallel_step_never_runs_into_another_steps_line() {
    // `b` shows `waiting...` once it goes quiet; `a`'s line then comes on a line of its
    // own, and the rest of `b`'s line after it, prefixed again.
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"b\"\nrun = \"printf waiting...; sleep 0.6; echo ' done'\"\nneeds = []\n\n\
         [[step]]\nid = \"a\"\nrun = \"sleep 0.3; echo from-a\"\nneeds = []\n",
    ))
    .run();
    assert_eq!(ran.stdout(), "[b] waiting...\n[a] from-a\n[b]  done\n");
    // The log keeps `b`'s output as it came.
    assert_eq!(ran.logged_output(Some("b")), "waiting... done\n");
}

#[test]
fn a_hostile_var_stays_one_word() {
    let text = r#"[runbook]
title = "Quote"

[params.target]
required = true

[[step]]
id = "count"
run = "printf '<%s>\n' {{target}}"
"#;
    let evil = "a b; touch pwned; $(touch pwned2) `touch pwned3` 'q\"";
    let ran = Test::new()
        .runbook("x", text)
        .args(&["exec", "x", "--var", &format!("target={evil}")])
        .run();
    assert_eq!(ran.stdout(), format!("<{evil}>\n"));
    for f in ["pwned", "pwned2", "pwned3"] {
        assert!(!ran.tempdir.path().join(f).exists(), "{f} was created");
    }
}

#[test]
fn safe_values_are_inserted_as_they_are_and_triple_braces_are_raw() {
    let text = "[runbook]\ntitle = \"t\"\n\n[params.host]\ndefault = \"db-2.example.com\"\n\n[params.cmd]\ndefault = \"echo raw\"\n\n[[step]]\nid = \"a\"\nrun = \"echo {{host}}; {{{cmd}}}\"\n";
    let ran = exec(text).stdout("db-2.example.com\nraw\n").run();
    assert_eq!(
        ran.events("step_started")[0]["command"],
        "echo db-2.example.com; echo raw"
    );
}

const SECRET: &str = r#"[runbook]
title = "Secret"

[params.token]
env = "API_TOKEN"
secret = true
required = true

[[step]]
id = "use"
run = "echo token is {{token}}; echo split $(printf s3cr) $(printf 'et-value')"
"#;

#[test]
fn a_secret_never_reaches_the_log_or_the_terminal() {
    let ran = Test::new()
        .runbook("x", SECRET)
        .args(&["exec", "x"])
        .env("API_TOKEN", "s3cr3t-value")
        .run();
    let log = std::fs::read_to_string(&ran.log_files()[0]).unwrap();
    assert!(!log.contains("s3cr3t-value"), "{log}");
    assert!(log.contains("token is ***"), "{log}");
    assert!(log.contains(r#""token":"***""#), "{log}");
    assert!(!ran.stdout().contains("s3cr3t-value") && !ran.stderr().contains("s3cr3t-value"));
    assert!(ran.stdout().contains("token is ***"));
}

#[test]
fn bad_vars_are_refused_before_anything_runs() {
    let text = "[runbook]\ntitle = \"t\"\n\n[params.replica]\nrequired = true\npattern = \"^db-[0-9]+$\"\n\n[[step]]\nid = \"a\"\nrun = \"touch ran\"\n";
    let cases: [(&[&str], &str); 5] = [
        (
            &[],
            "error: param `replica` is required (matching ^db-[0-9]+$); give it with --var replica=VALUE\n",
        ),
        (
            &["--var", "replica=db-x"],
            "error: param `replica` = \"db-x\" does not match its pattern `^db-[0-9]+$`\n",
        ),
        (
            &["--var", "replcia=db-1"],
            "error: --var replcia: runbook `x` has no param `replcia`; did you mean `replica`?\n",
        ),
        (
            &["--var", "replica"],
            "error: --var `replica` is not KEY=VALUE\n",
        ),
        (
            &["--var", "replica=db-1", "--var", "replica=db-2"],
            "error: --var replica is given twice\n",
        ),
    ];
    for (args, err) in cases {
        let mut all = vec!["exec", "x"];
        all.extend_from_slice(args);
        let ran = Test::new()
            .runbook("x", text)
            .args(&all)
            .status(2)
            .stderr(err)
            .run();
        assert!(!ran.tempdir.path().join("ran").exists());
        assert!(ran.log_files().is_empty(), "a refused run wrote a log");
    }
}

#[test]
fn an_invalid_runbook_is_not_run() {
    exec(&runbook_with("[[step]]\nid = \"a\"\nrun = \"{{nope}}\"\n"))
        .status(2)
        .stderr_has("error: unknown variable `nope`")
        .run();
}

const MANUAL: &str = r#"[[step]]
id = "fence"
title = "Fence the primary"
manual = "Power off {{runbook}} from the console."

[[step]]
id = "after"
run = "echo after"
"#;

#[test]
fn a_manual_step_reads_one_line_answer_and_note() {
    let ran = exec(&runbook_with(MANUAL))
        .stdin("done powered off at the PDU\n")
        .stdout("after\n")
        .stderr_has("manual step fence: Fence the primary")
        .stderr_has("Power off x from the console.")
        .args(&["--operator", "alice"])
        .run();
    let f = ran.finished("fence");
    assert_eq!(f["kind"], "manual");
    assert_eq!(f["answer"], "done");
    assert_eq!(f["note"], "powered off at the PDU");
    assert_eq!(f["operator"], "alice");
    assert!(f["wait_ms"].is_u64());
    assert_eq!(ran.log()[0]["operator"], "alice");
}

#[test]
fn short_answers_and_a_wrong_word_then_a_right_one() {
    let ran = exec(&runbook_with(MANUAL))
        .stdin("maybe\ns\n")
        .stdout("after\n")
        .stderr_has("`maybe` is not an answer here; expected one of: done, skip, abort")
        .run();
    assert_eq!(ran.finished("fence")["status"], "skipped");
}

#[test]
fn abort_at_a_manual_step_ends_the_run() {
    let ran = exec(&runbook_with(MANUAL))
        .stdin("a not safe\n")
        .status(1)
        .run();
    assert_eq!(ran.finished("fence")["status"], "aborted");
    assert_eq!(ran.events("run_finished")[0]["status"], "aborted");
    assert!(!ran.stdout().contains("after"));
}

#[test]
fn end_of_input_at_a_prompt_aborts_with_a_clear_message() {
    let ran = exec(&runbook_with(MANUAL))
        .status(1)
        .stderr_has("error: end of input at the prompt for step fence: aborting the run")
        .run();
    assert_eq!(ran.events("run_finished")[0]["status"], "aborted");
}

#[test]
fn ask_takes_the_line_as_its_value_and_numbers_compare_as_numbers() {
    let text = runbook_with(
        r#"[[step]]
id = "measure"
manual = "Read the lag from the dashboard."
ask = "lag"

[[step]]
id = "small"
run = "echo small lag {{lag}}"
when = "{{lt lag 30}}"

[[step]]
id = "large"
run = "echo large lag {{lag}}"
when = "{{gte lag 30}}"
"#,
    );
    let ran = exec(&text).stdin("12\n").stdout("small lag 12\n").run();
    assert_eq!(ran.finished("measure")["value"], "12");
    assert_eq!(ran.finished("large")["status"], "skipped");
    exec(&text).stdin("120\n").stdout("large lag 120\n").run();
}

#[test]
fn a_capture_is_used_by_a_later_step() {
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"get\"\nrun = \"echo '  db-7  '\"\ncapture = \"host\"\n\n[[step]]\nid = \"use\"\nrun = \"echo using {{host}}\"\n",
    ))
    .run();
    assert!(ran.stdout().ends_with("using db-7\n"), "{}", ran.stdout());
}

#[test]
fn confirm_asks_first_and_yes_answers_it() {
    let text =
        runbook_with("[[step]]\nid = \"promote\"\nrun = \"echo promoted\"\nconfirm = true\n");
    let ran = exec(&text)
        .stdin("yes go\n")
        .stdout("promoted\n")
        .stderr_has("confirm step promote")
        .run();
    let f = ran.finished("promote");
    assert_eq!(
        (f["answer"].as_str(), f["note"].as_str()),
        (Some("yes"), Some("go"))
    );
    exec(&text).stdin("skip\n").stdout("").run();
    let ran = Test::new()
        .runbook("x", &text)
        .args(&["exec", "x", "--yes"])
        .stdout("promoted\n")
        .run();
    assert_eq!(ran.finished("promote")["note"], "confirmed by --yes");
}

#[test]
fn when_false_skips_and_dependents_still_run() {
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"maybe\"\nrun = \"echo no\"\nwhen = \"{{eq runbook \\\"other\\\"}}\"\n\n[[step]]\nid = \"next\"\nrun = \"echo yes\"\n",
    ))
    .stdout("yes\n")
    .run();
    assert_eq!(ran.finished("maybe")["status"], "skipped");
}

#[test]
fn env_and_dir_apply_to_the_step() {
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"a\"\nrun = \"mkdir -p sub\"\n\n[[step]]\nid = \"b\"\nrun = \"echo $GREETING; pwd\"\nenv = { GREETING = \"hi from {{runbook}}\" }\ndir = \"sub\"\n",
    ))
    .run();
    let out = ran.stdout();
    assert!(
        out.starts_with("hi from x\n") && out.trim_end().ends_with("/sub"),
        "{out}"
    );
}

#[test]
fn milestones_are_logged() {
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"fix\"\nrun = \"true\"\nmilestone = \"mitigated\"\n",
    ))
    .run();
    let m = &ran.events("milestone")[0];
    assert_eq!(
        (m["name"].as_str(), m["step"].as_str()),
        (Some("mitigated"), Some("fix"))
    );
}

const DRY: &str = r#"[runbook]
title = "Dry"

[params.host]
default = "db-1"

[[step]]
id = "look"
run = "echo 5"
capture = "lag"
readonly = true

[[step]]
id = "change"
run = "touch changed; echo {{host}}"
capture = "out"

[[step]]
id = "person"
manual = "Fence {{host}}."

[[step]]
id = "depends"
run = "touch depends-ran"
when = "{{eq out \"x\"}}"
"#;

#[test]
fn dry_run_runs_only_readonly_steps_and_shows_the_rest() {
    let ran = Test::new()
        .runbook("x", DRY)
        .args(&["exec", "x", "--dry-run", "--yes"])
        .stdout("5\n")
        .stderr_has("$ touch changed; echo db-1")
        .stderr_has("decided at run time; taken as true")
        .run();
    let d = ran.tempdir.path();
    assert!(!d.join("changed").exists() && !d.join("depends-ran").exists());
    assert_eq!(ran.log()[0]["mode"], "dry_run");
    assert_eq!(ran.finished("look")["status"], "succeeded");
    assert_eq!(ran.finished("change")["status"], "dry_run");
    assert_eq!(ran.finished("depends")["status"], "dry_run");
    let person = ran.finished("person");
    assert_eq!(
        (person["status"].as_str(), person["answer"].as_str()),
        (Some("succeeded"), Some("done"))
    );
}

#[test]
fn dry_run_presents_manual_steps_without_yes() {
    let ran = Test::new()
        .runbook("x", DRY)
        .args(&["exec", "x", "--dry-run"])
        .stdin("done practised\n")
        .stderr_has("Fence db-1.")
        .run();
    assert_eq!(ran.finished("person")["note"], "practised");
}

#[test]
fn start_at_records_ancestors_as_done_before_the_run() {
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"a\"\nrun = \"echo a\"\n\n[[step]]\nid = \"b\"\nrun = \"echo b\"\n\n[[step]]\nid = \"c\"\nrun = \"echo c\"\n",
    ))
    .args(&["--start-at", "c"])
    .stdout("c\n")
    .run();
    for s in ["a", "b"] {
        let f = ran.finished(s);
        assert_eq!(
            (f["status"].as_str(), f["note"].as_str()),
            (Some("skipped"), Some("done before the run"))
        );
    }
    exec(&runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"))
        .args(&["--start-at", "zz"])
        .status(2)
        .stderr("error: --start-at `zz`: runbook `x` has no such step\n")
        .run();
}

const ROLLBACK: &str = r#"[[step]]
id = "one"
run = "echo one > state1"
rollback = "rm state1; echo undo one"

[[step]]
id = "two"
run = "echo two > state2"
rollback = "rm state2; echo undo two"

[[step]]
id = "boom"
run = "exit 1"
"#;

#[test]
fn rollback_auto_undoes_succeeded_steps_newest_first() {
    let ran = exec(&runbook_with(ROLLBACK))
        .args(&["--rollback", "auto"])
        .status(1)
        .stdout("undo two\nundo one\n")
        .run();
    let d = ran.tempdir.path();
    assert!(!d.join("state1").exists() && !d.join("state2").exists());
    let rb: Vec<_> = ran
        .events("step_finished")
        .into_iter()
        .filter(|e| e["phase"] == "rollback")
        .map(|e| e["step"].clone())
        .collect();
    assert_eq!(rb, ["two", "one"]);
    assert_eq!(ran.events("run_finished")[0]["status"], "failed");
}

#[test]
fn rollback_never_lists_what_was_not_undone() {
    let ran = exec(&runbook_with(ROLLBACK))
        .status(1)
        .stderr_has("not rolled back (undo by hand if needed, newest first):\n  two: rm state2; echo undo two\n  one: rm state1; echo undo one\n")
        .run();
    assert!(ran.tempdir.path().join("state2").exists());
}

#[test]
fn rollback_ask_reads_run_skip_stop() {
    let ran = exec(&runbook_with(ROLLBACK))
        .args(&["--rollback", "ask"])
        .stdin("skip\nrun\n")
        .status(1)
        .stdout("undo one\n")
        .run();
    let d = ran.tempdir.path();
    assert!(d.join("state2").exists() && !d.join("state1").exists());
}

#[test]
fn the_output_cap_keeps_the_log_small_and_says_how_much_was_dropped() {
    let ran = exec(&runbook_with(
        "[[step]]\nid = \"loud\"\nrun = \"head -c 10000 /dev/zero | tr '\\\\0' x; echo\"\n",
    ))
    .args(&["--log-output-cap", "1KiB"])
    .run();
    let outputs = ran.events("step_output");
    let kept: usize = outputs
        .iter()
        .map(|e| e["text"].as_str().unwrap_or("").len())
        .sum();
    assert_eq!(kept, 1024);
    let marker = outputs.last().unwrap();
    assert_eq!(marker["truncated_bytes"], 10001 - 1024);
    assert_eq!(
        ran.stdout().len(),
        10001,
        "the terminal still gets everything"
    );
}

#[test]
fn sigterm_ends_running_groups_and_exits_130() {
    let t = Test::new().runbook(
        "x",
        &runbook_with("[[step]]\nid = \"slow\"\nrun = \"sleep 30 & echo $! > pid; wait\"\n"),
    );
    let mut child = std::process::Command::new(crate::test::BIN)
        .args(["exec", "x"])
        .current_dir(t.path())
        .env("RUNBOOK_LOG_DIR", t.path().join("logs"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid_file = t.path().join("pid");
    let start = Instant::now();
    while !pid_file.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let grandchild: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "sleep survived: {stat}"
    );
    let log = std::fs::read_dir(t.path().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let text = std::fs::read_to_string(log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        (last["event"].as_str(), last["status"].as_str()),
        (Some("run_finished"), Some("interrupted"))
    );
    assert!(
        text.contains(r#""status":"aborted""#),
        "the running step is recorded as stopped"
    );
}

#[test]
fn the_runbook_timeout_fails_the_run() {
    let ran = exec("[runbook]\ntitle = \"t\"\ntimeout = \"300ms\"\n\n[[step]]\nid = \"slow\"\nrun = \"sleep 10\"\n")
        .status(1)
        .stderr_has("the run went past its timeout of 300ms")
        .run();
    assert_eq!(ran.finished("slow")["status"], "aborted");
}

#[test]
fn detected_at_is_recorded_and_checked() {
    let ran = exec(&runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"))
        .args(&["--detected-at", "15m ago", "--incident", "INC-42"])
        .stderr_has("detected ")
        .run();
    let started = &ran.log()[0];
    assert_eq!(started["incident"], "INC-42");
    let detected =
        chrono::DateTime::parse_from_rfc3339(started["detected_at"].as_str().unwrap()).unwrap();
    let ago = chrono::Utc::now()
        .signed_duration_since(detected)
        .num_seconds();
    assert!((890..=910).contains(&ago), "{ago}");
    let ran = exec(&runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"))
        .args(&["--detected-at", "2026-11-26T03:12:00+01:00"])
        .run();
    assert_eq!(ran.log()[0]["detected_at"], "2026-11-26T02:12:00.000Z");
    exec(&runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"))
        .args(&["--detected-at", "yesterday-ish"])
        .status(2)
        .stderr_has("error: --detected-at `yesterday-ish`: not a time: use 10:05, 03:12:45")
        .run();
}

#[test]
fn the_shipped_demo_runs_with_answers_on_stdin() {
    let dir = crate::test::shipped();
    let dir = dir.to_string_lossy();
    let work = tempfile::tempdir().unwrap();
    let workdir = format!("/tmp/runbook-demo-test{}", std::process::id());
    let ran = Test::new()
        .args(&[
            "--dir",
            &dir,
            "exec",
            "demo",
            "--var",
            &format!("workdir={workdir}"),
        ])
        .stdin("yes\nlooks fine\ndone\ndone\ndone\ndone\n")
        .run();
    let _ = work;
    let statuses: Vec<(String, String)> = ran
        .events("step_finished")
        .iter()
        .map(|e| {
            (
                e["step"].as_str().unwrap_or("").to_string(),
                e["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        statuses
            .iter()
            .any(|(s, st)| s == "flaky" && st == "succeeded"),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|(_, st)| st == "timed_out"),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|(_, st)| st == "failed"),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|(_, st)| st == "skipped"),
        "{statuses:?}"
    );
    assert_eq!(ran.events("run_finished")[0]["status"], "succeeded");
    let _ = std::fs::remove_dir_all(&workdir);
}

#[test]
fn one_live_execution_at_a_time_and_a_crash_releases_the_lock() {
    let t = Test::new().runbook(
        "x",
        &runbook_with("[[step]]\nid = \"hold\"\nrun = \"touch started; sleep 30\"\n"),
    );
    let dir = t.path().to_path_buf();
    // A longer text left by an earlier holder is written over, not read back.
    let locks = dir.join("logs").join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let earlier = r#"{"run_id":"20250101T000000000Z-aaaaaa","operator":"an-earlier-operator-with-a-long-name","host":"an-old-host.example.com","pid":4000000,"since":"2025-01-01T00:00:00Z"}"#;
    std::fs::write(locks.join("x.lock"), format!("{earlier}\n{earlier}")).unwrap();
    let mut first = crate::test::spawn(&dir, &["exec", "x", "--operator", "alice"]);
    let start = Instant::now();
    while !dir.join("started").exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs = dir.join("logs").to_string_lossy().to_string();
    let runbooks = dir.join("runbooks").to_string_lossy().to_string();
    let second = Test::new()
        .args(&["--dir", &runbooks, "--log-dir", &logs, "exec", "x"])
        .status(3)
        .stderr_has("error: runbook `x` is being run by alice on ")
        .stderr_has(&format!("pid {}", first.id()))
        .run();
    assert!(second.stdout().is_empty());
    // A rehearsal takes no lock.
    Test::new()
        .args(&[
            "--dir",
            &runbooks,
            "--log-dir",
            &logs,
            "exec",
            "x",
            "--dry-run",
        ])
        .stderr_has("dry run")
        .run();
    // kill -9: the kernel releases the lock with the process.
    first.kill().unwrap();
    first.wait().unwrap();
    std::fs::write(
        dir.join("runbooks/x.toml"),
        runbook_with("[[step]]\nid = \"quick\"\nrun = \"true\"\n"),
    )
    .unwrap();
    Test::new()
        .args(&["--dir", &runbooks, "--log-dir", &logs, "exec", "x"])
        .run();
}

#[test]
fn lock_false_allows_concurrent_runs() {
    let text = "[runbook]\ntitle = \"t\"\nlock = false\n\n[[step]]\nid = \"hold\"\nrun = \"touch started; sleep 2\"\n";
    let t = Test::new().runbook("x", text);
    let dir = t.path().to_path_buf();
    let mut first = crate::test::spawn(&dir, &["exec", "x"]);
    let start = Instant::now();
    while !dir.join("started").exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs = dir.join("logs").to_string_lossy().to_string();
    let runbooks = dir.join("runbooks").to_string_lossy().to_string();
    std::fs::write(dir.join("runbooks/x.toml"), text.replace("sleep 2", "true")).unwrap();
    Test::new()
        .args(&["--dir", &runbooks, "--log-dir", &logs, "exec", "x"])
        .run();
    first.kill().unwrap();
    first.wait().unwrap();
}

#[test]
fn a_rehearsal_goes_on_past_a_failing_read_only_check() {
    // Drills often run where the real systems are unreachable: the check fails, is recorded,
    // and the rest of the runbook is still rehearsed.
    let text = runbook_with(
        "[[step]]\nid = \"probe\"\nrun = \"exit 2\"\nreadonly = true\nretries = 3\nretry_delay = \"5s\"\ncapture = \"lag\"\n\n[[step]]\nid = \"act\"\nrun = \"touch acted\"\nwhen = \"{{lt lag 30}}\"\n",
    );
    let start = Instant::now();
    let ran = Test::new()
        .runbook("x", &text)
        .args(&["exec", "x", "--dry-run"])
        .stderr_has("the rehearsal goes on with lag unknown")
        .run();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "no retry waits in a rehearsal"
    );
    let probe = ran.finished("probe");
    assert_eq!(
        (probe["status"].as_str(), probe["attempts"].as_u64()),
        (Some("failed"), Some(1))
    );
    assert_eq!(ran.finished("act")["status"], "dry_run");
    assert!(!ran.tempdir.path().join("acted").exists());
    assert_eq!(ran.log().last().unwrap()["status"], "succeeded");
}

#[test]
fn each_spawn_records_the_start_time_proc_gives_its_shell() {
    // `resume` tells a step's process group from a newer one with the same id by this start
    // time, so it must be exactly what /proc says (field 22 of the shell's stat), for every
    // step, including those that start near a clock tick's edge.
    let steps: String = (0..60)
        .map(|i| format!("[[step]]\nid = \"s{i}\"\nrun = \"cut -d' ' -f22 /proc/$$/stat\"\n\n"))
        .collect();
    let ran = exec(&runbook_with(&steps)).run();
    let log = ran.log();
    let spawned: Vec<u64> = log
        .iter()
        .filter(|e| e["event"] == "step_spawned")
        .filter_map(|e| e["start_ticks"].as_u64())
        .collect();
    let seen: Vec<u64> = log
        .iter()
        .filter(|e| e["event"] == "step_output")
        .filter_map(|e| e["text"].as_str()?.trim().parse().ok())
        .collect();
    assert_eq!(spawned.len(), 60, "{log:?}");
    assert_eq!(spawned, seen);
}

#[test]
fn a_shell_held_until_its_start_is_durable_runs_each_command_as_written() {
    // Each shell reads a line runbook writes once the step's start is on disk, then runs
    // the command on that same first line: nothing of that may show.
    let steps = r##"
[[step]]
id = "broken"
run = "if"
on_failure = "continue"

[[step]]
id = "stdin"
run = "readlink /proc/$$/fd/0; cat; read -r line || echo \"stdin ended [$line]\""

[[step]]
id = "first-line"
run = """# a comment first
no-such-command-here"""
on_failure = "continue"

[[step]]
id = "args"
run = "echo \"$0|$#|$-\"; set -x; echo traced"

[[step]]
id = "ps"
run = "tr '\\0' ' ' < /proc/$$/cmdline"
"##;
    // Slowed syncs (debug builds) make every step's shell held, whatever the disk.
    let ran = exec(&runbook_with(steps))
        .env("RUNBOOK_TEST_SLOW_SYNC_MS", "1")
        .run();
    let out = ran.stdout();
    let err = ran.stderr();
    // A syntax error on the first line ends the shell before it waits: the step fails
    // with the shell's own message and code, and the run goes on.
    assert_eq!(ran.finished("broken")["exit_code"], 2, "{err}");
    assert!(
        err.contains("1: Syntax error") || err.contains("line 1:"),
        "{err}"
    );
    assert!(out.contains("/dev/null\nstdin ended []\n"), "{out}");
    // Line numbers are the command's own.
    assert!(err.contains("2: no-such-command-here"), "{err}");
    assert_eq!(ran.finished("first-line")["exit_code"], 127);
    // The shell's name, no arguments, no options but -c's; a trace shows only the command.
    assert!(out.contains("/bin/sh|0|"), "{out}");
    assert!(
        err.contains("+ echo traced") && !err.contains("+ read"),
        "{err}"
    );
    assert!(out.contains("traced\n"), "{out}");
    // What `ps` shows of a held shell: the wait, then the command.
    assert!(
        out.contains("/bin/sh -c read -r _ || exit 125; exec </dev/null; tr "),
        "{out}"
    );
}
