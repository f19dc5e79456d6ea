//! The live part of a run on a terminal (indicatif): a spinner per running step, with its
//! attempt, its time against its timeout and the line it is writing, above a status line.
//! Finished things are printed above them. Everything here is drawn on stderr.

use std::collections::HashMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::board::{self, Shared};
use super::status::clock;

/// How often the spinners and the status line are redrawn.
const HZ: u8 = 10;

pub(crate) struct Spinners {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    status: ProgressBar,
}

impl Spinners {
    pub(crate) fn new(board: Shared) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(HZ));
        let status = multi.add(ProgressBar::new_spinner());
        let style = ProgressStyle::with_template("  {status}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key(
                "status",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let line = board::lock(&board).status.line(
                        std::time::Instant::now(),
                        chrono::Utc::now(),
                        super::wrap::width(),
                    );
                    let _ = w.write_str(&line);
                },
            );
        status.set_style(style);
        status.enable_steady_tick(Duration::from_millis(500));
        Spinners {
            multi,
            bars: HashMap::new(),
            status,
        }
    }

    /// A spinner for `step` (or a new attempt on its spinner): `flaky  attempt 2 of 3,
    /// 12s of 30s`.
    pub(crate) fn start(&mut self, step: &str, what: String, timeout: Option<Duration>) {
        let bar = match self.bars.get(step) {
            Some(bar) => bar.clone(),
            None => {
                let bar = self
                    .multi
                    .insert_before(&self.status, ProgressBar::new_spinner());
                self.bars.insert(step.to_string(), bar.clone());
                bar
            }
        };
        let style = ProgressStyle::with_template("  {spinner} {prefix} {clock}{msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key(
                "clock",
                move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let took = clock(state.elapsed());
                    let _ = match timeout {
                        Some(t) => write!(w, "{took} of {}", clock(t)),
                        None => w.write_str(&took),
                    };
                },
            );
        bar.set_style(style);
        bar.set_prefix(what);
        bar.set_message("");
        bar.reset_elapsed();
        bar.enable_steady_tick(Duration::from_millis(100));
    }

    /// The line `step` is writing, not yet ended: shown on its spinner.
    pub(crate) fn writing(&self, step: &str, partial: &str) {
        if let Some(bar) = self.bars.get(step) {
            let shown = if partial.is_empty() {
                String::new()
            } else {
                let room = super::wrap::width().saturating_sub(40).max(10);
                format!("  │ {}", console::truncate_str(partial, room, "…"))
            };
            bar.set_message(shown);
        }
    }

    /// What the spinner of `step` says before its clock (a fleet step's host counts).
    pub(crate) fn relabel(&self, step: &str, what: String) {
        if let Some(bar) = self.bars.get(step) {
            bar.set_prefix(what);
        }
    }

    pub(crate) fn end(&mut self, step: &str) {
        if let Some(bar) = self.bars.remove(step) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    /// A line above the spinners.
    pub(crate) fn println(&self, text: &str) {
        let _ = self.multi.println(text);
    }

    /// Runs `f` with the spinners off the screen (for output written as it comes).
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    /// Hides everything while a prompt is on screen.
    pub(crate) fn hide(&self) {
        let _ = self.multi.clear();
        self.multi.set_draw_target(ProgressDrawTarget::hidden());
    }

    pub(crate) fn show(&self) {
        self.multi
            .set_draw_target(ProgressDrawTarget::stderr_with_hz(HZ));
    }

    /// The run is over: every spinner and the status line go.
    pub(crate) fn finish(mut self) {
        for (_, bar) in self.bars.drain() {
            bar.finish_and_clear();
        }
        self.status.finish_and_clear();
        let _ = self.multi.clear();
    }
}
