//! The command line, as clap sees it: flags and arguments only. [`crate::config`] turns it
//! into what the commands use.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::event::RollbackMode;

/// Runs incident-response runbooks: shell commands and steps for people, in the order a TOML
/// file gives, every run logged for the postmortem.
#[derive(Debug, Parser)]
#[command(
    name = "runbook",
    version,
    propagate_version = true,
    max_term_width = 100,
    long_about = ABOUT,
    after_help = "`runbook help COMMAND` (or COMMAND --help) says what each command takes."
)]
pub struct Cli {
    // Accepted before the command too (`runbook --log-dir X log list`), where scripts put
    // them; shown only in the help of the commands they mean something to.
    #[arg(long, value_name = "DIR", hide = true)]
    pub dir: Option<PathBuf>,
    #[arg(long, value_name = "DIR", hide = true)]
    pub log_dir: Option<PathBuf>,
    #[arg(long, short, hide = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

const ABOUT: &str = "\
Runs incident-response runbooks. A runbook is a TOML file that writes down how to respond to
one kind of incident as a graph of steps: shell commands runbook runs for you (timeouts,
retries, captured output) and manual steps it walks a person through. Every run is logged, so
it can be reviewed (log), turned into a postmortem draft (report) and added up into MTTR and
error-budget figures (stats).

  runbook list                          the runbooks in ./runbooks (or --dir, $RUNBOOK_DIR)
  runbook exec db-failover --var replica=db-2 --incident INC-1234 --detected-at 03:12
  runbook exec db-failover --dry-run    rehearse: nothing is changed
  runbook report latest -o postmortem.md";

/// `--dir`: where runbooks are looked up by name.
#[derive(Debug, Clone, Args, Default)]
pub struct RunbookDir {
    /// Directory holding the runbooks [default: $RUNBOOK_DIR, else ./runbooks]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `--log-dir`: where execution logs are written and read.
#[derive(Debug, Clone, Args, Default)]
pub struct LogDir {
    /// Directory of execution logs [default: $RUNBOOK_LOG_DIR, else
    /// $XDG_STATE_HOME/runbook/runs, else ~/.local/state/runbook/runs]
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
}

/// `--quiet`: how much a run shows.
#[derive(Debug, Clone, Args, Default)]
pub struct Quiet {
    /// Show less: no spinners, commands or step output (all still in the log); only
    /// prompts, failures with their last output, warnings and the run's end
    #[arg(long, short)]
    pub quiet: bool,
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
    /// Continue a run that did not succeed (failed, aborted, interrupted, crashed), in the same log
    #[command(after_long_help = EXEC_HELP)]
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
    /// Receive Alertmanager's webhook notifications; rehearse the runbooks they match
    #[command(after_long_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// The alerts received: status, runbook, diagnostic rehearsal, the command to respond
    Alerts(AlertsArgs),
    /// Print a shell completion script (bash, zsh or fish) for runbook
    #[command(after_long_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Print runbook's manual page (roff), every command in one page
    #[command(after_long_help = "Install: runbook man > ~/.local/share/man/man1/runbook.1")]
    Man,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub dir: RunbookDir,
    #[command(flatten)]
    pub log_dir: LogDir,
    #[command(flatten)]
    pub quiet: Quiet,
    /// Address to listen on (loopback unless told otherwise; port 0 picks a free one)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9095")]
    pub listen: String,
    /// Require `Authorization: Bearer TOKEN`, TOKEN read from this environment variable
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Most diagnostic rehearsals running at once
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub max_diagnostics: u16,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    pub dir: RunbookDir,
    #[command(flatten)]
    pub log_dir: LogDir,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Resolved alerts too (by default only firing ones)
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

const COMPLETIONS_HELP: &str = "\
Install:
  bash  runbook completions bash > ~/.local/share/bash-completion/completions/runbook
  zsh   runbook completions zsh > ~/.zfunc/_runbook   (with fpath+=(~/.zfunc) before compinit)
  fish  runbook completions fish > ~/.config/fish/completions/runbook.fish";

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dir: RunbookDir,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Runbook name (in the runbooks directory) or path to a .toml file
    pub name: String,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dir: RunbookDir,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Runbook names or .toml paths [default: every runbook in the directory]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub dir: RunbookDir,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Runbook name (in the runbooks directory) or path to a .toml file
    pub name: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
    #[command(flatten)]
    pub dir: RunbookDir,
}

/// The flags of a run, shared by `exec` and `resume`. A resumed run keeps the options it
/// was started with unless they are given again.
#[derive(Debug, Clone, Args)]
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

#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// Runbook name (in the runbooks directory) or path to a .toml file; without one, the
    /// runbooks are listed
    pub name: Option<String>,
    /// Rehearse: run only `readonly` steps, show every other command, time the drill
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub flags: RunFlags,
    /// Incident id recorded in the log (for example INC-1234)
    #[arg(long, value_name = "ID")]
    pub incident: Option<String>,
    /// When the incident was detected, in local time unless it says otherwise: 10:05,
    /// 03:12:45, "2026-11-28 18:00", "yesterday 23:10", "15m ago", RFC 3339
    #[arg(long, value_name = "TIME")]
    pub detected_at: Option<String>,
    /// Start at this step: its ancestors are recorded as done before the run
    #[arg(long, value_name = "STEP")]
    pub start_at: Option<String>,
    /// Respond to this alert (an id `runbook alerts` shows): params from its labels, the
    /// detection time from its start, the incident from its group
    #[arg(long, value_name = "ID", conflicts_with = "alert_file")]
    pub alert: Option<String>,
    /// As --alert, from a saved Alertmanager webhook payload (`-`: stdin)
    #[arg(long, value_name = "FILE")]
    pub alert_file: Option<String>,
    /// Diagnostic rehearsal (what `runbook serve` runs): --dry-run that asks no one;
    /// manual steps are recorded as waiting for a person
    #[arg(long)]
    pub diagnose: bool,
    #[command(flatten)]
    pub dir: RunbookDir,
    #[command(flatten)]
    pub log_dir: LogDir,
    #[command(flatten)]
    pub quiet: Quiet,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Run id (a unique prefix is enough), or `latest`
    pub run: String,
    /// Resume even though the runbook file changed since the run started
    #[arg(long)]
    pub force: bool,
    /// Go back to this step: it and every step after it in the graph run again
    #[arg(long, value_name = "STEP")]
    pub from: Option<String>,
    #[command(flatten)]
    pub flags: RunFlags,
    #[command(flatten)]
    pub log_dir: LogDir,
    #[command(flatten)]
    pub quiet: Quiet,
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
    #[command(flatten)]
    pub log_dir: LogDir,
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
    #[command(flatten)]
    pub log_dir: LogDir,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Runs in the log directory, newest first
    List {
        /// Only runs of this runbook
        #[arg(long, value_name = "NAME")]
        runbook: Option<String>,
        /// Only runs that ended so (comma-separated); `unfinished` = no recorded end (a
        /// crash, a hang-up, or still running)
        #[arg(long, value_enum, value_name = "STATUS", value_delimiter = ',')]
        status: Vec<StatusFilter>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        log_dir: LogDir,
    },
    /// One run as a timeline: offsets, durations, statuses, answers, notes, failed output
    Show {
        /// Run id (a unique prefix is enough), or `latest`
        run: String,
        #[command(flatten)]
        log_dir: LogDir,
    },
}

/// How a run ended, for `log list --status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    Succeeded,
    Failed,
    Aborted,
    Interrupted,
    /// No `run_finished`: crashed, hung up, or still running
    Unfinished,
}

const EXEC_HELP: &str = "\
What the run shows:
  on a terminal   a spinner per running step (attempt and time against its timeout), each
                  command as it starts, step output as it comes, finished steps above, and
                  a status line: incident clock, elapsed time, what runs, what waits on a
                  person, the next deadline
  without one     a line per step start with its command, the output, a line per step end;
                  a retry prints its attempt, not the command again
  --quiet         less: no spinners, commands or output (the log has them); prompts,
                  failures with their last output, warnings and the run's end

Prompts on a terminal take one key: d or y done (yes, run), s skip, a abort (stop), r retry,
w wait; arrows and Enter work too; n adds a note first. Without a terminal, each prompt reads
one line from stdin: its first word is the answer (done/yes/y, skip/s, retry/r, abort/a), the
rest (after a space or a colon: `done: rebooted it`) a note; for `ask`, the line is the value.
End of input aborts the run.

Ctrl-C on a terminal asks: stop here (exit 130; `runbook resume` goes on later), roll back
the steps that completed, or carry on. A second Ctrl-C stops at once. Without a terminal,
Ctrl-C and SIGTERM stop the run (running steps get TERM, then KILL after 3s).

Exit codes:
  0    the run succeeded
  1    a step failed and stopped the run, or the operator aborted it
  2    bad input: usage, an invalid runbook, an unknown runbook or run, a bad --var
  3    the runbook is locked by another live run (or the run is still executing)
  4    the execution log could not be written (a full disk), or another I/O failure;
       the run is left open for `resume`
  129  the terminal hung up; the run is left open for `resume`
  130  interrupted (Ctrl-C, SIGINT or SIGTERM); `resume` goes on with it";

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
                            or --alert (detected_at is then the alert's startsAt); also
                            per runbook and per service (the runbook's `service`, else
                            the alert's label), FROM ALERTS counting exec --alert runs
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
                            succeeded live runs, per runbook (diagnostic rehearsals, which
                            ask no one, are left out)

Error budget (--slo PERCENT --window DURATION, both or neither; not limited by --since):
  allowed    (1 - PERCENT/100) x window          (99.9 over 30d allows 43m 12s)
  consumed   each live run's incident time, from detected_at (else its start) to its
             run_finished (else its last record), cut to the window; runs that overlap
             (two runbooks for one outage) count once
  remaining  allowed - consumed, and consumed as a percent of allowed
Runbook time is a proxy for impact, not a measure of it: your SLI is the real budget.

Exit codes: 0 done (also with no runs), 2 bad input.";

const SERVE_HELP: &str = "\
Point an Alertmanager webhook receiver at http://ADDR/alertmanager. Each notification is
stored (fsync) in <log-dir>/alerts/ before the reply; `runbook alerts` lists what came.

An alert starts the runbook named by its `runbook` label, else by its `runbook` or
`runbook_url` annotation (the last path segment without extension), else the runbook whose
[alert] match it meets (the most labels wins, then the first by name). When that runbook
says `diagnose = true`, a firing alert gets one diagnostic rehearsal: `runbook exec NAME
--diagnose --alert ID`, read-only steps only, nobody asked, at most --max-diagnostics at once.
A webhook never runs a step that is not `readonly`.

Replies: 200 stored; 400 not a version 4 notification; 401 wrong or missing token; 404/405
another path or method; 413 a body over 4 MiB; 503 the journal could not be written (nothing
stored: Alertmanager retries). SIGINT or SIGTERM stop the server (exit 0).

Exit codes: 0 stopped, 2 bad input, 3 another `serve` holds this log directory, 4 I/O.";

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
