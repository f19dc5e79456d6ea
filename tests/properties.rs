//! Property tests: any generated runbook either validates or is refused with located
//! errors (exit 2), never a panic; and any value reaches `sh` exactly, as data, in every
//! shell context a template can put it in.

use proptest::prelude::*;

use crate::test::Test;

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items)
}

const IDS: &[&str] = &["a", "b", "check-lag", "a", "Bad Id", "", "x_1"];
const VARS: &[&str] = &["host", "lag", "who", "nope", "run_id", "0bad"];
const KEYS: &[&str] = &[
    "timeout = \"30s\"",
    "timeout = \"soon\"",
    "timeout = 5",
    "retries = 2",
    "retries = -1",
    "retry_delay = \"1s\"",
    "retry_backoff = 0.5",
    "on_failure = \"continue\"",
    "on_failure = \"maybe\"",
    "confirm = true",
    "readonly = true",
    "capture = \"lag\"",
    "capture = \"host\"",
    "ask = \"who\"",
    "when = \"{{lt lag 30}}\"",
    "when = \"{{#if}}\"",
    "milestone = \"mitigated\"",
    "env = { A = \"{{host}}\" }",
    "dir = \"/tmp\"",
    "rollback = \"echo undo {{lag}}\"",
    "neds = [\"a\"]",
    "needs = []",
    "needs = [\"a\"]",
    "needs = [\"zz\"]",
    "title = 3",
];

fn step() -> impl Strategy<Value = String> {
    (
        pick(IDS),
        0..4u8,
        pick(VARS),
        proptest::collection::vec(pick(KEYS), 0..4),
    )
        .prop_map(|(id, action, var, keys)| {
            let mut s = format!("[[step]]\nid = \"{id}\"\n");
            match action {
                0 => s.push_str(&format!("run = \"echo {{{{{var}}}}}\"\n")),
                1 => s.push_str(&format!("manual = \"Check {{{{{var}}}}}.\"\n")),
                2 => s.push_str("run = \"true\"\nmanual = \"both\"\n"),
                _ => {}
            }
            let mut seen = std::collections::HashSet::new();
            for k in keys {
                // A key twice in one table is a TOML error; keep the text mostly valid TOML.
                let name = k.split(' ').next().unwrap_or("");
                if seen.insert(name) {
                    s.push_str(k);
                    s.push('\n');
                }
            }
            s
        })
}

fn runbook() -> impl Strategy<Value = String> {
    (
        0..3u8,
        proptest::option::of(pick(&["host", "lag", "run_id"][..])),
        proptest::collection::vec(step(), 0..6),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(|(head, param, steps, garbage)| {
            let mut s = match head {
                0 => "[runbook]\ntitle = \"T\"\n".to_string(),
                1 => "[runbook]\ntitle = 7\n".to_string(),
                _ => String::new(),
            };
            if let Some(p) = param {
                s.push_str(&format!("[params.{p}]\ndefault = \"db-1\"\n"));
            }
            for st in steps {
                s.push('\n');
                s.push_str(&st);
            }
            if let Some(g) = garbage.filter(|g| g % 4 == 0) {
                let at = (g as usize * 7) % (s.len() + 1);
                let at = (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                s.insert(at, char::from(b'!' + g % 90));
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_runbook_validates_or_gets_located_errors(text in runbook()) {
        let path = std::path::Path::new("gen.toml");
        match runbook::runbook::parse(path, "gen", text.clone().into_bytes()) {
            Ok(rb) => prop_assert!(!rb.steps.is_empty()),
            Err(runbook::runbook::LoadError::Invalid(report)) => {
                prop_assert!(!report.diagnostics.is_empty());
                let rendered = report.render(false);
                for d in &report.diagnostics {
                    prop_assert!(d.span.start <= text.len() && d.span.end <= text.len());
                    let (line, col) = runbook::runbook::diagnostic::line_col(&text, d.span.start);
                    let expected = format!("gen.toml:{line}:{col}: error: ");
                    prop_assert!(rendered.contains(&expected), "{} lacks {}", rendered, expected);
                }
            }
            Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn through_the_binary_exit_0_or_2_with_a_located_error(text in runbook()) {
        let out = Test::new().runbook("gen", &text).args(&["check", "gen"]).run_unchecked();
        let code = out.status.code();
        prop_assert!(code == Some(0) || code == Some(2), "exit {:?}", code);
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert!(!stderr.contains("panicked"));
        if code == Some(2) {
            prop_assert!(stderr.contains("runbooks/gen.toml:") && stderr.contains(": error: "), "{}", stderr);
        }
    }
}

/// Every shell context `runbook` supports, each writing what the shell received to a file,
/// and what that must be for the value `v`.
const CONTEXTS: &[(&str, &str, &str)] = &[
    ("bare", "printf '%s' {{v}} > bare", "{v}"),
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
        "backquote",
        "x=`printf '%s.' {{v}}`; printf '%s' \"${x%.}\" > backquote",
        "{v}",
    ),
    (
        "backquote-single",
        "x=`printf '%s.' '{{v}}'`; printf '%s' \"${x%.}\" > backquote-single",
        "{v}",
    ),
    ("heredoc", "cat > heredoc <<EOF\n{{v}}\nEOF", "{v}\n"),
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
    ("assign", "x={{v}}; printf '%s' \"$x\" > assign", "{v}"),
    (
        "export",
        "export X={{v}}; printf '%s' \"$X\" > export",
        "{v}",
    ),
];

fn hostile_value() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => proptest::sample::select(vec![
            "'", "\"", "\\", "`", "$", "$(", ")", "${", "}", "#", ";", "&", "|", "*", "~", " ",
            "\t", "\n", "-", "-n", "EOF", "\nEOF\n", "F", "\u{80}", "$(touch pwned)", "`touch pwned`", "'\\''",
        ])
        .prop_map(str::to_string),
        2 => "[a-zA-Z0-9_./-]{1,5}",
        1 => any::<char>().prop_filter("no NUL", |c| *c != '\0').prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Through the binary: any value given with --var reaches `sh` exactly, in every
    /// supported context, and never runs.
    #[test]
    fn through_the_binary_any_value_reaches_sh_exactly(v in hostile_value()) {
        let run: String = CONTEXTS.iter().map(|(_, t, _)| format!("{t}\n")).collect();
        let text = format!(
            "[runbook]\ntitle = \"t\"\n\n[params.v]\nrequired = true\n\n[[step]]\nid = \"all\"\nrun = '''\n{run}'''\n"
        );
        let ran = Test::new()
            .runbook("x", &text)
            .args(&["exec", "x", "--var", &format!("v={v}")])
            .run_unchecked();
        prop_assert_eq!(ran.status.code(), Some(0), "{}", String::from_utf8_lossy(&ran.stderr));
        prop_assert!(!ran.dir.join("pwned").exists());
        for (name, _, want) in CONTEXTS {
            let got = std::fs::read(ran.dir.join(name)).unwrap_or_default();
            let want = want.replace("{v}", &v);
            prop_assert!(got == want.as_bytes(), "{}: got {:?}, want {:?}", name, String::from_utf8_lossy(&got), want);
        }
    }
}
