//! `runbook stats`: the command, and the flags checked into a query.
//!
//! Figures over every run in the log directory, for the review after an incident and the
//! planning before the next one: how runs end and how long they take, the MTTR and the time
//! between incidents, which steps fail, retry or get skipped, where people wait (what to
//! automate next), how rehearsals compare with real runs, and what is left of an error
//! budget. [`figures`] computes them; [`render`] lays them out as text tables.
//!
//! Every figure is defined in `runbook stats --help` and in docs/stats.md. Percentiles are
//! nearest-rank: each one is a value some run really had, so it can be found in the logs.

mod engage;
mod figures;
mod fleet;
mod render;

use std::path::Path;

use chrono::{DateTime, Utc};

use super::load_all;
use crate::cli::StatsArgs;
use crate::commands::{print, print_json};
use crate::error::{Error, exit};

/// The flags, checked: which runs count, and the objective to measure them against.
struct Query {
    runbook: Option<String>,
    /// Only runs started at or after this.
    since: Option<DateTime<Utc>>,
    slo: Option<Slo>,
}

#[derive(Clone, Copy)]
struct Slo {
    percent: f64,
    window: chrono::Duration,
}

impl Query {
    fn new(args: &StatsArgs, now: DateTime<Utc>) -> Result<Query, Error> {
        let since = match args.since.as_deref() {
            Some(s) => {
                let d = duration("since", s)?;
                Some(now.checked_sub_signed(d).ok_or_else(|| Error::Flag {
                    flag: "since",
                    value: s.to_string(),
                    problem: "too long ago".into(),
                })?)
            }
            None => None,
        };
        let slo = match (args.slo.as_deref(), args.window.as_deref()) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::FlagNeeds {
                    flag: "slo",
                    needs: "window",
                    hint: "the period the objective covers, such as --window 30d",
                });
            }
            (None, Some(_)) => {
                return Err(Error::FlagNeeds {
                    flag: "window",
                    needs: "slo",
                    hint: "the objective in percent, such as --slo 99.9",
                });
            }
            (Some(p), Some(w)) => {
                let percent = p
                    .trim()
                    .trim_end_matches('%')
                    .parse::<f64>()
                    .ok()
                    .filter(|x| *x > 0.0 && *x < 100.0)
                    .ok_or_else(|| Error::Flag {
                        flag: "slo",
                        value: p.to_string(),
                        problem: "not a percentage above 0 and below 100, such as 99.9".into(),
                    })?;
                let window = duration("window", w)?;
                if window <= chrono::Duration::zero() {
                    return Err(Error::Flag {
                        flag: "window",
                        value: w.to_string(),
                        problem: "an empty period; give one such as 30d".into(),
                    });
                }
                Some(Slo { percent, window })
            }
        };
        Ok(Query {
            runbook: args.runbook.clone(),
            since,
            slo,
        })
    }
}

/// A DURATION flag (humantime: `7d`, `12h 30m`).
fn duration(flag: &'static str, s: &str) -> Result<chrono::Duration, Error> {
    let bad = |problem: String| Error::Flag {
        flag,
        value: s.to_string(),
        problem,
    };
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| bad(format!("not a duration such as 7d or 12h: {e}")))?;
    chrono::Duration::from_std(d).map_err(|_| bad("too long".into()))
}

pub(crate) fn stats(log_dir: &Path, args: &StatsArgs) -> Result<u8, Error> {
    let now = Utc::now();
    let query = Query::new(args, now)?;
    let runs = load_all(log_dir)?;
    let stats = figures::compute(&runs, &query, log_dir, now);
    // The process ends next: freeing ten thousand runs one string at a time would cost
    // more than computing their figures.
    std::mem::forget(runs);
    if args.json {
        print_json(&stats)?;
    } else {
        print(&render::render(&stats))?;
    }
    Ok(exit::OK)
}
