//! The figures of `runbook stats` as text: a heading and an aligned table per section.

use super::figures::{CAVEAT, ENOUGH_TO_COMPARE, ErrorBudget, Stats};
use crate::event::Mode;
use crate::format::{self, indented_table, millis, millis_or_dash, row};

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

pub(super) fn render(s: &Stats) -> String {
    let mut scope = String::new();
    if let Some(n) = &s.runbook {
        scope.push_str(&format!(" of {n}"));
    }
    if let Some(t) = s.since {
        scope.push_str(&format!(" started since {}", format::minute(t)));
    }
    let mut out = String::new();
    if s.runs.total == 0 {
        out.push_str(&format!("no runs{scope} in {}\n", s.log_dir));
        if let Some(b) = &s.error_budget {
            out.push('\n');
            render_budget(&mut out, b);
        }
        return out;
    }
    out.push_str(&format!(
        "{} run{}{scope} in {}\n",
        s.runs.total,
        if s.runs.total == 1 { "" } else { "s" },
        s.log_dir
    ));

    out.push_str("\nRuns by mode and outcome\n");
    let mut rows = vec![row(&[
        "MODE",
        "RUNS",
        "SUCCEEDED",
        "FAILED",
        "ABORTED",
        "INTERRUPTED",
        "UNFINISHED",
    ])];
    for (mode, o) in [(Mode::Live, &s.runs.live), (Mode::DryRun, &s.runs.dry_run)] {
        rows.push(vec![
            format::mode(mode).into(),
            o.total.to_string(),
            o.succeeded.to_string(),
            o.failed.to_string(),
            o.aborted.to_string(),
            o.interrupted.to_string(),
            o.unfinished.to_string(),
        ]);
    }
    out.push_str(&indented_table(&rows));

    let d = &s.live_duration;
    out.push_str(&format!(
        "\nLive run duration ({} finished live run{})\n",
        d.count,
        if d.count == 1 { "" } else { "s" }
    ));
    if d.count == 0 {
        out.push_str("  no finished live runs\n");
    } else {
        out.push_str(&format!(
            "  p50 {}  p90 {}  max {}  mean {}\n",
            millis_or_dash(d.p50_ms),
            millis_or_dash(d.p90_ms),
            millis_or_dash(d.max_ms),
            millis_or_dash(d.mean_ms)
        ));
        out.push_str(&too_few(d.count, "run", "their duration"));
    }

    out.push_str("\nTime to engage and to mitigate (live runs with --detected-at)\n");
    if s.time_to_engage.count == 0 {
        out.push_str("  no live run was given --detected-at\n");
    } else {
        let mut rows = vec![row(&["", "RUNS", "P50", "P90", "MEAN", "MAX"])];
        for (name, m) in [
            ("time to engage", &s.time_to_engage),
            ("time to mitigate (MTTR)", &s.time_to_mitigate),
        ] {
            rows.push(vec![
                name.into(),
                m.count.to_string(),
                millis_or_dash(m.p50_ms),
                millis_or_dash(m.p90_ms),
                millis_or_dash(m.mean_ms),
                millis_or_dash(m.max_ms),
            ]);
        }
        out.push_str(&indented_table(&rows));
        out.push_str(&too_few(s.time_to_mitigate.count, "incident", "MTTR"));
    }

    out.push_str("\nTime between incidents (consecutive detected_at, per runbook)\n");
    if s.between_incidents.is_empty() {
        out.push_str("  no runbook has handled two incidents with --detected-at yet\n");
    } else {
        let mut rows = vec![row(&[
            "RUNBOOK",
            "INCIDENTS",
            "MEAN (MTBF)",
            "P50",
            "SHORTEST",
            "LAST DETECTED",
        ])];
        for b in &s.between_incidents {
            rows.push(vec![
                b.runbook.clone(),
                b.incidents.to_string(),
                millis_or_dash(b.gaps.mean_ms),
                millis_or_dash(b.gaps.p50_ms),
                millis_or_dash(b.gaps.min_ms),
                format::minute(b.last_detected_at),
            ]);
        }
        out.push_str(&indented_table(&rows));
    }
    if !s.between_incidents_by_service.is_empty() {
        out.push_str("\n  Per service (every runbook of the service):\n");
        let mut rows = vec![row(&[
            "SERVICE",
            "INCIDENTS",
            "MEAN (MTBF)",
            "P50",
            "SHORTEST",
            "LAST DETECTED",
            "RUNBOOKS",
        ])];
        for b in &s.between_incidents_by_service {
            rows.push(vec![
                b.service.clone(),
                b.incidents.to_string(),
                millis_or_dash(b.gaps.mean_ms),
                millis_or_dash(b.gaps.p50_ms),
                millis_or_dash(b.gaps.min_ms),
                format::minute(b.last_detected_at),
                b.runbooks.join(", "),
            ]);
        }
        out.push_str(&indented_table(&rows));
    }

    for (what, header, groups) in [
        ("runbook", "RUNBOOK", &s.engage_by_runbook),
        ("service", "SERVICE", &s.engage_by_service),
    ] {
        if groups.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\nTime to engage by {what} (alert start or --detected-at to run start)\n"
        ));
        let mut rows = vec![row(&[header, "RUNS", "FROM ALERTS", "P50", "P90", "MAX"])];
        for g in groups {
            rows.push(vec![
                g.name.clone(),
                g.time.count.to_string(),
                g.from_alerts.to_string(),
                millis_or_dash(g.time.p50_ms),
                millis_or_dash(g.time.p90_ms),
                millis_or_dash(g.time.max_ms),
            ]);
        }
        out.push_str(&indented_table(&rows));
    }

    out.push_str("\nSteps (live runs)\n");
    if s.steps.is_empty() {
        out.push_str("  no live run recorded a finished step\n");
    } else {
        let mut rows = vec![row(&[
            "RUNBOOK", "STEP", "KIND", "RUNS", "P50", "P90", "FAILED", "RETRIES", "SKIPPED",
        ])];
        for st in &s.steps {
            rows.push(vec![
                st.runbook.clone(),
                st.step.clone(),
                format::kind(st.kind).into(),
                st.runs.to_string(),
                millis_or_dash(st.p50_ms),
                millis_or_dash(st.p90_ms),
                pct(st.failure_rate),
                st.retries.to_string(),
                pct(st.skip_rate),
            ]);
        }
        out.push_str(&indented_table(&rows));
    }

    super::fleet::render(&mut out, &s.fleet_steps);

    let h = &s.human_time;
    out.push_str("\nHuman time (live runs)\n");
    match h.share {
        Some(share) => out.push_str(&format!(
            "  {} of live run time was spent waiting for people: {} of {} over {} finished run{}\n",
            pct(share),
            millis(h.wait_ms as i64),
            millis(h.run_ms as i64),
            h.runs,
            if h.runs == 1 { "" } else { "s" }
        )),
        None => out.push_str("  no finished live runs\n"),
    }
    if h.manual_steps.is_empty() {
        out.push_str("  no manual step was answered in a live run\n");
    } else {
        out.push_str("  Manual steps by median wait (the automation backlog):\n");
        let mut rows = vec![row(&[
            "RUNBOOK", "STEP", "WAITS", "P50", "P90", "MAX", "TOTAL",
        ])];
        for m in &h.manual_steps {
            rows.push(vec![
                m.runbook.clone(),
                m.step.clone(),
                m.waits.count.to_string(),
                millis_or_dash(m.waits.p50_ms),
                millis_or_dash(m.waits.p90_ms),
                millis_or_dash(m.waits.max_ms),
                millis(m.total_wait_ms as i64),
            ]);
        }
        out.push_str(&indented_table(&rows));
    }

    out.push_str("\nRehearsal against reality (succeeded runs, median duration)\n");
    if s.rehearsal.is_empty() {
        out.push_str("  no succeeded runs\n");
    } else {
        let mut rows = vec![row(&[
            "RUNBOOK",
            "DRY RUNS",
            "DRY-RUN P50",
            "LIVE RUNS",
            "LIVE P50",
        ])];
        for r in &s.rehearsal {
            rows.push(vec![
                r.runbook.clone(),
                r.dry_runs.to_string(),
                millis_or_dash(r.dry_run_p50_ms),
                r.live_runs.to_string(),
                millis_or_dash(r.live_p50_ms),
            ]);
        }
        out.push_str(&indented_table(&rows));
    }

    if let Some(b) = &s.error_budget {
        out.push('\n');
        render_budget(&mut out, b);
    }
    out
}

/// A note under a figure that rests on fewer values than can show a change.
fn too_few(count: usize, what: &str, figure: &str) -> String {
    if count == 0 || count >= ENOUGH_TO_COMPARE {
        return String::new();
    }
    format!(
        "  note: {count} {what}{} {} too few to tell a 10% change in {figure} from noise; \
         about {ENOUGH_TO_COMPARE} are needed\n",
        if count == 1 { "" } else { "s" },
        if count == 1 { "is" } else { "are" },
    )
}

fn render_budget(out: &mut String, b: &ErrorBudget) {
    out.push_str(&format!(
        "Error budget (SLO {}% over {}, since {})\n",
        b.slo_percent,
        millis(b.window_ms),
        format::minute(b.window_start)
    ));
    out.push_str(&format!("  allowed    {}\n", millis(b.allowed_ms)));
    out.push_str(&format!(
        "  consumed   {} ({:.1}%) by {} live run{}\n",
        millis(b.consumed_ms),
        b.consumed_percent,
        b.runs,
        if b.runs == 1 { "" } else { "s" }
    ));
    out.push_str(&format!(
        "  remaining  {}{}\n",
        millis(b.remaining_ms),
        if b.remaining_ms < 0 {
            " (overspent)"
        } else {
            ""
        }
    ));
    // The caveat, wrapped to the width of the tables above.
    let mut line = String::from("  note:");
    for word in CAVEAT.split_whitespace() {
        if line.len() + 1 + word.len() > 90 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("       ");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}
