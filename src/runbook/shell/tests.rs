//! The analysis on a table of commands, and a property test that puts any value in every
//! supported context and has `sh` and `bash` print it back exactly.

use super::*;

/// The first refusal `check` gives for `text`, if any.
fn refusal(text: &str) -> Option<String> {
    check(text, &Shell::default())
        .into_iter()
        .next()
        .map(|p| p.message)
}

#[test]
fn values_in_data_contexts_are_accepted() {
    for text in [
        "echo {{x}}",
        "echo 'reason: {{x}}'",
        "echo \"reason: {{x}}\"",
        "echo \"$(printf %s {{x}})\"",
        "echo $(printf '%s' \"{{x}}\")",
        "echo `printf %s {{x}}`",
        "echo `printf %s '{{x}}'`",
        "x={{x}}; echo \"$x\"",
        "A={{x}} env",
        "export A={{x}}",
        "cat <<EOF\n{{x}}\nEOF",
        "cat <<-EOF\n\t{{x}} and {{y}}\n\tEOF\necho {{z}}",
        "ssh -o BatchMode=yes {{host}} uptime",
        "ssh -p {{port}} {{host}} uptime > {{file}}",
        "sh -c 'echo \"$1\"' sh {{x}}",
        "kubectl --context {{c}} -n {{ns}} rollout undo deployment/{{d}}",
        "echo {{x}} # for {{x}}",
        "case {{x}} in a) echo {{y}};; *) echo no;; esac",
        "if [ {{x}} -gt 1 ]; then echo {{y}}; fi",
        "for h in {{a}} {{b}}; do echo \"$h\"; done",
        "echo {{#if x}}--flag {{/if}}{{y}}",
        "echo {{#each xs}}{{this}} {{/each}}",
        "f() { echo {{x}}; }; f",
        "echo ~/{{x}} ~{{user}}",
        "sudo -u postgres psql -c 'select 1' {{db}}",
        "awk -F: '{print $1}' {{file}}",
        "sed -e 's/a/b/' {{file}}",
        "python3 -c 'import sys; print(sys.argv[1])' {{x}}",
        "echo $(( 1 + 2 )) {{x}}",
        "echo ${HOME:-/root} {{x}}",
        "printf '%s\\n' {{x}} | grep -c x",
        "ssh {{host}} {{{raw}}}",
        "cat > f <<EOF\n{{x}}\nEOF\necho ok | bash",
        "sh -c 'cat > \"$1\"' sh {{f}} <<EOF\n{{x}}\nEOF",
        "python3 script.py {{x}} <<EOF\n{{y}}\nEOF",
        "bash -s {{x}} <<EOF\necho \"$1\"\nEOF",
        "echo {{x}} | grep a | sort",
        "hosts=({{a}} {{b}}); for h in \"${hosts[@]}\"; do echo \"$h\"; done",
        "printf '%s\\n' \"$REASON\" | ssh {{host}} 'read -r r; logger \"$r\"'",
        "echo \"$(echo `printf %s {{x}}`)\"",
    ] {
        assert_eq!(refusal(text), None, "{text}");
    }
}

#[test]
fn values_where_quoting_cannot_hold_are_refused() {
    for (text, why) in [
        ("{{cmd}} --help", "name of the command"),
        ("echo a | {{cmd}}", "name of the command"),
        ("sudo {{cmd}}", "name of the command"),
        ("sh -c 'echo {{x}}'", "`-c` script"),
        ("bash -euo pipefail -c \"echo {{x}}\"", "`-c` script"),
        ("sudo sh -c 'echo {{x}}'", "`-c` script"),
        ("eval echo {{x}}", "`eval`"),
        ("ssh {{host}} echo {{x}}", "`ssh`"),
        ("ssh host 'echo {{x}}'", "`ssh`"),
        ("timeout 5 ssh -p 22 host \"rm {{x}}\"", "`ssh`"),
        ("su - postgres -c \"psql {{x}}\"", "su -c"),
        ("awk '{print \"{{x}}\"}'", "`awk`"),
        ("sed -i 's/a/{{x}}/' f", "`sed`"),
        ("python3 -c 'print(\"{{x}}\")'", "inline program"),
        ("trap 'echo {{x}}' EXIT", "`trap`"),
        ("echo ${x:-{{x}}}", "${...}"),
        ("echo $(( {{x}} + 1 ))", "arithmetic"),
        ("echo $'{{x}}'", "$'...'"),
        ("[[ $a -eq {{x}} ]]", "[[ ... ]]"),
        ("echo ${{x}}", "after a `$`"),
        ("echo \\\\{{x}}", "after a `\\`"),
        ("echo \"`echo {{x}}`\"", "backquotes inside double quotes"),
        ("cat <<'EOF'\n{{x}}\nEOF", "quoted here-document"),
        ("cat <<{{x}}\nEOF", "delimiter"),
        ("cat <<EOF\n$(echo {{x}})\nEOF", "inside a here-document"),
        ("echo 'unterminated {{x}}", "cannot be followed"),
        ("$CMD {{x}}", "comes from an expansion"),
        ("watch -n 5 echo {{x}}", "`watch`"),
        ("sudo -s echo {{x}}", "sudo -s"),
        ("bash <<EOF\necho {{x}}\nEOF", "here-document that a shell"),
        ("cat <<EOF | sh\n{{x}}\nEOF", "here-document that a shell"),
        (
            "ssh {{host}} <<EOF\nrm {{x}}\nEOF",
            "here-document that a shell",
        ),
        (
            "kubectl exec -i p -- sh <<EOF\n{{x}}\nEOF",
            "here-document that a shell",
        ),
        (
            "python3 <<EOF\nprint('{{x}}')\nEOF",
            "here-document that a shell",
        ),
        ("echo {{x}} | bash", "pipeline"),
        ("printf '%s' \"{{x}}\" | ssh host", "pipeline"),
    ] {
        let got = refusal(text);
        assert!(
            got.as_deref().is_some_and(|m| m.contains(why)),
            "{text}: {got:?} should say {why:?}"
        );
    }
}

#[test]
fn a_refusal_points_at_the_value_and_says_the_safe_ways() {
    let text = "echo ok; sh -c 'echo {{reason}}'";
    let problems = check(text, &Shell::default());
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert_eq!(&text[p.offset..p.offset + p.len], "{{reason}}");
    assert!(
        p.message
            .starts_with("`{{reason}}` cannot stay data here: a shell's `-c` script"),
        "{}",
        p.message
    );
    assert!(
        p.help
            .as_deref()
            .is_some_and(|h| h.contains("\"$NAME\"") && h.contains("{{{x}}}"))
    );
}

#[test]
fn shells_are_known_by_their_program() {
    let bash = Shell::named("bash").unwrap();
    assert_eq!(bash.argv, ["bash", "-euo", "pipefail", "-c"]);
    assert!(bash.known);
    assert!(
        Shell::from_argv(vec![
            "/usr/bin/env".into(),
            "-S".into(),
            "dash".into(),
            "-c".into()
        ])
        .known
    );
    let fish = Shell::from_argv(vec!["fish".into(), "-c".into()]);
    assert_eq!(fish.program(), "fish");
    let problems = check("echo {{x}} {{{y}}}", &fish);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].message.contains("`fish`"),
        "{}",
        problems[0].message
    );
    assert!(check("echo {{{y}}}", &fish).is_empty());
}

#[test]
fn branches_are_followed_each_on_its_own() {
    // Either branch leaves the quote open or closed: the value after it is checked in both.
    assert!(refusal("echo {{#if a}}'{{x}}'{{else}}\"{{x}}\"{{/if}} {{y}}").is_none());
    // Blocks are not correlated: a quote opened in one and closed in another is refused.
    assert!(refusal("echo {{#if a}}'{{/if}}{{x}}{{#if a}}'{{/if}}").is_some());
    assert!(refusal("{{#if a}}ssh h {{/if}}echo {{x}}").is_some());
    assert!(refusal("echo {{#each xs}}'{{/each}}{{x}}").is_some());
}

mod property {
    use proptest::prelude::*;

    use crate::runbook::template::Renderer;

    /// Every supported context, each writing what the shell received to its own file, and
    /// what that must be for a value `v`.
    const CONTEXTS: &[(&str, &str, &str)] = &[
        ("bare", "printf '%s' {{v}} > bare", "{v}"),
        (
            "bare-joined",
            "printf '%s' pre{{v}}post > bare-joined",
            "pre{v}post",
        ),
        (
            "single",
            "printf '%s' 'pre {{v}} post' > single",
            "pre {v} post",
        ),
        (
            "double",
            "printf '%s' \"pre {{v}} post\" > double",
            "pre {v} post",
        ),
        (
            "subst",
            "x=$(printf '%s.' {{v}}); printf '%s' \"${x%.}\" > subst",
            "{v}",
        ),
        (
            "subst-double",
            "x=\"$(printf '%s.' \"{{v}}\")\"; printf '%s' \"${x%.}\" > subst-double",
            "{v}",
        ),
        (
            "subst-single",
            "x=$(printf '%s.' 'a{{v}}'); printf '%s' \"${x%.}\" > subst-single",
            "a{v}",
        ),
        (
            "backquote",
            "x=`printf '%s.' {{v}}`; printf '%s' \"${x%.}\" > backquote",
            "{v}",
        ),
        (
            "backquote-single",
            "x=`printf '%s.' '{{v}}'`; printf '%s' \"${x%.}\" > backquote-single",
            "{v}",
        ),
        (
            "backquote-double",
            "x=`printf '%s.' \"{{v}}\"`; printf '%s' \"${x%.}\" > backquote-double",
            "{v}",
        ),
        ("heredoc", "cat > heredoc <<EOF\n{{v}}\nEOF", "{v}\n"),
        (
            "heredoc-text",
            "cat > heredoc-text <<EOF\npre {{v}} post\nEOF",
            "pre {v} post\n",
        ),
        (
            "heredoc-tabs",
            "cat > heredoc-tabs <<-EOF\n\t{{v}}\n\tEOF",
            "{v}\n",
        ),
        (
            "heredoc-prefix",
            "cat > heredoc-prefix <<EOF\nEO{{v}}\nEOF",
            "EO{v}\n",
        ),
        (
            "heredoc-two",
            "cat > heredoc-two <<-END\n\t{{v}}{{v}}\nEND",
            "{v}{v}\n",
        ),
        ("assign", "x={{v}}; printf '%s' \"$x\" > assign", "{v}"),
        (
            "assign-joined",
            "x=a:{{v}}; printf '%s' \"$x\" > assign-joined",
            "a:{v}",
        ),
        (
            "export",
            "export X={{v}}; printf '%s' \"$X\" > export",
            "{v}",
        ),
        (
            "env-prefix",
            "X={{v}} sh -c 'printf \"%s\" \"$X\"' > env-prefix",
            "{v}",
        ),
        (
            "case",
            "case {{v}} in *) printf '%s' {{v}} > case;; esac",
            "{v}",
        ),
        ("tilde", "printf '%s' ~{{v}} > tilde", "~{v}"),
        ("comment", "printf ok > comment # {{v}}", "ok"),
    ];

    fn value() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => proptest::sample::select(vec![
                "'", "\"", "\\", "`", "$", "$(", ")", "${", "}", "$((", "#", ";", "&", "|", "<", ">",
                "*", "?", "[", "]", "~", "!", "=", ":", " ", "\t", "\n", "\r", "-", "--", "-n", "EOF",
                "\nEOF\n", "\tEOF", "F", "\nE", "OF", "\nEN", "D\n", "\u{80}", "\\n", "'\\''", "$(touch pwned)", "`touch pwned`", "${RUNBOOK+}",
                "%s", "€", "\u{1b}[2J", "\u{7f}", "é", "\u{FDD0}", "\u{FDD1}",
            ]).prop_map(str::to_string),
            3 => "[a-zA-Z0-9_./-]{1,6}",
            1 => any::<char>().prop_filter("no NUL", |c| *c != '\0').prop_map(String::from),
        ];
        proptest::collection::vec(piece, 0..10).prop_map(|v| v.concat())
    }

    fn run(shell: &[&str], script: &str, dir: &std::path::Path) -> std::process::Output {
        std::process::Command::new(shell[0])
            .args(&shell[1..])
            .arg(script)
            .current_dir(dir)
            .env_remove("RUNBOOK")
            .output()
            .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn any_value_reaches_the_shell_exactly_in_every_context(v in value()) {
            let template: String = CONTEXTS.iter().map(|(_, t, _)| format!("{t}\n")).collect();
            let problems = super::check(&template, &super::Shell::default());
            prop_assert!(problems.is_empty(), "{:?}", problems);
            let data = serde_json::json!({ "v": v });
            let command = Renderer::new().shell(&template, &data).map_err(TestCaseError::fail)?;
            for shell in [&["/bin/sh", "-c"][..], &["bash", "-c"], &["bash", "-euo", "pipefail", "-c"]] {
                let dir = tempfile::tempdir().unwrap();
                let out = run(shell, &command.text, dir.path());
                prop_assert!(out.status.success(), "{shell:?} failed: {}\n{}", String::from_utf8_lossy(&out.stderr), command.text);
                prop_assert!(!dir.path().join("pwned").exists(), "{shell:?} ran a value:\n{}", command.text);
                for (name, _, want) in CONTEXTS {
                    let got = std::fs::read(dir.path().join(name)).unwrap_or_default();
                    let want = want.replace("{v}", &v);
                    prop_assert!(
                        got == want.as_bytes(),
                        "{:?} in {}: got {:?}, want {:?}\n--- command:\n{}",
                        shell, name, String::from_utf8_lossy(&got), want, command.text
                    );
                }
            }
        }
    }
}

#[test]
fn only_plain_posix_shells_can_hold_a_command_at_its_start() {
    let shell = |argv: &[&str]| Shell::from_argv(argv.iter().map(|a| a.to_string()).collect());
    for argv in [
        &["/bin/sh", "-c"][..],
        &["sh", "-ec"],
        &["/usr/bin/dash", "-e", "-c"],
        &["bash", "-euo", "pipefail", "-c"],
    ] {
        assert!(shell(argv).can_hold(), "{argv:?}");
    }
    for argv in [
        &["/bin/sh"][..],
        &["sh", "-xc"],
        &["sh", "-c", "-e"],
        &["bash", "-l", "-c"],
        &["bash", "--norc", "-c"],
        &["/usr/bin/env", "bash", "-c"],
        &["python3", "-c"],
        &["zsh", "-c"],
    ] {
        assert!(!shell(argv).can_hold(), "{argv:?}");
    }
}
