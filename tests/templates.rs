//! Values in templates (issue 11): patterns that hold for the whole value, params whose
//! environment variable is missing, conditions that mean what they say, values that stay
//! data in every shell context, and a choice of shell.

use crate::test::{Test, runbook_with};

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

#[test]
fn a_when_with_no_expression_or_text_outside_it_is_refused() {
    let steps = "[[step]]\nid = \"a\"\nmanual = \"Look.\"\nask = \"answer\"\n\n[[step]]\nid = \"b\"\nrun = \"true\"\nwhen = \"answer > 100\"\n\n[[step]]\nid = \"c\"\nrun = \"true\"\nwhen = \"{{answer}} > 100\"\n";
    Test::new()
        .runbook("x", &runbook_with(steps))
        .args(&["check", "x"])
        .status(2)
        .stderr(
            r#"runbooks/x.toml:12:9: error: `when` has no {{...}} expression: "answer > 100" is fixed text, which is always true
   |
12 | when = "answer > 100"
   |         ^^^^^^^^^^^^
   = help: write the test as a helper, for example when = "{{gt answer 100}}"; the helpers are listed in docs/spec.md
runbooks/x.toml:17:20: error: `when` has text outside its expression (`> 100`): the condition is the whole rendered text, so it is always true
   |
17 | when = "{{answer}} > 100"
   |                    ^^^^^
   = help: write the test as a helper, for example when = "{{gt answer 100}}"; the helpers are listed in docs/spec.md
"#,
        )
        .run();
}

#[test]
fn a_comparison_with_the_wrong_number_of_values_is_refused() {
    Test::new()
        .runbook(
            "x",
            &runbook_with("[[step]]\nid = \"a\"\nrun = \"echo 1\"\ncapture = \"lag\"\n\n[[step]]\nid = \"b\"\nrun = \"true\"\nwhen = \"{{lt lag}}\"\n"),
        )
        .args(&["check", "x"])
        .status(2)
        .stderr_has("x.toml:12:11: error: `lt` compares two values; it is given 1")
        .stderr_has("= help: write {{lt a b}}, for example {{lt lag 30}}")
        .run();
}

/// Every comparison of `a` with `b`, one step each: the steps that ran say which held.
const COMPARE: &str = r#"[runbook]
title = "t"

[params.a]
required = true

[params.b]
required = true

[[step]]
id = "eq"
run = "echo eq"
when = "{{eq a b}}"
needs = []

[[step]]
id = "ne"
run = "echo ne"
when = "{{ne a b}}"
needs = []

[[step]]
id = "lt"
run = "echo lt"
when = "{{lt a b}}"
needs = []

[[step]]
id = "lte"
run = "echo lte"
when = "{{lte a b}}"
needs = []

[[step]]
id = "gt"
run = "echo gt"
when = "{{gt a b}}"
needs = []

[[step]]
id = "gte"
run = "echo gte"
when = "{{gte a b}}"
needs = []

[[step]]
id = "eq-text-5"
run = "echo eq-text-5"
when = '{{eq a "5"}}'
needs = []

[[step]]
id = "eq-number-5"
run = "echo eq-number-5"
when = "{{eq a 5}}"
needs = []
"#;

#[test]
fn comparisons_follow_one_rule_numbers_when_both_read_as_numbers_else_text() {
    // (a, b, the comparisons that hold, in step order)
    let table: &[(&str, &str, &str)] = &[
        ("5", "5", "eq lte gte eq-text-5 eq-number-5"),
        ("5", "5.0", "eq lte gte eq-text-5 eq-number-5"),
        ("5.0", "5", "eq lte gte eq-text-5 eq-number-5"),
        ("9", "10", "ne lt lte"),
        ("007", "7", "eq lte gte"),
        ("-2", "1e1", "ne lt lte"),
        ("100", "99.5", "ne gt gte"),
        ("abc", "abd", "ne lt lte"),
        ("10", "9a", "ne lt lte"),
        ("", "0", "ne lt lte"),
        ("B", "a", "ne lt lte"),
        ("db-2", "db-10", "ne gt gte"),
        ("0x10", "16", "ne lt lte"),
    ];
    for (a, b, want) in table {
        let ran = Test::new()
            .runbook("x", COMPARE)
            .args(&[
                "exec",
                "x",
                "--parallel",
                "1",
                "--var",
                &format!("a={a}"),
                "--var",
                &format!("b={b}"),
            ])
            .run();
        let got: Vec<String> = ran.stdout().lines().map(str::to_string).collect();
        assert_eq!(got.join(" "), *want, "a = {a:?}, b = {b:?}");
    }
}

#[test]
fn template_errors_at_run_time_are_said_in_the_runbooks_words() {
    let ran = Test::new()
        .runbook(
            "x",
            &runbook_with("[[step]]\nid = \"a\"\nrun = \"echo {{not run_id dry_run}}\"\n"),
        )
        .args(&["exec", "x"])
        .status(1)
        .stderr_has("cannot render the command: `not` takes one value; it was given 2")
        .run();
    let reason = ran.finished("a")["reason"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        !reason.contains("Helper") && !reason.contains("Failed to"),
        "{reason}"
    );
}

/// The commands people write first, with a value that tries to become code in each.
const WRITTEN_FIRST: &str = r#"[runbook]
title = "t"

[params.reason]
required = true

[[step]]
id = "single"
run = "echo 'reason: {{reason}}' > single"

[[step]]
id = "double"
run = "echo \"reason: {{reason}}\" > double"

[[step]]
id = "bare"
run = "printf 'reason: %s\n' {{reason}} > bare"

[[step]]
id = "subst"
run = "printf '%s\n' \"$(printf 'reason: %s' {{reason}})\" > subst"

[[step]]
id = "backquote"
run = "x=`printf 'reason: %s' '{{reason}}'`; printf '%s\n' \"$x\" > backquote"

[[step]]
id = "heredoc"
run = """
cat > heredoc <<EOF
reason: {{reason}}
EOF
"""
"#;

#[test]
fn a_value_stays_data_in_quotes_substitutions_and_here_documents() {
    for evil in [
        "x; touch pwned #",
        "$(touch pwned)",
        "`touch pwned`",
        "x' ; touch pwned ; echo '",
        "x\" ; touch pwned ; echo \"",
        "a\\\nEOF\ntouch pwned",
        "-n",
    ] {
        let ran = Test::new()
            .runbook("x", WRITTEN_FIRST)
            .args(&["exec", "x", "--var", &format!("reason={evil}")])
            .run();
        assert!(!ran.dir.join("pwned").exists(), "{evil:?} ran as code");
        for file in ["single", "double", "bare", "subst", "backquote", "heredoc"] {
            let got = std::fs::read_to_string(ran.dir.join(file)).unwrap();
            assert_eq!(got, format!("reason: {evil}\n"), "{file}: {evil:?}");
        }
    }
}

#[test]
fn captured_and_typed_values_stay_data_too() {
    let text = runbook_with(
        r#"[[step]]
id = "grab"
run = "printf '%s' '$(touch pwned)`touch pwned2`'\\''; touch pwned3 #'"
capture = "got"

[[step]]
id = "ask"
manual = "Type something."
ask = "typed"

[[step]]
id = "use"
run = "printf '%s|%s' \"{{got}}\" '{{typed}}' > used"
"#,
    );
    let ran = Test::new()
        .runbook("x", &text)
        .args(&["exec", "x"])
        .stdin("'; touch pwned4; echo '\n")
        .run();
    for f in ["pwned", "pwned2", "pwned3", "pwned4"] {
        assert!(!ran.dir.join(f).exists(), "{f}");
    }
    assert_eq!(
        std::fs::read_to_string(ran.dir.join("used")).unwrap(),
        "$(touch pwned)`touch pwned2`'; touch pwned3 #|'; touch pwned4; echo '"
    );
}

#[test]
fn check_refuses_a_value_where_no_quoting_holds_and_says_the_safe_ways() {
    let text = runbook_with(
        "[params.reason]\nrequired = true\n\n[[step]]\nid = \"a\"\nrun = \"sh -c 'echo {{reason}}'\"\n\n[[step]]\nid = \"b\"\nrun = \"ssh db-1 echo {{reason}}\"\nrollback = \"eval echo {{reason}}\"\n",
    );
    Test::new()
        .runbook("x", &text)
        .args(&["check", "x"])
        .status(2)
        .stderr(
            r#"runbooks/x.toml:9:20: error: `{{reason}}` cannot stay data here: a shell's `-c` script is parsed again by that shell, so quoting cannot keep the value data there
  |
9 | run = "sh -c 'echo {{reason}}'"
  |                    ^^^^^^^^^^
  = help: move the value into the step's `env` (env = { NAME = "{{x}}" }) and read "$NAME" where it is needed (a nested shell reads it inside its script: sh -c 'echo "$NAME"'; or give it as an argument after the script: sh -c 'echo "$1"' sh {{x}}); or, on purpose, insert it raw with {{{x}}} (then a strict `pattern` on the param is what keeps it safe)
runbooks/x.toml:13:22: error: `{{reason}}` cannot stay data here: `ssh` sends the words after the host to a remote shell, which parses them again, so quoting cannot keep the value data there
   |
13 | run = "ssh db-1 echo {{reason}}"
   |                      ^^^^^^^^^^
   = help: the remote shell parses whatever it is sent, "$NAME" included: send the value on stdin (env = { NAME = "{{x}}" } and printf '%s\n' "$NAME" | ssh host 'read -r v; ...'), or, on purpose, insert it raw with {{{x}}} and guard it with a strict `pattern` on the param
runbooks/x.toml:14:23: error: `{{reason}}` cannot stay data here: `eval` parses its arguments again as shell code, so quoting cannot keep the value data there
   |
14 | rollback = "eval echo {{reason}}"
   |                       ^^^^^^^^^^
   = help: move the value into the step's `env` (env = { NAME = "{{x}}" }) and read "$NAME" where it is needed (a nested shell reads it inside its script: sh -c 'echo "$NAME"'; or give it as an argument after the script: sh -c 'echo "$1"' sh {{x}}); or, on purpose, insert it raw with {{{x}}} (then a strict `pattern` on the param is what keeps it safe)
"#,
        )
        .run();
    // The first safe way: the value in `env`, the command reading "$NAME".
    let fixed = runbook_with(
        "[params.reason]\nrequired = true\n\n[[step]]\nid = \"a\"\nrun = \"sh -c 'echo \\\"$REASON\\\"' > out\"\nenv = { REASON = \"{{reason}}\" }\n",
    );
    let ran = Test::new()
        .runbook("x", &fixed)
        .args(&["exec", "x", "--var", "reason=$(touch pwned); `touch pwned`"])
        .run();
    assert!(!ran.dir.join("pwned").exists());
    assert_eq!(
        std::fs::read_to_string(ran.dir.join("out")).unwrap(),
        "$(touch pwned); `touch pwned`\n"
    );
}

#[test]
fn a_nul_in_a_value_is_an_error_that_names_it() {
    let text = runbook_with(
        "[[step]]\nid = \"grab\"\nrun = \"printf 'a\\\\000b'\"\ncapture = \"blob\"\n\n[[step]]\nid = \"use\"\nrun = \"printf '%s' {{blob}} > out\"\n",
    );
    let ran = Test::new()
        .runbook("x", &text)
        .args(&["exec", "x"])
        .status(1)
        .stderr_has("cannot render the command: variable `blob` holds a NUL byte, which cannot be passed to a command")
        .run();
    assert!(!ran.dir.join("out").exists());
    assert_eq!(ran.finished("use")["status"], "failed");
}

#[test]
fn bash_with_pipefail_makes_a_failed_pipeline_fail_the_step() {
    let text = |runbook_shell: &str, step_shell: &str| {
        format!(
            "[runbook]\ntitle = \"t\"\n{runbook_shell}\n[[step]]\nid = \"pipe\"\nrun = \"false | cat; echo after > after\"\n{step_shell}\n"
        )
    };
    // The default, /bin/sh -c, hides the failure and goes on: what people complained of.
    let ran = Test::new()
        .runbook("x", &text("", ""))
        .args(&["exec", "x"])
        .run();
    assert!(ran.dir.join("after").exists());
    // bash means bash -euo pipefail -c: the pipeline fails, and the step with it.
    let ran = Test::new()
        .runbook("x", &text("shell = \"bash\"", ""))
        .args(&["exec", "x"])
        .status(1)
        .run();
    assert_eq!(ran.finished("pipe")["status"], "failed");
    assert!(!ran.dir.join("after").exists());
    // A step's own shell wins over the runbook's.
    let ran = Test::new()
        .runbook("x", &text("shell = \"bash\"", "shell = \"sh\""))
        .args(&["exec", "x"])
        .run();
    assert!(ran.dir.join("after").exists());
    // So does -u: an unset variable is an error, not an empty string.
    Test::new()
        .runbook(
            "x",
            &runbook_with(
                "[[step]]\nid = \"a\"\nshell = \"bash\"\nrun = \"echo $NOT_SET_ANYWHERE\"\n",
            ),
        )
        .args(&["exec", "x"])
        .status(1)
        .stderr_has("NOT_SET_ANYWHERE: unbound variable")
        .run();
}

#[test]
fn a_shell_can_be_given_as_its_program_and_options() {
    let text = r#"[runbook]
title = "t"

[params.who]
default = "it's me"

[[step]]
id = "bash"
shell = ["/usr/bin/env", "bash", "-c"]
run = "echo ${BASH_VERSION:+bash} {{who}}"

[[step]]
id = "awk"
shell = ["awk"]
run = "BEGIN { print 6 * 7 }"
"#;
    Test::new()
        .runbook("x", text)
        .args(&["exec", "x"])
        .stdout("bash it's me\n42\n")
        .run();
    Test::new()
        .runbook("x", text)
        .args(&["show", "x"])
        .stdout_has("shell /usr/bin/env bash -c")
        .stdout_has("shell awk")
        .run();
}

#[test]
fn check_refuses_values_for_a_shell_it_does_not_know_and_unknown_shell_names() {
    let text = r#"[runbook]
title = "t"
shell = "zsh"

[params.who]
default = "me"

[[step]]
id = "fish"
shell = ["fish", "-c"]
run = "echo {{who}} {{{who}}}"

[[step]]
id = "look"
manual = "Look."
shell = "bash"
"#;
    Test::new()
        .runbook("x", text)
        .args(&["check", "x"])
        .status(2)
        .stderr(
            r#"runbooks/x.toml:3:9: error: `shell` cannot be "zsh"
  |
3 | shell = "zsh"
  |         ^^^^^
  = help: the named shells are sh, bash (bash runs with -euo pipefail); any other is given as its program and options, to which the command is added last: shell = ["zsh", "-c"]
runbooks/x.toml:11:13: error: a value cannot be inserted into a command for `fish`, whose quoting the analysis does not know (it knows sh, bash, dash)
   |
11 | run = "echo {{who}} {{{who}}}"
   |             ^^^^^^^
   = help: give the value to the command through `env` (env = { NAME = "{{x}}" }) and read the variable as that shell does, or, on purpose, insert it raw with {{{x}}}
runbooks/x.toml:16:9: error: `shell` applies only to `run` steps, and step `look` is manual
   |
16 | shell = "bash"
   |         ^^^^^^
"#,
        )
        .run();
}

const PROVIDER_SKIPPED: &str = r#"[runbook]
title = "t"

[[step]]
id = "measure"
run = "echo 5"
capture = "lag"
when = "{{eq dry_run true}}"

[[step]]
id = "report"
run = "echo lag {{lag}}"
on_failure = "continue"

[[step]]
id = "promote"
run = "echo promote at {{lag}}"
needs = ["measure"]

[[step]]
id = "unrelated"
run = "echo fine"
needs = ["measure"]
"#;

#[test]
fn skipping_a_step_that_captures_names_the_steps_that_need_the_value() {
    let ran = Test::new()
        .runbook("x", PROVIDER_SKIPPED)
        .args(&["exec", "x", "--parallel", "1"])
        .status(1)
        .stderr_has("warning: `lag` is not set: step measure was skipped. These steps need it and will fail when they start: report (the run goes on), promote (the run stops there)")
        .run();
    let notice = ran
        .events("notice")
        .into_iter()
        .find(|n| n["level"] == "warning")
        .unwrap();
    assert_eq!(notice["step"], "measure");
    assert_eq!(ran.finished("report")["status"], "failed");
    assert!(
        ran.finished("report")["reason"]
            .as_str()
            .unwrap_or("")
            .contains("variable `lag` is not set")
    );
}

#[test]
fn passing_over_a_failed_capture_or_starting_after_it_says_the_same() {
    // A failure skipped at its prompt.
    let text = PROVIDER_SKIPPED
        .replace(
            "run = \"echo 5\"",
            "run = \"exit 3\"\non_failure = \"prompt\"",
        )
        .replace("when = \"{{eq dry_run true}}\"\n", "");
    Test::new()
        .runbook("x", &text)
        .args(&["exec", "x", "--parallel", "1"])
        .stdin("skip\n")
        .status(1)
        .stderr_has("warning: `lag` is not set: step measure failed and the run goes on. These steps need it and will fail when they start: report (the run goes on), promote (the run stops there)")
        .run();
    // --start-at records the ancestors as done by hand: their values are not known, and
    // the run says so before anything starts (give them with --var).
    let text = PROVIDER_SKIPPED.replace("when = \"{{eq dry_run true}}\"\n", "");
    Test::new()
        .runbook("x", &text)
        .args(&["exec", "x", "--start-at", "unrelated", "--parallel", "1"])
        .status(2)
        .stderr_has("the steps that will run use values that the skipped steps would have provided: `lag` (from measure, used by report, promote); give them with --var lag=VALUE")
        .run();
}

#[test]
fn a_refusal_in_a_string_with_escapes_points_at_the_value_itself() {
    let text = "[runbook]\ntitle = \"t\"\n\n[params.x]\ndefault = \"a\"\n\n[[step]]\nid = \"a\"\nrun = \"printf '%s\\n' \\\"$(sh -c 'echo {{x}}')\\\" \\u00e9 {{x}}\"\n\n[[step]]\nid = \"b\"\nrun = \"\"\"\necho \\\"ok\\\" \\\n   then; eval {{x}}\n\"\"\"\n";
    let ran = Test::new()
        .runbook("x", text)
        .args(&["check", "x"])
        .status(2)
        .stderr_has(
            "runbooks/x.toml:9:38: error: `{{x}}` cannot stay data here: a shell's `-c` script",
        )
        .stderr_has("runbooks/x.toml:15:15: error: `{{x}}` cannot stay data here: `eval`")
        .run();
    assert!(
        ran.stderr()
            .contains("|                                      ^^^^^\n"),
        "{}",
        ran.stderr()
    );
}

#[test]
fn a_value_a_second_shell_would_read_as_code_is_refused() {
    // Data to the first shell, code to the one that reads its standard input.
    let text = runbook_with(
        "[params.x]\ndefault = \"a\"\n\n[[step]]\nid = \"a\"\nrun = '''\nbash <<EOF\necho {{x}}\nEOF\necho {{x}} | sh\n'''\n",
    );
    Test::new()
        .runbook("x", &text)
        .args(&["check", "x"])
        .status(2)
        .stderr_has("x.toml:11:6: error: `{{x}}` cannot stay data here: it stands in a here-document that a shell, ssh or an interpreter reads as code (`bash <<EOF`, `cat <<EOF | sh`)")
        .stderr_has("x.toml:13:6: error: `{{x}}` cannot stay data here: it stands in a pipeline that hands its output to a shell, ssh or an interpreter as code (`echo ... | sh`)")
        .run();
    // The same value as data for cat, and a shell that reads it from its environment.
    let fixed = runbook_with(
        "[params.x]\nrequired = true\n\n[[step]]\nid = \"a\"\nrun = '''\ncat > note <<EOF\n{{x}}\nEOF\nbash <<'EOF'\nprintf '%s\\n' \"$X\" >> note\nEOF\n'''\nenv = { X = \"{{x}}\" }\n",
    );
    let ran = Test::new()
        .runbook("x", &fixed)
        .args(&["exec", "x", "--var", "x=;touch pwned"])
        .run();
    assert!(!ran.dir.join("pwned").exists());
    assert_eq!(
        std::fs::read_to_string(ran.dir.join("note")).unwrap(),
        ";touch pwned\n;touch pwned\n"
    );
}
