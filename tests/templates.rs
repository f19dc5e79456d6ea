//! Values in templates (issue 11): patterns that hold for the whole value, params whose
//! environment variable is missing, conditions that mean what they say, values that stay
//! data in every shell context, and a choice of shell.

use crate::test::Test;

#[test]
fn a_pattern_must_match_the_whole_value() {
    // Unanchored, as people write it: it still holds for the whole value.
    let text = "[runbook]\ntitle = \"t\"\n\n[params.replica]\nrequired = true\npattern = \"db-[0-9]+\"\n\n[[step]]\nid = \"a\"\nrun = \"echo {{replica}} > seen\"\n";
    for evil in [
        "db-1; touch pwned",
        "xdb-1",
        "db-1\nid",
        "$(touch pwned)db-1",
    ] {
        let ran = Test::new()
            .runbook("x", text)
            .args(&["exec", "x", "--var", &format!("replica={evil}")])
            .status(2)
            .stderr_has("does not match its pattern `db-[0-9]+`")
            .run();
        assert!(!ran.dir.join("pwned").exists() && !ran.dir.join("seen").exists());
    }
    let ran = Test::new()
        .runbook("x", text)
        .args(&["exec", "x", "--var", "replica=db-12"])
        .run();
    assert_eq!(
        std::fs::read_to_string(ran.dir.join("seen")).unwrap(),
        "db-12\n"
    );
    // Alternatives are anchored as a whole, and defaults are checked the same way.
    Test::new()
        .runbook(
            "x",
            "[runbook]\ntitle = \"t\"\n\n[params.mode]\ndefault = \"fastest\"\npattern = \"fast|slow\"\n\n[[step]]\nid = \"a\"\nrun = \"true\"\n",
        )
        .args(&["check", "x"])
        .status(2)
        .stderr_has("5:11: error: the default of param `mode` does not match its pattern `fast|slow`")
        .run();
}

const FROM_ENV: &str = r#"[runbook]
title = "t"

[params.token]
env = "RUNBOOK_TEST_TOKEN"
secret = true

[params.region]
env = "RUNBOOK_TEST_REGION"

[[step]]
id = "a"
run = "touch ran"
"#;

#[test]
fn a_param_whose_environment_variable_is_unset_stops_the_run_before_anything_runs() {
    let ran = Test::new()
        .runbook("x", FROM_ENV)
        .args(&["exec", "x"])
        .env("RUNBOOK_TEST_REGION", "eu-1")
        .status(2)
        .stderr("error: param `token` comes from $RUNBOOK_TEST_TOKEN, which is not set (or is empty): set it before running\n")
        .run();
    assert!(!ran.dir.join("ran").exists() && ran.log_files().is_empty());
    // Empty counts as unset; a param that is not secret may also be given with --var.
    let ran = Test::new()
        .runbook("x", FROM_ENV)
        .args(&["exec", "x", "--dry-run"])
        .env("RUNBOOK_TEST_TOKEN", "t0ken-value")
        .env("RUNBOOK_TEST_REGION", "")
        .status(2)
        .stderr("error: param `region` comes from $RUNBOOK_TEST_REGION, which is not set (or is empty): set it before running, or give --var region=VALUE\n")
        .run();
    assert!(ran.log_files().is_empty());
    Test::new()
        .runbook("x", FROM_ENV)
        .args(&["exec", "x", "--var", "region=eu-2"])
        .env("RUNBOOK_TEST_TOKEN", "t0ken-value")
        .run();
    // A default is the answer when the variable is not set.
    let with_default = FROM_ENV.replace(
        "env = \"RUNBOOK_TEST_REGION\"",
        "env = \"RUNBOOK_TEST_REGION\"\ndefault = \"eu-0\"",
    );
    let ran = Test::new()
        .runbook("x", &with_default)
        .args(&["exec", "x"])
        .env("RUNBOOK_TEST_TOKEN", "t0ken-value")
        .run();
    assert_eq!(ran.log()[0]["params"]["region"], "eu-0");
    assert!(ran.dir.join("ran").exists());
}
