//! The fleet keys of the format (issue 13): `hosts`, `batch`, `max_failed` and the groups
//! of `hosts.toml`, checked with a located message before anything runs.

use crate::test::{Test, runbook_with};

#[test]
fn a_host_name_that_ssh_would_read_as_an_option_is_refused() {
    Test::new()
        .runbook(
            "x",
            &runbook_with("[[step]]\nid = \"a\"\nhosts = [\"web-1\", \"-oProxyCommand=x\"]\nrun = \"true\"\n"),
        )
        .args(&["check", "x"])
        .status(2)
        .stderr(
            r#"runbooks/x.toml:6:20: error: `-oProxyCommand=x` is not a host name: it would be read as an ssh option
  |
6 | hosts = ["web-1", "-oProxyCommand=x"]
  |                    ^^^^^^^^^^^^^^^^
"#,
        )
        .run();
}

#[test]
fn fleet_keys_are_checked_with_their_place() {
    let ran = Test::new()
        .runbook(
            "x",
            r#"[runbook]
title = "Bad"

[params.host]
default = "x"

[[step]]
id = "a"
manual = "do it"
hosts = ["web-1"]

[[step]]
id = "b"
run = "true"
batch = 2

[[step]]
id = "c"
hosts = ["web-1", "@nope"]
batch = 0
max_failed = "120%"
run = "true"

[[step]]
id = "e"
hosts = " , "
run = "true"

[[step]]
id = "f"
hosts = 3
batch = "x"
run = "true"
"#,
        )
        .args(&["check", "x"])
        .status(2)
        .stdout("failed: 1 of 1 runbook invalid, 9 errors\n")
        .run();
    let err = ran.stderr();
    for want in [
        "4:9: error: param `host` would be hidden by the host name in steps with `hosts`",
        "10:9: error: `hosts` applies only to `run` steps, and step `a` is manual",
        "15:9: error: step `b` sets `batch` but has no `hosts`",
        "19:20: error: no group `nope`: there is no hosts.toml beside the runbook to define it",
        "20:9: error: `batch` must be a whole number from 1 to 10000 or a percentage from 1% to 100%",
        "21:14: error: `max_failed` must be a whole number from 0 to 10000 or a percentage from 0% to 100%",
        "26:9: error: `hosts` names no host",
        "31:9: error: `hosts` must be a string or an array of strings, found integer",
        "32:9: error: `batch` must be a whole number",
    ] {
        assert!(err.contains(want), "lacks {want:?} in\n{err}");
    }
}

#[test]
fn host_is_set_only_in_steps_with_hosts_and_not_in_hosts_itself() {
    let ran = Test::new()
        .runbook(
            "x",
            &runbook_with(
                "[[step]]\nid = \"a\"\nrun = \"ssh {{host}} true\"\n\n[[step]]\nid = \"b\"\nhosts = \"{{host}}\"\nrun = \"echo {{host}}\"\nwhen = \"{{ne host 'x'}}\"\n",
            ),
        )
        .args(&["check", "x"])
        .status(2)
        .stdout("failed: 1 of 1 runbook invalid, 2 errors\n")
        .run();
    let err = ran.stderr();
    assert!(err.contains("unknown variable `host` in `run`"), "{err}");
    assert!(
        err.contains("= help: `host` is set in steps with `hosts`, to each host's name"),
        "{err}"
    );
    assert!(err.contains("unknown variable `host` in `hosts`"), "{err}");
    assert!(
        err.contains("= help: `hosts` is rendered once for the step, before any host is known"),
        "{err}"
    );
}

#[test]
fn groups_come_from_hosts_toml_which_is_checked_and_is_not_a_runbook() {
    let t = Test::new()
        .file("runbooks/hosts.toml", b"web = [\"web-1\", \"web-2\"]\n")
        .runbook(
            "x",
            &runbook_with("[[step]]\nid = \"a\"\nhosts = \"@web @wbe\"\nrun = \"true\"\n"),
        );
    let ran = t.args(&["check"]).status(2).run();
    let err = ran.stderr();
    assert!(
        err.contains("error: no group `wbe` in runbooks/hosts.toml (did you mean `@web`?)"),
        "{err}"
    );
    // A broken groups file is reported as itself, for the runbooks that use it.
    Test::new()
        .file("runbooks/hosts.toml", b"web = \"web-1\"\n\"bad name\" = [\"x\"]\n")
        .runbook("x", &runbook_with("[[step]]\nid = \"a\"\nhosts = \"web-1\"\nrun = \"true\"\n"))
        .runbook("y", &runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"))
        .args(&["check"])
        .status(2)
        .stderr_has("runbooks/hosts.toml:1:7: error: group `web` must be an array of host names, found string")
        .stderr_has("runbooks/hosts.toml:2:1: error: `bad name` is not a valid group name")
        .stdout("failed: 1 of 2 runbooks invalid, 2 errors\n")
        .run();
    Test::new()
        .file("runbooks/hosts.toml", b"web = [\"web-1\"]\n")
        .args(&["exec", "hosts"])
        .status(2)
        .stderr("error: runbooks/hosts.toml holds the host groups of fleet steps, not a runbook\n")
        .run();
}

#[test]
fn hosts_cannot_come_from_a_secret_and_show_names_the_fleet_settings() {
    Test::new()
        .runbook(
            "x",
            "[runbook]\ntitle = \"T\"\n\n[params.targets]\ndefault = \"web-1\"\nsecret = true\n\n[[step]]\nid = \"a\"\nhosts = \"{{targets}}\"\nrun = \"true\"\n",
        )
        .args(&["check", "x"])
        .status(2)
        .stderr_has("10:12: error: `hosts` uses the secret param `targets`")
        .run();
    Test::new()
        .runbook(
            "x",
            &runbook_with("[[step]]\nid = \"a\"\nhosts = [\"web-1\", \"@web\"]\nbatch = \"25%\"\nmax_failed = 1\nrun = \"true\"\n"),
        )
        .file("runbooks/hosts.toml", b"web = [\"web-2\"]\n")
        .args(&["show", "x"])
        .stdout_has("on hosts web-1 @web, batch 25%, max_failed 1")
        .run();
}

#[test]
fn a_secret_in_a_fleet_steps_command_is_refused_by_check() {
    let text = r#"[runbook]
title = "T"

[params.token]
secret = true
default = "s3cr3t-value"

[[step]]
id = "deploy"
hosts = ["web-1", "web-2"]
run = "curl -H {{token}} localhost/reload"
"#;
    crate::test::Test::new()
        .runbook("x", text)
        .args(&["check", "x"])
        .status(2)
        .stderr_has("error: a step with `hosts` cannot use the secret param `token`")
        .stderr_has("ssh's command line")
        .run();
}
