//! Every class of validation error, with the exact diagnostic `check` prints.

use crate::test::Test;

#[test]
fn toml_syntax() {
    Test::new()
        .runbook("toml-syntax", r#"[runbook]
title = "Test"

[[step]]
id = "a"
run = "echo hi
"#)
        .args(&["check", "toml-syntax"])
        .status(2)
        .stderr(r#"runbooks/toml-syntax.toml:6:15: error: TOML syntax: invalid basic string, expected `"`
  |
6 | run = "echo hi
  |               ^
"#)
        .stdout(r#"failed: 1 of 1 runbook invalid, 1 error
"#)
        .run();
}

#[test]
fn unknown_step_key_suggests() {
    Test::new()
        .runbook(
            "unknown-step-key-suggests",
            r#"[runbook]
title = "Test"

[[step]]
id = "a"
run = "true"

[[step]]
id = "b"
run = "true"
neds = ["a"]
"#,
        )
        .args(&["check", "unknown-step-key-suggests"])
        .status(2)
        .stderr(
            r#"runbooks/unknown-step-key-suggests.toml:11:1: error: unknown key `neds` in step `b`
   |
11 | neds = ["a"]
   | ^^^^
   = help: did you mean `needs`?
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn steps_table_suggests_step() {
    Test::new()
        .runbook("steps-table-suggests-step", r#"[runbook]
title = "Test"

[[steps]]
id = "a"
run = "true"
"#)
        .args(&["check", "steps-table-suggests-step"])
        .status(2)
        .stderr(r#"runbooks/steps-table-suggests-step.toml:4:3: error: unknown key `steps` at the top level
  |
4 | [[steps]]
  |   ^^^^^
  = help: did you mean `step`?
"#)
        .stdout(r#"failed: 1 of 1 runbook invalid, 1 error
"#)
        .run();
}

#[test]
fn missing_runbook_table() {
    Test::new()
        .runbook(
            "missing-runbook-table",
            r#"[[step]]
id = "a"
run = "true"
"#,
        )
        .args(&["check", "missing-runbook-table"])
        .status(2)
        .stderr(
            r#"runbooks/missing-runbook-table.toml:1:1: error: missing the [runbook] table
  |
1 | [[step]]
  | ^
  = help: start the file with [runbook] and a title = "..."
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn missing_title() {
    Test::new()
        .runbook(
            "missing-title",
            r#"[runbook]
owner = "team-db"

[[step]]
id = "a"
run = "true"
"#,
        )
        .args(&["check", "missing-title"])
        .status(2)
        .stderr(
            r#"runbooks/missing-title.toml:1:1: error: [runbook] has no `title`
  |
1 | [runbook]
  | ^^^^^^^^^
  = help: add title = "what this runbook does"
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn wrong_type() {
    Test::new()
        .runbook(
            "wrong-type",
            r#"[runbook]
title = "Test"

[[step]]
id = "a"
run = "true"
retries = "3"
confirm = "yes"
"#,
        )
        .args(&["check", "wrong-type"])
        .status(2)
        .stderr(
            r#"runbooks/wrong-type.toml:7:11: error: `retries` must be a whole number, found string
  |
7 | retries = "3"
  |           ^^^
runbooks/wrong-type.toml:8:11: error: `confirm` must be true or false, found string
  |
8 | confirm = "yes"
  |           ^^^^^
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 2 errors
"#,
        )
        .run();
}

#[test]
fn bad_duration() {
    Test::new()
        .runbook("bad-duration", r#"[runbook]
title = "Test"

[[step]]
id = "a"
run = "true"
timeout = "5 parsecs"
"#)
        .args(&["check", "bad-duration"])
        .status(2)
        .stderr(r#"runbooks/bad-duration.toml:7:11: error: `timeout` is not a duration: unknown time unit "parsecs", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)
  |
7 | timeout = "5 parsecs"
  |           ^^^^^^^^^^^
  = help: write durations like "30s", "5m", "1h 30m"
"#)
        .stdout(r#"failed: 1 of 1 runbook invalid, 1 error
"#)
        .run();
}

#[test]
fn zero_duration() {
    Test::new()
        .runbook(
            "zero-duration",
            r#"[runbook]
title = "Test"

[[step]]
id = "a"
run = "true"
timeout = "0s"
"#,
        )
        .args(&["check", "zero-duration"])
        .status(2)
        .stderr(
            r#"runbooks/zero-duration.toml:7:11: error: `timeout` must be longer than zero
  |
7 | timeout = "0s"
  |           ^^^^
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn duplicate_id() {
    Test::new()
        .runbook(
            "duplicate-id",
            r#"[runbook]
title = "Test"

[[step]]
id = "a"
run = "true"

[[step]]
id = "a"
run = "false"
"#,
        )
        .args(&["check", "duplicate-id"])
        .status(2)
        .stderr(
            r#"runbooks/duplicate-id.toml:9:6: error: duplicate step id `a`
  |
9 | id = "a"
  |      ^^^
  = help: first used on line 5; step ids must be unique
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn invalid_id() {
    Test::new()
        .runbook(
            "invalid-id",
            r#"[runbook]
title = "Test"

[[step]]
id = "Check Lag"
run = "true"
"#,
        )
        .args(&["check", "invalid-id"])
        .status(2)
        .stderr(
            r#"runbooks/invalid-id.toml:5:6: error: step id `Check Lag` is not valid
  |
5 | id = "Check Lag"
  |      ^^^^^^^^^^^
  = help: ids are lowercase letters, digits, `-` and `_`, starting with a letter or digit
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn missing_id() {
    Test::new()
        .runbook(
            "missing-id",
            r#"[runbook]
title = "Test"

[[step]]
run = "true"
"#,
        )
        .args(&["check", "missing-id"])
        .status(2)
        .stderr(
            r#"runbooks/missing-id.toml:4:1: error: this step has no `id`
  |
4 | [[step]]
  | ^^^^^^^^
  = help: add id = "short-name"
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn needs_unknown_suggests() {
    Test::new()
        .runbook(
            "needs-unknown-suggests",
            r#"[runbook]
title = "Test"

[[step]]
id = "check-lag"
run = "true"

[[step]]
id = "promote"
run = "true"
needs = ["chek-lag"]
"#,
        )
        .args(&["check", "needs-unknown-suggests"])
        .status(2)
        .stderr(
            r#"runbooks/needs-unknown-suggests.toml:11:10: error: no step has the id `chek-lag`
   |
11 | needs = ["chek-lag"]
   |          ^^^^^^^^^^
   = help: did you mean `check-lag`?
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn needs_self() {
    Test::new()
        .runbook(
            "needs-self",
            r#"[runbook]
title = "Test"

[[step]]
id = "a"
run = "true"
needs = ["a"]
"#,
        )
        .args(&["check", "needs-self"])
        .status(2)
        .stderr(
            r#"runbooks/needs-self.toml:7:10: error: step `a` needs itself
  |
7 | needs = ["a"]
  |          ^^^
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn cycle_names_steps() {
    Test::new()
        .runbook(
            "cycle-names-steps",
            r#"[runbook]
title = "Test"

[[step]]
id = "a"
run = "true"
needs = ["c"]

[[step]]
id = "b"
run = "true"
needs = ["a"]

[[step]]
id = "c"
run = "true"
needs = ["b"]
"#,
        )
        .args(&["check", "cycle-names-steps"])
        .status(2)
        .stderr(
            r#"runbooks/cycle-names-steps.toml:7:10: error: dependency cycle: a -> c -> b -> a
  |
7 | needs = ["c"]
  |          ^^^
  = help: each step waits for the one after it in this list; remove one of these `needs`
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn run_and_manual() {
    Test::new()
        .runbook(
            "run-and-manual",
            r#"[runbook]
title = "Test"

[[step]]
id = "a"
run = "true"
manual = "do it"
"#,
        )
        .args(&["check", "run-and-manual"])
        .status(2)
        .stderr(
            r#"runbooks/run-and-manual.toml:6:7: error: step `a` has both `run` and `manual`
  |
6 | run = "true"
  |       ^^^^^^
  = help: a step is either automated (`run`) or done by a person (`manual`); split it in two
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn neither_run_nor_manual() {
    Test::new()
        .runbook("neither-run-nor-manual", r#"[runbook]
title = "Test"

[[step]]
id = "a"
title = "Nothing"
"#)
        .args(&["check", "neither-run-nor-manual"])
        .status(2)
        .stderr(r#"runbooks/neither-run-nor-manual.toml:5:6: error: step `a` has neither `run` nor `manual`
  |
5 | id = "a"
  |      ^^^
  = help: add run = "command" for an automated step, or manual = "instructions"
"#)
        .stdout(r#"failed: 1 of 1 runbook invalid, 1 error
"#)
        .run();
}

#[test]
fn template_syntax() {
    Test::new()
        .runbook("template-syntax", r#"[runbook]
title = "Test"

[[step]]
id = "a"
run = "echo {{#if x}}yes"
"#)
        .args(&["check", "template-syntax"])
        .status(2)
        .stderr(r#"runbooks/template-syntax.toml:6:25: error: template syntax: this is not valid Handlebars (an unclosed `{{#block}}`, or a stray `{{` or `}}`?)
  |
6 | run = "echo {{#if x}}yes"
  |                         ^
"#)
        .stdout(r#"failed: 1 of 1 runbook invalid, 1 error
"#)
        .run();
}

#[test]
fn unknown_variable_suggests() {
    Test::new()
        .runbook(
            "unknown-variable-suggests",
            r#"[runbook]
title = "Test"

[params.host]
default = "db-1"

[[step]]
id = "a"
run = "ping -c1 {{hots}}"
"#,
        )
        .args(&["check", "unknown-variable-suggests"])
        .status(2)
        .stderr(
            r#"runbooks/unknown-variable-suggests.toml:9:19: error: unknown variable `hots` in `run`
  |
9 | run = "ping -c1 {{hots}}"
  |                   ^^^^
  = help: did you mean `host`?
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn unknown_helper() {
    Test::new()
        .runbook(
            "unknown-helper",
            r#"[runbook]
title = "Test"

[[step]]
id = "a"
run = "echo {{upper x}}"
"#,
        )
        .args(&["check", "unknown-helper"])
        .status(2)
        .stderr(
            r#"runbooks/unknown-helper.toml:6:15: error: unknown helper `upper`
  |
6 | run = "echo {{upper x}}"
  |               ^^^^^
  = help: the helpers are eq, ne, lt, lte, gt, gte, and, or, not, len, if, unless, each, with, lookup
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn capture_in_parallel_branch() {
    Test::new()
        .runbook("capture-in-parallel-branch", r#"[runbook]
title = "Test"

[[step]]
id = "start"
run = "true"

[[step]]
id = "measure"
run = "echo 5"
capture = "lag"
needs = ["start"]

[[step]]
id = "act"
run = "echo {{lag}}"
needs = ["start"]
"#)
        .args(&["check", "capture-in-parallel-branch"])
        .status(2)
        .stderr(r#"runbooks/capture-in-parallel-branch.toml:16:15: error: `lag` is not set when step `act` runs (run)
   |
16 | run = "echo {{lag}}"
   |               ^^^
   = help: `lag` comes from step `measure`, which does not always run before `act`; add "measure" to its `needs`
"#)
        .stdout(r#"failed: 1 of 1 runbook invalid, 1 error
"#)
        .run();
}

#[test]
fn capture_clashes_with_param() {
    Test::new()
        .runbook("capture-clashes-with-param", r#"[runbook]
title = "Test"

[params.lag]
default = "0"

[[step]]
id = "a"
run = "echo 5"
capture = "lag"
"#)
        .args(&["check", "capture-clashes-with-param"])
        .status(2)
        .stderr(r#"runbooks/capture-clashes-with-param.toml:10:11: error: capture `lag` clashes with the param of the same name
   |
10 | capture = "lag"
   |           ^^^^^
   = help: rename the variable or the param
"#)
        .stdout(r#"failed: 1 of 1 runbook invalid, 1 error
"#)
        .run();
}

#[test]
fn run_only_key_on_manual() {
    Test::new()
        .runbook("run-only-key-on-manual", r#"[runbook]
title = "Test"

[[step]]
id = "a"
manual = "Fence the primary."
timeout = "5m"
capture = "x"
"#)
        .args(&["check", "run-only-key-on-manual"])
        .status(2)
        .stderr(r#"runbooks/run-only-key-on-manual.toml:7:11: error: `timeout` applies only to `run` steps, and step `a` is manual
  |
7 | timeout = "5m"
  |           ^^^^
runbooks/run-only-key-on-manual.toml:8:11: error: `capture` applies only to `run` steps, and step `a` is manual
  |
8 | capture = "x"
  |           ^^^
"#)
        .stdout(r#"failed: 1 of 1 runbook invalid, 2 errors
"#)
        .run();
}

#[test]
fn bad_enum() {
    Test::new()
        .runbook(
            "bad-enum",
            r#"[runbook]
title = "Test"

[[step]]
id = "a"
run = "true"
on_failure = "contineu"
milestone = "fixed"
"#,
        )
        .args(&["check", "bad-enum"])
        .status(2)
        .stderr(
            r#"runbooks/bad-enum.toml:7:14: error: `on_failure` cannot be "contineu"
  |
7 | on_failure = "contineu"
  |              ^^^^^^^^^^
  = help: did you mean "continue"?
runbooks/bad-enum.toml:8:13: error: `milestone` cannot be "fixed"
  |
8 | milestone = "fixed"
  |             ^^^^^^^
  = help: use one of: mitigated, resolved
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 2 errors
"#,
        )
        .run();
}

#[test]
fn bad_pattern() {
    Test::new()
        .runbook("bad-pattern", r#"[runbook]
title = "Test"

[params.replica]
required = true
pattern = "^db-[0-9+$"

[[step]]
id = "a"
run = "true"
"#)
        .args(&["check", "bad-pattern"])
        .status(2)
        .stderr(r#"runbooks/bad-pattern.toml:6:11: error: `pattern` is not a valid regular expression: unclosed character class
  |
6 | pattern = "^db-[0-9+$"
  |           ^^^^^^^^^^^^
"#)
        .stdout(r#"failed: 1 of 1 runbook invalid, 1 error
"#)
        .run();
}

#[test]
fn required_with_default() {
    Test::new()
        .runbook("required-with-default", r#"[runbook]
title = "Test"

[params.replica]
required = true
default = "db-2"

[[step]]
id = "a"
run = "true"
"#)
        .args(&["check", "required-with-default"])
        .status(2)
        .stderr(r#"runbooks/required-with-default.toml:6:11: error: param `replica` is required and also has a default
  |
6 | default = "db-2"
  |           ^^^^^^
  = help: drop `required = true` or the default
"#)
        .stdout(r#"failed: 1 of 1 runbook invalid, 1 error
"#)
        .run();
}

#[test]
fn default_fails_pattern() {
    Test::new()
        .runbook("default-fails-pattern", r#"[runbook]
title = "Test"

[params.replica]
default = "db-two"
pattern = "^db-[0-9]+$"

[[step]]
id = "a"
run = "true"
"#)
        .args(&["check", "default-fails-pattern"])
        .status(2)
        .stderr(r#"runbooks/default-fails-pattern.toml:5:11: error: the default of param `replica` does not match its pattern `^db-[0-9]+$`
  |
5 | default = "db-two"
  |           ^^^^^^^^
"#)
        .stdout(r#"failed: 1 of 1 runbook invalid, 1 error
"#)
        .run();
}

#[test]
fn no_steps() {
    Test::new()
        .runbook(
            "no-steps",
            r#"[runbook]
title = "Test"

"#,
        )
        .args(&["check", "no-steps"])
        .status(2)
        .stderr(
            r#"runbooks/no-steps.toml:4:1: error: the runbook has no steps
  |
4 | 
  | ^
  = help: add at least one [[step]] with an id and a `run` or `manual`
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn empty_file() {
    Test::new()
        .runbook("empty-file", r#""#)
        .args(&["check", "empty-file"])
        .status(2)
        .stderr(
            r#"runbooks/empty-file.toml:1:1: error: the file is empty
  |
1 | 
  | ^
  = help: a runbook needs a [runbook] table with a title and at least one [[step]]
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 1 error
"#,
        )
        .run();
}

#[test]
fn step_key_misuse() {
    Test::new()
        .runbook("step-key-misuse", r#"[runbook]
title = "Test"

[[step]]
id = "a"
manual = "x"
on_failure = "continue"
milestone = "mitigated"

[[step]]
id = "b"
run = "true"
retry_backoff = 1.5
env = { "1BAD" = "x" }
milestone = "mitigated"
"#)
        .args(&["check", "step-key-misuse"])
        .status(2)
        .stderr(r#"runbooks/step-key-misuse.toml:7:14: error: `on_failure` applies only to `run` steps, and step `a` is manual
  |
7 | on_failure = "continue"
  |              ^^^^^^^^^^
runbooks/step-key-misuse.toml:13:17: error: step `b` sets `retry_backoff` but makes no retries
   |
13 | retry_backoff = 1.5
   |                 ^^^
   = help: add retries = N (extra attempts after a failure), or remove it
runbooks/step-key-misuse.toml:14:9: error: `1BAD` is not a valid environment variable name
   |
14 | env = { "1BAD" = "x" }
   |         ^^^^^^
runbooks/step-key-misuse.toml:15:13: error: milestone `mitigated` is already set by step `a`
   |
15 | milestone = "mitigated"
   |             ^^^^^^^^^^^
   = help: a milestone marks one moment of the incident; keep it on one step
"#)
        .stdout(r#"failed: 1 of 1 runbook invalid, 4 errors
"#)
        .run();
}

#[test]
fn every_error_reported() {
    Test::new()
        .runbook(
            "every-error-reported",
            r#"[runbook]
title = "Test"
tittle = "typo"

[[step]]
id = "a"
run = "echo {{nope}}"
timeout = "soon"

[[step]]
id = "b"
run = "true"
needs = ["z"]
"#,
        )
        .args(&["check", "every-error-reported"])
        .status(2)
        .stderr(
            r#"runbooks/every-error-reported.toml:3:1: error: unknown key `tittle` in [runbook]
  |
3 | tittle = "typo"
  | ^^^^^^
  = help: did you mean `title`?
runbooks/every-error-reported.toml:7:15: error: unknown variable `nope` in `run`
  |
7 | run = "echo {{nope}}"
  |               ^^^^
  = help: define it under [params], or set it with `capture` or `ask` in an earlier step
runbooks/every-error-reported.toml:8:11: error: `timeout` is not a duration: expected number at 0
  |
8 | timeout = "soon"
  |           ^^^^^^
  = help: write durations like "30s", "5m", "1h 30m"
runbooks/every-error-reported.toml:13:10: error: no step has the id `z`
   |
13 | needs = ["z"]
   |          ^^^
   = help: `needs` lists the ids of other steps in this runbook
"#,
        )
        .stdout(
            r#"failed: 1 of 1 runbook invalid, 4 errors
"#,
        )
        .run();
}
