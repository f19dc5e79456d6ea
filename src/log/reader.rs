//! Reading execution logs back, tolerantly.
//!
//! A torn last line (a crash mid-write) is skipped and reported, unknown events and fields
//! (from a newer minor version) are ignored, and a log from a newer schema is refused with a
//! clear message.

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::event::{EVENT_NAMES, Event, SCHEMA_VERSION};

/// One log, parsed.
#[derive(Debug, Clone)]
pub(crate) struct RunLog {
    pub(crate) records: Vec<(DateTime<Utc>, Event)>,
    /// The last line was cut short (the writer crashed mid-line); it was skipped.
    pub(crate) torn: bool,
    /// Lines that could not be read and were skipped (other than a torn last line).
    pub(crate) skipped_lines: Vec<usize>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not an execution log: its first line is not a run_started record")]
    NotALog { path: PathBuf },
    #[error(
        "{path} was written by a newer runbook (log schema {found}; this version reads up to {SCHEMA_VERSION}); upgrade runbook to read it"
    )]
    Newer { path: PathBuf, found: u64 },
}

/// How much of a log to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    /// Every record.
    Full,
    /// Every record but steps' output: what figures over many runs need (`stats`, `log
    /// list`), at two thirds of the cost.
    NoOutput,
}

pub(crate) fn read(path: &Path) -> Result<RunLog, ReadError> {
    read_with(path, Detail::Full)
}

pub(crate) fn read_with(path: &Path, detail: Detail) -> Result<RunLog, ReadError> {
    let mut text = Vec::new();
    read_into(path, &mut text)?;
    parse(path, &text, detail)
}

/// Reads the file at `path` into `buf`, replacing what was there.
pub(crate) fn read_into(path: &Path, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    use std::io::Read;
    buf.clear();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(buf))
        .map(drop)
        .map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// The records of a log file: everything before the first zero byte (a run in progress,
/// or one that crashed, leaves zero-filled room after its records).
pub(crate) fn records_of(bytes: &[u8]) -> &[u8] {
    match memchr::memchr(0, bytes) {
        Some(at) => &bytes[..at],
        None => bytes,
    }
}

pub(super) fn parse(path: &Path, bytes: &[u8], detail: Detail) -> Result<RunLog, ReadError> {
    let mut records = Vec::new();
    let ends = each_record(path, bytes, detail, |ts, event| records.push((ts, event)))?;
    Ok(RunLog {
        records,
        torn: ends.torn,
        skipped_lines: ends.skipped_lines,
    })
}

/// What reading a log met besides its records.
#[derive(Debug, Default)]
pub(crate) struct Ends {
    /// The last line was cut short (a crash mid-write) and skipped.
    pub(crate) torn: bool,
    /// Lines that could not be read and were skipped (other than a torn last line).
    pub(crate) skipped_lines: Vec<usize>,
}

/// Hands a log's records to `each` one by one, in order, as they are read: a reader
/// that folds them into something smaller (`stats` over thousands of runs) never holds
/// them all.
pub(crate) fn each_record(
    path: &Path,
    bytes: &[u8],
    detail: Detail,
    mut each: impl FnMut(DateTime<Utc>, Event),
) -> Result<Ends, ReadError> {
    let bytes = records_of(bytes);
    // Logs are UTF-8 (the writer escapes every string); check that fast, and fall back to
    // a lossy copy only for a damaged file.
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    let ends_cleanly = text.ends_with('\n');
    let mut ends = Ends::default();
    let mut any = false;
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        if n > 0 && detail == Detail::NoOutput && is_output(line) {
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let last = lines.peek().is_none();
        let parsed = parse_line(line);
        if n == 0 {
            // The first line decides whether this is a log this version can read.
            first_line(path, line, parsed.as_ref().ok().and_then(Option::as_ref))?;
        }
        match parsed {
            Ok(Some((ts, event))) => {
                any = true;
                each(ts, event);
            }
            Ok(None) => {}
            Err(()) if last && !ends_cleanly => ends.torn = true,
            Err(()) => ends.skipped_lines.push(n + 1),
        }
    }
    if !any {
        return Err(ReadError::NotALog {
            path: path.to_path_buf(),
        });
    }
    Ok(ends)
}

/// Refuses a log whose first line is not a `run_started` this version can read.
fn first_line(
    path: &Path,
    line: &str,
    parsed: Option<&(DateTime<Utc>, Event)>,
) -> Result<(), ReadError> {
    let found = match parsed {
        Some((_, Event::RunStarted(r))) => u64::from(r.schema_version),
        // Not read as this version's run_started: perhaps a newer one, with fields this
        // version does not know how to read.
        _ => {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            if v["event"] != "run_started" {
                return Err(ReadError::NotALog {
                    path: path.to_path_buf(),
                });
            }
            v["schema_version"].as_u64().unwrap_or(0)
        }
    };
    if found > u64::from(SCHEMA_VERSION) {
        return Err(ReadError::Newer {
            path: path.to_path_buf(),
            found,
        });
    }
    Ok(())
}

/// Ok(None) for a well-formed line of an event this version does not know.
fn parse_line(line: &str) -> Result<Option<(DateTime<Utc>, Event)>, ()> {
    // The fast way: `"event"` right after `"ts"`, as the writer puts it; the event's own
    // struct is then read straight from the line.
    if let Ok(event) = serde_json::from_str::<Event>(line) {
        return Ok(Some((timestamp_of(line).ok_or(())?, event)));
    }
    // Fields in another order, an event this version does not know, or a broken line.
    let v: serde_json::Value = serde_json::from_str(line).map_err(|_| ())?;
    let Some(name) = v["event"].as_str() else {
        return Err(());
    };
    if !EVENT_NAMES.contains(&name) {
        return Ok(None);
    }
    let event = Event::named(name, &v).map_err(|_| ())?;
    Ok(Some((timestamp_of(line).ok_or(())?, event)))
}

/// Whether a line, as the writer writes it, is a step's output (`{"ts":"...","event":
/// "step_output",`); a line in another shape is read in full.
fn is_output(line: &str) -> bool {
    const AT: usize = "{\"ts\":\"2026-11-26T03:12:00.123Z\",\"event\":\"".len();
    line.get(AT..)
        .is_some_and(|rest| rest.starts_with("step_output\""))
}

/// A line's `ts`. The writer puts it first, as `{"ts":"2026-11-26T03:12:00.123Z",`: that
/// form is read directly; anything else goes through a JSON parse and chrono.
fn timestamp_of(line: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = line
        .strip_prefix("{\"ts\":\"")
        .and_then(|rest| rest.get(..24))
        .and_then(fast_timestamp)
    {
        return Some(t);
    }
    #[derive(serde::Deserialize)]
    struct Ts {
        ts: DateTime<Utc>,
    }
    serde_json::from_str::<Ts>(line).ok().map(|t| t.ts)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the writer's own form (24 bytes).
fn fast_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z';
    if !shape_ok {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        s.get(r.clone())?.bytes().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date =
        chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_milli_opt(
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
        num(20..23)?,
    )?;
    Some(date.and_time(time).and_utc())
}

/// A run id that does not name exactly one run, or a log directory that cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FindError {
    #[error("no runs in {0}")]
    NoRuns(String),
    #[error("`{0}` is not a run id (run ids look like 20261126T031200123Z-a1b2c3)")]
    NotARunId(String),
    #[error("no run `{id}` in {dir}")]
    NoRun { id: String, dir: String },
    #[error("`{id}` matches {n} runs; give more of the id")]
    Ambiguous { id: String, n: usize },
    #[error("cannot read the log directory {}: {source}", path.display())]
    Dir { path: PathBuf, source: io::Error },
}

/// Where a run id's log is: `latest` is the newest run; ids never leave the directory.
pub(crate) fn find(dir: &Path, id: &str) -> Result<PathBuf, FindError> {
    if id == "latest" {
        return all(dir)?
            .pop()
            .ok_or_else(|| FindError::NoRuns(dir.display().to_string()));
    }
    let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid {
        return Err(FindError::NotARunId(id.to_string()));
    }
    let path = dir.join(format!("{id}.jsonl"));
    if path.is_file() {
        return Ok(path);
    }
    // A unique prefix is enough, as with git hashes.
    let matches: Vec<PathBuf> = all(dir)?
        .into_iter()
        .filter(|p| {
            p.file_stem()
                .is_some_and(|s| s.to_string_lossy().starts_with(id))
        })
        .collect();
    match matches.len() {
        1 => Ok(matches.into_iter().next().unwrap_or_default()),
        0 => Err(FindError::NoRun {
            id: id.to_string(),
            dir: dir.display().to_string(),
        }),
        n => Err(FindError::Ambiguous {
            id: id.to_string(),
            n,
        }),
    }
}

/// Every log file in `dir`, oldest first (run ids sort by start time).
pub(crate) fn all(dir: &Path) -> Result<Vec<PathBuf>, FindError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(FindError::Dir {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    // All in one directory: their bytes sort as their names do, and faster than paths'
    // component by component comparison.
    out.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = r#"{"ts":"2026-11-26T03:00:00.000Z","event":"run_started","schema_version":1,"run_id":"r","runbook":"x","runbook_path":"/x.toml","runbook_sha256":"00","title":"X","mode":"live","params":{},"operator":"me","host":"h","incident":null,"detected_at":null,"version":"0.1.0","log_path":"/l"}"#;

    #[test]
    fn a_torn_last_line_and_unknown_events_are_skipped() {
        let text = format!(
            "{START}\n{}\n{}",
            r#"{"ts":"2026-11-26T03:00:01.000Z","event":"from_the_future","x":1}"#,
            r#"{"ts":"2026-11-26T03:00:02.000Z","event":"step_sta"#
        );
        let log = parse(Path::new("l.jsonl"), text.as_bytes(), Detail::Full).unwrap();
        assert_eq!(log.records.len(), 1);
        assert!(log.torn);
        assert!(log.skipped_lines.is_empty());
    }

    #[test]
    fn the_writers_timestamps_are_read_fast_and_others_still_read() {
        let fast = timestamp_of(START).unwrap();
        assert_eq!(crate::event::timestamp(fast), "2026-11-26T03:00:00.000Z");
        let other = r#"{"event":"x","ts":"2026-11-26T04:00:00+01:00"}"#;
        assert_eq!(timestamp_of(other), Some(fast));
        assert_eq!(fast_timestamp("2026-13-26T03:00:00.000Z"), None);
        assert_eq!(fast_timestamp("2026-11-26T03:00:00.00xZ"), None);
    }

    #[test]
    fn lines_with_their_fields_in_any_order_are_read() {
        let writer_order = r#"{"ts":"2026-11-26T03:00:01.000Z","event":"milestone","name":"mitigated","step":"a"}"#;
        let other_order = r#"{"step":"a","name":"mitigated","ts":"2026-11-26T03:00:01.000Z","event":"milestone"}"#;
        for line in [writer_order, other_order] {
            let (_, e) = parse_line(line).unwrap().unwrap();
            assert!(
                matches!(&e, Event::Milestone(m) if m.name == "mitigated" && m.step == "a"),
                "{e:?}"
            );
        }
        let later = r#"{"ts":"2026-11-26T03:00:01.000Z","event":"later","x":1}"#;
        assert!(
            matches!(parse_line(later), Ok(None)),
            "unknown events are skipped"
        );
        let broken = r#"{"ts":"2026-11-26T03:00:01.000Z","event":"milestone"}"#;
        assert!(
            parse_line(broken).is_err(),
            "a known event without its fields is broken"
        );
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let text = START.replace(r#""schema_version":1"#, r#""schema_version":9"#);
        let err = parse(Path::new("l.jsonl"), text.as_bytes(), Detail::Full).unwrap_err();
        assert!(
            err.to_string().contains("newer runbook (log schema 9"),
            "{err}"
        );
    }
}
