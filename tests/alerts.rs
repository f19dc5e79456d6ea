//! Alerts start the response (issue 14): `runbook serve` receiving Alertmanager's webhook,
//! routing, the diagnostic rehearsal, `runbook alerts`, and `exec --alert`. Offline tests
//! post a payload captured from the real Alertmanager (tests/fixtures/alertmanager/); the
//! last test runs the real Alertmanager in front of the receiver.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::test::{BIN, Test, require_program};

const FIRING: &str = include_str!("fixtures/alertmanager/firing.json");
const RESOLVED: &str = include_str!("fixtures/alertmanager/resolved.json");
const FINGERPRINT: &str = "b7f0de69e0b04897";

/// A runbook routed by `[alert] match`, rehearsed on alerts, with one read-only check that
/// echoes its param, one manual step and one change that must never run from a webhook
/// (it would create `marker`).
fn failover(marker: &Path) -> String {
    format!(
        r#"[runbook]
title = "Fail over the orders PostgreSQL primary"
service = "orders-db"

[alert]
match = {{ alertname = "PostgresPrimaryDown", severity = "critical" }}
diagnose = true

[params.primary]
from_label = "instance"
required = true

[params.tier]
from_label = "severity"
default = "unknown"

[[step]]
id = "check-primary"
run = "echo checking {{{{primary}}}} at {{{{tier}}}}"
readonly = true

[[step]]
id = "fence"
manual = "Fence {{{{primary}}}} from the console."
ask = "fenced_by"

[[step]]
id = "promote"
run = "touch {}"
"#,
        marker.display()
    )
}

/// `runbook serve` running in `dir` (runbooks in dir/runbooks, logs in dir/logs) on a
/// free loopback port; stopped with SIGTERM when dropped.
struct Serve {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    fn start(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .current_dir(dir)
            .env_remove("RUNBOOK_DIR")
            .env("HOME", dir)
            .env("RUNBOOK_LOG_DIR", dir.join("logs"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("listening on http://") {
                    let addr = rest.trim_end_matches("/alertmanager").to_string();
                    let _ = tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("serve did not start: {:?}", stderr.lock().unwrap());
            }
        };
        Serve {
            child,
            addr,
            stderr,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/alertmanager", self.addr)
    }

    /// Stops the server (SIGTERM) and returns its exit code and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        terminate(&mut self.child);
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        (status.code(), self.stderr.lock().unwrap().join("\n"))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            terminate(&mut self.child);
            let _ = self.child.wait();
        }
    }
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// One HTTP/1.1 request on a fresh connection; the status and the body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading a large body, and close.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn post(serve: &Serve, token: Option<&str>, body: &str) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    http(
        serve.addr,
        "POST",
        "/alertmanager",
        &headers,
        body.as_bytes(),
    )
}

/// Polls `check` every 50 ms until it returns `Some`, or fails after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(t) = check() {
            return t;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn journal(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("logs/alerts/journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every run log's lines, by run id.
fn runs(dir: &Path) -> Vec<(String, Vec<Value>)> {
    let mut out: Vec<(String, Vec<Value>)> = std::fs::read_dir(dir.join("logs"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .map(|p| {
                    let id = p.file_stem().unwrap().to_string_lossy().into_owned();
                    let lines = std::fs::read_to_string(&p)
                        .unwrap()
                        .lines()
                        .filter_map(|l| serde_json::from_str(l).ok())
                        .collect();
                    (id, lines)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn finished(lines: &[Value], step: &str) -> Value {
    lines
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == step)
        .cloned()
        .unwrap_or_else(|| panic!("no step_finished for {step}: {lines:?}"))
}

fn alerts_json(dir: &Path, all: bool) -> Vec<Value> {
    let args: &[&str] = if all {
        &["alerts", "--json", "--all"]
    } else {
        &["alerts", "--json"]
    };
    let ran = Test::new().in_dir(dir).args(args).run();
    serde_json::from_slice::<Vec<Value>>(&ran.stdout).unwrap()
}

#[test]
fn a_saved_payload_fills_params_detection_time_and_incident() {
    let t = Test::new();
    let marker = t.path().join("promoted");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alertmanager/firing.json");
    let ran = t
        .runbook("db-failover", &failover(&marker))
        .args(&[
            "exec",
            "db-failover",
            "--alert-file",
            fixture.to_str().unwrap(),
            "--yes",
        ])
        .stdin("done\n")
        .run();
    let started = &ran.events("run_started")[0];
    assert_eq!(started["params"]["primary"], "db-1");
    assert_eq!(started["params"]["tier"], "critical");
    assert_eq!(started["detected_at"], "2026-11-28T20:40:00.000Z");
    assert!(
        started["incident"].as_str().unwrap().starts_with("am-"),
        "{started}"
    );
    assert_eq!(started["service"], "orders-db");
    let alert = &started["alert"];
    assert_eq!(alert["name"], "PostgresPrimaryDown");
    assert_eq!(alert["fingerprint"], FINGERPRINT);
    assert_eq!(alert["starts_at"], "2026-11-28T20:40:00.000Z");
    assert_eq!(alert["labels"]["instance"], "db-1");
    assert_eq!(
        alert["annotations"]["summary"],
        "PostgreSQL primary db-1 is down"
    );
    assert!(
        alert["generator_url"]
            .as_str()
            .unwrap()
            .starts_with("http://prometheus")
    );
    assert!(marker.exists(), "a live run runs its steps");
    // The same group gives the same incident, and --var and --incident win.
    let again = Test::new()
        .in_dir(&ran.dir)
        .args(&[
            "exec",
            "db-failover",
            "--alert-file",
            "-",
            "--var",
            "primary=db-9",
            "--incident",
            "INC-7",
            "--dry-run",
            "--yes",
        ])
        .stdin(FIRING)
        .run();
    let logs = runs(&again.dir);
    let second = &logs[1].1[0];
    assert_eq!(second["params"]["primary"], "db-9");
    assert_eq!(second["incident"], "INC-7");
}

#[test]
fn alert_inputs_that_cannot_be_used_are_clear_errors() {
    let t = Test::new().runbook("db-failover", &failover(Path::new("/nonexistent/x")));
    let dir = t.path().to_path_buf();
    let ran = t
        .args(&["exec", "db-failover", "--alert-file", "missing.json"])
        .status(2)
        .stderr_has("missing.json")
        .run();
    Test::new()
        .in_dir(&ran.dir)
        .args(&["exec", "db-failover", "--alert-file", "-"])
        .stdin(r#"{"version":"3","alerts":[]}"#)
        .status(2)
        .stderr_has("payload version \"3\" is not supported")
        .run();
    Test::new()
        .in_dir(&dir)
        .args(&["exec", "db-failover", "--alert-file", "-"])
        .stdin("{ not json")
        .status(2)
        .stderr_has("not an Alertmanager notification")
        .run();
    let no_instance = FIRING.replace("\"instance\":\"db-1\",", "");
    Test::new()
        .in_dir(&dir)
        .args(&["exec", "db-failover", "--alert-file", "-"])
        .stdin(&no_instance)
        .status(2)
        .stderr_has("param `primary` is filled from the alert's label `instance`")
        .run();
    Test::new()
        .in_dir(&dir)
        .args(&["exec", "db-failover", "--alert", "0123"])
        .status(2)
        .stderr_has("no alert `0123` has been received")
        .run();
    Test::new()
        .in_dir(&dir)
        .args(&["exec", "db-failover", "--alert", "x", "--alert-file", "y"])
        .status(2)
        .stderr_has("cannot be used with")
        .run();
    assert!(!dir.join("logs").read_dir().is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "jsonl")))
    }));
}

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

#[test]
fn bad_requests_get_a_clear_4xx_nothing_is_stored_and_the_server_goes_on() {
    let t = Test::new().runbook("db-failover", &failover(Path::new("/nonexistent/x")));
    let serve = Serve::start(
        t.path(),
        &["--token-env", "AM_TOKEN"],
        &[("AM_TOKEN", "s3cret")],
    );
    let big = format!(
        "{{\"version\":\"4\",\"pad\":\"{}\"}}",
        "x".repeat(5 * 1024 * 1024)
    );
    let cases: Vec<(Option<&str>, String, u16, &str)> = vec![
        (None, FIRING.into(), 401, "bearer token"),
        (Some("wrong"), FIRING.into(), 401, "bearer token"),
        (
            Some("s3cret"),
            "{\"version\":".into(),
            400,
            "not an Alertmanager notification",
        ),
        (
            Some("s3cret"),
            FIRING.replace("\"version\":\"4\"", "\"version\":\"5\""),
            400,
            "version \"5\" is not supported",
        ),
        (
            Some("s3cret"),
            "[1,2,3]".into(),
            400,
            "not an Alertmanager notification",
        ),
        (
            Some("s3cret"),
            FIRING.replace(FINGERPRINT, "not-hex"),
            400,
            "fingerprint",
        ),
        (Some("s3cret"), big, 413, "at most 4194304"),
        (
            Some("s3cret"),
            "\u{0}\u{ff}garbage".into(),
            400,
            "not an Alertmanager notification",
        ),
    ];
    for (token, body, want, says) in &cases {
        let (status, text) = post(&serve, *token, body);
        assert_eq!(status, *want, "{text}");
        assert!(text.contains(says), "{status}: {text}");
    }
    let (status, _) = http(serve.addr, "GET", "/alertmanager", &[], b"");
    assert_eq!(status, 405);
    let (status, _) = http(serve.addr, "POST", "/other", &[], b"{}");
    assert_eq!(status, 404);
    assert!(journal(t.path()).is_empty(), "nothing stored");
    let (status, text) = post(&serve, Some("s3cret"), FIRING);
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        journal(t.path())
            .iter()
            .filter(|r| r["record"] == "notification")
            .count(),
        1
    );
    let (code, stderr) = serve.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn serve_refuses_bad_flags_and_a_second_receiver_on_one_log_directory() {
    let t = Test::new().runbook("db-failover", &failover(Path::new("/nonexistent/x")));
    let dir = t.path().to_path_buf();
    let _t = t
        .args(&["serve", "--listen", "localhost"])
        .status(2)
        .stderr_has("--listen `localhost`: not an address")
        .run();
    Test::new()
        .in_dir(&dir)
        .args(&["serve", "--token-env", "NOT_SET_ANYWHERE"])
        .status(2)
        .stderr_has("NOT_SET_ANYWHERE is not set")
        .run();
    let serve = Serve::start(&dir, &[], &[]);
    Test::new()
        .in_dir(&dir)
        .args(&["serve", "--listen", "127.0.0.1:0"])
        .status(3)
        .stderr_has("another `runbook serve` receives alerts")
        .run();
    let busy = serve.addr.to_string();
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir(other.path().join("runbooks")).unwrap();
    Test::new()
        .in_dir(other.path())
        .args(&["serve", "--listen", &busy])
        .status(4)
        .stderr_has("cannot listen on")
        .run();
    drop(serve);
}

/// A notification of one alert with a fingerprint of its own, numbered `i`.
fn numbered(i: usize) -> String {
    FIRING
        .replace(FINGERPRINT, &format!("{i:016x}"))
        .replace("\"instance\":\"db-1\"", &format!("\"instance\":\"db-{i}\""))
        .replace("PostgresPrimaryDown", "LoadTest")
}

#[test]
fn a_thousand_notifications_from_twenty_clients_are_each_stored_once() {
    const CLIENTS: usize = 20;
    const EACH: usize = 50;
    let t = Test::new();
    let serve = Arc::new(Serve::start(t.path(), &["--quiet"], &[]));
    let start = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let serve = Arc::clone(&serve);
            std::thread::spawn(move || {
                for k in 0..EACH {
                    let (status, text) = post(&serve, None, &numbered(c * EACH + k));
                    assert_eq!(status, 200, "{text}");
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let took = start.elapsed();
    eprintln!(
        "alerts: {} notifications from {CLIENTS} clients in {took:.2?}: {:.0}/s",
        CLIENTS * EACH,
        (CLIENTS * EACH) as f64 / took.as_secs_f64()
    );
    let records = journal(t.path());
    let mut fingerprints: Vec<String> = records
        .iter()
        .filter(|r| r["record"] == "notification")
        .map(|r| {
            r["notification"]["alerts"][0]["fingerprint"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(fingerprints.len(), CLIENTS * EACH);
    fingerprints.sort();
    fingerprints.dedup();
    assert_eq!(fingerprints.len(), CLIENTS * EACH, "each stored once");
    let listed = alerts_json(t.path(), true);
    assert_eq!(listed.len(), CLIENTS * EACH);
    assert!(listed.iter().all(|a| a["route"]["runbook"].is_null()));
}

#[test]
fn a_firing_alert_gets_one_rehearsal_then_the_response_and_the_resolution_are_recorded() {
    let t = Test::new();
    let marker = t.path().join("promoted");
    let t = t.runbook("db-failover", &failover(&marker));
    let dir = t.path().to_path_buf();
    let serve = Serve::start(&dir, &[], &[]);
    for _ in 0..3 {
        let (status, text) = post(&serve, None, FIRING);
        assert_eq!(status, 200, "{text}");
    }
    // One alert that no runbook matches: listed, as a finding.
    let other = FIRING
        .replace(FINGERPRINT, "00000000000000aa")
        .replace("PostgresPrimaryDown", "QueueBacklog")
        .replace("db-failover.md", "queue-backlog.md");
    assert_eq!(post(&serve, None, &other).0, 200);
    let rehearsal = wait_for("the rehearsal to finish", Duration::from_secs(30), || {
        runs(&dir)
            .into_iter()
            .find(|(_, l)| l.iter().any(|e| e["event"] == "run_finished"))
    });
    let (rehearsal_id, lines) = rehearsal;
    let started = &lines[0];
    assert_eq!(started["mode"], "dry_run");
    assert_eq!(started["diagnostic"], true);
    assert_eq!(started["params"]["primary"], "db-1", "labels as params");
    assert_eq!(started["alert"]["id"], FINGERPRINT);
    let check = finished(&lines, "check-primary");
    assert_eq!(check["status"], "succeeded");
    let out: String = lines
        .iter()
        .filter(|e| e["event"] == "step_output")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert!(out.contains("checking db-1 at critical"), "{out}");
    let fence = finished(&lines, "fence");
    assert_eq!(
        (fence["kind"].as_str(), fence["status"].as_str()),
        (Some("manual"), Some("dry_run"))
    );
    assert!(
        fence["reason"]
            .as_str()
            .unwrap()
            .contains("waiting for a person")
    );
    assert_eq!(finished(&lines, "promote")["status"], "dry_run");
    assert!(
        !marker.exists(),
        "a webhook never runs a step that is not readonly"
    );
    assert!(
        lines.iter().all(|e| e["event"] != "prompt_opened"),
        "nobody is asked"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        runs(&dir).len(),
        1,
        "one rehearsal per alert, however often it repeats"
    );

    let listed = Test::new().in_dir(&dir).args(&["alerts"]).run().stdout();
    assert!(listed.contains(FINGERPRINT), "{listed}");
    assert!(
        listed.contains("succeeded: 1 check ran; 1 manual step waiting"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("exec db-failover --alert {FINGERPRINT}")),
        "{listed}"
    );
    assert!(
        listed.contains("00000000000000aa QueueBacklog; it names queue-backlog"),
        "{listed}"
    );
    let json = alerts_json(&dir, false);
    let ours = json.iter().find(|a| a["id"] == FINGERPRINT).unwrap();
    assert_eq!(ours["notifications"], 3);
    assert_eq!(
        ours["route"]["by"], "annotation",
        "runbook_url before [alert] match"
    );
    assert_eq!(
        ours["diagnostic"]["run_id"].as_str(),
        Some(rehearsal_id.as_str())
    );
    assert_eq!(ours["diagnostic_outcome"]["waiting"], 1);

    // The person responds: the live run takes the alert by its id.
    let live = Test::new()
        .in_dir(&dir)
        .args(&["exec", "db-failover", "--alert", &FINGERPRINT[..8]])
        .stdin("bob\n")
        .run();
    assert!(marker.exists());
    let lines = runs(&live.dir)
        .into_iter()
        .find(|(id, _)| *id != rehearsal_id)
        .unwrap()
        .1;
    let started = &lines[0];
    assert_eq!(started["mode"], "live");
    assert_eq!(started["params"]["primary"], "db-1");
    assert_eq!(started["detected_at"], "2026-11-28T20:40:00.000Z");
    assert_eq!(
        started["alert"]["diagnostic_run"].as_str(),
        Some(rehearsal_id.as_str())
    );
    assert_eq!(started["incident"], runs(&dir)[0].1[0]["incident"]);

    Test::new()
        .in_dir(&dir)
        .args(&["log", "show", "latest"])
        .stdout_has(&format!(
            "alert PostgresPrimaryDown {FINGERPRINT} (firing), rehearsed in run {rehearsal_id}"
        ))
        .run();

    // Resolved: gone from the default listing, shown as resolved with --all.
    assert_eq!(post(&serve, None, RESOLVED).0, 200);
    let firing = alerts_json(&dir, false);
    assert!(firing.iter().all(|a| a["id"] != FINGERPRINT));
    let all = alerts_json(&dir, true);
    let ours = all.iter().find(|a| a["id"] == FINGERPRINT).unwrap();
    assert_eq!(ours["status"], "resolved");
    assert_eq!(ours["ends_at"], "2026-11-28T20:55:00Z");
    let (code, stderr) = serve.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("alert b7f0de69e0b04897 PostgresPrimaryDown: runbook db-failover"),
        "{stderr}"
    );
}

/// A free loopback port (free when asked; the caller binds it at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Alertmanager {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        terminate(&mut self.child);
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    /// Starts Alertmanager on a free loopback port, gossip off, storage in `dir`, with one
    /// route to `runbook serve` at `webhook`.
    fn start(bin: &Path, dir: &Path, webhook: &str, token: &str) -> Alertmanager {
        let config = format!(
            r#"route:
  receiver: runbook
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: runbook
    webhook_configs:
      - url: {webhook}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"#
        );
        std::fs::write(dir.join("alertmanager.yml"), config).unwrap();
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap();
            let child = Command::new(bin)
                .arg(format!(
                    "--config.file={}",
                    dir.join("alertmanager.yml").display()
                ))
                .arg(format!("--storage.path={}", dir.join("am-data").display()))
                .arg("--cluster.listen-address=")
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let mut am = Alertmanager { child, addr };
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = am.child.try_wait() {
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                    && http(addr, "GET", "/-/ready", &[], b"").0 == 200
                {
                    return am;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            last = std::fs::read_to_string(dir.join("alertmanager.log")).unwrap_or_default();
            terminate(&mut am.child);
        }
        panic!("Alertmanager did not start:\n{last}");
    }

    fn post_alerts(&self, alerts: &Value) {
        let body = alerts.to_string();
        let (status, text) = http(
            self.addr,
            "POST",
            "/api/v2/alerts",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(status, 200, "{text}");
    }
}

#[test]
fn through_the_real_alertmanager() {
    let Some(bin) = require_program(
        &["/usr/bin/prometheus-alertmanager"],
        "prometheus-alertmanager",
    ) else {
        return;
    };
    let t = Test::new();
    let marker = t.path().join("promoted");
    let t = t.runbook("db-failover", &failover(&marker));
    let dir = t.path().to_path_buf();
    let serve = Serve::start(
        &dir,
        &["--token-env", "AM_TOKEN"],
        &[("AM_TOKEN", "tok-123")],
    );
    let am = Alertmanager::start(&bin, &dir, &serve.url(), "tok-123");
    let starts = (chrono::Utc::now() - chrono::Duration::minutes(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let alert = serde_json::json!({
        "labels": {"alertname": "PostgresPrimaryDown", "severity": "critical", "instance": "db-7", "service": "orders-db"},
        "annotations": {"summary": "primary db-7 down"},
        "generatorURL": "http://prometheus.test:9090/graph?g0.expr=pg_up",
        "startsAt": starts,
    });
    let posted = Instant::now();
    am.post_alerts(&serde_json::json!([alert.clone()]));
    let rehearsal = wait_for(
        "the notification and its rehearsal",
        Duration::from_secs(60),
        || {
            runs(&dir)
                .into_iter()
                .find(|(_, l)| l.iter().any(|e| e["event"] == "run_finished"))
        },
    );
    let first_received = journal(&dir)
        .iter()
        .find(|r| r["record"] == "notification")
        .map(|r| r["ts"].as_str().unwrap().to_string())
        .unwrap();
    eprintln!(
        "alerts: Alertmanager to rehearsal finished in {:.2?} (group_wait 1s); notification stored at {first_received}, rehearsal started at {}",
        posted.elapsed(),
        rehearsal.1[0]["ts"]
    );
    let (rehearsal_id, lines) = rehearsal;
    assert_eq!(lines[0]["params"]["primary"], "db-7", "labels as params");
    assert_eq!(finished(&lines, "check-primary")["status"], "succeeded");
    assert_eq!(finished(&lines, "fence")["status"], "dry_run");
    assert!(!marker.exists());
    let listed = alerts_json(&dir, false);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let id = listed[0]["id"].as_str().unwrap().to_string();
    assert_eq!(listed[0]["route"]["runbook"], "db-failover");
    assert_eq!(listed[0]["receiver"], "runbook");
    assert_eq!(
        listed[0]["diagnostic"]["run_id"].as_str(),
        Some(rehearsal_id.as_str())
    );

    let live = Test::new()
        .in_dir(&dir)
        .args(&["exec", "db-failover", "--alert", &id])
        .stdin("ann\n")
        .run();
    let lines = runs(&live.dir)
        .into_iter()
        .find(|(r, _)| *r != rehearsal_id)
        .unwrap()
        .1;
    assert_eq!(lines[0]["params"]["primary"], "db-7");
    let detected =
        chrono::DateTime::parse_from_rfc3339(lines[0]["detected_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        detected.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        starts
    );
    assert_eq!(
        lines[0]["alert"]["generator_url"],
        "http://prometheus.test:9090/graph?g0.expr=pg_up"
    );

    // Resolve it through Alertmanager: the receiver hears of it and says so.
    let mut resolved = alert;
    resolved["endsAt"] =
        Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    am.post_alerts(&serde_json::json!([resolved]));
    wait_for("the resolved notification", Duration::from_secs(60), || {
        let all = alerts_json(&dir, true);
        (all.len() == 1 && all[0]["status"] == "resolved").then_some(())
    });
    assert!(alerts_json(&dir, false).is_empty());
    drop(am);
    let (code, stderr) = serve.stop();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn the_report_names_the_alert_and_stats_give_time_to_engage_by_runbook_and_service() {
    let t = Test::new();
    let marker = t.path().join("promoted");
    let ran = t
        .runbook("db-failover", &failover(&marker))
        .args(&["exec", "db-failover", "--alert-file", "-"])
        .stdin(FIRING)
        .status(1)
        .run();
    // stdin held the payload, so the manual step met the end of input: the run aborted.
    // Once more with the payload in a file and the answer on stdin.
    let dir = ran.dir.clone();
    std::fs::write(dir.join("payload.json"), FIRING).unwrap();
    Test::new()
        .in_dir(&dir)
        .args(&["exec", "db-failover", "--alert-file", "payload.json"])
        .stdin("ann\n")
        .run();
    let report = Test::new()
        .in_dir(&dir)
        .args(&["report", "latest"])
        .run()
        .stdout();
    assert!(
        report.contains("**Alert:** PostgresPrimaryDown"),
        "{report}"
    );
    assert!(report.contains("b7f0de69e0b04897"), "{report}");
    assert!(
        report.contains("PostgreSQL primary db-1 is down"),
        "{report}"
    );
    assert!(report.contains("**Alert started:** 2026-11-28"), "{report}");
    assert!(
        report.contains("(http://prometheus.example.com:9090/graph?g0.expr=pg"),
        "{report}"
    );
    assert!(report.contains("after detection"), "{report}");
    let stats = Test::new().in_dir(&dir).args(&["stats"]).run().stdout();
    assert!(stats.contains("Time to engage by runbook"), "{stats}");
    assert!(stats.contains("Time to engage by service"), "{stats}");
    assert!(stats.contains("orders-db"), "{stats}");
    let json: Value = serde_json::from_slice(
        &Test::new()
            .in_dir(&dir)
            .args(&["stats", "--json"])
            .run()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["engage_by_runbook"][0]["name"], "db-failover");
    assert_eq!(json["engage_by_runbook"][0]["from_alerts"], 2);
    assert_eq!(json["engage_by_service"][0]["name"], "orders-db");

    // A link from the network that is not http(s) never reaches the HTML report.
    let evil = FIRING.replace(
        "http://prometheus.example.com:9090",
        "javascript:alert(1)//",
    );
    std::fs::write(dir.join("evil.json"), evil).unwrap();
    Test::new()
        .in_dir(&dir)
        .args(&[
            "exec",
            "db-failover",
            "--alert-file",
            "evil.json",
            "--dry-run",
            "--yes",
        ])
        .run();
    let html = Test::new()
        .in_dir(&dir)
        .args(&["report", "latest", "--format", "html"])
        .run()
        .stdout();
    assert!(html.contains("PostgresPrimaryDown"));
    assert!(
        !html.contains("javascript:"),
        "a javascript: link in the report"
    );
}

#[test]
fn a_rehearsal_that_cannot_start_says_why_in_the_listing() {
    let t = Test::new();
    let marker = t.path().join("promoted");
    // The same runbook, with a pattern the hostile label below does not meet.
    let strict = failover(&marker).replace(
        "from_label = \"instance\"",
        "from_label = \"instance\"\npattern = '^db-[0-9]+$'",
    );
    let t = t.runbook("db-failover", &strict);
    let dir = t.path().to_path_buf();
    let serve = Serve::start(&dir, &[], &[]);
    let hostile = FIRING.replace(
        "\"instance\":\"db-1\"",
        "\"instance\":\"db-1; touch pwned\"",
    );
    assert_eq!(post(&serve, None, &hostile).0, 200);
    let listed = wait_for("the failed rehearsal", Duration::from_secs(30), || {
        let all = alerts_json(&dir, false);
        let failed = all.first()?["diagnostic"]["failed"].as_str()?.to_string();
        Some(failed)
    });
    assert!(listed.contains("exit 2"), "{listed}");
    assert!(listed.contains("does not match its pattern"), "{listed}");
    let text = Test::new().in_dir(&dir).args(&["alerts"]).run().stdout();
    assert!(text.contains("did not run: exit 2"), "{text}");
    assert!(!dir.join("pwned").exists() && !marker.exists());
    assert!(runs(&dir).is_empty(), "no run started");
    drop(serve);
}
