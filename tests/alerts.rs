//! Alerts start the response (issue 14): the runbook format's `[alert]` and `from_label`.

use crate::test::Test;

#[test]
fn the_alert_block_and_from_label_are_checked_with_located_errors() {
    Test::new()
        .runbook(
            "bad",
            r#"[runbook]
title = "x"

[alert]
match = { "bad-label" = "x", sev = 1 }
diagnos = true

[params.p]
from_label = "0instance"

[[step]]
id = "a"
run = "true"
"#,
        )
        .args(&["check", "bad"])
        .status(2)
        .stderr_has("unknown key `diagnos` in [alert]")
        .stderr_has("did you mean `diagnose`?")
        .stderr_has("`match`: `bad-label` is not a Prometheus label name")
        .stderr_has("label values in `match` must be strings, found integer")
        .stderr_has("`from_label`: `0instance` is not a Prometheus label name")
        .run();
    Test::new()
        .runbook("empty", "[runbook]\ntitle = \"x\"\n\n[alert]\nmatch = {}\n\n[[step]]\nid = \"a\"\nrun = \"true\"\n")
        .args(&["check", "empty"])
        .status(2)
        .stderr_has("`match` is empty, so it would match every alert")
        .run();
}
