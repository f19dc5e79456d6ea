//! The command line, as clap sees it: flags and arguments only. [`crate::config`] turns it
//! into what the commands use.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::event::RollbackMode;

/// Incident-response runbooks as TOML step graphs: validate them, show them, graph them.
#[derive(Debug, Parser)]
#[command(
    name = "runbook",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Directory holding the runbooks [default: $RUNBOOK_DIR, else ./runbooks]
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Directory of execution logs [default: $RUNBOOK_LOG_DIR, else
    /// $XDG_STATE_HOME/runbook/runs, else ~/.local/state/runbook/runs]
    #[arg(long, global = true, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,

    /// Plain status lines instead of the live display (no spinners)
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the runbooks in the directory: name, title, steps, manual steps, owner
    List(ListArgs),
    /// Show one runbook: params, and its steps in run order
    Show(ShowArgs),
    /// Validate runbooks and report every error (exit 0 when all are valid, 2 otherwise)
    Check(CheckArgs),
    /// Run a runbook: automated steps, prompts for manual ones, every timing logged
    #[command(after_long_help = EXEC_HELP)]
    Exec(ExecArgs),
    /// Continue a run that did not finish (a crash, a lost terminal), in the same log
    Resume(ResumeArgs),
    /// Past runs: list them, or show one as a timeline
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// A postmortem draft of one run: summary, detection, timeline, resolution, action items
    #[command(after_long_help = REPORT_HELP)]
    Report(ReportArgs),
    /// Figures over every run: outcomes, durations, MTTR, steps, human time, error budget
    #[command(after_long_help = STATS_HELP)]
    Stats(StatsArgs),
    /// Draw a runbook's step graph as Mermaid or Graphviz dot
    Graph(GraphArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Runbook name (in the runbooks directory) or path to a .toml file
    pub name: String,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Runbook names or .toml paths [default: every runbook in the directory]
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Runbook name (in the runbooks directory) or path to a .toml file
    pub name: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

/// The flags of a run, shared by `exec` and `resume`. A resumed run keeps the options it
/// was started with unless they are given again.
#[derive(Debug, Args)]
pub struct RunFlags {
    /// Set a param (repeatable); checked against its pattern before anything runs
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Answer `confirm` prompts with yes (and, in a dry run, manual steps with done)
    #[arg(long, short)]
    pub yes: bool,
    /// Most automated steps running at once [default: 4]
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: Option<u16>,
    /// Who is running this [default: the OS user]
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// Undo succeeded steps after a failed or aborted run [default: ask on a terminal, else never]
    #[arg(long, value_enum, value_name = "MODE")]
    pub rollback: Option<RollbackMode>,
    /// Output recorded in the log per step; the rest is counted, not kept [default: 1MiB]
    #[arg(long, value_name = "SIZE")]
    pub log_output_cap: Option<String>,
    /// ssh client configuration for steps with `hosts` (each ssh call gets `-F FILE`)
    #[arg(long, value_name = "FILE", env = "RUNBOOK_SSH_CONFIG")]
    pub ssh_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Runbook name (in the runbooks directory) or path to a .toml file
    pub name: String,
    /// Rehearse: run only `readonly` steps, show every other command, time the drill
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub flags: RunFlags,
    /// Incident id recorded in the log (for example INC-1234)
    #[arg(long, value_name = "ID")]
    pub incident: Option<String>,
    /// When the incident was detected: RFC 3339, or relative such as "15m ago"
    #[arg(long, value_name = "TIME")]
    pub detected_at: Option<String>,
    /// Start at this step: its ancestors are recorded as done before the run
    #[arg(long, value_name = "STEP")]
    pub start_at: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Run id (a unique prefix is enough), or `latest`
    pub run: String,
    /// Resume even though the runbook file changed since the run started
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub flags: RunFlags,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run id (a unique prefix is enough), or `latest`
    pub run: String,
    /// Output format [default: markdown; html for a --template named *.html*]
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// Render with this Handlebars template instead (same context as --format json)
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// Write the report to this file instead of stdout
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only runs of this runbook
    #[arg(long, value_name = "NAME")]
    pub runbook: Option<String>,
    /// Only runs started within this long ago, such as 7d or 12h
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Print one JSON object with every figure (durations in ms) instead of tables
    #[arg(long)]
    pub json: bool,
    /// Add the error budget of this objective, in percent (such as 99.9); needs --window
    #[arg(long, value_name = "PERCENT")]
    pub slo: Option<String>,
    /// The period the objective covers, such as 30d; needs --slo
    #[arg(long, value_name = "DURATION")]
    pub window: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Runs in the log directory, newest first
    List {
        /// Only runs of this runbook
        #[arg(long, value_name = "NAME")]
        runbook: Option<String>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// One run as a timeline: offsets, durations, statuses, answers, notes, failed output
    Show {
        /// Run id (a unique prefix is enough), or `latest`
        run: String,
    },
}

const EXEC_HELP: &str = "\
Without a terminal, each prompt reads one line from stdin: its first word is the answer
(done/yes/y, skip/s, retry/r, abort/a), the rest a note; for `ask`, the line is the value.
End of input aborts the run.

Exit codes: 0 succeeded, 1 failed or aborted, 2 bad input, 3 the runbook is locked by another
live run, 4 the execution log could not be written (or another I/O failure), 129 the terminal
hung up (the run is left open for `resume`), 130 interrupted.";

const REPORT_HELP: &str = "\
The report holds only what the log holds (secrets are already *** there); impact, root
causes, trigger and lessons are left for people, with a prompt each. Action items are
prefilled: the longest manual steps, failures, retries, skips, and steps at least 1.5x (and
500ms) slower than their median over earlier runs of the same runbook and mode.

--format json prints the context the templates get; a --template renders it with Handlebars
(HTML-escaped for html, Markdown-escaped otherwise; a name not in the context is an error).";

const STATS_HELP: &str = "\
Definitions. Percentiles are nearest-rank over sorted values: pN is the value at rank
ceil(N/100 x count), so every percentile is a value some run really had. Steps and human time
count live runs only; --since keeps runs started within that long ago.

  runs by mode and outcome  every log, by live/dry-run and by how its run_finished ended;
                            unfinished = no run_finished (still running, or crashed)
  live run duration         p50, p90, max and mean of duration_ms over live runs that
                            finished (any outcome)
  time to engage            run_started.ts - detected_at, live runs given --detected-at
  time to mitigate (MTTR)   the `mitigated` milestone's time, else the ts of a succeeded
                            run_finished, minus detected_at; p50, p90, mean and count
  time between incidents    per runbook, the gaps between consecutive detected_at of
                            distinct incidents (runs sharing an --incident id, or else a
                            detected_at, are one incident); mean = MTBF; needs two
  per step                  runs = live runs that recorded the step finished; p50/p90 of
                            duration_ms when not skipped; failed = failed or timed_out /
                            runs; retries = attempts beyond the first, summed; skipped =
                            skipped / runs
  fleet steps               steps with `hosts`: median hosts per run; host runs = the
                            hosts' own step_finished; failed = failed, timed_out or
                            unreachable / host runs; the 3 hosts that fail most and the 3
                            slowest by median duration_ms
  human time                sum of every wait_ms (manual steps, confirms, failure prompts)
                            / sum of duration_ms, over finished live runs; then manual
                            steps by median wait_ms: the automation backlog
  rehearsal vs reality      median duration_ms of succeeded dry runs next to that of
                            succeeded live runs, per runbook

Error budget (--slo PERCENT --window DURATION, both or neither; not limited by --since):
  allowed    (1 - PERCENT/100) x window          (99.9 over 30d allows 43m 12s)
  consumed   each live run's incident time, from detected_at (else its start) to its
             run_finished (else its last record), cut to the window; runs that overlap
             (two runbooks for one outage) count once
  remaining  allowed - consumed, and consumed as a percent of allowed
Runbook time is a proxy for impact, not a measure of it: your SLI is the real budget.

Exit codes: 0 done (also with no runs), 2 bad input.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Markdown,
    Html,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}
