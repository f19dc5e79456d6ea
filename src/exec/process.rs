//! One attempt of an automated step: its shell (`sh -c` unless it names another) in its own process group, output streamed as
//! it comes, and the whole group ended on timeout or interrupt (TERM, a grace period, KILL).
//!
//! Output is read on the runtime's thread until a step's stdout or stderr passes
//! [`OFFLOAD_AFTER`]; the rest of that stream is read on a thread of its own, with blocking
//! reads, as `cat` reads (docs/benchmarks.md, issue 15: a stream through `epoll` came out at
//! 1.6x `cat`, through the thread at 1.1x). All hand their pieces to the attempt's one
//! [`Output`].

use std::borrow::Cow;
use std::cell::RefCell;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::{Instant, sleep_until};

use super::{orphans, spawn};
use crate::event::Stream;

/// How long a group has between TERM and KILL.
pub(crate) const GRACE: Duration = Duration::from_secs(3);
/// How long to keep reading after the shell exits, for output still in the pipes. A
/// background process that keeps the pipes open is not waited for beyond this.
const DRAIN: Duration = Duration::from_millis(500);
/// Output that stops this long without ending its line is shown as it stands.
const QUIET: Duration = Duration::from_millis(100);

/// What a running step's pipes give.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Piece<'a> {
    Data(Stream, &'a [u8]),
    /// Nothing came for a little while: an unfinished line may be shown now.
    Quiet,
}

/// Where an attempt's output goes, piece by piece, in the order it was read.
pub(crate) trait Sink: Send + 'static {
    fn piece(&mut self, piece: Piece<'_>);
}

impl<F: FnMut(Piece<'_>) + Send + 'static> Sink for F {
    fn piece(&mut self, piece: Piece<'_>) {
        self(piece)
    }
}

/// A stream past this many bytes is read on a thread of its own: a thread per step would
/// cost a chain of short steps more than it saves them.
const OFFLOAD_AFTER: usize = 1024 * 1024;

/// An attempt's [`Sink`], shared by the runtime's thread and the thread that reads a
/// large stream. The caller makes one per attempt, and has its sink back through
/// [`Output::with`] once [`run`] has returned; nothing read after that reaches it.
pub(crate) struct Output<S>(Arc<Mutex<Shared<S>>>);

struct Shared<S> {
    sink: S,
    /// Whether each stream's thread (by [`Stream`]) may still give pieces to the sink: false
    /// once it is done or the attempt is over, so that what a background process writes
    /// later is dropped.
    thread_open: [bool; 2],
    /// When the last piece came, from either thread.
    last_output: std::time::Instant,
    /// A [`Piece::Quiet`] is due once output stops: the runtime's timer is set for it.
    quiet_due: bool,
}

impl<S: Sink> Output<S> {
    pub(crate) fn new(sink: S) -> Self {
        Output(Arc::new(Mutex::new(Shared {
            sink,
            thread_open: [false; 2],
            last_output: std::time::Instant::now(),
            quiet_due: false,
        })))
    }

    /// Gives `f` the sink.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.lock().sink)
    }

    fn lock(&self) -> MutexGuard<'_, Shared<S>> {
        lock(&self.0)
    }
}

/// A panic on one side must not lose the other side's output.
fn lock<S>(shared: &Mutex<Shared<S>>) -> MutexGuard<'_, Shared<S>> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S: Sink> Shared<S> {
    /// Gives a piece of data to the sink; says whether the runtime's quiet timer must now be
    /// set (it was not, for earlier output).
    fn data(&mut self, stream: Stream, bytes: &[u8]) -> bool {
        self.sink.piece(Piece::Data(stream, bytes));
        self.last_output = std::time::Instant::now();
        !std::mem::replace(&mut self.quiet_due, true)
    }
}

/// What the executor asks of running steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    None,
    /// TERM now, KILL after [`GRACE`].
    Graceful,
    /// KILL now.
    Kill,
}

pub(crate) struct Spec {
    /// The program and options that run the command (the command is added last).
    pub(crate) shell: Vec<String>,
    pub(crate) command: String,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) timeout: Option<Duration>,
    /// Whether the shell can hold the command at its start ([`crate::runbook::Shell::can_hold`]).
    pub(crate) can_hold: bool,
}

/// What a held shell runs before the command, on the command's first line (so the line
/// numbers of its messages stay the command's): it waits for a line on stdin, which comes
/// once the step's start is durable, and exits without running anything if stdin ends
/// first (the start could not be recorded, or runbook died). Then stdin is `/dev/null`, as
/// for every step.
const HOLD: &str = "read -r _ || exit 125; exec </dev/null; ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The shell exited with this code.
    Exited(i32),
    /// The shell was killed by this signal (not by us).
    Signalled(i32),
    TimedOut,
    Cancelled,
}

/// Reads what is in the pipe into the start of `buf`.
async fn read_some(
    pipe: &mut Option<impl AsyncReadExt + Unpin>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(p) => p.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Bytes a read takes from a step's pipe at once.
const READ_SIZE: usize = 64 * 1024;
/// A step's stdout pipe holds this much, so a fast writer is woken less often (the
/// kernel's default is 64 KiB; more than 1 MiB needs privileges).
const PIPE_SIZE: i32 = 256 * 1024;

/// A read this large says the writer is fast: its pipe is widened.
const WIDEN_AT: usize = READ_SIZE / 2;

/// Widens a pipe; a kernel that refuses keeps the default, which only costs speed.
fn widen(pipe: &impl std::os::fd::AsFd) {
    let _ = nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
}

/// Signals the process group `pgid` of a step's own child.
pub(crate) fn signal_group(pgid: i32, sig: Signal) {
    // Group 0 would be runbook's own (and 1 init's): never signal them, whatever
    // `child.id()` said.
    if pgid <= 1 {
        return;
    }
    // ESRCH (the group is gone) is the expected end of every kill.
    let _ = killpg(Pid::from_raw(pgid), sig);
}

/// What a step's stdin reads: nothing. `/dev/null` is opened once and handed to every
/// step (a path lookup per spawn is measurable in a chain of short steps).
fn null_stdin() -> std::io::Result<BorrowedFd<'static>> {
    static NULL: OnceLock<Option<File>> = OnceLock::new();
    NULL.get_or_init(|| File::open("/dev/null").ok())
        .as_ref()
        .map(|f| f.as_fd())
        .ok_or_else(|| std::io::Error::other("cannot open /dev/null for the step's stdin"))
}

/// A step's pipe, read without blocking this thread.
fn receiver(fd: OwnedFd) -> std::io::Result<pipe::Receiver> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    pipe::Receiver::from_owned_fd_unchecked(fd)
}

/// A step's stdout or stderr, read on a thread of its own since it passed [`OFFLOAD_AFTER`].
/// Dropped, it closes the thread's way to the sink, and wakes the thread if it is still
/// waiting for output, so that it ends and closes its end of the pipe.
struct Reader<S> {
    shared: Arc<Mutex<Shared<S>>>,
    stream: Stream,
    /// Resolves when the thread is done: the stream ended (or failed).
    done: oneshot::Receiver<()>,
    ended: bool,
    /// A read end of the pipe of our own, to wake the thread through (its own may be closed
    /// by then, and the number given to another file).
    keep: OwnedFd,
}

/// Moves the reading of `pipe` (the step's `stream`) to a thread, which gives what it reads
/// to `output` and tells `quiet` when the quiet timer must be set. Gives the pipe back, to
/// be read here, when no thread can be started; gives nothing back for a pipe that cannot
/// be made blocking (it is lost, as when a read fails).
fn offload<S: Sink>(
    pipe: pipe::Receiver,
    stream: Stream,
    output: &Output<S>,
    quiet: &Arc<Notify>,
) -> Result<Reader<S>, Option<pipe::Receiver>> {
    let fd = pipe.into_blocking_fd().map_err(|_| None)?;
    let keep = match fd.try_clone() {
        Ok(keep) => keep,
        Err(_) => return Err(receiver(fd).ok()),
    };
    let (tx, done) = oneshot::channel();
    let shared = Arc::clone(&output.0);
    let notify = Arc::clone(quiet);
    output.lock().thread_open[stream as usize] = true;
    let started = std::thread::Builder::new()
        .name(match stream {
            Stream::Stdout => "step stdout".into(),
            Stream::Stderr => "step stderr".into(),
        })
        .spawn(move || {
            read_blocking(fd, stream, &shared, &notify);
            let _ = tx.send(());
        });
    if started.is_err() {
        // Out of threads: the runtime's thread goes on reading, through the second read end.
        output.lock().thread_open[stream as usize] = false;
        return Err(receiver(keep).ok());
    }
    Ok(Reader {
        shared: Arc::clone(&output.0),
        stream,
        done,
        ended: false,
        keep,
    })
}

/// A stream's thread: reads `fd` until it ends, or until the attempt is over.
fn read_blocking<S: Sink>(fd: OwnedFd, stream: Stream, shared: &Mutex<Shared<S>>, quiet: &Notify) {
    use std::io::Read;
    let mut pipe = File::from(fd);
    let mut buf = vec![0; READ_SIZE];
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let mut shared = lock(shared);
        if !shared.thread_open[stream as usize] {
            return;
        }
        if shared.data(stream, &buf[..n]) {
            quiet.notify_one();
        }
    }
}

impl<S> Reader<S> {
    /// Resolves once the thread is done with its stream (never without a thread).
    async fn ended(reader: &mut Option<Self>) {
        match reader {
            Some(r) => {
                let _ = (&mut r.done).await;
                r.ended = true;
            }
            None => std::future::pending().await,
        }
    }
}

impl<S> Drop for Reader<S> {
    fn drop(&mut self) {
        lock(&self.shared).thread_open[self.stream as usize] = false;
        if self.ended {
            return;
        }
        // Still reading after the shell ended: a background process holds the pipe. A
        // write into the pipe, through a write end opened on our own read end, wakes the
        // thread; what it reads is dropped, and it ends. Without /proc, it ends at that
        // process's next write.
        let path = format!("/proc/self/fd/{}", self.keep.as_raw_fd());
        use nix::fcntl::{OFlag, open};
        let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        if let Ok(w) = open(path.as_str(), flags, nix::sys::stat::Mode::empty()) {
            let _ = nix::unistd::write(&w, b"\n");
        }
    }
}

/// One of a step's two pipes: read on the runtime's thread until it has given
/// [`OFFLOAD_AFTER`], then on a thread of its own.
struct Pipe<S> {
    stream: Stream,
    here: Option<pipe::Receiver>,
    thread: Option<Reader<S>>,
    /// Bytes read here; past [`OFFLOAD_AFTER`] once a thread was tried for it.
    read_here: usize,
    /// Widened at the first large read (stdout only): most steps write little, and a
    /// wider pipe costs a system call and memory for every one.
    may_widen: bool,
}

impl<S: Sink> Pipe<S> {
    fn new(stream: Stream, pipe: Option<OwnedFd>) -> std::io::Result<Self> {
        Ok(Pipe {
            stream,
            here: pipe.map(receiver).transpose()?,
            thread: None,
            read_here: 0,
            may_widen: stream == Stream::Stdout,
        })
    }

    fn is_open(&self) -> bool {
        self.here.is_some() || self.thread.is_some()
    }

    /// Takes what a read here gave (the start of `buf`, as `read` says): gives data to
    /// `output`, moves the pipe to a thread once it is large, and closes it at its end.
    /// Says whether the quiet timer must now be set.
    fn got(
        &mut self,
        read: std::io::Result<usize>,
        buf: &[u8],
        output: &Output<S>,
        quiet: &mut Option<Arc<Notify>>,
    ) -> bool {
        let n = match read {
            Ok(n) if n > 0 => n,
            _ => {
                self.here = None;
                return false;
            }
        };
        let buf = &buf[..n];
        if self.may_widen && n >= WIDEN_AT {
            self.may_widen = false;
            if let Some(p) = &self.here {
                widen(p);
            }
        }
        let set_quiet = output.lock().data(self.stream, buf);
        self.read_here = self.read_here.saturating_add(n);
        if self.read_here > OFFLOAD_AFTER
            && self.read_here != usize::MAX
            && let Some(pipe) = self.here.take()
        {
            // Tried once: a refused thread leaves the pipe here.
            self.read_here = usize::MAX;
            let wake = quiet.get_or_insert_with(Default::default);
            match offload(pipe, self.stream, output, wake) {
                Ok(r) => self.thread = Some(r),
                Err(back) => self.here = back,
            }
        }
        set_quiet
    }

    /// Reads what the pipe holds now, without waiting (once the shell has ended, its pipe
    /// has usually ended too, and the end is taken here rather than at the runtime's next
    /// turn). Says whether the quiet timer must now be set.
    fn read_now(
        &mut self,
        buf: &mut [u8],
        output: &Output<S>,
        quiet: &mut Option<Arc<Notify>>,
    ) -> bool {
        let mut set_quiet = false;
        // Bounded: a background process may write for ever; the loop reads the rest.
        for _ in 0..READS_NOW {
            let Some(pipe) = &self.here else { break };
            let read = match nix::unistd::read(pipe, buf) {
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                read => read.map_err(std::io::Error::from),
            };
            set_quiet |= self.got(read, buf, output, quiet);
        }
        set_quiet
    }
}

/// Reads at most this many times at once when the shell ends: what a widened pipe holds.
const READS_NOW: usize = PIPE_SIZE as usize / READ_SIZE;

/// Resolves when `quiet` is told to, never without one.
async fn notified(quiet: &Option<Arc<Notify>>) {
    match quiet {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

/// Read buffers of finished steps, kept for the next ones: two fresh 64 KiB buffers per
/// step made the allocator grow and trim its heap around every spawn.
struct Buffers;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Spare buffers kept at most (steps running at once each hold two).
const SPARE_MAX: usize = 16;

impl Buffers {
    fn take() -> Vec<u8> {
        SPARE
            .with(|s| s.borrow_mut().pop())
            .unwrap_or_else(|| vec![0; READ_SIZE])
    }

    fn give(buf: Vec<u8>) {
        SPARE.with(|s| {
            let mut spare = s.borrow_mut();
            if spare.len() < SPARE_MAX {
                spare.push(buf);
            }
        });
    }
}

/// The write end of the pipe a held shell waits on before its command (close-on-exec, so
/// only this process holds it). [`Gate::open`] lets the command run; dropped unopened, it
/// ends the shell's stdin, and the shell exits without running anything, as it does when
/// runbook dies.
pub(crate) struct Gate(Option<std::os::fd::OwnedFd>);

impl Gate {
    pub(crate) fn open(self) {
        if let Some(go) = &self.0 {
            // A shell that ended already (a syntax error on the command's first line) has
            // run nothing: a refused write changes nothing.
            let _ = nix::unistd::write(go, b"\n");
        }
    }
}

/// Runs `spec` once its start is durable: `durable` is given the [`Gate`] to open once it
/// is, and gives the outcome of making it so. The command never runs before the gate is
/// opened, and `run` gives `durable`'s error if it fails. With `hold` (a shell that can
/// hold the command), the shell is started while `durable` works; otherwise once it is
/// done. Tells `on_spawn` the process group and its start time (clock ticks since boot)
/// once it exists, hands every chunk of output to `output` as it arrives, and says when
/// output has gone quiet.
pub(crate) async fn run<D: Future<Output = std::io::Result<()>>, S: Sink>(
    spec: &Spec,
    hold: bool,
    durable: impl FnOnce(Gate) -> D,
    on_spawn: impl FnOnce(u32, Option<u64>),
    output: &Output<S>,
    cancel: watch::Receiver<Cancel>,
) -> std::io::Result<Outcome> {
    // The default is a full path: a bare `sh` is looked for in every PATH directory before
    // each spawn.
    let (program, options) = spec
        .shell
        .split_first()
        .ok_or_else(|| std::io::Error::other("no shell to run the command with"))?;
    // Awaited once the shell has ended: the result is in by then (the command waited for
    // it), and an earlier wait would wake this thread once more per step.
    let (synced, hold_end, command) = if hold && spec.can_hold {
        let (wait, go) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        // Started before the spawn, so that it runs alongside the spawn and the shell's own
        // start: the gate is usually open by the time the shell reads it.
        let synced = durable(Gate(Some(go)));
        (
            Some(synced),
            Some(wait),
            Cow::Owned(format!("{HOLD}{}", spec.command)),
        )
    } else {
        durable(Gate(None)).await?;
        (None, None, Cow::Borrowed(spec.command.as_str()))
    };
    let stdin = match &hold_end {
        Some(wait) => wait.as_fd(),
        None => null_stdin()?,
    };
    let mut args: Vec<&str> = options.iter().map(String::as_str).collect();
    args.push(&command);
    let before = orphans::ticks_now();
    let spawned = spawn::spawn(&spawn::Command {
        program,
        args,
        env: &spec.env,
        dir: spec.dir.as_deref(),
        stdin,
    });
    let after = orphans::ticks_now();
    // The shell's end of the hold is closed here: only the shell holds it now.
    drop(hold_end);
    let mut child = spawned?;
    let pgid = child.id() as i32;
    on_spawn(child.id(), orphans::spawned_at(child.id(), before, after));
    let mut buf_out = Buffers::take();
    let mut buf_err = Buffers::take();
    let outcome = watch_child(
        spec,
        &mut child,
        pgid,
        [&mut buf_out, &mut buf_err],
        output,
        cancel,
    )
    .await;
    Buffers::give(buf_out);
    Buffers::give(buf_err);
    if let Some(synced) = synced {
        synced.await?;
    }
    outcome
}

/// Streams the output of `child` (group `pgid`) through `buf_out` and `buf_err` until it
/// has ended and its pipes are drained, or it has been stopped.
async fn watch_child<S: Sink>(
    spec: &Spec,
    child: &mut spawn::Child,
    pgid: i32,
    [buf_out, buf_err]: [&mut Vec<u8>; 2],
    output: &Output<S>,
    mut cancel: watch::Receiver<Cancel>,
) -> std::io::Result<Outcome> {
    let mut out = Pipe::new(Stream::Stdout, child.stdout.take())?;
    let mut err = Pipe::new(Stream::Stderr, child.stderr.take())?;
    let mut status = None;
    // How the pipes' threads, once there are any, say they gave output.
    let mut quiet_wake: Option<Arc<Notify>> = None;
    let mut ended_by: Option<Outcome> = None;
    let mut cancel_open = true;
    // The timers live across the loop, reset rather than made anew for every piece of
    // output (a timer made and dropped per read costs more than the read).
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let timed = spec.timeout.is_some();
    let deadline = sleep_until(spec.timeout.map_or(far, |t| Instant::now() + t));
    let kill = sleep_until(far);
    let drain = sleep_until(far);
    let quiet = sleep_until(far);
    tokio::pin!(deadline, kill, drain, quiet);
    let (mut killing, mut draining, mut quiet_armed) = (false, false, false);

    // A cancel requested before we started still applies.
    let initial = *cancel.borrow_and_update();
    if initial != Cancel::None {
        signal_group(
            pgid,
            if initial == Cancel::Kill {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            },
        );
        ended_by = Some(Outcome::Cancelled);
        kill.as_mut().reset(Instant::now() + GRACE);
        killing = true;
    }

    loop {
        if status.is_some() && !out.is_open() && !err.is_open() {
            break;
        }
        tokio::select! {
            n = read_some(&mut out.here, buf_out) => {
                if out.got(n, buf_out, output, &mut quiet_wake) {
                    quiet.as_mut().reset(Instant::now() + QUIET);
                    quiet_armed = true;
                }
            }
            n = read_some(&mut err.here, buf_err) => {
                if err.got(n, buf_err, output, &mut quiet_wake) {
                    quiet.as_mut().reset(Instant::now() + QUIET);
                    quiet_armed = true;
                }
            }
            () = Reader::ended(&mut out.thread) => out.thread = None,
            () = Reader::ended(&mut err.thread) => err.thread = None,
            () = notified(&quiet_wake), if !quiet_armed => {
                // A pipe's thread gave the first piece since the last quiet.
                quiet.as_mut().reset(Instant::now() + QUIET);
                quiet_armed = true;
            }
            () = &mut quiet, if quiet_armed => {
                let mut shared = output.lock();
                let due = Instant::from_std(shared.last_output + QUIET);
                if Instant::now() >= due {
                    quiet_armed = false;
                    shared.quiet_due = false;
                    shared.sink.piece(Piece::Quiet);
                } else {
                    // Output came since the timer was set: wait for the quiet after it.
                    quiet.as_mut().reset(due);
                }
            }
            s = child.wait(), if status.is_none() => {
                status = Some(s?);
                // This process's own write ends kept the pipes open until now (see
                // `spawn::Child`): without them, the pipes usually end here, read to their
                // end at once, and the loop ends. Arming a timer would cost a wake-up of the
                // runtime's driver for nothing.
                child.release_writers();
                for (pipe, buf) in [(&mut out, &mut **buf_out), (&mut err, &mut **buf_err)] {
                    if pipe.read_now(buf, output, &mut quiet_wake) {
                        quiet.as_mut().reset(Instant::now() + QUIET);
                        quiet_armed = true;
                    }
                }
                if out.is_open() || err.is_open() {
                    drain.as_mut().reset(Instant::now() + DRAIN);
                    draining = true;
                }
            }
            () = &mut deadline, if timed && ended_by.is_none() && status.is_none() => {
                signal_group(pgid, Signal::SIGTERM);
                ended_by = Some(Outcome::TimedOut);
                kill.as_mut().reset(Instant::now() + GRACE);
                killing = true;
            }
            () = &mut kill, if killing => {
                signal_group(pgid, Signal::SIGKILL);
                killing = false;
            }
            () = &mut drain, if draining => break,
            changed = cancel.changed(), if cancel_open => {
                // A closed channel means the executor is gone; nothing more will be asked.
                cancel_open = changed.is_ok();
                let how = if cancel_open { *cancel.borrow_and_update() } else { Cancel::None };
                match how {
                    Cancel::None => {}
                    Cancel::Graceful => {
                        signal_group(pgid, Signal::SIGTERM);
                        ended_by = Some(Outcome::Cancelled);
                        kill.as_mut().reset(Instant::now() + GRACE);
                        killing = true;
                    }
                    Cancel::Kill => {
                        signal_group(pgid, Signal::SIGKILL);
                        ended_by = Some(Outcome::Cancelled);
                        killing = false;
                    }
                }
            }
        }
    }
    if ended_by.is_some() {
        // Whatever of the group outlived the shell (a grandchild ignoring TERM) goes now.
        signal_group(pgid, Signal::SIGKILL);
    }
    if let Some(outcome) = ended_by {
        return Ok(outcome);
    }
    use std::os::unix::process::ExitStatusExt;
    let status = status
        .ok_or_else(|| std::io::Error::other("the step's shell did not report an exit status"))?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => Outcome::Exited(code),
        (None, Some(sig)) => Outcome::Signalled(sig),
        (None, None) => Outcome::Exited(-1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(shell: &[&str], command: &str, hold: bool) -> Spec {
        Spec {
            shell: shell.iter().map(|s| s.to_string()).collect(),
            command: command.into(),
            env: Vec::new(),
            dir: None,
            timeout: Some(Duration::from_secs(10)),
            can_hold: hold,
        }
    }

    fn no_cancel() -> watch::Receiver<Cancel> {
        watch::channel(Cancel::None).1
    }

    /// All the data given, and where each quiet fell (bytes before it).
    #[derive(Default)]
    struct Collect {
        data: Vec<u8>,
        quiets: Vec<usize>,
    }

    impl Sink for Collect {
        fn piece(&mut self, piece: Piece<'_>) {
            match piece {
                Piece::Data(_, bytes) => self.data.extend_from_slice(bytes),
                Piece::Quiet => self.quiets.push(self.data.len()),
            }
        }
    }

    impl Collect {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.data).into_owned()
        }
    }

    async fn run_quietly(command: &str, out: &Output<Collect>) -> Outcome {
        run(
            &spec(&["/bin/sh", "-c"], command, false),
            false,
            |_| async { Ok(()) },
            |_, _| {},
            out,
            no_cancel(),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_large_stdout_comes_whole_and_in_order_through_its_thread() {
        // 8 MiB of numbered lines: read here first, then on the thread.
        let out = Output::new(Collect::default());
        let outcome = run_quietly("seq 1 1200000; echo tail >&2", &out).await;
        assert_eq!(outcome, Outcome::Exited(0));
        let text = out.with(|c| c.text());
        let want: String = (1..=1_200_000).map(|i| format!("{i}\n")).collect();
        assert!(want.len() > 2 * OFFLOAD_AFTER);
        // stderr's line lands anywhere among stdout's.
        let at = text.find("tail\n").expect("stderr is read too");
        let mut text = text;
        text.replace_range(at..at + 5, "");
        assert!(text == want, "stdout came out of order or incomplete");
    }

    #[tokio::test]
    async fn a_large_stderr_comes_whole_and_in_order_through_its_thread() {
        let out = Output::new(Collect::default());
        let outcome = run_quietly("seq 1 1200000 >&2; exit 3", &out).await;
        assert_eq!(outcome, Outcome::Exited(3));
        let want: String = (1..=1_200_000).map(|i| format!("{i}\n")).collect();
        assert!(
            out.with(|c| c.text()) == want,
            "stderr came out of order or incomplete"
        );
    }

    #[tokio::test]
    async fn a_large_stream_that_ends_first_leaves_the_others_thread_reading() {
        // Both pipes pass to threads; stdout ends first, and stderr goes on after it.
        let out = Output::new(Collect::default());
        let outcome = run_quietly(
            "seq 1 300000 >&2; seq 1 300000; exec 1>&-; sleep 0.3; seq 300001 600000 >&2",
            &out,
        )
        .await;
        assert_eq!(
            outcome,
            Outcome::Exited(0),
            "stderr was closed under the shell"
        );
        let want: usize = (1..=600_000)
            .map(|i: u32| format!("{i}\n").len())
            .sum::<usize>()
            + (1..=300_000)
                .map(|i: u32| format!("{i}\n").len())
                .sum::<usize>();
        assert_eq!(out.with(|c| c.data.len()), want, "stderr's end was lost");
    }

    #[tokio::test]
    async fn an_unfinished_line_after_a_large_stdout_is_shown_once_output_goes_quiet() {
        let out = Output::new(Collect::default());
        let outcome = run_quietly(
            "head -c 3000000 /dev/zero | tr '\\0' x; printf 'one...'; sleep 0.5; \
             printf 'two...'; sleep 0.5",
            &out,
        )
        .await;
        assert_eq!(outcome, Outcome::Exited(0));
        // A quiet came after each unfinished line, while the shell slept: the second one
        // only if the thread set the timer again.
        let (len, quiets) = out.with(|c| (c.data.len(), c.quiets.clone()));
        assert_eq!(len, 3_000_000 + 12);
        assert!(
            quiets.contains(&(len - 6)),
            "no quiet after `one...`: {quiets:?}"
        );
        assert!(quiets.contains(&len), "no quiet after `two...`: {quiets:?}");
    }

    #[tokio::test]
    async fn what_the_pipes_hold_when_the_shell_ends_is_read_whole() {
        // Written in one go just before the exit, unfinished lines on both streams: most of
        // it is still in the pipes when the shell is reaped.
        let out = Output::new(Collect::default());
        let outcome = run_quietly(
            "head -c 200000 /dev/zero | tr '\\0' o; head -c 50000 /dev/zero | tr '\\0' e >&2; exit 5",
            &out,
        )
        .await;
        assert_eq!(outcome, Outcome::Exited(5));
        let data = out.with(|c| c.data.clone());
        assert_eq!(data.iter().filter(|&&b| b == b'o').count(), 200_000);
        assert_eq!(data.iter().filter(|&&b| b == b'e').count(), 50_000);
        assert_eq!(data.len(), 250_000);
    }

    #[tokio::test]
    async fn a_shell_that_closes_its_stdout_early_is_still_heard_to_its_end() {
        let out = Output::new(Collect::default());
        let outcome = run_quietly(
            "echo early; exec 1>&-; sleep 0.3; printf late >&2; exit 4",
            &out,
        )
        .await;
        assert_eq!(outcome, Outcome::Exited(4));
        assert_eq!(out.with(|c| c.text()), "early\nlate");
    }

    #[tokio::test]
    async fn a_background_process_writing_without_end_after_the_shell_does_not_hold_the_step() {
        // After the shell ends, its pipe never runs dry: the attempt still ends once the
        // drain is over, and the writer's next write fails.
        let pgid = std::cell::Cell::new(0);
        let out = Output::new(Collect::default());
        let started = std::time::Instant::now();
        let outcome = run(
            &spec(
                &["/bin/sh", "-c"],
                "(while :; do echo flood; done) & sleep 0.05",
                false,
            ),
            false,
            |_| async { Ok(()) },
            |pid, _| pgid.set(pid as i32),
            &out,
            no_cancel(),
        )
        .await
        .unwrap();
        let took = started.elapsed();
        signal_group(pgid.get(), Signal::SIGKILL);
        assert_eq!(outcome, Outcome::Exited(0));
        assert!(took < DRAIN + Duration::from_secs(1), "held for {took:?}");
        assert!(out.with(|c| c.text()).starts_with("flood\nflood\n"));
    }

    #[tokio::test]
    async fn a_background_process_holding_a_large_stdout_neither_holds_the_step_nor_its_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (said, pid) = (dir.path().join("said"), dir.path().join("pid"));
        // After 2 MiB, a background process keeps the pipe open, silent, then writes once
        // more long after the step is over.
        let command = format!(
            "head -c 2000000 /dev/zero; (trap '' PIPE; sleep 2; echo late; echo $? > '{}') & \
             echo $! > '{}'",
            said.display(),
            pid.display()
        );
        let out = Output::new(Collect::default());
        let started = std::time::Instant::now();
        let outcome = run_quietly(&command, &out).await;
        assert_eq!(outcome, Outcome::Exited(0));
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(1500),
            "waited for it: {took:?}"
        );
        assert_eq!(out.with(|c| c.data.len()), 2_000_000);
        // The thread was woken and is gone, with its end of the pipe: this process holds
        // nothing of the pipe the background process writes to.
        let pid = std::fs::read_to_string(&pid).unwrap();
        let pipe = std::fs::read_link(format!("/proc/{}/fd/1", pid.trim())).unwrap();
        let pipe = pipe.to_string_lossy().into_owned();
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while pipes_of("self").contains(&pipe) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !pipes_of("self").contains(&pipe),
            "the stdout's thread still reads"
        );
        // Its late write finds no reader, and nothing more reaches the sink.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !said.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = std::fs::read_to_string(&said).unwrap();
        assert_ne!(status.trim(), "0", "the late write found a reader");
        assert_eq!(out.with(|c| c.data.len()), 2_000_000);
    }

    /// The pipes `pid` holds, by inode.
    fn pipes_of(pid: &str) -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
            .map(|l| l.to_string_lossy().into_owned())
            .filter(|l| l.starts_with("pipe:"))
            .collect()
    }

    #[tokio::test]
    async fn a_held_command_runs_only_once_its_start_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let ran = dir.path().join("ran");
        let command = format!("touch '{}'; cat; no-such-command", ran.display());
        let (spawned, pid) = std::sync::mpsc::channel::<u32>();
        let out = Output::new(Collect::default());
        let outcome = run(
            &spec(&["/bin/sh", "-c"], &command, true),
            true,
            |gate| {
                let ran = ran.clone();
                // The sync, elsewhere: slow enough for the shell to reach its command.
                let sync = std::thread::spawn(move || {
                    let pid = pid.recv().expect("the shell starts while the sync is made");
                    std::thread::sleep(Duration::from_millis(300));
                    assert!(
                        !ran.exists(),
                        "the command ran before its start was durable"
                    );
                    // The hold's write end is ours alone: were runbook to die here, the
                    // shell would see its stdin end and exit without running anything.
                    let stdin = std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
                    let stdin = stdin.to_string_lossy().into_owned();
                    assert!(stdin.starts_with("pipe:"), "{stdin}");
                    let holders = |p: &str| pipes_of(p).iter().filter(|p| **p == stdin).count();
                    assert_eq!(holders("self"), 1);
                    assert_eq!(holders(&pid.to_string()), 1);
                    gate.open();
                });
                async move {
                    sync.join()
                        .map_err(|_| std::io::Error::other("the sync panicked"))
                }
            },
            |pid, _| spawned.send(pid).unwrap(),
            &out,
            no_cancel(),
        )
        .await;
        assert_eq!(outcome.unwrap(), Outcome::Exited(127));
        assert!(ran.exists());
        // Its stdin is empty (`cat` ends at once), and its first line is still line 1.
        let out = out.with(|c| c.text());
        assert!(out.contains("1: no-such-command"), "{out}");
    }

    #[tokio::test]
    async fn a_start_that_cannot_be_made_durable_runs_nothing() {
        for hold in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let ran = dir.path().join("ran");
            let command = format!("touch '{}'", ran.display());
            let spawned = std::cell::Cell::new(false);
            let outcome = run(
                &spec(&["/bin/sh", "-c"], &command, true),
                hold,
                |gate| {
                    std::thread::sleep(Duration::from_millis(100));
                    drop(gate);
                    async { Err(std::io::Error::other("No space left on device")) }
                },
                |_, _| spawned.set(true),
                &Output::new(|_: Piece<'_>| {}),
                no_cancel(),
            )
            .await;
            let e = outcome.unwrap_err();
            assert_eq!(e.to_string(), "No space left on device");
            assert!(!ran.exists(), "hold {hold}: ran unrecorded");
            // A shell that cannot hold is never started.
            assert_eq!(spawned.get(), hold);
        }
    }

    #[tokio::test]
    async fn a_shell_not_held_starts_after_the_sync() {
        let synced = std::cell::Cell::new(false);
        let outcome = run(
            &spec(&["/bin/sh", "-c"], "exit 3", true),
            false,
            |gate| {
                synced.set(true);
                gate.open();
                async { Ok(()) }
            },
            |_, _| assert!(synced.get(), "spawned before the sync"),
            &Output::new(|_: Piece<'_>| {}),
            no_cancel(),
        )
        .await;
        assert_eq!(outcome.unwrap(), Outcome::Exited(3));
    }
}
