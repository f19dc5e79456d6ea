//! The `ssh` command lines of a run: one per host attempt, one to signal a remote process
//! group, one to close each shared connection at the end. The system's OpenSSH client does
//! the work, with the user's configuration, agent, jump hosts and known hosts; these
//! options are added on the command line (where they take precedence over the file):
//!
//! - `-F FILE` when `--ssh-config` (or `$RUNBOOK_SSH_CONFIG`) names one;
//! - `BatchMode=yes`: never a password or host-key question, which would hang the run;
//! - `ConnectTimeout`: an unreachable host fails in seconds, not minutes;
//! - `ControlMaster=auto`, `ControlPath` in a 0700 directory of this run, `ControlPersist`:
//!   one connection per host, shared by every step and every signal sent to it; every
//!   master is told to exit (`ssh -O exit`) when the run ends.
//!
//! The remote side gets one word, the command quoted for the remote shell, so a value
//! rendered into the command is data there as it is here. It first reports its process
//! group on stderr: sshd makes each session's shell the leader of a new session and group,
//! so `kill -- -PGID` from a second ssh ends the remote command and everything it started
//! (without a remote terminal, killing the local `ssh` would leave them running).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

mod mux;

/// How long `ssh` tries to connect before the host is unreachable.
const CONNECT_TIMEOUT_SECS: u32 = 10;
/// How long a shared connection stays open with no session on it. The run closes its
/// connections when it ends; this bounds what a killed run leaves behind.
const CONTROL_PERSIST_SECS: u32 = 300;
/// Most ssh sessions at once in one run, over every fleet step: each holds two pipes here
/// and one `ssh` process. Lowered further when the file descriptor limit is low.
pub(crate) const MAX_SESSIONS: usize = 256;
/// File descriptors kept back for everything else (the log, the terminal, the runtime).
const FD_RESERVE: u64 = 64;
/// File descriptors per session: stdout and stderr pipes, with room for the runtime's own.
const FD_PER_SESSION: u64 = 4;
/// How long closing the shared connections may take at the end of a run.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Most `ssh -O exit` at once when closing.
const CLOSE_AT_ONCE: usize = 32;

/// The first line the remote side writes on stderr: its process group.
pub(crate) const MARKER: &str = "runbook-pgid:";

/// A signal for a remote process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Term,
    Kill,
}

/// The ssh client of one run: its options, its shared connections and their directory,
/// and the bound on sessions at once. Closing the connections when dropped.
pub(crate) struct Ssh {
    /// The `ssh` program, found in `PATH` once (not at each of a thousand spawns).
    program: PathBuf,
    config: Option<PathBuf>,
    control_dir: PathBuf,
    /// Hosts an ssh call has gone to: each may have a shared connection to close.
    used: Mutex<BTreeSet<String>>,
    pub(crate) sessions: Arc<Semaphore>,
    /// How many permits `sessions` started with.
    pub(crate) session_limit: usize,
}

impl Ssh {
    /// Makes the run's control directory (0700) and raises the file descriptor limit as far
    /// as the hard limit allows.
    pub(crate) fn new(config: Option<PathBuf>) -> io::Result<Ssh> {
        let control_dir = control_dir()?;
        let session_limit = session_limit(raise_fd_limit());
        Ok(Ssh {
            program: find_program("ssh"),
            config,
            control_dir,
            used: Mutex::new(BTreeSet::new()),
            sessions: Arc::new(Semaphore::new(session_limit)),
            session_limit,
        })
    }

    /// The options of every call to `host`, before the host.
    fn base(&self, host: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(f) = &self.config {
            args.push("-F".into());
            args.push(f.into());
        }
        let mut control_path = OsString::from("ControlPath=");
        control_path.push(self.control_path(host));
        for o in [
            "BatchMode=yes".into(),
            format!("ConnectTimeout={CONNECT_TIMEOUT_SECS}").into(),
            "ControlMaster=auto".into(),
            control_path,
            format!("ControlPersist={CONTROL_PERSIST_SECS}").into(),
        ] {
            args.push("-o".into());
            args.push(o);
        }
        args
    }

    fn command(&self, host: &str, extra: &[&str], remote: &str) -> tokio::process::Command {
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string());
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(self.base(host))
            .args(extra)
            .arg(host)
            .arg("--")
            .arg(remote)
            .stdin(Stdio::null());
        cmd
    }

    /// `ssh ... -T HOST -- REMOTE`, in its own process group, output piped.
    pub(crate) fn session(&self, host: &str, remote: &str) -> tokio::process::Command {
        let mut cmd = self.command(host, &["-T"], remote);
        cmd.process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// `ssh ... HOST -- kill -SIG -- -PGID`, over the shared connection when there is one.
    pub(crate) fn signal(&self, host: &str, pgid: u32, signal: Signal) -> tokio::process::Command {
        let sig = match signal {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
        };
        let mut cmd = self.command(host, &["-T"], &format!("kill -{sig} -- -{pgid}"));
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    }

    /// Tells every shared connection of the run to close, then removes their directory.
    /// Each master is asked over its own socket (what `ssh -O exit` sends), which costs no
    /// process; `ssh -O exit` is the way for those that do not answer so.
    fn close(&self) {
        let hosts: Vec<String> =
            std::mem::take(&mut *self.used.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .filter(|h| {
                    let path = self.control_path(h);
                    // No socket: no master (it never connected, or already left).
                    path.exists() && mux::terminate(&path).is_err()
                })
                .collect();
        let deadline = Instant::now() + CLOSE_WAIT;
        for chunk in hosts.chunks(CLOSE_AT_ONCE) {
            let mut children: Vec<std::process::Child> = chunk
                .iter()
                .filter_map(|h| {
                    std::process::Command::new(&self.program)
                        .args(self.base(h))
                        .args(["-O", "exit", h.as_str()])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .ok()
                })
                .collect();
            wait_all(&mut children, deadline);
        }
        // The sockets are gone with their masters; anything left is stale.
        let _ = std::fs::remove_dir_all(&self.control_dir);
    }

    /// The socket of `host`'s shared connection: named after the host as the runbook names
    /// it, not after where it leads (`%C`), so that two names for one server (aliases in an
    /// ssh_config) each get their own connection instead of racing for one socket.
    fn control_path(&self, host: &str) -> PathBuf {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(host.as_bytes());
        let name: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
        self.control_dir.join(name)
    }

    #[cfg(test)]
    pub(crate) fn for_tests(config: Option<PathBuf>, control_dir: PathBuf) -> Ssh {
        Ssh {
            program: PathBuf::from("ssh"),
            config,
            control_dir,
            used: Mutex::new(BTreeSet::new()),
            sessions: Arc::new(Semaphore::new(1)),
            session_limit: 1,
        }
    }
}

impl Drop for Ssh {
    fn drop(&mut self) {
        self.close();
    }
}

/// Waits for the children until `deadline`, then kills those still running.
fn wait_all(children: &mut [std::process::Child], deadline: Instant) {
    for c in children.iter_mut() {
        loop {
            match c.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

/// `name` in the first `PATH` directory that has it as an executable file, else `name`
/// itself (the spawn then says it is not found).
fn find_program(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| PathBuf::from(name))
}

/// A new 0700 directory for the run's control sockets. Socket paths are short (108 bytes
/// on Linux), so it goes in the temporary directory, or `/tmp` when that one's path is long.
fn control_dir() -> io::Result<PathBuf> {
    let tmp = std::env::temp_dir();
    // A socket's name is 20 characters, and ssh adds 17 while it creates one.
    let base = if tmp.as_os_str().len() <= 40 {
        tmp
    } else {
        PathBuf::from("/tmp")
    };
    let pid = std::process::id();
    let mut last = io::Error::other("no attempt");
    for n in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!("runbook-ssh-{pid}-{:x}", nanos ^ n));
        // mkdir never follows a symlink planted there, and fails if anything is there.
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Raises the soft limit on open files to the hard limit; the soft limit after.
fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

/// Sessions at once that `fd_limit` open files allow, at most [`MAX_SESSIONS`].
pub(crate) fn session_limit(fd_limit: u64) -> usize {
    let by_fds = fd_limit.saturating_sub(FD_RESERVE) / FD_PER_SESSION;
    (by_fds.min(MAX_SESSIONS as u64) as usize).max(1)
}

/// Why a step's command cannot be sent: it holds a NUL byte, which no shell word can.
#[derive(Debug, thiserror::Error)]
#[error("the command holds a NUL byte, which cannot be sent to a remote shell")]
pub(crate) struct Unquotable;

/// The one word the remote login shell gets: report the process group, go to `dir`, set
/// `env`, and run `command` with `/bin/sh -c`, as a local step runs.
pub(crate) fn remote_command(
    command: &str,
    env: &[(String, String)],
    dir: Option<&Path>,
) -> Result<String, Unquotable> {
    let quote = |s: &str| {
        shlex::try_quote(s)
            .map(std::borrow::Cow::into_owned)
            .map_err(|_| Unquotable)
    };
    let mut out = format!("printf '{MARKER}%s\\n' \"$$\" >&2 && ");
    if let Some(d) = dir {
        out.push_str(&format!("cd -- {} && ", quote(&d.to_string_lossy())?));
    }
    out.push_str("exec ");
    if !env.is_empty() {
        out.push_str("env ");
        for (k, v) in env {
            out.push_str(&quote(&format!("{k}={v}"))?);
            out.push(' ');
        }
    }
    out.push_str("/bin/sh -c ");
    out.push_str(&quote(command)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `word` the way the remote login shell would: `sh -c WORD`.
    fn remote(word: &str) -> (String, String, i32) {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(word)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }

    #[test]
    fn the_remote_word_reports_the_group_then_runs_the_command_as_data() {
        let hostile = "printf '%s\\n' 'it'\"'\"'s' \"$(echo sub)\" '; rm -rf /' \\$HOME";
        let word = remote_command(hostile, &[], None).unwrap();
        let (out, err, code) = remote(&word);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "it's\nsub\n; rm -rf /\n$HOME\n");
        assert!(err.starts_with(MARKER), "{err}");
    }

    #[test]
    fn env_and_dir_reach_the_remote_command_and_a_bad_dir_fails() {
        let env = vec![("GREETING".to_string(), "a b'c".to_string())];
        let word = remote_command("pwd; echo \"$GREETING\"", &env, Some(Path::new("/"))).unwrap();
        assert_eq!(remote(&word).0, "/\na b'c\n");
        let word = remote_command("echo no", &[], Some(Path::new("/no such dir"))).unwrap();
        let (out, _, code) = remote(&word);
        assert_eq!((out.as_str(), code == 0), ("", false));
        assert!(remote_command("a\0b", &[], None).is_err());
    }

    #[test]
    fn the_session_command_line_carries_the_options_then_the_host_then_one_word() {
        let ssh = Ssh::for_tests(Some(PathBuf::from("/cfg")), PathBuf::from("/run/x"));
        let cmd = ssh.session("web-1", "echo 'a b'");
        let args: Vec<String> = cmd
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let host = args.iter().position(|a| a == "web-1").unwrap();
        assert_eq!(&args[host + 1..], ["--", "echo 'a b'"]);
        let path = format!("ControlPath={}", ssh.control_path("web-1").display());
        assert!(
            path.starts_with("ControlPath=/run/x/")
                && path.len() == "ControlPath=/run/x/".len() + 20
        );
        assert_ne!(ssh.control_path("web-1"), ssh.control_path("web-2"));
        for want in [
            "-F",
            "BatchMode=yes",
            "ControlMaster=auto",
            path.as_str(),
            "-T",
        ] {
            assert!(args[..host].iter().any(|a| a == want), "{want} in {args:?}");
        }
        std::mem::forget(ssh);
    }

    #[test]
    fn sessions_are_bounded_by_the_file_descriptor_limit() {
        assert_eq!(session_limit(1024), 240);
        assert_eq!(session_limit(1_048_576), MAX_SESSIONS);
        assert_eq!(session_limit(10), 1);
    }
}
