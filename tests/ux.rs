//! Issue 12, the operator at 3 a.m., through the real binary on stdin and pipes: help,
//! completions and the manual page, starting a run, the plain display, prompts on the line
//! protocol, and review output that tells the truth. What concerns the terminal is also
//! tested in a pseudo-terminal (`tests/pty.rs`).

use crate::test::{Test, require_program, runbook_with, shipped};

const EXIT_CODES: [&str; 7] = ["0 ", "1 ", "2 ", "3 ", "4 ", "129", "130"];

#[test]
fn the_top_level_help_says_what_the_tool_is_for() {
    let ran = Test::new().args(&["--help"]).run();
    let out = ran.stdout();
    assert!(out.starts_with("Runs incident-response runbooks"), "{out}");
    for c in ["exec", "resume", "report", "completions", "man"] {
        assert!(out.contains(&format!("  {c} ")), "{c} in\n{out}");
    }
}

#[test]
fn exec_help_lists_every_exit_code_and_the_display_modes() {
    let ran = Test::new().args(&["exec", "--help"]).run();
    let out = ran.stdout();
    let codes = &out[out.find("Exit codes:").expect("an exit code section")..];
    for c in EXIT_CODES {
        assert!(
            codes.contains(&format!("\n  {c}")),
            "exit code {c} in\n{codes}"
        );
    }
    for mode in ["on a terminal", "without one", "--quiet"] {
        assert!(out.contains(mode), "{mode} in\n{out}");
    }
}

#[test]
fn global_flags_are_shown_only_where_they_mean_something() {
    let help = |args: &[&str]| Test::new().args(args).run().stdout();
    let stats = help(&["stats", "--help"]);
    assert!(stats.contains("--log-dir"), "{stats}");
    assert!(
        !stats.contains("--dir ") && !stats.contains("--quiet"),
        "{stats}"
    );
    let list = help(&["list", "--help"]);
    assert!(
        list.contains("--dir") && !list.contains("--log-dir"),
        "{list}"
    );
    let exec = help(&["exec", "--help"]);
    for f in ["--dir", "--log-dir", "--quiet"] {
        assert!(exec.contains(f), "{f} in\n{exec}");
    }
    let top = help(&["--help"]);
    assert!(!top.contains("--log-dir"), "{top}");
}

#[test]
fn global_flags_work_before_and_after_the_command() {
    let t = Test::new().runbook("x", &runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"));
    let ran = t.args(&["--log-dir", "elsewhere", "exec", "x"]).run();
    let dir = ran.dir.clone();
    Test::new()
        .in_dir(&dir)
        .args(&["--log-dir", "elsewhere", "log", "list"])
        .stdout_has("succeeded")
        .run();
    Test::new()
        .in_dir(&dir)
        .args(&["log", "list", "--log-dir", "elsewhere"])
        .stdout_has("succeeded")
        .run();
    Test::new()
        .in_dir(&dir)
        .args(&["list", "--dir", "runbooks"])
        .stdout_has("x ")
        .run();
}

#[test]
fn bash_completion_completes_commands_and_flags() {
    let Some(bash) = require_program(&["/bin/bash", "/usr/bin/bash"], "bash") else {
        return;
    };
    let ran = Test::new().args(&["completions", "bash"]).run();
    let script = ran.dir.join("runbook.bash");
    std::fs::write(&script, ran.stdout()).unwrap();
    // Sourced as bash-completion would, then asked what follows `runbook ex` and
    // `runbook exec --dr`.
    let ask = |words: &str, cword: usize| {
        let probe = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{words}'; \
             COMP_POINT=${{#COMP_LINE}}; _runbook runbook; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let out = std::process::Command::new(&bash)
            .args(["-c", &probe])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(ask("runbook ex", 1).lines().any(|l| l == "exec"));
    assert!(
        ask("runbook exec --dr", 2)
            .lines()
            .any(|l| l == "--dry-run")
    );
    assert!(
        ask("runbook completions ''", 2)
            .lines()
            .any(|l| l == "fish")
    );
}

#[test]
fn zsh_and_fish_completions_name_every_command() {
    for (shell, check) in [
        ("zsh", ["/usr/bin/zsh", "-n"]),
        ("fish", ["/usr/bin/fish", "-n"]),
    ] {
        let ran = Test::new().args(&["completions", shell]).run();
        let out = ran.stdout();
        for c in ["exec", "resume", "report", "stats", "graph"] {
            assert!(out.contains(c), "{shell}: {c}");
        }
        // Parsed by the shell itself where it is installed (CI does not need them).
        if std::path::Path::new(check[0]).exists() {
            let file = ran.dir.join(format!("runbook.{shell}"));
            std::fs::write(&file, &out).unwrap();
            let ok = std::process::Command::new(check[0])
                .arg(check[1])
                .arg(&file)
                .status()
                .unwrap();
            assert!(ok.success(), "{shell} cannot parse its completions");
        }
    }
    Test::new()
        .args(&["completions", "tcsh"])
        .status(2)
        .stderr_has("possible values: bash, zsh, fish")
        .run();
}

#[test]
fn the_manual_page_is_valid_roff_with_every_command_and_exit_code() {
    let ran = Test::new().args(&["man"]).run();
    let page = ran.stdout();
    assert!(
        page.contains("\n.TH runbook 1 "),
        "{}",
        &page[..80.min(page.len())]
    );
    for c in [
        "runbook list",
        "runbook show",
        "runbook check",
        "runbook exec",
        "runbook resume",
        "runbook log list",
        "runbook log show",
        "runbook report",
        "runbook stats",
        "runbook graph",
        "runbook completions",
    ] {
        assert!(page.contains(&format!(".SS \"{c}\"")), "{c}");
    }
    assert!(page.contains(".SH \"EXIT STATUS\""));
    let Some(groff) = require_program(&["/usr/bin/groff"], "groff-base") else {
        return;
    };
    let file = ran.dir.join("runbook.1");
    std::fs::write(&file, &page).unwrap();
    let out = std::process::Command::new(groff)
        .args(["-man", "-Tutf8", "-ww"])
        .arg(&file)
        .output()
        .unwrap();
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && warnings.is_empty(), "{warnings}");
    let text = String::from_utf8_lossy(&out.stdout);
    for c in EXIT_CODES {
        assert!(text.contains(c.trim()), "exit code {c}");
    }
}

#[test]
fn exec_without_a_name_lists_the_runbooks() {
    Test::new()
        .runbook(
            "db-failover",
            &runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"),
        )
        .args(&["exec"])
        .status(2)
        .stderr_has("error: name the runbook to run: `runbook exec NAME`; the runbooks in /")
        .stderr_has("  db-failover  Test")
        .run();
}

#[test]
fn a_missing_runbooks_directory_is_named_by_its_absolute_path() {
    let ran = Test::new()
        .args(&["exec", "x"])
        .env("RUNBOOK_DIR", "gone/runbooks")
        .status(2)
        .stderr_has("--dir DIR or RUNBOOK_DIR=DIR")
        .run();
    let want = format!("{}/gone/runbooks does not exist", ran.dir.display());
    assert!(ran.stderr().contains(&want), "{}", ran.stderr());
}

#[test]
fn the_shipped_runbooks_still_load() {
    Test::new()
        .args(&["--dir", &shipped().display().to_string(), "check"])
        .run();
}

const THREE_PARAMS: &str = r#"[runbook]
title = "Roll back a deployment"

[params.namespace]
description = "Kubernetes namespace"
required = true

[params.deployment]
description = "Deployment to roll back"
required = true
pattern = "^[a-z0-9-]+$"

[params.token]
required = true
env = "DEPLOY_TOKEN"
secret = true

[[step]]
id = "undo"
run = "echo rolling back {{namespace}}/{{deployment}}"
"#;

#[test]
fn every_missing_param_is_named_at_once() {
    Test::new()
        .runbook("k8s", THREE_PARAMS)
        .args(&["exec", "k8s"])
        .status(2)
        .stderr(
            "error: 3 params are required and not given: namespace, deployment, token; give them with
  --var namespace=VALUE  Kubernetes namespace
  --var deployment=VALUE  Deployment to roll back, matching ^[a-z0-9-]+$
  --var token=VALUE (or set $DEPLOY_TOKEN)
",
        )
        .run();
    Test::new()
        .runbook("k8s", THREE_PARAMS)
        .args(&["exec", "k8s", "--var", "namespace=prod"])
        .env("DEPLOY_TOKEN", "s3cret")
        .status(2)
        .stderr("error: param `deployment` is required (Deployment to roll back, matching ^[a-z0-9-]+$); give it with --var deployment=VALUE\n")
        .run();
}

#[test]
fn detected_at_takes_clock_times_and_echoes_them_in_utc_and_local_time() {
    let t = Test::new().runbook("x", &runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"));
    // A zone without summer time, five hours behind UTC all year.
    let ran = t
        .args(&["exec", "x", "--detected-at", "yesterday 23:10"])
        .env("TZ", "America/Bogota")
        .stderr_has(" 23:10:00 local time (UTC-05:00), ")
        .run();
    let started = &ran.events("run_started")[0];
    let at: chrono::DateTime<chrono::Utc> =
        started["detected_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(at.format("%H:%M:%S").to_string(), "04:10:00", "{started}");
    // Yesterday at 23:10 local time is 50 minutes ago just after local midnight, and
    // almost 25 hours ago just before it.
    let ago = chrono::Utc::now() - at;
    assert!(
        ago > chrono::Duration::minutes(49) && ago < chrono::Duration::hours(25),
        "yesterday: {ago}"
    );
    let echoed = format!("detected {} UTC = ", at.format("%Y-%m-%d %H:%M:%S"));
    assert!(ran.stderr().contains(&echoed), "{}", ran.stderr());

    for (form, utc) in [
        ("2026-01-05 18:00", "2026-01-05T23:00:00.000Z"),
        ("2026-01-05 18:00 UTC", "2026-01-05T18:00:00.000Z"),
    ] {
        let ran = Test::new()
            .runbook("x", &runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"))
            .args(&["exec", "x", "--detected-at", form])
            .env("TZ", "America/Bogota")
            .run();
        assert_eq!(ran.events("run_started")[0]["detected_at"], utc, "{form}");
    }
    Test::new()
        .runbook("x", &runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"))
        .args(&["exec", "x", "--detected-at", "2099-01-01 10:00"])
        .status(2)
        .stderr_has("is in the future")
        .run();
}

#[test]
fn a_step_rolled_back_and_run_again_is_no_retry() {
    let text = |b: &str| {
        runbook_with(&format!(
            "[[step]]\nid = \"a\"\nrun = \"echo a\"\nrollback = \"echo undo a\"\n\n[[step]]\nid = \"b\"\nrun = \"{b}\"\n"
        ))
    };
    let ran = Test::new()
        .runbook("x", &text("exit 3"))
        .args(&["exec", "x", "--rollback", "auto"])
        .status(1)
        .run();
    let dir = ran.dir.clone();
    std::fs::write(dir.join("runbooks/x.toml"), text("true")).unwrap();
    let resumed = Test::new()
        .in_dir(&dir)
        .args(&["resume", "latest", "--force"])
        .stdin("retry\n")
        .run();
    let a: Vec<_> = resumed
        .events("step_finished")
        .into_iter()
        .filter(|e| e["step"] == "a" && e["phase"] == "run")
        .collect();
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(
        a[1]["attempts"], 1,
        "a new execution, not a second attempt: {a:?}"
    );
    let report = Test::new()
        .in_dir(&dir)
        .args(&["report", "latest"])
        .run()
        .stdout();
    assert!(!report.contains("Make a reliable"), "{report}");
    assert!(
        report.contains("Make b reliable: it succeeded only after 2 attempts"),
        "{report}"
    );
    let show = Test::new()
        .in_dir(&dir)
        .args(&["log", "show", "latest"])
        .run()
        .stdout();
    let line = show.lines().find(|l| l.ends_with(" a")).unwrap_or_default();
    assert!(line.contains("succeeded  1 "), "{show}");
}

const FOUR: &str = r#"[[step]]
id = "look"
title = "Look around"
run = "echo looking"
readonly = true

[[step]]
id = "check"
title = "Check the replica"
run = "echo broken >&2; exit 2"
readonly = true

[[step]]
id = "change"
title = "Change something"
run = "echo changed"
rollback = "echo undone"

[[step]]
id = "announce"
title = "Announce it"
manual = "Tell the channel."
"#;

#[test]
fn steps_never_reached_are_in_the_summary_and_the_timeline() {
    let ran = Test::new()
        .runbook("x", &runbook_with(FOUR))
        .args(&["exec", "x"])
        .status(1)
        .run();
    let report = Test::new()
        .in_dir(&ran.dir)
        .args(&["report", "latest"])
        .run()
        .stdout();
    assert!(
        report.contains("Steps: 4 (1 succeeded, 1 failed or timed out, 2 never reached).")
            && report.contains("Never reached: change, announce."),
        "{report}"
    );
    assert!(
        report.contains("| - | - | `change`: Change something | not reached |"),
        "{report}"
    );
    Test::new()
        .in_dir(&ran.dir)
        .args(&["log", "show", "latest"])
        .stdout_has("  never reached: change, announce\n")
        .run();
    let json = Test::new()
        .in_dir(&ran.dir)
        .args(&["report", "latest", "--format", "json"])
        .run()
        .stdout();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["summary"]["not_reached"],
        serde_json::json!(["change", "announce"])
    );
}

#[test]
fn changes_left_applied_are_in_the_summary() {
    let steps = "[[step]]\nid = \"change\"\nrun = \"true\"\nrollback = \"echo undo\"\n\n[[step]]\nid = \"boom\"\nrun = \"exit 1\"\n";
    let ran = Test::new()
        .runbook("x", &runbook_with(steps))
        .args(&["exec", "x"])
        .status(1)
        .run();
    Test::new()
        .in_dir(&ran.dir)
        .args(&["report", "latest"])
        .stdout_has("Changes left applied (not rolled back): change.")
        .stdout_has("- `change`: `echo undo`")
        .run();
}

#[test]
fn a_rehearsal_report_finishes_and_asks_no_root_causes() {
    let ran = Test::new()
        .runbook("x", &runbook_with(FOUR))
        .args(&["exec", "x", "--dry-run", "--yes"])
        .stderr_has("rehearsal finished in ")
        .stderr_has(", 1 read-only check failed")
        .run();
    let report = Test::new()
        .in_dir(&ran.dir)
        .args(&["report", "latest"])
        .run()
        .stdout();
    assert!(
        report.contains("rehearsal finished, 1 read-only check failed in "),
        "{report}"
    );
    assert!(
        report.contains("and finished after ") && report.contains("; 1 read-only check failed."),
        "{report}"
    );
    for asked in ["## Impact", "## Root causes", "## Trigger"] {
        assert!(!report.contains(asked), "{asked} in\n{report}");
    }
    assert!(report.contains("## What the drill showed"), "{report}");
    assert!(!report.contains("succeeded in"), "{report}");
}

#[test]
fn report_to_a_file_says_where_it_wrote() {
    let ran = Test::new()
        .runbook("x", &runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"))
        .args(&["exec", "x"])
        .run();
    let done = Test::new()
        .in_dir(&ran.dir)
        .args(&["report", "latest", "-o", "pm.md"])
        .stdout("")
        .run();
    let want = format!(" to {}/pm.md\n", ran.dir.display());
    assert!(
        done.stderr()
            .starts_with("wrote the markdown report of run ")
            && done.stderr().ends_with(&want),
        "{}",
        done.stderr()
    );
    assert!(ran.dir.join("pm.md").exists());
}

#[test]
fn log_list_filters_by_how_runs_ended() {
    let t = Test::new()
        .runbook(
            "ok",
            &runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"),
        )
        .runbook(
            "bad",
            &runbook_with("[[step]]\nid = \"a\"\nrun = \"false\"\n"),
        );
    let ran = t.args(&["exec", "ok"]).run();
    let dir = ran.dir.clone();
    Test::new()
        .in_dir(&dir)
        .args(&["exec", "bad"])
        .status(1)
        .run();
    let list = |status: &str| {
        Test::new()
            .in_dir(&dir)
            .args(&["log", "list", "--status", status, "--json"])
            .run()
            .stdout()
    };
    let runbooks = |status: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&list(status)).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["runbook"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(runbooks("failed"), ["bad"]);
    assert_eq!(runbooks("succeeded"), ["ok"]);
    assert_eq!(runbooks("failed,succeeded").len(), 2);
    assert!(runbooks("unfinished").is_empty());
    Test::new()
        .in_dir(&dir)
        .args(&["log", "list", "--status", "broken"])
        .status(2)
        .stderr_has("possible values: succeeded, failed, aborted, interrupted, unfinished")
        .run();
}

#[test]
fn incidents_are_counted_per_service_and_few_of_them_are_said_to_be_few() {
    let rb = |title: &str| {
        format!(
            "[runbook]\ntitle = \"{title}\"\nservice = \"orders-db\"\n\n[[step]]\nid = \"a\"\nrun = \"true\"\n"
        )
    };
    let t = Test::new()
        .runbook("failover", &rb("Failover"))
        .runbook("disk", &rb("Disk"));
    let dir = t.path().to_path_buf();
    let now = chrono::Utc::now();
    let at = |h: i64| (now - chrono::Duration::hours(h)).to_rfc3339();
    let ran = t
        .args(&[
            "exec",
            "failover",
            "--incident",
            "I-1",
            "--detected-at",
            &at(30),
        ])
        .run();
    assert_eq!(ran.events("run_started")[0]["service"], "orders-db");
    Test::new()
        .in_dir(&dir)
        .args(&[
            "exec",
            "disk",
            "--incident",
            "I-2",
            "--detected-at",
            &at(20),
        ])
        .run();
    Test::new()
        .in_dir(&dir)
        .args(&[
            "exec",
            "failover",
            "--incident",
            "I-3",
            "--detected-at",
            &at(10),
        ])
        .run();
    let stats = Test::new().in_dir(&dir).args(&["stats"]).run().stdout();
    let line = stats
        .lines()
        .find(|l| l.trim_start().starts_with("orders-db"))
        .unwrap_or_else(|| panic!("{stats}"));
    assert!(
        line.contains(" 3 ") && line.contains("10h 0m") && line.ends_with("disk, failover"),
        "{line}"
    );
    assert!(
        stats.contains("note: 3 incidents are too few to tell a 10% change in MTTR from noise; about 50 are needed"),
        "{stats}"
    );
    let json = Test::new()
        .in_dir(&dir)
        .args(&["stats", "--json"])
        .run()
        .stdout();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["between_incidents_by_service"][0]["incidents"], 3);
    assert_eq!(v["time_to_mitigate"]["too_few_to_compare"], true);
}

/// Every shipped runbook, and one whose title and steps hold every character Mermaid reads
/// as syntax, parsed by Mermaid 11 itself (installed by .ci/run from the npm registry).
#[test]
fn mermaid_graphs_parse_in_mermaid_itself() {
    let mermaid = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mermaid");
    let hostile = r##"[runbook]
title = "Demo: a \"tour\" # of `every` <b>thing</b> & more: yes"

[[step]]
id = "a-b"
title = "Check: \"lag\" #1; `x` <i>y</i> & z"
run = "true"

[[step]]
id = "c"
title = "Fence: by hand"
manual = "Do it."
when = "{{#if (eq 1 1)}}yes{{/if}}"
"##;
    let t = Test::new().runbook("hostile", hostile);
    let dir = t.path().to_path_buf();
    let mut files = Vec::new();
    let shipped = shipped();
    let mut names: Vec<String> = std::fs::read_dir(&shipped)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        // hosts.toml holds the host groups of fleet steps, not a runbook.
        .filter(|name| name != "hosts")
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for name in &names {
        let out = Test::new()
            .in_dir(&dir)
            .args(&["--dir", &shipped.display().to_string(), "graph", name])
            .run()
            .stdout();
        // The front matter's title is a YAML string, never a bare scalar with `: ` in it.
        let title = out.lines().nth(1).unwrap_or_default();
        assert!(
            title.starts_with("title: \"") && title.ends_with('"'),
            "{name}: {title}"
        );
        let file = dir.join(format!("{name}.mmd"));
        std::fs::write(&file, out).unwrap();
        files.push(file);
    }
    let out = Test::new()
        .in_dir(&dir)
        .args(&["graph", "hostile"])
        .run()
        .stdout();
    assert!(
        out.contains(r#"title: "Demo: a \"tour\" # of `every` <b>thing</b> & more: yes""#),
        "{out}"
    );
    for line in out
        .lines()
        .filter(|l| l.trim_start().starts_with('s') && l.contains("["))
    {
        let inner = &line[line.find('"').unwrap() + 1..line.rfind('"').unwrap()];
        for bad in ['"', '`', '<', '>'] {
            assert!(!inner.contains(bad), "{bad} in label {line}");
        }
    }
    let file = dir.join("hostile.mmd");
    std::fs::write(&file, &out).unwrap();
    files.push(file);

    let parser = mermaid.join("node_modules/mermaid/package.json");
    let node = require_program(&["/usr/bin/node", "/usr/local/bin/node"], "nodejs");
    let (Some(node), true) = (node, parser.exists()) else {
        if parser.exists() {
            return;
        }
        crate::test::skip(&format!(
            "Mermaid is not installed in {}; install it with `npm ci --prefix tests/mermaid` \
             (.ci/run does)",
            mermaid.display()
        ));
        return;
    };
    let ran = std::process::Command::new(node)
        .arg(mermaid.join("parse.mjs"))
        .args(&files)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok ")).count(),
        files.len(),
        "{report}"
    );
}

#[test]
fn without_a_terminal_a_retry_prints_its_attempt_not_the_command_again() {
    let steps = "[[step]]\nid = \"flaky\"\nrun = \"test -e m || { touch m; exit 1; }; echo fine\"\nretries = 2\nretry_delay = \"10ms\"\ntimeout = \"5s\"\n";
    let ran = Test::new()
        .runbook("x", &runbook_with(steps))
        .args(&["exec", "x"])
        .stderr_has("  -> flaky\n     $ test -e m")
        .stderr_has("  -> flaky: attempt 2 of 3 (timeout 5s)\n")
        .run();
    assert_eq!(
        ran.stderr().matches("$ test -e m").count(),
        1,
        "{}",
        ran.stderr()
    );
}

#[test]
fn quiet_shows_less_the_failures_with_their_last_output() {
    let steps = r#"[[step]]
id = "fine"
run = "echo all good"

[[step]]
id = "boom"
run = "echo first; sleep 0.2; echo 'it broke' >&2; exit 4"
"#;
    let ran = Test::new()
        .runbook("x", &runbook_with(steps))
        .args(&["exec", "x", "--quiet"])
        .status(1)
        .stdout("")
        .stderr_has("  FAILED boom in ")
        .stderr_has("exit code 4:\n    | first\n    | it broke\n")
        .stderr_has("run failed in ")
        .run();
    let err = ran.stderr();
    for noise in ["-> ", "$ echo", "ok fine", "all good"] {
        assert!(!err.contains(noise), "{noise:?} in quiet:\n{err}");
    }
    // The plain display shows what quiet leaves out.
    Test::new()
        .runbook("x", &runbook_with(steps))
        .args(&["exec", "x"])
        .status(1)
        .stdout_has("all good")
        .stderr_has("  -> fine\n     $ echo all good\n")
        .stderr_has("  ok fine in ")
        .run();
}

#[test]
fn the_line_protocol_takes_a_note_after_a_colon_and_asks_values_in_the_steps_words() {
    let steps = r#"[[step]]
id = "fence"
title = "Fence the old primary"
manual = "Power it off."

[[step]]
id = "who"
title = "Who fenced it?"
manual = "Say who."
ask = "fenced_by"
"#;
    let ran = Test::new()
        .runbook("x", &runbook_with(steps))
        .args(&["exec", "x"])
        .stdin("done: powered off at the PDU\nann\n")
        .stderr_has("  Who fenced it? (one line; marks the step done): ")
        .run();
    assert_eq!(ran.finished("fence")["note"], "powered off at the PDU");
    assert_eq!(ran.finished("who")["value"], "ann");
    assert!(!ran.stderr().contains("fenced_by"), "{}", ran.stderr());
}

#[test]
fn a_rehearsal_with_yes_reads_out_every_manual_step() {
    let text = "[runbook]\ntitle = \"T\"\n\n[params.who]\ndefault = \"db-1\"\n\n[[step]]\nid = \"fence\"\nmanual = \"Power off {{who}}.\"\n";
    let ran = Test::new()
        .runbook("x", text)
        .args(&["exec", "x", "--dry-run", "--yes"])
        .stderr_has("  manual step fence:\n    Power off db-1.\n  ok fence in ")
        .run();
    let started = ran.events("step_started");
    assert_eq!(started[0]["instructions"], "Power off db-1.", "{started:?}");
}

/// `waiting for replica...` with no newline reaches a pipe while the step still sleeps.
#[test]
fn output_without_a_newline_appears_promptly() {
    use std::io::Read;
    let t = Test::new().runbook(
        "x",
        &runbook_with("[[step]]\nid = \"w\"\nrun = \"printf 'waiting for replica...'; sleep 3; echo ' ok'\"\n"),
    );
    let dir = t.path().to_path_buf();
    let mut child = std::process::Command::new(crate::test::BIN)
        .args(["exec", "x"])
        .current_dir(&dir)
        .env_remove("RUNBOOK_DIR")
        .env("RUNBOOK_LOG_DIR", dir.join("logs"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let mut out = child.stdout.take().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&got).contains("waiting for replica...") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "stdout closed: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let took = start.elapsed();
    assert!(
        took < std::time::Duration::from_millis(2500),
        "it waited for the newline: {took:?}"
    );
    out.read_to_end(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), "waiting for replica... ok\n");
    assert!(child.wait().unwrap().success());
}
