//! The command line, as clap sees it: flags and arguments only. [`crate::config`] turns it
//! into what the commands use.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

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
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show one runbook: params, and its steps in run order
    Show {
        /// Runbook name (in the runbooks directory) or path to a .toml file
        name: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Validate runbooks and report every error (exit 0 when all are valid, 2 otherwise)
    Check {
        /// Runbook names or .toml paths [default: every runbook in the directory]
        targets: Vec<String>,
    },
    /// Run a runbook: automated steps, prompts for manual ones, every timing logged
    #[command(after_long_help = EXEC_HELP)]
    Exec {
        /// Runbook name (in the runbooks directory) or path to a .toml file
        name: String,
        /// Rehearse: run only `readonly` steps, show every other command, time the drill
        #[arg(long)]
        dry_run: bool,
        /// Set a param (repeatable); checked against its pattern before anything runs
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
        /// Answer `confirm` prompts with yes (and, in a dry run, manual steps with done)
        #[arg(long, short)]
        yes: bool,
        /// Most automated steps running at once
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
        parallel: u16,
        /// Incident id recorded in the log (for example INC-1234)
        #[arg(long, value_name = "ID")]
        incident: Option<String>,
        /// When the incident was detected: RFC 3339, or relative such as "15m ago"
        #[arg(long, value_name = "TIME")]
        detected_at: Option<String>,
        /// Who is running this [default: the OS user]
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
        /// Start at this step: its ancestors are recorded as done before the run
        #[arg(long, value_name = "STEP")]
        start_at: Option<String>,
        /// Undo succeeded steps after a failed or aborted run [default: ask on a terminal, else never]
        #[arg(long, value_enum, value_name = "MODE")]
        rollback: Option<crate::exec::RollbackMode>,
        /// Output recorded in the log per step; the rest is counted, not kept
        #[arg(long, default_value = "1MiB", value_name = "SIZE")]
        log_output_cap: String,
    },
    /// Past runs: list them, or show one as a timeline
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Draw a runbook's step graph as Mermaid or Graphviz dot
    Graph {
        /// Runbook name (in the runbooks directory) or path to a .toml file
        name: String,
        /// Output format
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
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

Exit codes: 0 succeeded, 1 failed or aborted, 2 bad input, 130 interrupted.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}
