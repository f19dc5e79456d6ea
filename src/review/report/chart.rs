//! The chart of the HTML report: the steps on a time axis, laid out in SVG user units.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::event::{Answer, Kind, StepStatus};
use crate::format::{delta, millis, step_status};
use crate::log::run::Run;

/// The steps on a time axis, laid out in SVG user units; the HTML template draws it.
#[derive(Debug, Serialize)]
pub(super) struct Chart {
    width: f64,
    height: f64,
    /// Where the plot area starts and ends (x) and where the axis is (y).
    plot_left: f64,
    plot_right: f64,
    plot_top: f64,
    axis_y: f64,
    rows: Vec<ChartRow>,
    ticks: Vec<Tick>,
    milestones: Vec<Marker>,
    legend: Vec<LegendItem>,
    legend_y: f64,
    /// The time the axis spans.
    span: String,
}

#[derive(Debug, Serialize)]
struct ChartRow {
    label: String,
    /// Full description for the tooltip: step, status, times.
    tooltip: String,
    label_y: f64,
    /// A light band behind every other row, for reading across.
    band: bool,
    band_y: f64,
    segments: Vec<Segment>,
}

#[derive(Debug, Serialize)]
struct Segment {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
    /// `auto`, `wait`, `failed`, `skipped`, `dry`, `doubt`: a CSS class.
    class: &'static str,
}

#[derive(Debug, Serialize)]
struct Tick {
    x: f64,
    label: String,
}

#[derive(Debug, Serialize)]
struct Marker {
    x: f64,
    label: String,
    /// SVG `text-anchor` of the label: `start`, `middle` or `end`.
    anchor: &'static str,
}

#[derive(Debug, Serialize)]
struct LegendItem {
    x: f64,
    text_x: f64,
    class: &'static str,
    label: &'static str,
}

const CHART_WIDTH: f64 = 960.0;
const LABEL_WIDTH: f64 = 190.0;
const PLOT_LEFT: f64 = 200.0;
const PLOT_RIGHT: f64 = 940.0;
const PLOT_TOP: f64 = 24.0;
const ROW_HEIGHT: f64 = 22.0;
const BAR_HEIGHT: f64 = 14.0;
const LABEL_CHARS: usize = 26;

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub(super) fn chart(run: &Run) -> Chart {
    let origin = run.started;
    let last = run
        .steps
        .iter()
        .filter_map(|s| s.finished.or(s.started))
        .chain(run.finished)
        .chain(run.milestones.iter().map(|m| m.at))
        .max()
        .unwrap_or(origin);
    let span_ms = (last - origin).num_milliseconds().max(1) as f64;
    let x = |t: DateTime<Utc>| {
        let ms = (t - origin).num_milliseconds().max(0) as f64;
        round1(PLOT_LEFT + (ms / span_ms).min(1.0) * (PLOT_RIGHT - PLOT_LEFT))
    };
    let mut rows = Vec::new();
    for (i, s) in run.steps.iter().enumerate() {
        let top = PLOT_TOP + i as f64 * ROW_HEIGHT;
        let bar_y = round1(top + (ROW_HEIGHT - BAR_HEIGHT) / 2.0);
        let mut segments = Vec::new();
        let mut seg = |from: DateTime<Utc>, to: DateTime<Utc>, class: &'static str| {
            let (x0, x1) = (x(from), x(to));
            segments.push(Segment {
                x: x0,
                y: bar_y,
                width: round1((x1 - x0).max(2.0)),
                height: BAR_HEIGHT,
                class,
            });
        };
        let start = s.started.unwrap_or(origin);
        let end = s.finished.unwrap_or(last);
        let ms = |v: u64| chrono::Duration::milliseconds(v as i64);
        let wait = s.response.answer.and(s.response.wait_ms).map(ms);
        match (s.kind, s.status) {
            (Kind::Manual, _) => seg(start, end, "wait"),
            (_, None) => seg(start, end, "doubt"),
            (_, Some(StepStatus::DryRun)) => seg(start, end, "dry"),
            (_, Some(StepStatus::Skipped | StepStatus::Aborted)) if s.attempts == 0 => {
                // Declined at its confirmation (the whole span is the wait), or skipped
                // without running (a zero-width mark).
                let class = if wait.is_some() { "wait" } else { "skipped" };
                seg(start, end, class);
            }
            (_, Some(status)) => {
                let class = match status {
                    StepStatus::Succeeded => "auto",
                    _ => "failed",
                };
                match (s.response.answer, wait) {
                    // A confirmation: the person was asked before the step started.
                    (Some(Answer::Yes | Answer::Done | Answer::Run), Some(w)) => {
                        if w > chrono::Duration::zero() {
                            seg(start - w, start, "wait");
                        }
                        seg(start, end, class);
                    }
                    // A failure prompt: the person was asked after the last attempt.
                    (Some(Answer::Skip | Answer::Abort), Some(w)) if end - w > start => {
                        seg(start, end - w, class);
                        seg(end - w, end, "wait");
                    }
                    _ => seg(start, end, class),
                }
            }
        }
        let label = s.label();
        let short_label = if label.chars().count() > LABEL_CHARS {
            let cut: String = label.chars().take(LABEL_CHARS - 1).collect();
            format!("{cut}…")
        } else {
            label.clone()
        };
        let mut tooltip = format!("{label}: {}", step_status(s.status));
        if let Some(d) = s.duration_ms {
            tooltip.push_str(&format!(", took {}", millis(d as i64)));
        }
        if let Some(w) = s.response.answer.and(s.response.wait_ms) {
            tooltip.push_str(&format!(", waited {} for an answer", millis(w as i64)));
        }
        tooltip.push_str(&format!(", started at +{}", delta(start - origin)));
        rows.push(ChartRow {
            label: short_label,
            tooltip,
            label_y: round1(top + ROW_HEIGHT / 2.0 + 4.0),
            band: i % 2 == 1,
            band_y: top,
            segments,
        });
    }
    let axis_y = PLOT_TOP + run.steps.len().max(1) as f64 * ROW_HEIGHT + 4.0;
    let step_ms = tick_step(span_ms as u64);
    let ticks = (0..)
        .map(|k| k * step_ms)
        .take_while(|t| *t as f64 <= span_ms)
        .map(|t| Tick {
            x: round1(PLOT_LEFT + t as f64 / span_ms * (PLOT_RIGHT - PLOT_LEFT)),
            label: if t == 0 {
                "0".to_string()
            } else {
                format!("+{}", millis(t as i64))
            },
        })
        .collect();
    // Milestones close together share one line and one label, which stays inside the plot.
    let mut milestones: Vec<Marker> = Vec::new();
    for m in &run.milestones {
        let at = x(m.at);
        match milestones.last_mut() {
            Some(last) if (at - last.x).abs() < 60.0 => {
                last.label.push_str(&format!(", {}", m.name));
            }
            _ => milestones.push(Marker {
                x: at,
                label: m.name.clone(),
                anchor: "middle",
            }),
        }
    }
    for m in &mut milestones {
        m.anchor = if m.x > PLOT_RIGHT - 60.0 {
            "end"
        } else if m.x < PLOT_LEFT + 60.0 {
            "start"
        } else {
            "middle"
        };
    }
    let legend_y = axis_y + 40.0;
    let legend = [
        ("auto", "automated work"),
        ("wait", "waiting on a person"),
        ("failed", "failed or timed out"),
        ("dry", "shown, not run (dry run)"),
        ("skipped", "skipped"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (class, label))| {
        let x = LABEL_WIDTH - 180.0 + i as f64 * 185.0;
        LegendItem {
            x,
            text_x: x + 20.0,
            class,
            label,
        }
    })
    .collect();
    Chart {
        width: CHART_WIDTH,
        height: legend_y + 16.0,
        plot_left: PLOT_LEFT,
        plot_right: PLOT_RIGHT,
        plot_top: PLOT_TOP,
        axis_y,
        rows,
        ticks,
        milestones,
        legend,
        legend_y,
        span: millis(span_ms as i64),
    }
}

/// A round tick interval giving at most eight ticks over `span_ms`.
fn tick_step(span_ms: u64) -> u64 {
    const STEPS: &[u64] = &[
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000,
        120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000,
        43_200_000, 86_400_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span_ms / s <= 8)
        .unwrap_or(span_ms.div_ceil(8).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks() {
        assert_eq!(tick_step(3_000), 500);
        assert_eq!(tick_step(22 * 60_000), 300_000);
        assert!(tick_step(u64::MAX) > 0);
    }
}
