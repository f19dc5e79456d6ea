//! Large streams (issue 15): a step's stdout past 1 MiB is read on a thread of its own.
//! Everything a stream read on the runtime's thread gets still holds past that point:
//! masking wherever a secret falls, the capture, the log's cap, the timeout, an interrupt,
//! a background process that keeps the pipe, and a reader of runbook's own output that
//! goes away.

use std::io::Read;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::test::{Ran, Test, runbook_with, spawn};

/// Shell that prints `n` bytes of `c`.
fn bytes(n: usize, c: char) -> String {
    format!("head -c {n} /dev/zero | tr '\\\\0' {c}")
}

#[test]
fn a_secret_anywhere_in_a_large_stream_is_masked_on_screen_and_in_the_log() {
    let secret = "hunter2-long-secret";
    // Past the switch to the thread, the secret falls at many offsets from the 64 KiB
    // reads: on one long line, then on 3,000 short ones.
    let gaps = [1, 17, 4_093, 65_519, 65_536, 70_001];
    let mut run = bytes(1_100_000, 'x');
    for gap in gaps {
        run += &format!(
            "; printf '%s' \\\"$RUNBOOK_TEST_SECRET\\\"; {}",
            bytes(gap, 'y')
        );
    }
    run += "; echo; for i in $(seq 1 3000); do echo \\\"line $i $RUNBOOK_TEST_SECRET end\\\"; done";
    let text = format!(
        "[runbook]\ntitle = \"s\"\n\n[params.token]\nenv = \"RUNBOOK_TEST_SECRET\"\nsecret = true\n\n\
         [[step]]\nid = \"loud\"\nrun = \"{run}\"\n"
    );
    let ran = Test::new()
        .runbook("x", &text)
        .env("RUNBOOK_TEST_SECRET", secret)
        // The whole stream in the log, to see it there too.
        .args(&["exec", "x", "--log-output-cap", "16MiB"])
        .run();
    let log: String = ran
        .log_files()
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for (what, all) in [("stdout", ran.stdout()), ("log", log.clone())] {
        for part in ["hunter2", "long-secret", "r2-lo"] {
            assert!(!all.contains(part), "{part:?} leaked to the {what}");
        }
    }
    let out = ran.stdout();
    assert_eq!(out.matches("***").count(), gaps.len() + 3000);
    let sum: usize = gaps.iter().sum();
    let lines: usize = (1..=3000)
        .map(|i| format!("line {i} *** end\n").len())
        .sum();
    assert_eq!(out.len(), 1_100_000 + gaps.len() * 3 + sum + 1 + lines);
    assert!(out.ends_with("line 3000 *** end\n"));
    assert_eq!(
        ran.logged_output(None),
        out,
        "the log holds the stream as shown"
    );
}

#[test]
fn a_capture_of_a_large_stdout_keeps_its_first_mebibyte() {
    let ran = Test::new()
        .runbook(
            "x",
            &runbook_with("[[step]]\nid = \"count\"\nrun = \"seq 1 500000\"\ncapture = \"n\"\n"),
        )
        .args(&["exec", "x"])
        .run();
    let all: String = (1..=500_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(ran.stdout(), all);
    let captured = ran.finished("count")["captured"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(captured, all[..1024 * 1024].trim());
}

#[test]
fn the_log_keeps_its_cap_of_a_large_stream_and_counts_the_rest() {
    let ran = Test::new()
        .runbook(
            "x",
            &runbook_with(&format!(
                "[[step]]\nid = \"loud\"\nrun = \"{}\"\n",
                bytes(5_000_000, 'z')
            )),
        )
        .args(&["exec", "x", "--log-output-cap", "2MiB"])
        .run();
    assert_eq!(ran.stdout.len(), 5_000_000);
    let outputs = ran.events("step_output");
    let kept: usize = outputs
        .iter()
        .map(|e| e["text"].as_str().unwrap_or_default().len())
        .sum();
    assert_eq!(kept, 2 * 1024 * 1024);
    assert_eq!(
        outputs.last().unwrap()["truncated_bytes"],
        5_000_000 - 2 * 1024 * 1024
    );
}

#[test]
fn a_large_stream_that_runs_past_its_timeout_is_stopped() {
    let start = Instant::now();
    let ran = Test::new()
        .runbook(
            "x",
            &runbook_with("[[step]]\nid = \"endless\"\nrun = \"yes\"\ntimeout = \"1s\"\n"),
        )
        .args(&["exec", "x"])
        .status(1)
        .run();
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    let end = ran.finished("endless");
    assert_eq!(end["status"], "timed_out");
    // It streamed a lot before it was stopped: well past the switch to the thread.
    assert!(ran.stdout.len() > 4 * 1024 * 1024, "{}", ran.stdout.len());
}

/// Waits until `dir`'s log is `size` bytes or more.
fn wait_for_log(dir: &std::path::Path, size: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let logs = Ran::logs_in(dir);
        if logs
            .iter()
            .any(|f| std::fs::metadata(f).is_ok_and(|m| m.len() >= size))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the log never reached {size} bytes");
}

/// A child killed when the test ends, even by a failed assertion: a `yes` left streaming
/// would slow everything after it.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_interrupt_during_a_large_stream_stops_the_run() {
    let t = Test::new().runbook(
        "x",
        &runbook_with("[[step]]\nid = \"endless\"\nrun = \"yes\"\n"),
    );
    let mut child = Killed(spawn(t.path(), &["exec", "x", "--log-output-cap", "2MiB"]));
    // 2 MiB of output logged: the stream is past the switch to the thread.
    wait_for_log(t.path(), 2 * 1024 * 1024);
    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGINT).unwrap();
    let at = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            at.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    let log = std::fs::read_to_string(&Ran::logs_in(t.path())[0]).unwrap();
    assert!(
        log.contains(r#""status":"aborted""#),
        "the step's end is not logged"
    );
    assert!(
        log.contains(r#""status":"interrupted""#),
        "the run's end is not logged"
    );
}

#[test]
fn a_background_process_holding_a_large_stream_does_not_hold_the_run() {
    let start = Instant::now();
    let steps = format!(
        "[[step]]\nid = \"a\"\nrun = \"{}; sleep 30 & echo $! > daemon.pid\"\n\n\
         [[step]]\nid = \"b\"\nrun = \"echo next\"\n",
        bytes(3_000_000, 'x')
    );
    let ran = Test::new()
        .runbook("x", &runbook_with(&steps))
        .args(&["exec", "x"])
        .run();
    let took = start.elapsed();
    let pid: i32 = std::fs::read_to_string(ran.dir.join("daemon.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    assert!(
        took < Duration::from_secs(5),
        "waited for the daemon: {took:?}"
    );
    assert_eq!(ran.stdout.len(), 3_000_000 + "next\n".len());
    assert_eq!(ran.finished("b")["status"], "succeeded");
}

#[test]
fn a_reader_of_runbook_that_goes_away_mid_stream_loses_nothing_in_the_log() {
    let t = Test::new().runbook(
        "x",
        &runbook_with(&format!(
            "[[step]]\nid = \"loud\"\nrun = \"{}\"\n\n[[step]]\nid = \"after\"\nrun = \"true\"\n",
            bytes(8_000_000, 'x')
        )),
    );
    // `runbook exec x | head -c 100`: the reader goes after 100 bytes.
    let mut child = crate::test::command(t.path(), &["exec", "x"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let status = crate::test::wait_with_timeout(child, Duration::from_secs(20)).status;
    assert_eq!(status.code(), Some(0));
    let log = std::fs::read_to_string(&Ran::logs_in(t.path())[0]).unwrap();
    assert!(
        log.contains(r#""truncated_bytes":6951424"#),
        "{}",
        &log[log.len() - 600..]
    );
    assert!(log.contains(r#""status":"succeeded""#));
    assert!(log.contains(r#""step":"after""#));
}

#[test]
fn a_large_stream_of_any_bytes_reaches_stdout_unchanged() {
    // 3 MB of every byte value: NULs, escape sequences, invalid UTF-8, carriage returns.
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let ran = Test::new()
        .runbook(
            "x",
            &runbook_with("[[step]]\nid = \"raw\"\nrun = \"cat data.bin\"\n"),
        )
        .file("data.bin", &data)
        .args(&["exec", "x", "--log-output-cap", "0"])
        .run();
    assert!(
        ran.stdout == data,
        "{} bytes came out of 3,000,000",
        ran.stdout.len()
    );
}

#[test]
fn large_streams_of_steps_running_at_once_keep_their_lines_prefixed_and_in_order() {
    // Three steps at once, each past the switch to its own thread: every line carries its
    // step's prefix and only its step's text, in order, and nothing is lost. (A line may
    // come in two parts, each prefixed, when its step went quiet in the middle of it.)
    let steps: String = ["a", "b", "c"]
        .iter()
        .map(|s| {
            format!("[[step]]\nid = \"{s}\"\nneeds = []\nrun = \"seq -f '{s}%g' 1 300000\"\n\n")
        })
        .collect();
    let ran = Test::new()
        .runbook("x", &runbook_with(&steps))
        .args(&["exec", "x"])
        .run();
    let mut text: std::collections::HashMap<String, String> = Default::default();
    for line in ran.stdout().lines() {
        let (prefix, rest) = line
            .split_once("] ")
            .unwrap_or_else(|| panic!("no prefix: {line:?}"));
        let step = prefix.trim_start_matches('[');
        text.entry(step.to_string()).or_default().push_str(rest);
    }
    for s in ["a", "b", "c"] {
        let want: String = (1..=300_000).map(|i| format!("{s}{i}")).collect();
        assert!(
            text.get(s) == Some(&want),
            "{s}: lines lost, mixed or out of order"
        );
    }
}

#[test]
fn a_large_stderr_is_masked_and_comes_whole_to_stderr() {
    let steps = "[[step]]\nid = \"noisy\"\nrun = \"for i in $(seq 1 60000); do echo \\\"warn $i $RUNBOOK_TEST_SECRET\\\"; done >&2\"\n";
    let text = format!(
        "[runbook]\ntitle = \"s\"\n\n[params.token]\nenv = \"RUNBOOK_TEST_SECRET\"\nsecret = true\n\n{steps}"
    );
    let ran = Test::new()
        .runbook("x", &text)
        .env("RUNBOOK_TEST_SECRET", "hunter2-long-secret")
        .args(&["exec", "x"])
        .run();
    let err = ran.stderr();
    assert!(!err.contains("hunter2"), "the secret leaked to stderr");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("warn ")).collect();
    assert_eq!(lines.len(), 60_000);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("warn {} ***", i + 1));
    }
    // Past the switch to the thread: before masking, more than 1 MiB went through.
    let raw: usize = (1..=60_000)
        .map(|i| format!("warn {i} hunter2-long-secret\n").len())
        .sum();
    assert!(raw > 1024 * 1024, "{raw}");
}
