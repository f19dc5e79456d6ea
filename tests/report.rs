//! `runbook report` through the real binary, on logs written by real runs of a runbook
//! (answers on stdin, some of them paced so a manual step takes measurable time): the
//! markdown and json formats as snapshots with times and ids redacted, the facts the action
//! items are built from, rehearsals, `-o`, `--template`, errors, and the HTML report rendered
//! in headless Chromium (skipped, loudly, where Chromium is missing and `CI` is not set).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::test::{BIN, Test, require_program};

/// A runbook with every kind of fact a report draws on: a read-only check, two manual steps,
/// a change that is slower on every run after the first (and marks mitigation), a step that
/// needs a retry, one skipped by its condition, and one that fails while the run goes on.
const WIDGET: &str = r#"[runbook]
title = "Restart the widget service"

[params.mode]
default = "fast"

[[step]]
id = "check"
title = "Check the widget health"
run = "echo healthy"
readonly = true

[[step]]
id = "drain"
title = "Drain traffic"
manual = "Drain traffic from the widget pool at the load balancer."

[[step]]
id = "restart"
title = "Restart the service"
run = "if [ -e ran-before ]; then sleep 1; fi; touch ran-before; echo restarted"
milestone = "mitigated"

[[step]]
id = "warm"
title = "Warm the cache"
run = "if [ -e warm.marker ]; then rm warm.marker; echo warm; else touch warm.marker; exit 1; fi"
retries = 1
retry_delay = "10ms"

[[step]]
id = "optional"
title = "Only in slow mode"
when = '{{eq mode "slow"}}'
run = "echo slow"

[[step]]
id = "status-page"
title = "Post to the status page"
run = "echo 'status page is down' >&2; exit 4"
on_failure = "continue"

[[step]]
id = "verify"
title = "Verify with the on-call"
manual = "Ask the on-call to confirm the graphs are green."
"#;

/// A directory holding the runbook, its logs, and the files its steps leave behind.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("runbooks")).unwrap();
        std::fs::write(dir.path().join("runbooks/widget.toml"), WIDGET).unwrap();
        Lab { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn logs(&self) -> PathBuf {
        self.path().join("logs")
    }

    /// Runs `runbook exec widget` in the lab; each answer line is written `delay` after the
    /// one before, so the prompt waiting for it measures that long.
    fn exec(&self, args: &[&str], answers: &[(Duration, &str)]) -> Output {
        let runbooks = self.path().join("runbooks");
        let logs = self.logs();
        let mut cmd = Command::new(BIN);
        cmd.arg("--dir")
            .arg(&runbooks)
            .arg("--log-dir")
            .arg(&logs)
            .args(["--quiet", "exec", "widget", "--operator", "alice"])
            .args(args)
            .current_dir(self.path())
            .env_remove("RUNBOOK_DIR")
            .env_remove("RUNBOOK_LOG_DIR")
            .env("HOME", self.path())
            .env("XDG_STATE_HOME", self.path().join("state"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let lines: Vec<(Duration, String)> = answers
            .iter()
            .map(|(d, l)| (*d, format!("{l}\n")))
            .collect();
        let writer = std::thread::spawn(move || {
            for (delay, line) in lines {
                std::thread::sleep(delay);
                if stdin.write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "exec {args:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `runbook report ARGS...` on the lab's logs.
    fn report(&self, args: &[&str]) -> Test {
        let logs = self.logs();
        Test::new()
            .args(&["--log-dir", &logs.to_string_lossy(), "report"])
            .args(args)
    }

    /// The host name the runs recorded (it differs between machines).
    fn host(&self) -> String {
        let first = std::fs::read_dir(self.logs())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let text = std::fs::read_to_string(first).unwrap();
        let start: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        start["host"].as_str().unwrap().to_string()
    }
}

const NOW: Duration = Duration::ZERO;

/// Two live runs: the first answered at once, the second (an incident) with the drain
/// taking a second and a half; `restart` is a second slower on the second run.
fn two_runs() -> Lab {
    let lab = Lab::new();
    lab.exec(&[], &[(NOW, "done"), (NOW, "done")]);
    lab.exec(
        &["--incident", "INC-7", "--detected-at", "5m ago"],
        &[
            (
                Duration::from_millis(1500),
                "done drained via the load balancer",
            ),
            (NOW, "done graphs are green"),
        ],
    );
    lab
}

/// Replaces what changes from run to run (ids, times, durations, paths, host) with markers.
fn redact(text: &str, lab: &Lab) -> String {
    let rules = [
        (r"\d{8}T\d{9}Z-[0-9a-f]{6}", "[RUN_ID]"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", "[TS]"),
        // A timeline row on another day than the run's start shows its date (detection 5
        // minutes before a run started just after midnight): the snapshot is of the
        // layout, not of the day.
        (
            r"(?m)^\| \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \|",
            "| [CLOCK] |",
        ),
        (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[TIME]"),
        (r"\d{4}-\d{2}-\d{2}", "[DATE]"),
        (r"\d{2}:\d{2}:\d{2}", "[CLOCK]"),
        (r"\b(\d+h \d+m|\d+m \d+s|\d+\.\d+s|\d+ms)\b", "[DUR]"),
        (r"\b\d+%", "[PCT]"),
        (r"runbook \d+\.\d+\.\d+", "runbook [VERSION]"),
    ];
    let mut out = text
        .replace(&*lab.path().to_string_lossy(), "[LAB]")
        .replace(&format!(" on {}", lab.host()), " on [HOST]");
    for (re, with) in rules {
        out = regex::Regex::new(re)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

/// The JSON context with timings (every `*_ms`, the chart's geometry and ticks) redacted,
/// then the text rules of [`redact`].
fn redact_json(value: &mut serde_json::Value, lab: &Lab) {
    fn walk(v: &mut serde_json::Value, lab: &Lab) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    let timing = k.ends_with("_ms")
                        || matches!(k.as_str(), "people_share" | "x" | "width" | "text_x")
                        || (k == "anchor")
                        || (k == "ticks");
                    if timing && !v.is_null() {
                        *v = serde_json::Value::String("[redacted]".into());
                    } else if k == "host" {
                        *v = serde_json::Value::String("[HOST]".into());
                    } else if k == "at"
                        && let Some(at) = v.as_str()
                    {
                        // A timeline row's clock, with its date when it is on another
                        // day than the run's start (see `redact`).
                        let clock = at.rsplit(' ').next().unwrap_or(at);
                        *v = serde_json::Value::String(redact(clock, lab));
                    } else {
                        walk(v, lab);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| walk(v, lab)),
            serde_json::Value::String(s) => *s = redact(s, lab),
            _ => {}
        }
    }
    walk(value, lab);
}

fn json_report(lab: &Lab, run: &str) -> serde_json::Value {
    let ran = lab.report(&[run, "--format", "json"]).run();
    serde_json::from_str(&ran.stdout()).unwrap()
}

#[test]
fn markdown_report_of_the_latest_run() {
    let lab = two_runs();
    let ran = lab.report(&["latest"]).run();
    insta::assert_snapshot!("report_markdown", redact(&ran.stdout(), &lab));
}

#[test]
fn json_report_is_the_template_context() {
    let lab = two_runs();
    let mut report = json_report(&lab, "latest");
    redact_json(&mut report, &lab);
    insta::assert_snapshot!(
        "report_json",
        serde_json::to_string_pretty(&report).unwrap()
    );
}

#[test]
fn action_items_come_from_the_facts() {
    let lab = two_runs();
    let report = json_report(&lab, "latest");
    let items: Vec<(String, String, String)> = report["action_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_string(),
                i["step"].as_str().unwrap().to_string(),
                i["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let kinds: Vec<(&str, &str)> = items
        .iter()
        .map(|(k, s, _)| (k.as_str(), s.as_str()))
        .collect();
    // The longest manual step comes first, as something to automate; verify was answered
    // at once and is not worth automating.
    assert_eq!(kinds[0], ("automate", "drain"), "{items:#?}");
    assert!(
        items[0]
            .2
            .starts_with("Automate drain (Drain traffic): took 1.")
            && items[0].2.contains(" of "),
        "{}",
        items[0].2
    );
    assert!(!kinds.contains(&("automate", "verify")), "{items:#?}");
    for want in [
        ("failed", "status-page"),
        ("retried", "warm"),
        ("skipped", "optional"),
        ("slower", "restart"),
    ] {
        assert!(kinds.contains(&want), "{want:?} missing from {items:#?}");
    }
    let failed = &items.iter().find(|i| i.0 == "failed").unwrap().2;
    assert!(failed.contains("exit code 4"), "{failed}");
    let slower = &items.iter().find(|i| i.0 == "slower").unwrap().2;
    assert!(slower.contains("over 1 earlier live run"), "{slower}");
    assert_eq!(report["comparison"]["earlier_runs"], 1);
    // The first run has nothing earlier to be slower than.
    let ids: Vec<String> = std::fs::read_dir(lab.logs())
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .replace(".jsonl", "")
        })
        .collect();
    let oldest = ids.iter().min().unwrap();
    let report = json_report(&lab, oldest);
    assert_eq!(report["comparison"]["earlier_runs"], 0);
    assert!(
        report["action_items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["kind"] != "slower" && i["kind"] != "automate"),
        "{:#}",
        report["action_items"]
    );
}

#[test]
fn resolution_lists_changes_not_read_only_checks() {
    let lab = two_runs();
    let report = json_report(&lab, "latest");
    let steps: Vec<&str> = report["resolution"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["drain", "restart", "warm", "verify"]);
    assert_eq!(report["resolution"]["readonly_known"], true);
    assert_eq!(report["detection"]["time_to_engage"], "5m 0s");
    assert_eq!(
        report["detection"]["mitigated_by"],
        "the mitigated milestone of step restart"
    );
    assert_eq!(report["incident"], "INC-7");
    assert_eq!(report["operators"], serde_json::json!(["alice"]));
    // Every step and every answer is on the timeline, with the notes.
    let timeline = report["timeline"].as_array().unwrap();
    let drain = timeline.iter().find(|r| r["step"] == "drain").unwrap();
    assert_eq!(drain["note"], "drained via the load balancer");
    assert_eq!(drain["answer"], "done");
    assert_eq!(drain["operator"], "alice");
    let events: Vec<&str> = timeline
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"detected"));
    assert_eq!(events.last(), Some(&"run_finished"));
    assert_eq!(events.iter().filter(|e| **e == "step").count(), 7);
    assert_eq!(events.iter().filter(|e| **e == "milestone").count(), 1);
}

#[test]
fn a_dry_run_report_says_it_is_a_rehearsal() {
    let lab = Lab::new();
    lab.exec(&["--dry-run", "--yes"], &[]);
    let ran = lab.report(&["latest"]).run();
    let md = ran.stdout();
    assert!(
        md.starts_with("> **REHEARSAL (dry run), not an incident.**"),
        "{md}"
    );
    assert!(md.contains("# Rehearsal (dry run): Restart the widget service"));
    assert!(md.contains("A rehearsal changes nothing"));
    assert!(md.contains("not applicable: a rehearsal mitigates nothing"));
    let report = json_report(&lab, "latest");
    assert_eq!(report["rehearsal"], true);
    assert_eq!(report["mode"], "dry_run");
    let html = lab.report(&["latest", "--format", "html"]).run().stdout();
    assert!(html.contains("REHEARSAL (dry run), not an incident."));
}

#[test]
fn output_goes_to_the_file_given_with_o() {
    let lab = two_runs();
    let stdout = lab.report(&["latest"]).run().stdout();
    let file = lab.path().join("postmortem.md");
    let ran = lab
        .report(&["latest", "-o", &file.to_string_lossy()])
        .stdout("")
        .run();
    drop(ran);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stdout);
    lab.report(&["latest", "-o", "/nonexistent-dir/x.md"])
        .status(2)
        .stderr_has("cannot write /nonexistent-dir/x.md")
        .run();
}

#[test]
fn a_team_template_gets_the_same_context() {
    let lab = Lab::new();
    lab.exec(
        &["--incident", "INC-9"],
        &[(NOW, "done <b>drained</b> | all pools"), (NOW, "done")],
    );
    let tpl = lab.path().join("ours.md.hbs");
    std::fs::write(
        &tpl,
        "{{incident}} {{run.outcome}}\n{{#each timeline}}{{#if note}}{{step}}: {{note}}\n{{/if}}{{/each}}{{#each action_items}}- [{{kind}}] {{step}}\n{{/each}}",
    )
    .unwrap();
    lab.report(&["latest", "--template", &tpl.to_string_lossy()])
        .stdout(
            "INC-9 succeeded\ndrain: \\<b\\>drained\\</b\\> \\| all pools\n- [failed] status-page\n- [retried] warm\n- [skipped] optional\n",
        )
        .run();
    // A template named .html is HTML-escaped.
    let html_tpl = lab.path().join("ours.html.hbs");
    std::fs::write(&html_tpl, "{{#each timeline}}{{note}}{{/each}}").unwrap();
    lab.report(&["latest", "--template", &html_tpl.to_string_lossy()])
        .stdout("&lt;b&gt;drained&lt;/b&gt; | all pools\n")
        .run();
    // The shipped templates escape log text too.
    let html = lab.report(&["latest", "--format", "html"]).run().stdout();
    assert!(
        html.contains("&lt;b&gt;drained&lt;/b&gt; | all pools"),
        "{html}"
    );
    assert!(!html.contains("<b>drained"));
    let md = lab.report(&["latest"]).run().stdout();
    assert!(
        md.contains("note: \\<b\\>drained\\</b\\> \\| all pools |"),
        "{md}"
    );
    lab.report(&[
        "latest",
        "--template",
        &tpl.to_string_lossy(),
        "--format",
        "json",
    ])
    .status(2)
    .stderr_has("cannot be combined with --format json")
    .run();
}

#[test]
fn a_broken_template_exits_2_naming_the_file() {
    let lab = Lab::new();
    lab.exec(&[], &[(NOW, "done"), (NOW, "done")]);
    let tpl = lab.path().join("broken.hbs");
    let name = tpl.to_string_lossy().to_string();
    std::fs::write(&tpl, "# {{title}}\n{{#each action_items}}\n- {{text}}\n").unwrap();
    lab.report(&["latest", "--template", &name])
        .status(2)
        .stderr_has(&format!("error: template {name}: line "))
        .run();
    std::fs::write(&tpl, "# {{title}}\n{{incdent}}\n").unwrap();
    lab.report(&["latest", "--template", &name])
        .status(2)
        .stderr_has(&format!(
            "error: template {name}: line 2, column 1: `incdent` is not in the report context"
        ))
        .run();
    lab.report(&["latest", "--template", "/nonexistent.hbs"])
        .status(2)
        .stderr_has("error: cannot read template /nonexistent.hbs")
        .run();
}

#[test]
fn an_unknown_run_exits_2() {
    let lab = Lab::new();
    lab.report(&["latest"])
        .status(2)
        .stderr_has("error: no runs in")
        .run();
    lab.exec(&[], &[(NOW, "done"), (NOW, "done")]);
    lab.report(&["20990101T000000000Z-000000"])
        .status(2)
        .stderr_has("error: no run `20990101T000000000Z-000000`")
        .run();
    lab.report(&["../../etc/passwd"])
        .status(2)
        .stderr_has("is not a run id")
        .run();
}

// ── HTML in a real browser ───────────────────────────────────────────────────────────────

/// Where Chromium is installed on Debian and Ubuntu.
const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];

/// Every place in the markup (not the text) that could load something from elsewhere.
fn external_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    // Inside tags: attributes such as src, href, xmlns, style.
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let tag = &rest[open..open + close + 1];
        let lower = tag.to_ascii_lowercase();
        if lower.contains("//") || lower.contains("src=") || lower.contains("href=") {
            found.push(tag.to_string());
        }
        for name in [
            "<script", "<link", "<img", "<iframe", "<object", "<embed", "<base",
        ] {
            if lower.starts_with(name) {
                found.push(tag.to_string());
            }
        }
        rest = &rest[open + close + 1..];
    }
    // The stylesheet: imports, fonts and url() other than same-document #fragments.
    if let (Some(a), Some(b)) = (html.find("<style>"), html.find("</style>")) {
        let css = &html[a..b];
        if css.contains("@import") || css.contains("@font-face") || css.contains("//") {
            found.push("the stylesheet imports or loads from elsewhere".into());
        }
        for (i, _) in css.match_indices("url(") {
            if !css[i + 4..].starts_with('#') {
                found.push(css[i..(i + 40).min(css.len())].to_string());
            }
        }
    }
    found
}

#[test]
fn html_report_is_self_contained_and_renders_in_chromium() {
    let Some(browser) = require_program(CHROMIUM, "chromium") else {
        return;
    };
    let lab = two_runs();
    let html_path = lab.path().join("report.html");
    lab.report(&[
        "latest",
        "--format",
        "html",
        "-o",
        &html_path.to_string_lossy(),
    ])
    .run();
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert_eq!(external_references(&html), Vec::<String>::new());
    assert!(html.contains("<svg class=\"gantt\""));
    assert!(html.contains("@media print"));
    // One bar row per step, and the manual waits drawn apart from automated work.
    assert_eq!(html.matches("<g>").count(), 7);
    assert!(html.contains("<rect class=\"wait\""));
    assert!(html.contains("<rect class=\"auto\""));
    assert!(html.contains("waiting on a person"));

    let png = lab.path().join("report.png");
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,1600")
        .arg(format!("file://{}", html_path.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium took more than 90s to take the screenshot");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    assert!(
        status.success() && png.exists(),
        "chromium failed ({status}):\n{stderr}"
    );

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1200, 1600));
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| &p[..3])
        .collect();
    let first = pixels[0];
    let differing = pixels.iter().filter(|p| **p != first).count();
    assert!(
        differing > pixels.len() / 100,
        "the screenshot is (nearly) blank: {differing} of {} pixels differ",
        pixels.len()
    );
    // The timeline picture is on screen: the automated bars' blue and the waits' orange.
    let has = |rgb: [u8; 3]| {
        pixels.iter().any(|p| {
            p.iter()
                .zip(rgb)
                .all(|(a, b)| (i16::from(*a) - i16::from(b)).abs() <= 6)
        })
    };
    assert!(
        has([0x2f, 0x6f, 0xde]),
        "no automated-work bar in the screenshot"
    );
    assert!(
        has([0xe0, 0x8a, 0x1e]),
        "no manual-wait bar in the screenshot"
    );
}
