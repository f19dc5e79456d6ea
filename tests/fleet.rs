//! Steps on many hosts (issue 13), against a real OpenSSH server: each test starts its own
//! `sshd` on a free loopback port, with a host key and a user key made for it, and an
//! ssh_config in which `web-1` ... `web-N` are aliases of that server and `down-N` of a
//! closed port. Without sshd the tests skip loudly, and fail when `CI` is set.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::test::{Ran, Test, require_program, runbook_with};

/// One sshd for one test, stopped when dropped.
pub struct Sshd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Sshd {
    /// Starts sshd, or says why the test is skipped (`None`).
    pub fn start() -> Option<Sshd> {
        let sshd = require_program(&["/usr/sbin/sshd"], "openssh-server")?;
        let keygen = require_program(&["/usr/bin/ssh-keygen"], "openssh-client")?;
        require_program(&["/usr/bin/ssh"], "openssh-client")?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["host_key", "id"] {
            let ok = Command::new(&keygen)
                .args(["-q", "-t", "ed25519", "-N", ""])
                .arg("-f")
                .arg(d.join(key))
                .status()
                .unwrap()
                .success();
            assert!(ok, "ssh-keygen failed");
        }
        std::fs::copy(d.join("id.pub"), d.join("authorized_keys")).unwrap();
        // Root's sshd wants its privilege separation directory (made at boot by the package).
        if nix_is_root() {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let user = whoami();
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
        // A free port can be taken between here and sshd's bind: try a few. SHLVL=1 in the
        // sessions keeps Debian's bash from reading the user's ~/.bashrc there (it does for
        // ssh sessions at shell level 1): the same, quick remote shell on every machine.
        for _ in 0..5 {
            let port = free_port();
            let closed = free_port();
            std::fs::write(
                d.join("sshd_config"),
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\n\
                     AuthorizedKeysFile {ak}\nStrictModes no\nUsePAM no\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     PermitRootLogin prohibit-password\nMaxStartups 1000\nMaxSessions 100\n\
                     LogLevel ERROR\nSetEnv SHLVL=1\n",
                    hk = d.join("host_key").display(),
                    pid = d.join("sshd.pid").display(),
                    ak = d.join("authorized_keys").display(),
                ),
            )
            .unwrap();
            std::fs::write(
                d.join("ssh_config"),
                format!(
                    "Host down-*\n  Port {closed}\nHost *\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n\
                     IdentityFile {id}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n\
                     StrictHostKeyChecking yes\n  LogLevel ERROR\n",
                    id = d.join("id").display(),
                    kh = d.join("known_hosts").display(),
                ),
            )
            .unwrap();
            std::fs::write(
                d.join("known_hosts"),
                format!("[127.0.0.1]:{port} {} {}\n", host_key[0], host_key[1]),
            )
            .unwrap();
            let mut child = Command::new(&sshd)
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Sshd { dir, child });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            eprintln!(
                "sshd did not start on port {port}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        panic!("sshd did not start");
    }

    /// The ssh_config with the host aliases.
    pub fn config(&self) -> String {
        self.dir.path().join("ssh_config").display().to_string()
    }

    /// Runs a command on `host` with the test's config (for checks).
    pub fn ssh(&self, host: &str, command: &str) -> std::process::Output {
        Command::new("ssh")
            .args([
                "-F",
                &self.config(),
                "-o",
                "BatchMode=yes",
                host,
                "--",
                command,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Sshd {
    /// The server's open connections: processes whose parent is the listener.
    fn connections(&self) -> Vec<String> {
        let listener = self.child.id().to_string();
        std::fs::read_dir("/proc")
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| {
                        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                        // pid (comm) state ppid ...: the comm may hold spaces.
                        let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
                        (ppid == listener).then(|| e.file_name().to_string_lossy().into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Sshd {
    /// Stops the server and its connections: each connection is a process of its own
    /// (in a session of its own), which outlives the listener, and with it the shared
    /// connections of runs that could not close them (a killed run).
    fn drop(&mut self) {
        let children = self.connections();
        for pid in children {
            if let Ok(pid) = pid.parse() {
                signal(pid, Signal::SIGTERM);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `sig` to process `pid` (gone already is fine).
fn signal(pid: i32, sig: Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

/// Processes whose command line holds `text` (from /proc: no procps needed).
fn processes_with(text: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                    cmdline.contains(text).then_some(cmdline)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn nix_is_root() -> bool {
    nix::unistd::getuid().is_root()
}

fn whoami() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| panic!("no user name for this uid"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `web-1, web-2, ... web-N`.
fn web(n: usize) -> String {
    (1..=n)
        .map(|i| format!("web-{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A test of runbook `x` with the sshd's config given through the environment.
fn fleet_test(sshd: &Sshd, steps: &str) -> Test {
    Test::new()
        .runbook("x", &runbook_with(steps))
        .env("RUNBOOK_SSH_CONFIG", &sshd.config())
}

/// The per-host `step_finished` records of `step` in the run phase, by host.
fn host_ends(ran: &Ran, step: &str) -> Vec<(String, String)> {
    let mut ends: Vec<(String, String)> = ran
        .events("step_finished")
        .into_iter()
        .filter(|e| e["step"] == step && e["phase"] == "run" && e["host"].is_string())
        .map(|e| {
            (
                e["host"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    ends.sort();
    ends
}

/// The step's own `step_finished` (no host).
fn step_end(ran: &Ran, step: &str) -> serde_json::Value {
    ran.events("step_finished")
        .into_iter()
        .rfind(|e| e["step"] == step && e["phase"] == "run" && e["host"].is_null())
        .unwrap_or_else(|| panic!("no step_finished for {step}"))
}

fn lines(path: &Path) -> Vec<String> {
    let mut l: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    l.sort();
    l
}

#[test]
fn twenty_hosts_all_succeed_each_recorded_with_its_host() {
    let Some(sshd) = Sshd::start() else { return };
    let ran = fleet_test(
        &sshd,
        &format!(
            "[[step]]\nid = \"hello\"\nhosts = \"{}\"\nrun = \"echo hello from {{{{host}}}}\"\n",
            web(20)
        ),
    )
    .args(&["exec", "x"])
    .stdout_has("[web-7] hello from web-7\n")
    .stderr_has("20 hosts: 20 succeeded")
    .run();
    let ends = host_ends(&ran, "hello");
    assert_eq!(ends.len(), 20);
    assert!(ends.iter().all(|(_, s)| s == "succeeded"), "{ends:?}");
    let end = step_end(&ran, "hello");
    assert_eq!(end["status"], "succeeded");
    assert_eq!(end["host_counts"]["succeeded"], 20);
    assert_eq!(end["host_counts"]["failed"], 0);
    let started = ran.events("step_started");
    assert_eq!(started[0]["hosts"].as_array().unwrap().len(), 20);
    let out: Vec<_> = ran
        .events("step_output")
        .into_iter()
        .filter(|e| e["host"] == "web-13")
        .collect();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["text"], "hello from web-13\n");
    // The run closed its 20 shared connections as it ended.
    let start = Instant::now();
    while !sshd.connections().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{} connections still open after the run",
            sshd.connections().len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const ONE_FAILS: &str = "[[step]]
id = \"roll\"
hosts = [\"web-1\", \"web-2\", \"web-3\", \"web-4\", \"web-5\"]
batch = 1
run = \"test {{host}} != web-2\"
";

#[test]
fn one_failing_host_under_max_failed_0_stops_the_rollout_and_fails_the_run() {
    let Some(sshd) = Sshd::start() else { return };
    let ran = fleet_test(&sshd, ONE_FAILS)
        .args(&["exec", "x"])
        .status(1)
        .stderr_has("FAILED roll on web-2")
        .stderr_has("1 of 5 hosts failed, more than max_failed = 0 allows: web-2 (exit code 1); 3 not started")
        .run();
    assert_eq!(
        host_ends(&ran, "roll"),
        [
            ("web-1".into(), "succeeded".into()),
            ("web-2".into(), "failed".into())
        ]
    );
    let end = step_end(&ran, "roll");
    assert_eq!(end["status"], "failed");
    assert_eq!(end["host_counts"]["skipped"], 3);
}

#[test]
fn one_failing_host_under_max_failed_1_is_tolerated() {
    let Some(sshd) = Sshd::start() else { return };
    let ran = fleet_test(&sshd, &format!("{ONE_FAILS}max_failed = 1\n"))
        .args(&["exec", "x"])
        .stderr_has("5 hosts: 4 succeeded, 1 failed")
        .run();
    assert_eq!(host_ends(&ran, "roll").len(), 5);
    let end = step_end(&ran, "roll");
    assert_eq!(end["status"], "succeeded");
    assert!(
        end["reason"]
            .as_str()
            .unwrap()
            .contains("within max_failed = 1: web-2"),
        "{end}"
    );
}

#[test]
fn a_host_that_cannot_be_reached_is_unreachable_not_failed() {
    let Some(sshd) = Sshd::start() else { return };
    let ran = fleet_test(
        &sshd,
        "[[step]]\nid = \"probe\"\nhosts = \"web-1 down-1\"\nmax_failed = \"100%\"\nrun = \"exit 255\"\n\n[[step]]\nid = \"reach\"\nhosts = [\"down-2\"]\nrun = \"true\"\non_failure = \"continue\"\n",
    )
    .args(&["exec", "x"])
    .stderr_has("UNREACHABLE reach on down-2")
    .run();
    // web-1 ran the command and it exited 255: that is the command's failure, not ssh's.
    assert_eq!(
        host_ends(&ran, "probe"),
        [
            ("down-1".into(), "unreachable".into()),
            ("web-1".into(), "failed".into())
        ]
    );
    let end = ran
        .events("step_finished")
        .into_iter()
        .find(|e| e["host"] == "down-2")
        .unwrap();
    assert_eq!(end["status"], "unreachable");
    assert!(
        end["reason"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{end}"
    );
    assert_eq!(step_end(&ran, "reach")["host_counts"]["unreachable"], 1);
}

#[test]
fn a_timeout_ends_the_remote_command_not_only_the_local_ssh() {
    let Some(sshd) = Sshd::start() else { return };
    let t = fleet_test(&sshd, "");
    let dir = t.path().display().to_string();
    let ran = t
        .runbook(
            "x",
            &runbook_with(&format!(
                "[[step]]\nid = \"hang\"\nhosts = [\"web-1\", \"web-2\"]\ntimeout = \"1s\"\nmax_failed = 2\nrun = \"echo $$ > {dir}/pid-{{{{host}}}}; sleep 7531 & sleep 7532; wait\"\n"
            )),
        )
        .args(&["exec", "x"])
        .stderr_has("TIMED OUT hang on web-1")
        .run();
    assert_eq!(
        host_ends(&ran, "hang"),
        [
            ("web-1".into(), "timed_out".into()),
            ("web-2".into(), "timed_out".into())
        ]
    );
    for host in ["web-1", "web-2"] {
        let pid = std::fs::read_to_string(ran.dir.join(format!("pid-{host}"))).unwrap();
        let pid = pid.trim();
        assert!(!pid.is_empty());
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "the remote shell {pid} of {host} outlived the timeout"
        );
    }
    let left: Vec<String> = ["sleep 7531", "sleep 7532"]
        .iter()
        .flat_map(|p| processes_with(p))
        .collect();
    assert!(left.is_empty(), "remote processes left: {left:?}");
}

#[test]
fn rolling_batches_never_run_more_hosts_than_the_batch() {
    let Some(sshd) = Sshd::start() else { return };
    let t = fleet_test(&sshd, "");
    let dir = t.path().display().to_string();
    let ran = t
        .runbook(
            "x",
            &runbook_with(&format!(
                "[[step]]\nid = \"roll\"\nhosts = \"{}\"\nbatch = \"25%\"\nrun = \"echo start $(date +%s%N) >> {dir}/t-{{{{host}}}}; sleep 0.3; echo end $(date +%s%N) >> {dir}/t-{{{{host}}}}\"\n",
                web(12)
            )),
        )
        .args(&["exec", "x"])
        .run();
    assert_eq!(host_ends(&ran, "roll").len(), 12);
    // Every host's start and end, then the most at once.
    let mut marks: Vec<(u128, i32)> = Vec::new();
    for i in 1..=12 {
        let text = std::fs::read_to_string(ran.dir.join(format!("t-web-{i}"))).unwrap();
        for line in text.lines() {
            let (what, at) = line.split_once(' ').unwrap();
            marks.push((at.parse().unwrap(), if what == "start" { 1 } else { -1 }));
        }
    }
    assert_eq!(marks.len(), 24);
    // Ends before starts at the same instant: a host that ended made room for the next.
    marks.sort_by_key(|&(t, d)| (t, d));
    let (mut now, mut most) = (0, 0);
    for (_, d) in marks {
        now += d;
        most = most.max(now);
    }
    assert!(most <= 3, "{most} hosts ran at once with batch 25% of 12");
    assert!(most >= 2, "the hosts never overlapped ({most})");
}

#[test]
fn capture_is_a_table_of_hosts_usable_with_lookup_and_each() {
    let Some(sshd) = Sshd::start() else { return };
    let ran = fleet_test(
        &sshd,
        r#"[[step]]
id = "versions"
hosts = "web-1 web-2 web-3"
run = "echo '  v-{{host}}  '"
capture = "versions"

[[step]]
id = "use"
run = "echo web-2 has {{lookup versions \"web-2\"}}; {{#each versions}}echo {{@key}}={{this}}; {{/each}}"
"#,
    )
    .args(&["exec", "x"])
    .stdout_has("web-2 has v-web-2\n")
    .stdout_has("web-1=v-web-1\nweb-2=v-web-2\nweb-3=v-web-3\n")
    .run();
    let end = step_end(&ran, "versions");
    let table: serde_json::Value = serde_json::from_str(end["captured"].as_str().unwrap()).unwrap();
    assert_eq!(table["web-3"], "v-web-3");
    let host = ran
        .events("step_finished")
        .into_iter()
        .find(|e| e["host"] == "web-1")
        .unwrap();
    assert_eq!(host["captured"], "v-web-1");
}

#[test]
fn a_dry_run_lists_each_host_and_command_and_runs_readonly_steps_everywhere() {
    let Some(sshd) = Sshd::start() else { return };
    let t = fleet_test(&sshd, "");
    let dir = t.path().display().to_string();
    let ran = t
        .runbook(
            "x",
            &runbook_with(&format!(
                "[[step]]\nid = \"look\"\nhosts = \"web-1 web-2\"\nreadonly = true\nrun = \"touch {dir}/looked-{{{{host}}}}\"\n\n[[step]]\nid = \"restart\"\nhosts = \"web-1 web-2 web-3\"\nrun = \"touch {dir}/restarted-{{{{host}}}}\"\n"
            )),
        )
        .args(&["exec", "x", "--dry-run"])
        .stderr_has(&format!("would run restart on web-3: touch {dir}/restarted-web-3"))
        .run();
    assert!(ran.dir.join("looked-web-1").exists() && ran.dir.join("looked-web-2").exists());
    assert!(!ran.dir.join("restarted-web-1").exists());
    assert_eq!(
        host_ends(&ran, "restart"),
        [
            ("web-1".into(), "dry_run".into()),
            ("web-2".into(), "dry_run".into()),
            ("web-3".into(), "dry_run".into())
        ]
    );
    assert_eq!(step_end(&ran, "restart")["status"], "dry_run");
}

#[test]
fn shell_hostile_values_reach_the_remote_command_as_data() {
    let Some(sshd) = Sshd::start() else { return };
    let t = fleet_test(&sshd, "");
    let dir = t.path().display().to_string();
    let evil = format!(
        "it's \"$(touch {dir}/pwned)\"; touch {dir}/pwned2 `touch {dir}/pwned3` $HOME \\ '"
    );
    let ran = t
        .runbook(
            "x",
            &format!(
                "[runbook]\ntitle = \"T\"\n\n[params.msg]\ndefault = {evil:?}\n\n[[step]]\nid = \"say\"\nhosts = [\"web-1\", \"web-2\"]\nrun = \"printf '%s' {{{{msg}}}} > {dir}/got-{{{{host}}}}\"\n"
            ),
        )
        .args(&["exec", "x"])
        .run();
    for host in ["web-1", "web-2"] {
        let got = std::fs::read_to_string(ran.dir.join(format!("got-{host}"))).unwrap();
        assert_eq!(got, evil);
    }
    for p in ["pwned", "pwned2", "pwned3"] {
        assert!(!ran.dir.join(p).exists(), "{p}: a value ran as code");
    }
}

#[test]
fn hosts_come_from_groups_and_list_params_split_on_commas_and_spaces() {
    let Some(sshd) = Sshd::start() else { return };
    let ran = Test::new()
        .file("runbooks/hosts.toml", b"web = [\"web-1\", \"web-2\"]\ndb = [\"db-1\"]\n")
        .runbook(
            "x",
            "[runbook]\ntitle = \"T\"\n\n[params.targets]\ndefault = \"web-3,web-4  web-5\"\n\n[[step]]\nid = \"a\"\nhosts = \"@web, {{targets}}\"\nrun = \"true\"\n\n[[step]]\nid = \"b\"\nhosts = [\"@db\", \"web-1\"]\nrun = \"true\"\n",
        )
        .env("RUNBOOK_SSH_CONFIG", &sshd.config())
        .args(&["exec", "x", "--var", "targets=web-3, web-3\tweb-4"])
        .run();
    let hosts: Vec<String> = host_ends(&ran, "a").into_iter().map(|(h, _)| h).collect();
    assert_eq!(hosts, ["web-1", "web-2", "web-3", "web-4"]);
    assert_eq!(host_ends(&ran, "b").len(), 2);
    // The groups file is not a runbook.
    Test::new()
        .file("runbooks/hosts.toml", b"web = [\"web-1\"]\n")
        .runbook("x", &runbook_with("[[step]]\nid = \"a\"\nrun = \"true\"\n"))
        .args(&["check"])
        .stdout("ok: 1 runbook valid (1 step)\n")
        .run();
}

#[test]
fn a_failure_prompt_retries_only_the_failed_hosts() {
    let Some(sshd) = Sshd::start() else { return };
    let t = fleet_test(&sshd, "");
    let dir = t.path().display().to_string();
    let ran = t
        .runbook(
            "x",
            &runbook_with(&format!(
                "[[step]]\nid = \"fix\"\nhosts = \"web-1 web-2 web-3\"\non_failure = \"prompt\"\nrun = \"if [ {{{{host}}}} = web-2 ] && [ ! -e {dir}/twice ]; then [ -e {dir}/once ] && touch {dir}/twice; touch {dir}/once; exit 4; fi; echo {{{{host}}}} >> {dir}/count\"\n"
            )),
        )
        .args(&["exec", "x"])
        .stdin("retry\nretry\n")
        .stderr_has("retry runs only the hosts that failed or did not start")
        .run();
    assert_eq!(lines(&ran.dir.join("count")), ["web-1", "web-2", "web-3"]);
    let web2: Vec<_> = ran
        .events("step_finished")
        .into_iter()
        .filter(|e| e["host"] == "web-2")
        .map(|e| (e["status"].clone(), e["attempts"].clone()))
        .collect();
    assert_eq!(
        web2,
        [
            ("failed".into(), 1.into()),
            ("failed".into(), 2.into()),
            ("succeeded".into(), 3.into())
        ]
    );
    let end = step_end(&ran, "fix");
    assert_eq!(end["status"], "succeeded");
    assert_eq!(end["host_counts"]["succeeded"], 3);
}

#[test]
fn a_rollback_runs_on_the_hosts_where_the_step_succeeded() {
    let Some(sshd) = Sshd::start() else { return };
    let t = fleet_test(&sshd, "");
    let dir = t.path().display().to_string();
    let ran = t
        .runbook(
            "x",
            &runbook_with(&format!(
                "[[step]]\nid = \"change\"\nhosts = \"web-1 web-2 web-3\"\nmax_failed = 1\nrun = \"test {{{{host}}}} != web-3\"\nrollback = \"echo {{{{host}}}} >> {dir}/undone\"\n\n[[step]]\nid = \"boom\"\nrun = \"false\"\n"
            )),
        )
        .args(&["exec", "x", "--rollback", "auto"])
        .status(1)
        .run();
    assert_eq!(lines(&ran.dir.join("undone")), ["web-1", "web-2"]);
    let rollback = ran
        .events("step_finished")
        .into_iter()
        .find(|e| e["step"] == "change" && e["phase"] == "rollback" && e["host"].is_null())
        .unwrap();
    assert_eq!(rollback["status"], "succeeded");
    assert_eq!(rollback["host_counts"]["succeeded"], 2);
}

#[test]
fn killed_mid_fleet_a_resume_runs_no_host_twice_and_asks_about_the_one_in_flight() {
    let Some(sshd) = Sshd::start() else { return };
    let t = fleet_test(&sshd, "");
    let dir = t.path().to_path_buf();
    let d = dir.display().to_string();
    let t = t.runbook(
        "x",
        &runbook_with(&format!(
            "[[step]]\nid = \"roll\"\nhosts = \"{}\"\nbatch = 2\nrun = \"echo {{{{host}}}} >> {d}/count; if [ {{{{host}}}} = web-3 ] && [ ! -e {d}/resumed ]; then echo $$ > {d}/web-3.pid; sleep 60; fi\"\n\n[[step]]\nid = \"after\"\nrun = \"echo after >> {d}/count\"\n",
            web(6)
        )),
    );
    let mut child = Command::new(crate::test::BIN)
        .args(["exec", "x"])
        .current_dir(&dir)
        .env("HOME", &dir)
        .env("RUNBOOK_LOG_DIR", dir.join("logs"))
        .env("RUNBOOK_SSH_CONFIG", sshd.config())
        .env_remove("RUNBOOK_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    // web-3 in flight, and the hosts after it done (web-3 holds one of the two places).
    while !(dir.join("web-3.pid").exists() && lines(&dir.join("count")).len() >= 6) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "web-3 never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    // The killed run could not close its connections (sshd's end goes with the test) nor
    // remove their directory.
    let prefix = format!("runbook-ssh-{}-", child.id());
    for e in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    // What the killed run left running there.
    let pid = std::fs::read_to_string(dir.join("web-3.pid")).unwrap();
    let _ = sshd.ssh("web-3", &format!("kill -- -{}", pid.trim()));
    std::fs::write(dir.join("resumed"), "").unwrap();
    let ran = t
        .args(&["resume", "latest"])
        .stdin("done it finished\n")
        .stderr_has("on host web-3) started at")
        .run();
    assert_eq!(
        lines(&dir.join("count")),
        [
            "after", "web-1", "web-2", "web-3", "web-4", "web-5", "web-6"
        ]
    );
    let web3: Vec<_> = ran
        .events("step_finished")
        .into_iter()
        .filter(|e| e["host"] == "web-3")
        .collect();
    assert_eq!(web3.len(), 1);
    assert_eq!(web3[0]["status"], "succeeded");
    assert_eq!(web3[0]["answer"], "done");
    let end = step_end(&ran, "roll");
    assert_eq!(end["host_counts"]["succeeded"], 6);
    assert_eq!(ran.log().last().unwrap()["status"], "succeeded");
}

#[test]
fn an_ssh_config_that_does_not_exist_is_bad_input() {
    Test::new()
        .runbook(
            "x",
            &runbook_with("[[step]]\nid = \"a\"\nhosts = \"web-1\"\nrun = \"true\"\n"),
        )
        .args(&["exec", "x", "--ssh-config", "nope.conf"])
        .status(2)
        .stderr_has("--ssh-config")
        .stderr_has("no such file")
        .run();
}

#[test]
fn a_bad_host_from_a_param_fails_the_step_when_it_starts() {
    Test::new()
        .runbook(
            "x",
            "[runbook]\ntitle = \"T\"\n\n[params.targets]\ndefault = \"web-1\"\n\n[[step]]\nid = \"a\"\nhosts = \"{{targets}}\"\nrun = \"true\"\n",
        )
        .args(&["exec", "x", "--var", "targets=web-1;reboot"])
        .status(1)
        .stderr_has("FAILED a in 0ms: cannot render the command: `hosts`: `web-1;reboot` is not a host name")
        .run();
}

#[test]
fn an_interrupt_ends_the_remote_commands_and_starts_no_more_hosts() {
    let Some(sshd) = Sshd::start() else { return };
    let t = fleet_test(&sshd, "");
    let dir = t.path().to_path_buf();
    let d = dir.display().to_string();
    let _t = t.runbook(
        "x",
        &runbook_with(&format!(
            "[[step]]\nid = \"wait\"\nhosts = \"{}\"\nbatch = 2\nrun = \"echo $$ > {d}/pid-{{{{host}}}}; sleep 7777\"\n",
            web(4)
        )),
    );
    let child = Command::new(crate::test::BIN)
        .args(["exec", "x"])
        .current_dir(&dir)
        .env("HOME", &dir)
        .env("RUNBOOK_LOG_DIR", dir.join("logs"))
        .env("RUNBOOK_SSH_CONFIG", sshd.config())
        .env_remove("RUNBOOK_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !(dir.join("pid-web-1").exists() && dir.join("pid-web-2").exists()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the hosts never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(child.id() as i32, Signal::SIGINT);
    let out = crate::test::wait_with_timeout(child, Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    for host in ["web-1", "web-2"] {
        let pid = std::fs::read_to_string(dir.join(format!("pid-{host}"))).unwrap();
        assert!(
            !Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "the remote command on {host} outlived the interrupt"
        );
    }
    assert!(
        !dir.join("pid-web-3").exists(),
        "a host started after the interrupt"
    );
    let left = processes_with("sleep 7777");
    assert!(left.is_empty(), "remote processes left: {left:?}");
    assert!(err.contains("aborted wait on web-1"), "{err}");
}

#[test]
fn log_show_report_and_stats_name_the_failed_unreachable_and_slowest_hosts() {
    let Some(sshd) = Sshd::start() else { return };
    let ran = fleet_test(
        &sshd,
        &format!(
            "[[step]]\nid = \"deploy\"\nhosts = \"{}, down-1\"\nmax_failed = 2\nbatch = 2\nrun = \"if [ {{{{host}}}} = web-4 ]; then echo disk full >&2; exit 3; fi; [ {{{{host}}}} = web-2 ] && sleep 2; true\"\n",
            web(6)
        ),
    )
    .args(&["exec", "x"])
    .run();
    let dir = ran.dir.clone();
    let show = Test::new()
        .in_dir(&dir)
        .args(&["log", "show", "latest"])
        .stdout_has("7 hosts: 5 succeeded, 1 failed, 1 unreachable")
        .stdout_has("hosts of deploy: 7 hosts: 5 succeeded, 1 failed, 1 unreachable\n")
        .stdout_has("    failed      web-4 (exit code 3)\n")
        .stdout_has("    unreachable down-1 (ssh could not connect or log in: ssh: connect to host 127.0.0.1 port")
        .stdout_has("    slowest     web-2 ")
        .stdout_has("last output of deploy on web-4:\n    | disk full\n")
        .run()
        .stdout();
    // One row for the step, not one per host.
    let rows = show.lines().filter(|l| l.starts_with("  +")).count();
    assert_eq!(rows, 1, "{show}");
    let md = Test::new()
        .in_dir(&dir)
        .args(&["report", "latest"])
        .stdout_has("### Hosts of `deploy`\n\n7 hosts: 5 succeeded, 1 failed, 1 unreachable.\n")
        .stdout_has(
            "- **Failed:** web-4 (exit code 3)\n- **Unreachable:** down-1\n- **Slowest:** web-2 ",
        )
        .stdout_has("`deploy on web-4` (failed)")
        .run()
        .stdout();
    assert!(md.contains("| 7 hosts: 5 succeeded, 1 failed, 1 unreachable; 2 of 7 hosts failed, within max_failed = 2"), "{md}");
    Test::new()
        .in_dir(&dir)
        .args(&["report", "latest", "--format", "html"])
        .stdout_has("<details><summary>the 7 hosts</summary>")
        .stdout_has("<tr><td>down-1</td><td class=\"bad\">unreachable</td>")
        .stdout_has("<strong>failed:</strong> web-4. <strong>unreachable:</strong> down-1.")
        .run();
    let json = Test::new()
        .in_dir(&dir)
        .args(&["report", "latest", "--format", "json"])
        .run()
        .stdout();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let row = json["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["step"] == "deploy")
        .unwrap();
    assert_eq!(row["hosts"]["counts"]["unreachable"], 1);
    assert_eq!(row["hosts"]["hosts"].as_array().unwrap().len(), 7);
    let stats = Test::new()
        .in_dir(&dir)
        .args(&["stats"])
        .stdout_has("Fleet steps (live runs): hosts that fail, hosts that are slow")
        .run()
        .stdout();
    let line = stats
        .lines()
        .find(|l| l.contains(" deploy ") && l.contains("down-1 x1"))
        .unwrap_or_else(|| panic!("{stats}"));
    assert!(
        line.contains("web-4 x1") && line.contains("web-2 "),
        "{line}"
    );
    let stats = Test::new()
        .in_dir(&dir)
        .args(&["stats", "--json"])
        .run()
        .stdout();
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    let f = &stats["fleet_steps"][0];
    assert_eq!(
        (
            f["host_runs"].as_u64(),
            f["unreachable"].as_u64(),
            f["host_failures"].as_u64()
        ),
        (Some(7), Some(1), Some(1))
    );
    assert_eq!(f["slowest"][0][0], "web-2");
}

#[test]
fn the_shipped_web_restart_rehearses_on_its_group() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = crate::test::shipped();
    let dir = dir.to_string_lossy();
    // Its read-only checks run for real (and fail here: no nginx); the restart is only shown.
    let ran = Test::new()
        .env("RUNBOOK_SSH_CONFIG", &sshd.config())
        .args(&["--dir", &dir, "exec", "web-restart", "--dry-run", "--yes"])
        .stderr_has("would run restart on web-4: sudo -n systemctl restart nginx")
        .run();
    assert_eq!(host_ends(&ran, "preflight").len(), 4);
    assert_eq!(step_end(&ran, "restart")["host_counts"]["dry_run"], 4);
    assert_eq!(ran.log().last().unwrap()["status"], "succeeded");
}

#[test]
fn a_lost_terminal_mid_fleet_ends_the_remote_commands_and_resume_asks_about_each_host() {
    let Some(sshd) = Sshd::start() else { return };
    let t = fleet_test(&sshd, "");
    let dir = t.path().to_path_buf();
    let d = dir.display().to_string();
    let t = t.runbook(
        "x",
        &runbook_with(&format!(
            "[[step]]\nid = \"wait\"\nhosts = \"web-1 web-2\"\nrun = \"echo $$ > {d}/pid-{{{{host}}}}; [ -e {d}/resumed ] || sleep 7778; echo {{{{host}}}} >> {d}/count\"\n"
        )),
    );
    let child = Command::new(crate::test::BIN)
        .args(["exec", "x"])
        .current_dir(&dir)
        .env("HOME", &dir)
        .env("RUNBOOK_LOG_DIR", dir.join("logs"))
        .env("RUNBOOK_SSH_CONFIG", sshd.config())
        .env_remove("RUNBOOK_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !(dir.join("pid-web-1").exists() && dir.join("pid-web-2").exists()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the hosts never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(child.id() as i32, Signal::SIGHUP);
    let out = crate::test::wait_with_timeout(child, Duration::from_secs(20));
    assert_eq!(
        out.status.code(),
        Some(129),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for host in ["web-1", "web-2"] {
        let pid = std::fs::read_to_string(dir.join(format!("pid-{host}"))).unwrap();
        assert!(
            !Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "the remote command on {host} outlived the hang-up"
        );
    }
    assert!(!dir.join("count").exists());
    std::fs::write(dir.join("resumed"), "").unwrap();
    let ran = t
        .args(&["resume", "latest"])
        .stdin("retry\nskip\n")
        .stderr_has("wait (wait, on host web-1) started at")
        .stderr_has("wait (wait, on host web-2) started at")
        .run();
    assert_eq!(lines(&dir.join("count")), ["web-1"]);
    let end = step_end(&ran, "wait");
    assert_eq!(
        (
            end["status"].as_str(),
            end["host_counts"]["succeeded"].as_u64(),
            end["host_counts"]["skipped"].as_u64()
        ),
        (Some("succeeded"), Some(1), Some(1))
    );
}
