//! `list`, `show` and `graph`, through the real binary, with their exit codes.

use crate::test::{Test, runbook_with};

const FAILOVER: &str = r#"[runbook]
title = "Fail over the primary"
description = "When the primary is lost."
owner = "team-db"
service = "orders-db"
tags = ["postgres", "sev1"]
timeout = "45m"

[params.replica]
description = "Replica to promote"
required = true
pattern = "^db-[0-9]+$"

[params.token]
env = "TOKEN"
secret = true

[[step]]
id = "check-lag"
title = "Check replication lag"
run = "echo 3"
capture = "lag"
timeout = "30s"
retries = 2
retry_delay = "5s"
readonly = true

[[step]]
id = "check-disk"
run = "df -h"
needs = []

[[step]]
id = "fence"
manual = "Power off the old primary."
ask = "fenced_by"
needs = ["check-lag", "check-disk"]

[[step]]
id = "promote"
run = "ssh {{replica}} pg_ctl promote"
confirm = true
when = "{{lt lag 30}}"
on_failure = "prompt"
rollback = "ssh {{replica}} pg_ctl demote"
milestone = "mitigated"
"#;

const DISK: &str = r#"[runbook]
title = "Disk full"

[[step]]
id = "look"
run = "df -h"
"#;

fn two() -> Test {
    Test::new()
        .runbook("db-failover", FAILOVER)
        .runbook("disk-full", DISK)
}

#[test]
fn list_prints_a_table() {
    two()
        .args(&["list"])
        .stdout(
            "NAME         TITLE                  STEPS  MANUAL  OWNER
db-failover  Fail over the primary  4      1       team-db
disk-full    Disk full              1      0       -
",
        )
        .run();
}

#[test]
fn list_json_is_machine_readable() {
    let out = two().args(&["list", "--json"]).run();
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("json: {e}"));
    assert_eq!(v[0]["name"], "db-failover");
    assert_eq!(v[0]["steps"], 4);
    assert_eq!(v[0]["manual_steps"], 1);
    assert_eq!(v[0]["owner"], "team-db");
    assert_eq!(v[1]["name"], "disk-full");
    assert_eq!(v[1]["owner"], serde_json::Value::Null);
}

#[test]
fn list_names_invalid_runbooks_and_exits_2() {
    two()
        .runbook("broken", "[runbook]\n")
        .args(&["list"])
        .status(2)
        .stdout_has("db-failover")
        .stderr("error: runbooks/broken.toml: invalid (2 errors); see `runbook check broken`\n")
        .run();
}

#[test]
fn list_follows_dir_and_runbook_dir() {
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(
        elsewhere.path().join("x.toml"),
        runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"),
    )
    .unwrap();
    let dir = elsewhere.path().to_string_lossy();
    Test::new()
        .env("RUNBOOK_DIR", &dir)
        .args(&["list"])
        .stdout_has("x     Test")
        .run();
    Test::new()
        .args(&["--dir", &dir, "list"])
        .stdout_has("x     Test")
        .run();
    // --dir wins over the environment.
    Test::new()
        .env("RUNBOOK_DIR", "/nonexistent")
        .args(&["--dir", &dir, "list"])
        .stdout_has("x     Test")
        .run();
}

#[test]
fn show_lists_steps_in_run_order() {
    two()
        .args(&["show", "db-failover"])
        .stdout(
            r#"db-failover: Fail over the primary
  When the primary is lost.
  owner: team-db  service: orders-db  tags: postgres, sev1  timeout: 45m  lock: yes
  file: runbooks/db-failover.toml

Params:
  PARAM    VALUE                          DESCRIPTION
  replica  required, pattern ^db-[0-9]+$  Replica to promote
  token    env $TOKEN, secret

Steps, in run order:
  #  STEP        KIND    NEEDS                  DETAILS
  1  check-lag   auto    -                      "Check replication lag", timeout 30s, retries 2 every 5s x2, readonly, capture lag
  2  check-disk  auto    -
  3  fence       manual  check-lag, check-disk  ask fenced_by
  4  promote     auto    fence                  when {{lt lag 30}}, confirm, on failure prompt, rollback, milestone mitigated
"#,
        )
        .run();
}

#[test]
fn show_json_has_every_field() {
    let out = two().args(&["show", "db-failover", "--json"]).run();
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("json: {e}"));
    assert_eq!(v["title"], "Fail over the primary");
    assert_eq!(
        v["order"],
        serde_json::json!(["check-lag", "check-disk", "fence", "promote"])
    );
    let promote = &v["steps"][3];
    assert_eq!(promote["run"], "ssh {{replica}} pg_ctl promote");
    assert_eq!(promote["needs"], serde_json::json!(["fence"]));
    assert_eq!(promote["on_failure"], "prompt");
    assert_eq!(promote["milestone"], "mitigated");
    assert_eq!(v["steps"][0]["timeout"], "30s");
    assert_eq!(v["steps"][2]["manual"], "Power off the old primary.");
    assert_eq!(v["params"][1]["secret"], true);
}

#[test]
fn show_of_an_invalid_runbook_prints_its_diagnostics() {
    Test::new()
        .runbook(
            "bad",
            &runbook_with("[[step]]\nid = \"a\"\nrun = \"{{x}}\"\n"),
        )
        .args(&["show", "bad"])
        .status(2)
        .stderr_has("runbooks/bad.toml:6:10: error: unknown variable `x` in `run`")
        .stdout("")
        .run();
}

#[test]
fn graph_mermaid() {
    two()
        .args(&["graph", "db-failover"])
        .stdout(
            r#"---
title: "Fail over the primary"
---
flowchart TD
    s0["check-lag: Check replication lag"]
    s1["check-disk"]
    s2[/"fence"/]:::manual
    s3["promote (when {{lt lag 30}})"]
    s0 --> s2
    s1 --> s2
    s2 --> s3
    classDef manual fill:#fde68a,stroke:#b45309
"#,
        )
        .run();
}

#[test]
fn graph_dot() {
    two()
        .args(&["graph", "db-failover", "--format", "dot"])
        .stdout(
            r##"digraph "db-failover" {
    label="Fail over the primary";
    labelloc=t;
    rankdir=TB;
    node [shape=box, style=rounded, fontname="Helvetica"];
    "check-lag" [label="check-lag: Check replication lag"];
    "check-disk" [label="check-disk"];
    "fence" [label="fence", shape=parallelogram, style=filled, fillcolor="#fde68a"];
    "promote" [label="promote (when {{lt lag 30}})"];
    "check-lag" -> "fence";
    "check-disk" -> "fence";
    "fence" -> "promote";
}
"##,
        )
        .run();
}

#[test]
fn graph_rejects_an_unknown_format() {
    two()
        .args(&["graph", "db-failover", "--format", "png"])
        .status(2)
        .stderr_has("invalid value 'png' for '--format <FORMAT>'")
        .run();
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    Test::new()
        .args(&["frobnicate"])
        .status(2)
        .stderr_has("unrecognized subcommand")
        .run();
    Test::new()
        .args(&["show"])
        .status(2)
        .stderr_has("required")
        .run();
    Test::new()
        .args(&["--help"])
        .stdout_has("Usage: runbook")
        .run();
    Test::new()
        .args(&["--version"])
        .stdout_has("runbook ")
        .run();
}
