//! `runbook stats` on logs made by running real runbooks (and a few hand-written logs for
//! what a test cannot wait for: incidents days apart, runs older than the window). Every
//! figure checked here is recomputed from the log lines, as a user tracing it would.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::test::{Test, runbook_with};

/// Runs `runbook ARGS` in `dir` as [`Test`] does (runbooks in `dir/runbooks`, logs in
/// `dir/logs`), writing each answer to stdin after its delay in milliseconds, so that a
/// person's wait at a prompt is real. Returns the exit code.
fn exec(dir: &Path, args: &[&str], answers: &[(u64, &str)]) -> i32 {
    let mut child = crate::test::spawn(dir, args);
    let mut stdin = child.stdin.take().unwrap();
    for (delay, line) in answers {
        std::thread::sleep(Duration::from_millis(*delay));
        // The run may already have ended (a broken pipe is then expected).
        let _ = writeln!(stdin, "{line}");
    }
    drop(stdin);
    child.wait().unwrap().code().unwrap_or(-1)
}

/// Every log in `dir/logs`, oldest first, as lists of records.
fn logs(dir: &Path) -> Vec<Vec<Value>> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        })
        .collect()
}

fn record<'a>(log: &'a [Value], event: &str) -> &'a Value {
    log.iter()
        .find(|r| r["event"] == event)
        .unwrap_or_else(|| panic!("no {event} in {log:?}"))
}

fn ts(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

fn ms(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (a - b).num_milliseconds()
}

/// Nearest rank, as the docs define it, written out again here.
fn nearest_rank(values: &[i64], p: f64) -> i64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = (p / 100.0 * v.len() as f64).ceil().max(1.0) as usize;
    v[rank - 1]
}

fn json(ran: &crate::test::Ran) -> Value {
    serde_json::from_str(&ran.stdout()).unwrap_or_else(|e| panic!("{e}: {}", ran.stdout()))
}

/// RFC 3339 with milliseconds, as the log writes it.
fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

const STEPS: &str = r#"[params.code]
default = "0"

[params.mode]
default = "fast"

[[step]]
id = "flaky"
run = "if [ -e marker ]; then echo second try; else touch marker; exit 1; fi"
retries = 1
retry_delay = "10ms"

[[step]]
id = "maybe"
when = '{{eq mode "slow"}}'
run = "echo slow mode"

[[step]]
id = "bad"
run = "exit 1"
on_failure = "continue"

[[step]]
id = "check"
run = "exit {{code}}"
"#;

#[test]
fn runs_are_counted_by_mode_and_outcome_and_steps_by_what_happened() {
    let t = Test::new().runbook("x", &runbook_with(STEPS)).runbook(
        "m",
        &runbook_with("[[step]]\nid = \"ask\"\nmanual = \"Look.\"\n"),
    );
    let dir = t.path().to_path_buf();
    // Each run's marker file is fresh: the binary runs in `dir`, so remove it in between.
    let marker = dir.join("marker");
    for (args, want) in [
        (&["exec", "x"][..], 0),
        (&["exec", "x"], 0),
        (&["exec", "x", "--var", "code=3"], 1),
        (&["exec", "x", "--dry-run", "--yes"], 0),
    ] {
        let _ = std::fs::remove_file(&marker);
        assert_eq!(exec(&dir, args, &[]), want, "{args:?}");
    }
    assert_eq!(exec(&dir, &["exec", "m"], &[(0, "abort")]), 1);

    let ran = t.args(&["stats", "--json"]).run();
    let s = json(&ran);
    assert_eq!(s["runs"]["total"], 5);
    assert_eq!(s["runs"]["live"]["total"], 4);
    assert_eq!(s["runs"]["live"]["succeeded"], 2);
    assert_eq!(s["runs"]["live"]["failed"], 1);
    assert_eq!(s["runs"]["live"]["aborted"], 1);
    assert_eq!(s["runs"]["dry_run"]["total"], 1);
    assert_eq!(s["runs"]["dry_run"]["succeeded"], 1);

    // Per step, over the three live runs of x (the dry run does not count).
    let step = |id: &str| {
        s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["runbook"] == "x" && st["step"] == id)
            .unwrap_or_else(|| panic!("no step {id} in {s}"))
            .clone()
    };
    let flaky = step("flaky");
    assert_eq!(flaky["runs"], 3);
    assert_eq!(flaky["retries"], 3, "one retry in each live run");
    assert_eq!(flaky["failure_rate"], 0.0);
    assert_eq!(step("maybe")["skip_rate"], 1.0);
    assert_eq!(step("maybe")["p50_ms"], Value::Null, "never ran");
    assert_eq!(step("bad")["failure_rate"], 1.0);
    let check = step("check");
    assert_eq!(check["failures"], 1);
    assert!((check["failure_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);

    // The same in the text, in aligned tables.
    let text = Test::new()
        .args(&["--log-dir", &dir.join("logs").to_string_lossy(), "stats"])
        .stdout_has("5 runs in ")
        .stdout_has("Runs by mode and outcome")
        .run()
        .stdout();
    let live = text
        .lines()
        .find(|l| l.trim_start().starts_with("live "))
        .unwrap();
    let cells: Vec<&str> = live.split_whitespace().collect();
    assert_eq!(cells, ["live", "4", "2", "1", "1", "0", "0"], "{text}");
    let row = text
        .lines()
        .find(|l| l.contains(" flaky "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains("0.0%") && row.split_whitespace().any(|c| c == "3"),
        "{row}"
    );

    // --runbook keeps one runbook's runs.
    let only_m = Test::new()
        .args(&["--log-dir", &dir.join("logs").to_string_lossy()])
        .args(&["stats", "--runbook", "m", "--json"])
        .run();
    assert_eq!(json(&only_m)["runs"]["total"], 1);
}

#[test]
fn duration_percentiles_are_nearest_rank_over_the_logged_durations() {
    let t = Test::new().runbook(
        "nap",
        &runbook_with(
            "[params.s]\ndefault = \"0\"\n\n[[step]]\nid = \"nap\"\nrun = \"sleep {{s}}\"\n",
        ),
    );
    let dir = t.path().to_path_buf();
    // Ten runs of distinct lengths, 50ms apart, in shuffled order.
    for i in [3, 7, 1, 10, 5, 2, 9, 4, 8, 6] {
        let s = format!("s=0.{:02}", i * 5);
        assert_eq!(exec(&dir, &["exec", "nap", "--var", &s], &[]), 0);
    }
    let logs = logs(&dir);
    let runs: Vec<i64> = logs
        .iter()
        .map(|l| record(l, "run_finished")["duration_ms"].as_i64().unwrap())
        .collect();
    let steps: Vec<i64> = logs
        .iter()
        .map(|l| record(l, "step_finished")["duration_ms"].as_i64().unwrap())
        .collect();

    let s = json(&t.args(&["stats", "--json"]).run());
    let d = &s["live_duration"];
    assert_eq!(d["count"], 10);
    // Nearest rank of 10 values: p50 is the 5th smallest, p90 the 9th (not the max).
    assert_eq!(d["p50_ms"], nearest_rank(&runs, 50.0));
    assert_eq!(d["p90_ms"], nearest_rank(&runs, 90.0));
    assert_eq!(d["max_ms"], *runs.iter().max().unwrap());
    let mean = (runs.iter().sum::<i64>() as f64 / 10.0).round() as i64;
    assert_eq!(d["mean_ms"], mean);
    assert_ne!(d["p90_ms"], d["max_ms"]);
    // And they are the runs that slept 0.25s and 0.45s.
    let p50 = d["p50_ms"].as_i64().unwrap();
    let p90 = d["p90_ms"].as_i64().unwrap();
    assert!((250..450).contains(&p50), "{p50}");
    assert!((450..700).contains(&p90), "{p90}");

    let nap = &s["steps"][0];
    assert_eq!(nap["step"], "nap");
    assert_eq!(nap["runs"], 10);
    assert_eq!(nap["p50_ms"], nearest_rank(&steps, 50.0));
    assert_eq!(nap["p90_ms"], nearest_rank(&steps, 90.0));
    // Rehearsal against reality: no dry run yet, ten live ones.
    assert_eq!(s["rehearsal"][0]["dry_runs"], 0);
    assert_eq!(s["rehearsal"][0]["live_runs"], 10);
    assert_eq!(s["rehearsal"][0]["live_p50_ms"], nearest_rank(&runs, 50.0));
}

#[test]
fn time_to_mitigate_engage_and_between_incidents() {
    let t = Test::new().runbook(
        "fix",
        &runbook_with(
            r#"[params.code]
default = "0"

[[step]]
id = "check"
run = "exit {{code}}"

[[step]]
id = "repair"
run = "true"
milestone = "mitigated"

[[step]]
id = "clean-up"
run = "sleep 0.3"
"#,
        ),
    );
    let dir = t.path().to_path_buf();
    let now = Utc::now();
    let day = chrono::Duration::days(1);
    let (d1, d2, d3) = (now - day * 9, now - day * 7, now - day * 2);
    let runs: [&[&str]; 5] = [
        &["--incident", "INC-1", "--detected-at", &rfc(d1)],
        &["--incident", "INC-2", "--detected-at", &rfc(d2)],
        &["--incident", "INC-3", "--detected-at", &rfc(d3)],
        // A second, failed attempt at the first incident: it engages, never mitigates, and
        // is not another incident.
        &[
            "--incident",
            "INC-1",
            "--detected-at",
            &rfc(d1 + chrono::Duration::hours(1)),
            "--var",
            "code=1",
        ],
        // A rehearsal with a detection time is not an incident.
        &["--dry-run", "--yes", "--detected-at", &rfc(now - day)],
    ];
    for args in runs {
        let mut all = vec!["exec", "fix"];
        all.extend_from_slice(args);
        exec(&dir, &all, &[]);
    }
    let logs = logs(&dir);
    let live: Vec<&Vec<Value>> = logs
        .iter()
        .filter(|l| record(l, "run_started")["mode"] == "live")
        .collect();
    let detected = |l: &Vec<Value>| ts(&record(l, "run_started")["detected_at"]);
    let engage: Vec<i64> = live
        .iter()
        .map(|l| ms(ts(&record(l, "run_started")["ts"]), detected(l)))
        .collect();
    // To the `mitigated` milestone, not to the run's end (clean-up runs after it).
    let mitigate: Vec<i64> = live
        .iter()
        .filter(|l| l.iter().any(|r| r["event"] == "milestone"))
        .map(|l| ms(ts(&record(l, "milestone")["ts"]), detected(l)))
        .collect();
    assert_eq!(mitigate.len(), 3);

    // Kept alive: its directory holds the logs the text check below reads.
    let ran = t.args(&["stats", "--json"]).run();
    let s = json(&ran);
    let ttm = &s["time_to_mitigate"];
    assert_eq!(ttm["count"], 3);
    assert_eq!(ttm["p50_ms"], nearest_rank(&mitigate, 50.0));
    assert_eq!(ttm["p90_ms"], nearest_rank(&mitigate, 90.0));
    let mean = (mitigate.iter().sum::<i64>() as f64 / 3.0).round() as i64;
    assert_eq!(ttm["mean_ms"], mean);
    let tte = &s["time_to_engage"];
    assert_eq!(tte["count"], 4);
    assert_eq!(tte["p50_ms"], nearest_rank(&engage, 50.0));
    assert_eq!(tte["p90_ms"], nearest_rank(&engage, 90.0));

    // Three incidents: 2 days, then 5 days apart.
    let b = &s["between_incidents"][0];
    assert_eq!(b["runbook"], "fix");
    assert_eq!(b["incidents"], 3);
    assert_eq!(b["gaps"]["count"], 2);
    assert_eq!(b["gaps"]["min_ms"], 2 * 86_400_000);
    assert_eq!(b["gaps"]["max_ms"], 5 * 86_400_000);
    assert_eq!(b["gaps"]["mean_ms"], 3 * 86_400_000 + 43_200_000);

    let text = Test::new()
        .args(&["--log-dir", &dir.join("logs").to_string_lossy(), "stats"])
        .stdout_has("time to mitigate (MTTR)  3")
        .stdout_has("MEAN (MTBF)")
        .run()
        .stdout();
    let mtbf: Vec<&str> = text
        .lines()
        .find(|l| l.trim_start().starts_with("fix "))
        .unwrap_or_else(|| panic!("{text}"))
        .split_whitespace()
        .take(6)
        .collect();
    // Runbook, incidents, mean 3.5 days, median (nearest rank of two: the smaller), shortest.
    assert_eq!(mtbf, ["fix", "3", "3d", "12h", "2d", "2d"], "{text}");
}

#[test]
fn manual_steps_are_ranked_by_their_median_wait() {
    let t = Test::new().runbook(
        "people",
        &runbook_with(
            r#"[[step]]
id = "quick-look"
manual = "Glance at the dashboard."

[[step]]
id = "call-vendor"
manual = "Call the vendor and wait on hold."

[[step]]
id = "tidy"
run = "true"
confirm = true
"#,
        ),
    );
    let dir = t.path().to_path_buf();
    for (quick, vendor) in [(150, 900), (250, 700)] {
        let code = exec(
            &dir,
            &["exec", "people"],
            &[
                (quick, "done"),
                (vendor, "done on hold a while"),
                (0, "yes"),
            ],
        );
        assert_eq!(code, 0);
    }
    let logs = logs(&dir);
    let waits = |step: &str| -> Vec<i64> {
        logs.iter()
            .flat_map(|l| l.iter())
            .filter(|r| r["event"] == "step_finished" && r["step"] == step)
            .map(|r| r["wait_ms"].as_i64().unwrap())
            .collect()
    };
    let all_waits: i64 = logs
        .iter()
        .flat_map(|l| l.iter())
        .filter_map(|r| r["wait_ms"].as_i64())
        .sum();
    let run_time: i64 = logs
        .iter()
        .map(|l| record(l, "run_finished")["duration_ms"].as_i64().unwrap())
        .sum();

    let ran = t.args(&["stats", "--json"]).run();
    let s = json(&ran);
    let manual = s["human_time"]["manual_steps"].as_array().unwrap();
    assert_eq!(manual.len(), 2, "the confirm is not a manual step");
    assert_eq!(manual[0]["step"], "call-vendor");
    assert_eq!(
        manual[0]["waits"]["p50_ms"],
        nearest_rank(&waits("call-vendor"), 50.0)
    );
    assert_eq!(manual[1]["step"], "quick-look");
    assert_eq!(manual[1]["waits"]["count"], 2);
    let h = &s["human_time"];
    assert_eq!(h["wait_ms"], all_waits, "manual steps and the confirm");
    assert_eq!(h["run_ms"], run_time);
    let share = h["share"].as_f64().unwrap();
    assert!((share - all_waits as f64 / run_time as f64).abs() < 1e-9);
    assert!(share > 0.5, "these runs are mostly waiting: {share}");

    let text = Test::new()
        .args(&["--log-dir", &dir.join("logs").to_string_lossy(), "stats"])
        .stdout_has("of live run time was spent waiting for people")
        .stdout_has("the automation backlog")
        .run()
        .stdout();
    let backlog: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("automation backlog"))
        .skip(2)
        .take(2)
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(backlog, ["call-vendor", "quick-look"], "{text}");
}

#[test]
fn error_budget_of_real_runs() {
    let t = Test::new().runbook(
        "nap",
        &runbook_with("[[step]]\nid = \"nap\"\nrun = \"sleep 0.2\"\n"),
    );
    let dir = t.path().to_path_buf();
    assert_eq!(exec(&dir, &["exec", "nap"], &[]), 0);
    assert_eq!(exec(&dir, &["exec", "nap"], &[]), 0);
    assert_eq!(exec(&dir, &["exec", "nap", "--dry-run"], &[]), 0);
    // No --detected-at: each live run's incident time is from its start to its end.
    let consumed: i64 = logs(&dir)
        .iter()
        .filter(|l| record(l, "run_started")["mode"] == "live")
        .map(|l| {
            ms(
                ts(&record(l, "run_finished")["ts"]),
                ts(&record(l, "run_started")["ts"]),
            )
        })
        .sum();

    let ran = t
        .args(&["stats", "--slo", "99.9", "--window", "30d", "--json"])
        .run();
    let b = &json(&ran)["error_budget"];
    assert_eq!(b["slo_percent"], 99.9);
    assert_eq!(b["window_ms"], 30 * 86_400_000_i64);
    assert_eq!(b["allowed_ms"], 2_592_000, "0.1% of 30 days is 43m 12s");
    assert_eq!(b["runs"], 2);
    assert_eq!(b["consumed_ms"], consumed);
    assert_eq!(b["remaining_ms"], 2_592_000 - consumed);
    let pct = b["consumed_percent"].as_f64().unwrap();
    assert!((pct - consumed as f64 * 100.0 / 2_592_000.0).abs() < 1e-9);

    Test::new()
        .args(&["--log-dir", &dir.join("logs").to_string_lossy()])
        .args(&["stats", "--slo", "99.9", "--window", "30d"])
        .stdout_has("Error budget (SLO 99.9% over 30d")
        .stdout_has("allowed    43m 12s")
        .stdout_has("by 2 live runs")
        .stdout_has("runbook time is a proxy for impact")
        .run();
}

/// A log of one run, hand-written in the shape the executor writes.
fn fixture(
    id: &str,
    mode: &str,
    detected: Option<DateTime<Utc>>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> String {
    let started = serde_json::json!({
        "ts": rfc(start), "event": "run_started", "schema_version": 1, "run_id": id,
        "runbook": "db", "runbook_path": "/r/db.toml", "runbook_sha256": "00", "title": "DB",
        "mode": mode, "params": {}, "operator": "ann", "host": "h", "incident": null,
        "detected_at": detected.map(rfc), "version": "0.1.0", "log_path": format!("/l/{id}.jsonl"),
    });
    let finished = serde_json::json!({
        "ts": rfc(end), "event": "run_finished", "status": "succeeded",
        "duration_ms": ms(end, start),
    });
    format!("{started}\n{finished}\n")
}

#[test]
fn error_budget_counts_incident_time_inside_the_window_once() {
    let now = Utc::now();
    let (day, min) = (chrono::Duration::days(1), chrono::Duration::minutes(1));
    let edge = now - day * 30;
    let b = now - day * 2;
    let t = Test::new()
        // Started before the window and ended 20 minutes into it: 20m count.
        .file(
            "logs/a.jsonl",
            fixture(
                "a",
                "live",
                Some(edge - min * 60),
                edge - min * 30,
                edge + min * 20,
            )
            .as_bytes(),
        )
        // Detected 10 minutes before its start, ran 50 minutes: 60m.
        .file(
            "logs/b.jsonl",
            fixture("b", "live", Some(b - min * 10), b, b + min * 50).as_bytes(),
        )
        // A second runbook for the same outage, inside b's time: nothing more.
        .file(
            "logs/c.jsonl",
            fixture("c", "live", Some(b - min * 10), b + min * 5, b + min * 30).as_bytes(),
        )
        // A rehearsal is no downtime.
        .file(
            "logs/d.jsonl",
            fixture("d", "dry_run", None, b, b + min * 30).as_bytes(),
        )
        // Before the window: not counted, and not counted by --since either.
        .file(
            "logs/e.jsonl",
            fixture("e", "live", None, edge - day, edge - day + min).as_bytes(),
        )
        .args(&[
            "stats", "--slo", "99.9%", "--window", "30d", "--since", "7d", "--json",
        ])
        .run();
    let s = json(&t);
    let budget = &s["error_budget"];
    assert_eq!(budget["runs"], 3);
    // 20m + 60m, less the moments between this test's clock and the binary's (the window
    // ends when stats runs, so its start has moved on a little into a's 20 minutes).
    let consumed = budget["consumed_ms"].as_i64().unwrap();
    assert!(
        (80 * 60_000 - 10_000..=80 * 60_000).contains(&consumed),
        "{consumed}"
    );
    assert_eq!(budget["remaining_ms"], 2_592_000 - consumed);
    // --since limits the other figures, not the budget.
    assert_eq!(s["runs"]["total"], 3, "b, c and d started within 7 days");
    Test::new()
        .file(
            "logs/b.jsonl",
            fixture("b", "live", Some(b - min * 10), b, b + min * 50).as_bytes(),
        )
        .file(
            "logs/c.jsonl",
            fixture("c", "live", None, b + min * 55, b + min * 90).as_bytes(),
        )
        .args(&["stats", "--slo", "99.9", "--window", "30d"])
        .stdout_has("consumed   1h 35m (219.9%) by 2 live runs")
        .stdout_has("remaining  -51m 48s (overspent)")
        .run();
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    for (args, says) in [
        (&["--slo", "99.9"][..], "--slo needs --window"),
        (&["--window", "30d"], "--window needs --slo"),
        (
            &["--slo", "100", "--window", "30d"],
            "--slo `100`: not a percentage",
        ),
        (
            &["--slo", "0", "--window", "30d"],
            "--slo `0`: not a percentage",
        ),
        (
            &["--slo", "high", "--window", "30d"],
            "--slo `high`: not a percentage",
        ),
        (
            &["--slo", "99", "--window", "a month"],
            "--window `a month`: not a duration",
        ),
        (
            &["--slo", "99", "--window", "0s"],
            "--window `0s`: an empty period",
        ),
        (&["--since", "7x"], "--since `7x`: not a duration"),
    ] {
        let ran = Test::new().args(&["stats"]).args(args).status(2).run();
        let stderr = ran.stderr();
        assert!(
            stderr.starts_with(&format!("error: {says}")),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert_eq!(ran.stdout(), "");
    }
}

#[test]
fn no_runs_is_said_and_is_not_an_error() {
    let ran = Test::new().args(&["stats"]).run();
    let logs = ran.tempdir.path().join("logs");
    assert_eq!(ran.stdout(), format!("no runs in {}\n", logs.display()));
    let s = json(&Test::new().args(&["stats", "--json"]).run());
    assert_eq!(s["runs"]["total"], 0);
    assert_eq!(s["live_duration"]["count"], 0);
    assert_eq!(s["live_duration"]["p50_ms"], Value::Null);
    assert_eq!(s["error_budget"], Value::Null);
}

#[test]
fn help_defines_every_figure() {
    let help = Test::new().args(&["stats", "--help"]).run().stdout();
    for term in [
        "nearest-rank",
        "runs by mode and outcome",
        "live run duration",
        "time to engage",
        "time to mitigate (MTTR)",
        "MTBF",
        "retries",
        "human time",
        "automation backlog",
        "rehearsal vs reality",
        "(1 - PERCENT/100) x window",
        "43m 12s",
        "proxy for impact",
    ] {
        assert!(help.contains(term), "--help lacks {term:?}:\n{help}");
    }
}
