//! Starting a step's shell: the one place with `unsafe` code.
//!
//! `std::process::Command` starts a child with glibc's `posix_spawn`. Its child, before it
//! may exec, looks at the handler of every one of the 64 signals and resets the caught
//! ones: about 130 system calls, 45 µs on the path of every step, while runbook waits
//! (`clone3` returns only once the child has exec'd). Here the child resets only the
//! signals this process may catch ([`RESET`]), and everything it needs (program, argv,
//! environment, directory) is built before the clone, so that it only makes system calls:
//! it shares this process's memory until it execs (`CLONE_VM | CLONE_VFORK`, as
//! `posix_spawn` does), and must not allocate, lock or unwind.
//!
//! What the child gets is what `Command` gave it: its own process group, the given stdin
//! and two new pipes for stdout and stderr, the working directory, the environment with the
//! step's variables added, an empty signal mask, and the default action for SIGPIPE
//! (ignored in this process) and for every signal this process catches. A failure before
//! the exec (no such program, no such directory) comes back as the spawn's error, as it
//! did from `Command`.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};

use nix::libc;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The signals whose handlers the child resets before it execs (an exec would reset them
/// too, but a signal arriving between the clone and the exec would run this process's
/// handler in the child, on this process's memory). Those runbook and its crates catch,
/// and SIGPIPE, which Rust ignores in this process and every child gets back as default.
const RESET: [libc::c_int; 9] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGPIPE,
    libc::SIGTERM,
    libc::SIGCHLD,
    libc::SIGWINCH,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// The stack the child runs on until it execs (one per thread: a thread blocks in the
/// clone until its child has exec'd, so it never lends it twice).
const STACK: usize = 64 * 1024;

thread_local! {
    static STACK_MEM: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What to start.
pub(crate) struct Command<'a> {
    /// The program: a path, or a name looked for in `PATH`.
    pub(crate) program: &'a str,
    /// The arguments after the program's name.
    pub(crate) args: Vec<&'a str>,
    /// Variables added to (or replacing those of) this process's environment.
    pub(crate) env: &'a [(String, String)],
    pub(crate) dir: Option<&'a Path>,
    pub(crate) stdin: BorrowedFd<'a>,
}

/// A started child: its pid, the read ends of its stdout and stderr, and the way to wait
/// for it. Dropped before it was waited for, it is reaped as soon as it can be.
///
/// It also keeps a write end of each pipe until [`Child::release_writers`], so that the
/// pipes cannot end before the child has: the reader is woken once, by the child's exit,
/// rather than once when the exiting child closes its files and again when it is gone
/// (a context switch a step, in a chain of short steps).
pub(crate) struct Child {
    pid: Pid,
    pidfd: Option<AsyncFd<OwnedFd>>,
    /// Without a pidfd: the thread that waits for the child (and reaps it).
    waiter: Option<tokio::task::JoinHandle<nix::Result<WaitStatus>>>,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
    /// Write ends of stdout and stderr (close-on-exec: no other child gets them).
    writers: Option<[OwnedFd; 2]>,
    reaped: bool,
}

/// Children dropped before they had ended: reaped at the next spawn.
static UNREAPED: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

/// This process's environment, read once: `name=value` with the name apart.
fn base_env() -> &'static [(OsString, CString)] {
    static BASE: OnceLock<Vec<(OsString, CString)>> = OnceLock::new();
    BASE.get_or_init(|| {
        std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                Some((k, CString::new(kv).ok()?))
            })
            .collect()
    })
}

fn c_string(what: &str, s: impl Into<Vec<u8>>) -> io::Result<CString> {
    CString::new(s).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// The paths to try for `program`, in order: itself if it names a path, else every
/// directory of `PATH` (the step's, or this process's), as `execvp` would.
fn candidates(program: &str, env: &[(String, String)]) -> io::Result<Vec<CString>> {
    if program.contains('/') {
        return Ok(vec![c_string("the shell", program)?]);
    }
    if program.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    let path: OsString = match env.iter().rev().find(|(k, _)| k == "PATH") {
        Some((_, v)) => v.into(),
        None => std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into()),
    };
    path.as_bytes()
        .split(|&b| b == b':')
        .map(|dir| {
            let mut p = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            p.push(b'/');
            p.extend_from_slice(program.as_bytes());
            c_string("PATH", p)
        })
        .collect()
}

/// A file descriptor at 3 or above, so that putting the child's stdin, stdout and stderr in
/// place never closes another of them (0-2 are free when runbook was started without them).
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let raw = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((above_stdio(r)?, above_stdio(w)?))
}

fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    if cfg!(debug_assertions) && std::env::var_os("RUNBOOK_TEST_NO_PIDFD").is_some() {
        return None;
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the descriptor is new and owned by nothing else.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reaps the children dropped before they ended, those that have ended since.
fn reap_dropped() {
    let Ok(mut list) = UNREAPED.lock() else {
        return;
    };
    list.retain(|pid| {
        matches!(
            waitpid(*pid, Some(WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::StillAlive)
        )
    });
}

/// Starts `cmd`. Its stdout and stderr are pipes whose read ends are in the [`Child`].
pub(crate) fn spawn(cmd: &Command<'_>) -> io::Result<Child> {
    reap_dropped();
    // Everything the child needs, built here: it must not allocate.
    let programs = candidates(cmd.program, cmd.env)?;
    let mut argv_c = Vec::with_capacity(cmd.args.len() + 1);
    argv_c.push(c_string("the shell", cmd.program)?);
    for a in &cmd.args {
        argv_c.push(c_string("the command", *a)?);
    }
    let mut env_c: Vec<&CString> = Vec::with_capacity(base_env().len() + cmd.env.len());
    let mut own_c = Vec::with_capacity(cmd.env.len());
    for (i, (k, v)) in cmd.env.iter().enumerate() {
        // A name given twice takes its last value, as in `Command::env`.
        if cmd.env[i + 1..].iter().all(|(later, _)| later != k) {
            let mut kv = Vec::with_capacity(k.len() + v.len() + 2);
            kv.extend_from_slice(k.as_bytes());
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            own_c.push(c_string("an environment variable", kv)?);
        }
    }
    for (k, kv) in base_env() {
        if !cmd.env.iter().any(|(name, _)| OsStr::new(name) == k) {
            env_c.push(kv);
        }
    }
    env_c.extend(own_c.iter());
    let argv: Vec<*const libc::c_char> = argv_c
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = env_c
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let dir = cmd
        .dir
        .map(|d| c_string("the directory", d.as_os_str().as_bytes()))
        .transpose()?;
    // A descriptor at 0-2 is copied above them (see `above_stdio`); any other is used as is.
    let stdin_copy = match cmd.stdin.as_raw_fd() {
        0..=2 => Some(above_stdio(cmd.stdin.try_clone_to_owned()?)?),
        _ => None,
    };
    let stdin = stdin_copy.as_ref().map_or(cmd.stdin, |fd| fd.as_fd());
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;

    let failed = AtomicI32::new(0);
    let failed_dir = AtomicBool::new(false);
    let fds = [stdin.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
    let dir_ptr = dir.as_ref().map(|d| d.as_ptr());
    let child = || -> isize {
        // Runs in the child, on this process's memory, until the exec: system calls only.
        // SAFETY: every pointer is to data built above, alive until the clone returns.
        unsafe {
            start_child(
                fds,
                dir_ptr,
                &programs,
                argv.as_ptr(),
                envp.as_ptr(),
                &failed,
                &failed_dir,
            )
        }
    };

    // Every signal is blocked until the child has set its handlers to default, so none
    // runs this process's handler in the child.
    let mut old = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )?;
    let cloned = STACK_MEM.with(|stack| {
        let mut stack = stack.borrow_mut();
        if stack.len() < STACK {
            stack.resize(STACK, 0);
        }
        // SAFETY: with CLONE_VFORK this thread waits until the child has exec'd or exited,
        // so the stack and everything `child` borrows outlive the child's use of them, and
        // the child only makes system calls (see `start_child`).
        unsafe {
            nix::sched::clone(
                Box::new(child),
                &mut stack[..],
                CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
                Some(libc::SIGCHLD),
            )
        }
    });
    let restored = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    let pid = cloned?;
    drop(stdin_copy);
    let writers = [out_w, err_w];
    if let Err(e) = restored {
        // Only a bad argument makes this fail. Were it to, the child is ended and reaped
        // here: a spawn that reports an error leaves nothing running.
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(e.into());
    }
    let errno = failed.load(Ordering::SeqCst);
    if errno != 0 {
        // The child has exited (127) without running anything: reap it.
        let _ = waitpid(pid, None);
        let error = io::Error::from_raw_os_error(errno);
        return Err(match cmd.dir {
            Some(dir) if failed_dir.load(Ordering::SeqCst) => io::Error::new(
                error.kind(),
                format!("cannot change to directory {}: {error}", dir.display()),
            ),
            _ => error,
        });
    }
    let mut child = Child {
        pid,
        pidfd: None,
        waiter: None,
        stdout: Some(out_r),
        stderr: Some(err_r),
        writers: Some(writers),
        reaped: false,
    };
    if let Some(fd) = pidfd_open(pid) {
        // SAFETY: the AsyncFd owns the descriptor, which stays open until it is dropped.
        child.pidfd = Some(unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? });
    }
    Ok(child)
}

/// The child's side of [`spawn`]: puts stdin, stdout and stderr in place, joins its own
/// process group, changes directory, resets the signals, and execs the first program that
/// can be. On failure it stores the error number in `failed` (and whether it was the
/// directory's in `failed_dir`) and exits with 127.
///
/// # Safety
/// Called only in the child of a `CLONE_VM | CLONE_VFORK` clone, with every pointer valid
/// and NUL-terminated (`argv` and `envp` ending with a null pointer).
unsafe fn start_child(
    [stdin, stdout, stderr]: [RawFd; 3],
    dir: Option<*const libc::c_char>,
    programs: &[CString],
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    failed: &AtomicI32,
    failed_dir: &AtomicBool,
) -> isize {
    let fail = |failed: &AtomicI32| -> isize {
        failed.store(nix::errno::Errno::last_raw().max(1), Ordering::SeqCst);
        // SAFETY: _exit ends the child without running anything of this process's.
        unsafe { libc::_exit(127) }
    };
    // SAFETY: plain system calls on descriptors and memory this function was given.
    unsafe {
        // The fds are all above 2 (`above_stdio`), so dup2 clears close-on-exec on 0-2.
        if libc::dup2(stdin, 0) < 0 || libc::dup2(stdout, 1) < 0 || libc::dup2(stderr, 2) < 0 {
            return fail(failed);
        }
        if libc::setpgid(0, 0) != 0 {
            return fail(failed);
        }
        if let Some(dir) = dir {
            if libc::chdir(dir) != 0 {
                failed_dir.store(true, Ordering::SeqCst);
                return fail(failed);
            }
        }
        for sig in RESET {
            let mut was: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut was) != 0 {
                continue;
            }
            let caught = was.sa_sigaction != libc::SIG_DFL && was.sa_sigaction != libc::SIG_IGN;
            if caught || sig == libc::SIGPIPE {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // As execvp: the next directory of PATH when one has no such file; a file found
        // but not executable is the error if nothing else is found.
        let mut denied = false;
        for program in programs {
            libc::execve(program.as_ptr(), argv, envp);
            match nix::errno::Errno::last_raw() {
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                libc::EACCES => denied = true,
                _ => return fail(failed),
            }
        }
        if denied {
            failed.store(libc::EACCES, Ordering::SeqCst);
            libc::_exit(127)
        }
        fail(failed)
    }
}

/// A raw wait status, as `waitpid` gives it, for what `waitid` said.
fn exit_status(status: WaitStatus) -> io::Result<ExitStatus> {
    match status {
        WaitStatus::Exited(_, code) => Ok(ExitStatus::from_raw((code & 0xff) << 8)),
        WaitStatus::Signaled(_, sig, core) => Ok(ExitStatus::from_raw(
            sig as i32 | if core { 0x80 } else { 0 },
        )),
        other => Err(io::Error::other(format!(
            "unexpected wait status {other:?}"
        ))),
    }
}

impl Child {
    /// Closes this process's write ends of the child's stdout and stderr: once the child
    /// has ended, the pipes end when nothing else (a background process) holds them.
    pub(crate) fn release_writers(&mut self) {
        self.writers = None;
    }

    pub(crate) fn id(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Waits for the child to end (cancel-safe: nothing is lost if dropped while waiting).
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = match &self.pidfd {
            Some(fd) => loop {
                let mut ready = fd.readable().await?;
                match waitid(
                    Id::PIDFd(fd.get_ref().as_fd()),
                    WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
                )? {
                    WaitStatus::StillAlive => ready.clear_ready(),
                    status => break status,
                }
            },
            // A kernel without pidfds (before 5.3): a thread waits.
            None => {
                let pid = self.pid;
                let waiter = self.waiter.get_or_insert_with(|| {
                    tokio::task::spawn_blocking(move || {
                        loop {
                            // A signal handled on this thread interrupts the wait: wait again.
                            match waitpid(pid, None) {
                                Err(nix::errno::Errno::EINTR) => {}
                                waited => break waited,
                            }
                        }
                    })
                });
                let waited = waiter.await;
                self.waiter = None;
                waited.map_err(io::Error::other)??
            }
        };
        self.reaped = true;
        exit_status(status)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // A waiting thread reaps it.
        if self.reaped || self.waiter.is_some() {
            return;
        }
        if let Ok(WaitStatus::StillAlive) = waitpid(self.pid, Some(WaitPidFlag::WNOHANG))
            && let Ok(mut list) = UNREAPED.lock()
        {
            list.push(self.pid);
        }
    }
}
