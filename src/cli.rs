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

    /// Print less: no progress display, only results and errors
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
    /// Draw a runbook's step graph as Mermaid or Graphviz dot
    Graph {
        /// Runbook name (in the runbooks directory) or path to a .toml file
        name: String,
        /// Output format
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}
