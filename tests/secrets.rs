//! Secrets never show and never sit in a process's arguments (issue 11, point 3): a secret
//! reaches a command through its environment, masking catches every form it takes in
//! output (whole, line by line, quoted, across reads and across the 64 KiB cut), and
//! giving one on the command line is warned about.

use crate::test::Test;

/// A runbook with one secret param read from `RUNBOOK_TEST_SECRET`, and `steps`.
fn with_secret(steps: &str) -> String {
    format!(
        "[runbook]\ntitle = \"s\"\n\n[params.token]\nenv = \"RUNBOOK_TEST_SECRET\"\nsecret = true\n\n{steps}"
    )
}

/// Everything the tool wrote: stdout, stderr and the log.
fn everything(ran: &crate::test::Ran) -> String {
    let log: String = ran
        .log_files()
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    format!("{}{}{log}", ran.stdout(), ran.stderr())
}

#[test]
fn a_secret_on_a_line_over_64_kib_is_masked_wherever_the_cut_falls() {
    let secret = "hunter2-long-secret";
    for before in [
        65_500, 65_517, 65_518, 65_530, 65_535, 65_536, 65_540, 131_060,
    ] {
        let steps = format!(
            "[[step]]\nid = \"long\"\nrun = \"head -c {before} /dev/zero | tr '\\\\0' x; printf '%s' \\\"$RUNBOOK_TEST_SECRET\\\"; head -c 70000 /dev/zero | tr '\\\\0' y; echo\"\n"
        );
        let ran = Test::new()
            .runbook("x", &with_secret(&steps))
            .env("RUNBOOK_TEST_SECRET", secret)
            .args(&["exec", "x"])
            .run();
        let all = everything(&ran);
        for part in ["hunter2", "long-secret", "r2-lo"] {
            assert!(
                !all.contains(part),
                "{before} bytes before: {part:?} leaked"
            );
        }
        let out = ran.stdout();
        assert_eq!(out.matches("***").count(), 1, "{before}");
        assert_eq!(out.len(), before + 3 + 70_000 + 1, "{before}");
    }
}

#[test]
fn a_secret_in_a_command_is_a_reference_in_its_environment_never_an_argument() {
    // Quotes, a dollar, a backslash and a newline: every quoting hazard at once.
    let secret = "it's \"$ecret\\\nline two";
    let steps = r#"[[step]]
id = "use"
run = "cat /proc/$$/cmdline > cmdline; printf '%s' {{token}} > got; echo 'token: {{token}}'"
"#;
    let ran = Test::new()
        .runbook("x", &with_secret(steps))
        .env("RUNBOOK_TEST_SECRET", secret)
        .args(&["exec", "x"])
        .run();
    // The shell received the secret exactly, and not in its arguments.
    assert_eq!(
        std::fs::read_to_string(ran.dir.join("got")).unwrap(),
        secret
    );
    let cmdline =
        String::from_utf8_lossy(&std::fs::read(ran.dir.join("cmdline")).unwrap()).into_owned();
    assert!(cmdline.contains("\"${RUNBOOK_SECRET_TOKEN}\""), "{cmdline}");
    for part in ["it's", "ecret", "line two", "it'\\''s"] {
        assert!(!cmdline.contains(part), "{part:?} in {cmdline:?}");
    }
    // The command as logged and shown is the reference; the output is masked line by line.
    let started = &ran.events("step_started")[0];
    assert_eq!(
        started["command"],
        "cat /proc/$$/cmdline > cmdline; printf '%s' \"${RUNBOOK_SECRET_TOKEN}\" > got; echo 'token: '\"${RUNBOOK_SECRET_TOKEN}\"''"
    );
    let all = everything(&ran);
    for part in ["it's", "ecret", "line two"] {
        assert!(!all.contains(part), "{part:?} leaked:\n{all}");
    }
    // Printed whole, it is masked whole.
    assert_eq!(ran.stdout(), "token: ***\n");
}

const PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj
MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu
NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ
-----END PRIVATE KEY-----";

#[test]
fn a_multi_line_secret_printed_in_several_reads_is_masked_line_by_line() {
    // Each line is written on its own, with a pause, so it arrives in its own read.
    let steps = r#"[[step]]
id = "leak"
run = '''
printf '%s\n' "$RUNBOOK_TEST_SECRET" | while IFS= read -r line; do
  printf 'key: %s\n' "$line"; sleep 0.05
done
printf '%s\n' "$RUNBOOK_TEST_SECRET" >&2
'''
"#;
    let ran = Test::new()
        .runbook("x", &with_secret(steps))
        .env("RUNBOOK_TEST_SECRET", PEM)
        .args(&["exec", "x"])
        .run();
    let all = everything(&ran);
    for line in PEM.lines().skip(1).take(3) {
        assert!(!all.contains(line), "a line of the key leaked:\n{all}");
        assert!(
            !all.contains(&line[10..40]),
            "part of a line leaked:\n{all}"
        );
    }
    assert_eq!(ran.stdout(), "key: ***\n".repeat(5));
}

#[test]
fn a_secret_quoted_by_the_shell_itself_is_masked_too() {
    // bash -x writes the value shell-quoted: 'it'\''s a $ecret'.
    let steps = "[[step]]\nid = \"trace\"\nshell = \"bash\"\nrun = \"set -x; printf '%s\\\\n' {{token}} > /dev/null; printf '%q\\\\n' \\\"$RUNBOOK_SECRET_TOKEN\\\"\"\n";
    let ran = Test::new()
        .runbook("x", &with_secret(steps))
        .env("RUNBOOK_TEST_SECRET", "it's a $ecret")
        .args(&["exec", "x"])
        .run();
    let all = everything(&ran);
    assert!(!all.contains("ecret"), "{all}");
    assert!(
        ran.stderr().contains("'***'") || ran.stderr().contains("***"),
        "{}",
        ran.stderr()
    );
}

#[test]
fn a_secret_given_with_var_is_warned_about() {
    let steps = "[[step]]\nid = \"a\"\nrun = \"true\"\n";
    let ran = Test::new()
        .runbook("x", &with_secret(steps))
        .args(&["exec", "x", "--var", "token=s3cr3t-value"])
        .stderr_has("warning: secret `token` was given with --var: its value is in this runbook process's command line (/proc/")
        .stderr_has("/cmdline, readable by every local user while the run lasts) and in your shell's history; set $RUNBOOK_TEST_SECRET instead (the param reads it), and leave out --var")
        .run();
    assert!(!everything(&ran).contains("s3cr3t-value"));
    let notice = &ran.events("notice")[0];
    assert_eq!(notice["level"], "warning");
    // From the environment: no warning.
    let ran = Test::new()
        .runbook("x", &with_secret(steps))
        .env("RUNBOOK_TEST_SECRET", "s3cr3t-value")
        .args(&["exec", "x"])
        .run();
    assert!(!ran.stderr().contains("warning"), "{}", ran.stderr());
}

#[test]
fn a_very_short_secret_is_not_masked_in_output_and_the_run_says_so() {
    let steps = "[[step]]\nid = \"a\"\nrun = \"echo pin {{token}}; echo 42 is not hidden\"\n\n[[step]]\nid = \"b\"\nmanual = \"The pin is {{token}}.\"\n";
    let ran = Test::new()
        .runbook("x", &with_secret(steps))
        .env("RUNBOOK_TEST_SECRET", "42")
        .args(&["exec", "x"])
        .stdin("done\n")
        .stderr_has("warning: secret `token` is 2 characters long, too short to search for in step output without hiding ordinary text: it is not masked there")
        .stderr_has("The pin is ***.")
        .stdout("pin 42\n42 is not hidden\n")
        .run();
    assert_eq!(ran.log()[0]["params"]["token"], "***");
    assert_eq!(
        ran.events("step_started")[0]["command"],
        "echo pin \"${RUNBOOK_SECRET_TOKEN}\"; echo 42 is not hidden"
    );
}
