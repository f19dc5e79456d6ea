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
    let ago = chrono::Utc::now() - at;
    assert!(
        ago > chrono::Duration::hours(5) && ago < chrono::Duration::hours(53),
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
