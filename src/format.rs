//! How values read for people: durations, times, words, colour, tables, the percentile, and
//! [`visible`], the one gate that text from outside passes before it reaches a terminal.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::event::{Kind, Mode, StepStatus};

const DAY_MS: u64 = 86_400_000;

// ── Durations ─────────────────────────────────────────────────────────────────────────────

/// A duration as the terminal shows it: `850ms`, `4.2s`, `3m 12s`, `1h 4m`.
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m {}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}h {}m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// Milliseconds as the review shows them: as [`duration`] below a day, `3d 4h` from a day
/// on, and `-` in front when negative (a detection before the run started).
pub(crate) fn millis(ms: i64) -> String {
    let abs = ms.unsigned_abs();
    let body = if abs >= DAY_MS {
        match (abs / DAY_MS, (abs % DAY_MS) / 3_600_000) {
            (d, 0) => format!("{d}d"),
            (d, h) => format!("{d}d {h}h"),
        }
    } else {
        duration(Duration::from_millis(abs))
    };
    if ms < 0 { format!("-{body}") } else { body }
}

/// [`millis`] of a span between two times.
pub(crate) fn delta(d: chrono::TimeDelta) -> String {
    millis(d.num_milliseconds())
}

/// [`millis`], or `-` for a figure there is no value for.
pub(crate) fn millis_or_dash(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".into(), millis)
}

/// A duration exactly as a runbook file would give it (`1h 30m`, `10ms`), for settings.
pub(crate) fn setting(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

// ── Times (always UTC) ────────────────────────────────────────────────────────────────────

/// `2026-11-26 03:12:00 UTC`: a moment in prose and reports.
pub(crate) fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `2026-11-26 03:12:00`: a moment in a column whose header says UTC, or beside a clock.
pub(crate) fn datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `2026-11-26 03:12 UTC`: a moment to the minute, for figures over many runs.
pub(crate) fn minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `03:12:00`: the clock time, when the day is already said.
pub(crate) fn clock(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

/// `2026-11-26`.
pub(crate) fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

// ── Words ─────────────────────────────────────────────────────────────────────────────────

/// How a step ended, in words: `timed out`, `dry run`; `in doubt` when it has no recorded end.
pub(crate) fn step_status(status: Option<StepStatus>) -> &'static str {
    match status {
        None => "in doubt",
        Some(StepStatus::TimedOut) => "timed out",
        Some(StepStatus::DryRun) => "dry run",
        Some(s) => s.as_str(),
    }
}

/// `live` or `dry-run`, as the flag is spelt.
pub(crate) fn mode(mode: Mode) -> &'static str {
    match mode {
        Mode::Live => "live",
        Mode::DryRun => "dry-run",
    }
}

/// `auto` or `manual`.
pub(crate) fn kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Auto => "auto",
        Kind::Manual => "manual",
    }
}

// ── Colour ────────────────────────────────────────────────────────────────────────────────

/// What a piece of terminal text says, which decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Bold: what a line is about.
    Strong,
    /// Bold red: errors and failures.
    Error,
    /// Bold blue: the frame around a quoted line (`-->`, `|`, `= help:`).
    Frame,
    /// Bold green: a run that succeeded, a milestone.
    Success,
    /// Green: a step that succeeded.
    Good,
    /// Red: a step that failed.
    Bad,
    /// Yellow: skipped, a warning.
    Caution,
    /// Cyan: a rehearsal's "dry run".
    Rehearsal,
}

/// `text` in its tone's colour when `colour` is on (a terminal, `NO_COLOR` unset or
/// empty), through `console`; plain otherwise.
pub(crate) fn paint(text: &str, tone: Tone, colour: bool) -> String {
    let styled = console::style(text).force_styling(colour);
    match tone {
        Tone::Strong => styled.bold(),
        Tone::Error => styled.bold().red(),
        Tone::Frame => styled.bold().blue(),
        Tone::Success => styled.bold().green(),
        Tone::Good => styled.green(),
        Tone::Bad => styled.red(),
        Tone::Caution => styled.yellow(),
        Tone::Rehearsal => styled.cyan(),
    }
    .to_string()
}

// ── Text from outside ─────────────────────────────────────────────────────────────────

/// Where text that [`visible`] cleans is going, which decides how a character that could
/// drive the terminal is written instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shown {
    /// Running text (notes, instructions, output tails): newlines and tabs stay.
    Text,
    /// One line (a table cell, a name): newlines and tabs are written out too.
    Line,
    /// Inside JSON that serde already escaped: what it lets through raw (DEL, C1, bidi
    /// overrides) becomes a `\u00XX` escape, so the JSON stays valid.
    Json,
}

/// Whether `c` can do something to a terminal other than show a glyph: C0 controls (ESC,
/// BEL, backspace, carriage return...), DEL, C1 controls (CSI, OSC as single characters),
/// and the bidirectional overrides that reorder what is read on screen. Newline and tab
/// are controls too; [`visible`] keeps them in running text.
pub(crate) fn drives_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text from a runbook, a log, an operator or a step, as the tool itself may print it: every
/// character that [`drives_terminal`] is written visibly (`\u{1b}` for ESC, `\r`, `\u{9b}`)
/// instead of being sent, so stored text can never move the cursor, retitle the window,
/// write the clipboard or clear the screen. Step output passed through live is not text the
/// tool prints and does not come here. Borrowed, and cheap, when there is nothing to change.
pub(crate) fn visible(text: &str, shown: Shown) -> Cow<'_, str> {
    // In JSON, a raw newline or tab is layout: serde escapes those inside strings.
    let kept = |c: char| shown != Shown::Line && (c == '\n' || c == '\t');
    let bad = |c: char| drives_terminal(c) && !kept(c);
    let Some(first) = text.find(bad) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if !bad(c) {
            out.push(c);
        } else if shown == Shown::Json {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.extend(c.escape_debug());
        }
    }
    Cow::Owned(out)
}

// ── Tables ────────────────────────────────────────────────────────────────────────────────

/// One row of a table from string slices (typically its header).
pub(crate) fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Renders rows (the first is the header) with columns padded to their widest cell; the
/// last column is not padded, so lines carry no trailing spaces. Cells are shown as
/// [`visible`] single lines.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    // A cell is one line whatever it holds.
    let rows: Vec<Vec<Cow<str>>> = rows
        .iter()
        .map(|r| r.iter().map(|c| visible(c, Shown::Line)).collect())
        .collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// [`table`], indented two spaces under a heading.
pub(crate) fn indented_table(rows: &[Vec<String>]) -> String {
    table(rows).lines().map(|l| format!("  {l}\n")).collect()
}

// ── Figures ───────────────────────────────────────────────────────────────────────────────

/// The nearest-rank percentile of sorted values: the smallest value with at least `p`% of
/// the values at or below it (rank ⌈p/100 × n⌉, at least 1), so every percentile is a
/// value some run really had. The median is `percentile(sorted, 50)`.
pub(crate) fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        let d = |ms| duration(Duration::from_millis(ms));
        assert_eq!(d(850), "850ms");
        assert_eq!(d(4_200), "4.2s");
        assert_eq!(d(192_000), "3m 12s");
        assert_eq!(d(3_840_000), "1h 4m");
        assert_eq!(d(2 * DAY_MS), "48h 0m", "the terminal counts hours");
        assert_eq!(millis(2_592_000), "43m 12s");
        assert_eq!(millis(-3_108_000), "-51m 48s");
        assert_eq!(millis(3 * 86_400_000 + 43_200_000), "3d 12h");
        assert_eq!(millis(30 * 86_400_000), "30d");
        assert_eq!(millis_or_dash(None), "-");
        assert_eq!(delta(chrono::TimeDelta::milliseconds(-850)), "-850ms");
        assert_eq!(setting(Duration::from_secs(5400)), "1h 30m");
    }

    #[test]
    fn times_are_utc() {
        let t: DateTime<Utc> = "2026-11-26T03:12:09.5Z".parse().unwrap();
        assert_eq!(stamp(t), "2026-11-26 03:12:09 UTC");
        assert_eq!(datetime(t), "2026-11-26 03:12:09");
        assert_eq!(minute(t), "2026-11-26 03:12 UTC");
        assert_eq!(clock(t), "03:12:09");
        assert_eq!(day(t), "2026-11-26");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[1, 2], 50), Some(1));
        assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
        assert_eq!(percentile(&[1, 3, 5], 50), Some(3));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn tables_align_without_trailing_spaces() {
        let rows = vec![row(&["A", "LONG", "C"]), row(&["wide cell", "x", ""])];
        assert_eq!(table(&rows), "A          LONG  C\nwide cell  x\n");
        assert_eq!(
            indented_table(&rows),
            "  A          LONG  C\n  wide cell  x\n"
        );
    }

    #[test]
    fn text_from_outside_cannot_drive_the_terminal() {
        let title = "a\u{1b}]0;owned\u{7}b\r\nc\td\u{9b}2J\u{202e}";
        assert_eq!(
            visible(title, Shown::Text),
            "a\\u{1b}]0;owned\\u{7}b\\r\nc\td\\u{9b}2J\\u{202e}"
        );
        assert_eq!(visible("x\ny\tz", Shown::Line), "x\\ny\\tz");
        assert_eq!(
            visible("[\n\"\u{7f}\u{85}\"", Shown::Json),
            "[\n\"\\u007f\\u0085\""
        );
        assert!(matches!(visible("plain €", Shown::Line), Cow::Borrowed(_)));
        let rows = vec![row(&["A", "B"]), row(&["x\u{1b}[2J\ny", "z"])];
        assert_eq!(table(&rows), "A              B\nx\\u{1b}[2J\\ny  z\n");
    }

    #[test]
    fn paint_is_plain_without_colour() {
        assert_eq!(paint("ok", Tone::Strong, false), "ok");
        let red = paint("error", Tone::Error, true);
        assert!(red.contains("error") && red.starts_with('\x1b'), "{red:?}");
    }
}
