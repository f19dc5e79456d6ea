//! A builder that runs the real `runbook` binary in a fresh temporary directory and
//! compares its status, stdout and stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_runbook");

/// The shipped runbooks directory of this repository.
pub fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks")
}

#[must_use]
pub struct Test {
    pub tempdir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    status: i32,
    stdout: Option<String>,
    stderr: Option<String>,
    stdout_has: Vec<String>,
    stderr_has: Vec<String>,
    /// Run in this directory instead of the test's own (another test's, to go on with it).
    dir: Option<PathBuf>,
}

impl Test {
    pub fn new() -> Self {
        let tempdir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        std::fs::create_dir(tempdir.path().join("runbooks"))
            .unwrap_or_else(|e| panic!("mkdir: {e}"));
        Test {
            tempdir,
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            status: 0,
            stdout: None,
            stderr: None,
            stdout_has: Vec::new(),
            stderr_has: Vec::new(),
            dir: None,
        }
    }

    /// The directory the binary runs in (its runbooks/ and logs/ are under it).
    pub fn path(&self) -> &Path {
        self.dir.as_deref().unwrap_or(self.tempdir.path())
    }

    /// Runs in `dir` (kept by another test value) rather than a fresh directory.
    pub fn in_dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Writes `runbooks/NAME.toml`.
    pub fn runbook(self, name: &str, text: &str) -> Self {
        self.file(&format!("runbooks/{name}.toml"), text.as_bytes())
    }

    pub fn file(self, rel: &str, bytes: &[u8]) -> Self {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Text fed to the binary's stdin (which is otherwise empty).
    pub fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(input.as_bytes().to_vec());
        self
    }

    pub fn status(mut self, code: i32) -> Self {
        self.status = code;
        self
    }

    pub fn stdout(mut self, s: &str) -> Self {
        self.stdout = Some(s.into());
        self
    }

    pub fn stderr(mut self, s: &str) -> Self {
        self.stderr = Some(s.into());
        self
    }

    pub fn stdout_has(mut self, s: &str) -> Self {
        self.stdout_has.push(s.into());
        self
    }

    pub fn stderr_has(mut self, s: &str) -> Self {
        self.stderr_has.push(s.into());
        self
    }

    /// Runs the binary and checks only that it did not panic (for property tests, which
    /// check the status themselves).
    pub fn run_unchecked(mut self) -> Ran {
        self.status = i32::MIN;
        self.run()
    }

    /// Runs the binary and checks every expectation; returns the output, and the temporary
    /// directory (with its logs) for further checks.
    pub fn run(self) -> Ran {
        let mut cmd = Command::new(BIN);
        cmd.args(&self.args)
            .current_dir(self.path())
            .env_remove("RUNBOOK_DIR")
            .env_remove("NO_COLOR")
            .env("HOME", self.path())
            .env("XDG_STATE_HOME", self.path().join("state"))
            .env("RUNBOOK_LOG_DIR", self.path().join("logs"))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
        if let Some(input) = &self.stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
            let _ = pipe.write_all(input);
        }
        let output = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let context = format!(
            "args: {:?}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}",
            self.args
        );
        if self.status != i32::MIN {
            assert_eq!(
                output.status.code(),
                Some(self.status),
                "exit status\n{context}"
            );
        }
        if let Some(want) = &self.stdout {
            assert_eq!(&stdout, want, "stdout\n{context}");
        }
        if let Some(want) = &self.stderr {
            assert_eq!(&stderr, want, "stderr\n{context}");
        }
        for want in &self.stdout_has {
            assert!(
                stdout.contains(want.as_str()),
                "stdout lacks {want:?}\n{context}"
            );
        }
        for want in &self.stderr_has {
            assert!(
                stderr.contains(want.as_str()),
                "stderr lacks {want:?}\n{context}"
            );
        }
        assert!(
            !stderr.contains("panicked"),
            "the binary panicked\n{context}"
        );
        Ran {
            output,
            dir: self.path().to_path_buf(),
            tempdir: self.tempdir,
        }
    }
}

/// A finished run of the binary, with the directory it ran in.
pub struct Ran {
    pub output: Output,
    /// The directory it ran in.
    pub dir: PathBuf,
    pub tempdir: tempfile::TempDir,
}

impl std::ops::Deref for Ran {
    type Target = Output;
    fn deref(&self) -> &Output {
        &self.output
    }
}

impl Ran {
    /// Every log file in `dir/logs`, oldest first.
    pub fn logs_in(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("logs"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Every log file written by the run, oldest first.
    pub fn log_files(&self) -> Vec<PathBuf> {
        Self::logs_in(&self.dir)
    }

    /// The events of the run's one log file.
    pub fn log(&self) -> Vec<serde_json::Value> {
        let files = self.log_files();
        assert_eq!(files.len(), 1, "expected one log file: {files:?}");
        let text = std::fs::read_to_string(&files[0]).unwrap_or_else(|e| panic!("read log: {e}"));
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
            .collect()
    }

    /// The events named `event` (for example "step_finished").
    pub fn events(&self, event: &str) -> Vec<serde_json::Value> {
        self.log()
            .into_iter()
            .filter(|e| e["event"] == event)
            .collect()
    }

    /// The output the log holds, all its `step_output` texts in order (of `step` only, if
    /// given).
    pub fn logged_output(&self, step: Option<&str>) -> String {
        self.events("step_output")
            .iter()
            .filter(|e| step.is_none_or(|s| e["step"] == s))
            .map(|e| e["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The `step_finished` of `step` in the run phase.
    pub fn finished(&self, step: &str) -> serde_json::Value {
        self.events("step_finished")
            .into_iter()
            .find(|e| e["step"] == step && e["phase"] == "run")
            .unwrap_or_else(|| panic!("no step_finished for {step}"))
    }
}

/// Starts `runbook ARGS` in `dir` as [`Test::run`] would (runbooks in `dir/runbooks`, logs
/// in `dir/logs`), with stdin piped and output discarded, and returns at once: for tests
/// that feed, signal or kill the process while it runs.
pub fn spawn(dir: &Path, args: &[&str]) -> std::process::Child {
    spawn_with(dir, args, &[])
}

/// [`spawn`] with more environment variables.
pub fn spawn_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    command(dir, args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {BIN}: {e}"))
}

/// `runbook ARGS` in `dir`, set up as [`Test::run`] sets it up, for a test to choose where
/// its input and output go.
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("RUNBOOK_DIR")
        .env_remove("NO_COLOR")
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("RUNBOOK_LOG_DIR", dir.join("logs"));
    cmd
}

/// The first of `candidates` (absolute paths) that exists, for a test that needs a program
/// the machine may lack. When none exists the test should return at once: this says so
/// loudly on stderr, naming the test and how to install `package`, and returns `None`.
/// Under CI (`CI` set and non-empty) a missing program fails the test instead, so that a
/// CI machine without it cannot pass by skipping.
pub fn require_program(candidates: &[&str], package: &str) -> Option<PathBuf> {
    if let Some(found) = candidates.iter().map(PathBuf::from).find(|p| p.exists()) {
        return Some(found);
    }
    skip(&format!(
        "{package} not found at {candidates:?}; install it with `apt-get install -y {package}` \
         (.ci/run does)"
    ));
    None
}

/// Says loudly that the current test is skipped, and why; fails instead when `CI` is set,
/// where everything a test needs is installed.
pub fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{test}: {why}. CI is set, so the test fails instead of being skipped");
    }
    // Straight to the process's stderr: the test harness captures eprintln! of a test
    // that passes, and a skip must be seen.
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// A minimal valid runbook with the given steps appended.
pub fn runbook_with(steps: &str) -> String {
    format!("[runbook]\ntitle = \"Test\"\n\n{steps}")
}

/// Waits for `child` to exit, killing it (and failing the test) after `limit`.
pub fn wait_with_timeout(mut child: std::process::Child, limit: std::time::Duration) -> Output {
    let start = std::time::Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child
                .wait_with_output()
                .unwrap_or_else(|e| panic!("wait: {e}"));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child
                .wait_with_output()
                .unwrap_or_else(|e| panic!("wait: {e}"));
            panic!(
                "the binary hung for {limit:?}\n--- stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
