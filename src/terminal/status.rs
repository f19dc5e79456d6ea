//! The status line at the bottom of a run on a terminal: the incident clock (time since
//! detection), the run's elapsed time, what waits on a person, what runs, and the next
//! deadline. [`Status`] is what the display knows from the run's events; [`Status::line`]
//! lays it out for a width, a plain function of that state and the time.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// What the status line is drawn from.
#[derive(Debug, Default)]
pub(crate) struct Status {
    /// When this process saw the run start (or resume).
    pub(crate) since: Option<Instant>,
    /// When the incident was detected (`--detected-at`).
    pub(crate) detected_at: Option<DateTime<Utc>>,
    /// When the run's own `timeout` runs out.
    pub(crate) run_deadline: Option<Instant>,
    /// Automated steps running now, in the order they started.
    pub(crate) running: Vec<Running>,
    /// The question on screen: what it is about, and since when.
    pub(crate) waiting: Option<(String, Instant)>,
    /// Lines of output held back while a question is on screen.
    pub(crate) held_lines: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Running {
    pub(crate) step: String,
    pub(crate) since: Instant,
    /// When this attempt times out.
    pub(crate) deadline: Option<Instant>,
}

/// A clock reading: `42s`, `3m 07s`, `2h 05m`.
pub(crate) fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl Status {
    pub(crate) fn start_step(&mut self, step: &str, now: Instant, timeout: Option<Duration>) {
        self.running.retain(|r| r.step != step);
        self.running.push(Running {
            step: step.to_string(),
            since: now,
            deadline: timeout.map(|t| now + t),
        });
    }

    pub(crate) fn end_step(&mut self, step: &str) {
        self.running.retain(|r| r.step != step);
    }

    /// The earliest deadline: a step's timeout, or the run's.
    fn next_deadline(&self, now: Instant) -> Option<String> {
        let steps = self
            .running
            .iter()
            .filter_map(|r| r.deadline.map(|d| (d, format!("{} times out", r.step))));
        let run = self
            .run_deadline
            .map(|d| (d, "the run times out".to_string()));
        let (at, what) = steps.chain(run).min_by_key(|(d, _)| *d)?;
        Some(format!(
            "{what} in {}",
            clock(at.saturating_duration_since(now))
        ))
    }

    /// The line for a terminal `width` columns wide: the parts that fit, the most
    /// important kept (the clocks, then what runs, the next deadline, the output held, and
    /// how long the question on screen has waited).
    pub(crate) fn line(&self, now: Instant, wall: DateTime<Utc>, width: usize) -> String {
        let since = |t: Instant| clock(now.saturating_duration_since(t));
        // (rank: the higher, the sooner it goes; text)
        let mut parts: Vec<(u8, String)> = Vec::new();
        if let Some(d) = self.detected_at {
            let ago = wall.signed_duration_since(d).to_std().unwrap_or_default();
            parts.push((0, format!("incident {}", clock(ago))));
        }
        if let Some(s) = self.since {
            parts.push((0, format!("run {}", since(s))));
        }
        let n = self.running.len();
        if n > 0 {
            let each: Vec<String> = self
                .running
                .iter()
                .map(|r| format!("{} {}", r.step, since(r.since)))
                .collect();
            parts.push((1, format!("running {}", each.join(", "))));
        }
        if let Some(d) = self.next_deadline(now) {
            parts.push((2, d));
        }
        if self.held_lines > 0 {
            let h = self.held_lines;
            parts.push((
                3,
                format!("{h} line{} of output held", if h == 1 { "" } else { "s" }),
            ));
        }
        if let Some((what, t)) = &self.waiting {
            parts.push((4, format!("waiting on you: {what} {}", since(*t))));
        }
        let join = |parts: &[(u8, String)]| {
            parts
                .iter()
                .map(|(_, p)| p.as_str())
                .collect::<Vec<_>>()
                .join(" · ")
        };
        let room = width.saturating_sub(2);
        let fits = |s: &str| console::measure_text_width(s) <= room;
        let mut text = join(&parts);
        // Too wide: what runs becomes a count, then the least important parts go.
        if !fits(&text)
            && let Some(p) = parts.iter_mut().find(|(rank, _)| *rank == 1)
        {
            p.1 = format!("running {n} step{}", if n == 1 { "" } else { "s" });
            text = join(&parts);
        }
        for rank in [4, 3, 2, 1] {
            if fits(&text) {
                break;
            }
            parts.retain(|(r, _)| *r != rank);
            text = join(&parts);
        }
        console::truncate_str(&text, room, "…").into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ago(now: Instant, secs: u64) -> Instant {
        now.checked_sub(Duration::from_secs(secs)).unwrap()
    }

    #[test]
    fn clocks_read_at_a_glance() {
        assert_eq!(clock(Duration::from_secs(42)), "42s");
        assert_eq!(clock(Duration::from_secs(187)), "3m 07s");
        assert_eq!(clock(Duration::from_secs(7500)), "2h 05m");
    }

    #[test]
    fn the_line_has_the_clocks_what_runs_waits_and_the_next_deadline() {
        let now = Instant::now();
        let wall: DateTime<Utc> = "2026-11-28T03:30:00Z".parse().unwrap();
        let mut s = Status {
            since: Some(ago(now, 130)),
            detected_at: Some("2026-11-28T03:15:57Z".parse().unwrap()),
            run_deadline: Some(now + Duration::from_secs(600)),
            ..Status::default()
        };
        s.running.push(Running {
            step: "check-lag".into(),
            since: ago(now, 12),
            deadline: Some(now + Duration::from_secs(18)),
        });
        s.running.push(Running {
            step: "drain".into(),
            since: ago(now, 3),
            deadline: None,
        });
        s.waiting = Some(("fence".into(), ago(now, 62)));
        s.held_lines = 3;
        assert_eq!(
            s.line(now, wall, 200),
            "incident 14m 03s · run 2m 10s · running check-lag 12s, drain 3s · check-lag times out in 18s · 3 lines of output held · waiting on you: fence 1m 02s"
        );
        // Narrower: what runs is counted, then the least important parts go.
        assert_eq!(
            s.line(now, wall, 120),
            "incident 14m 03s · run 2m 10s · running 2 steps · check-lag times out in 18s · 3 lines of output held"
        );
        assert_eq!(
            s.line(now, wall, 80),
            "incident 14m 03s · run 2m 10s · running 2 steps · check-lag times out in 18s"
        );
        assert_eq!(
            s.line(now, wall, 60),
            "incident 14m 03s · run 2m 10s · running 2 steps"
        );
        assert_eq!(s.line(now, wall, 20).chars().count(), 18);
        s.end_step("check-lag");
        assert!(
            s.line(now, wall, 200)
                .contains(" · the run times out in 10m 00s · ")
        );
    }
}
