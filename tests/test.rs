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
        }
    }

    pub fn path(&self) -> &Path {
        self.tempdir.path()
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

    /// Runs the binary and checks every expectation; returns the output for further checks.
    pub fn run(self) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(&self.args)
            .current_dir(self.path())
            .env_remove("RUNBOOK_DIR")
            .env_remove("RUNBOOK_LOG_DIR")
            .env_remove("NO_COLOR")
            .env("HOME", self.path())
            .env("XDG_STATE_HOME", self.path().join("state"))
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
        assert_eq!(
            output.status.code(),
            Some(self.status),
            "exit status\n{context}"
        );
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
        output
    }
}

/// A minimal valid runbook with the given steps appended.
pub fn runbook_with(steps: &str) -> String {
    format!("[runbook]\ntitle = \"Test\"\n\n{steps}")
}
