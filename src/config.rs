//! The validated configuration every command reads: directories and output styling,
//! resolved once from flags and environment.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::{Cli, Command, LogCommand};

#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    /// Where execution logs go; `None` when no flag, variable or home directory says.
    pub log_dir: Option<PathBuf>,
    pub quiet: bool,
    /// ANSI colour on stderr (a terminal, and `NO_COLOR` unset or empty).
    pub colour: bool,
    /// A person is there to answer: stdin and stderr are both terminals.
    pub interactive: bool,
}

impl Config {
    /// The log directory, or why there is none.
    pub fn log_dir(&self) -> Result<&std::path::Path, crate::error::Error> {
        self.log_dir.as_deref().ok_or(crate::error::Error::NoLogDir)
    }

    pub fn from_cli(cli: &Cli) -> Self {
        let (dir, log_dir, quiet) = given(&cli.command);
        let env_dir = std::env::var_os("RUNBOOK_DIR").filter(|v| !v.is_empty());
        let dir = dir
            .or(cli.dir.as_ref())
            .cloned()
            .or_else(|| env_dir.map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("runbooks"));
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if no_colour {
            // The prompts (dialoguer) and spinners (indicatif) style through `console`.
            console::set_colors_enabled(false);
            console::set_colors_enabled_stderr(false);
        }
        Config {
            dir,
            log_dir: log_dir
                .or(cli.log_dir.as_ref())
                .cloned()
                .or_else(crate::log::default_dir),
            quiet: quiet || cli.quiet,
            colour: !no_colour && std::io::stderr().is_terminal(),
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }
}

/// `--dir`, `--log-dir` and `--quiet` as given after the command, where they mean something
/// (before it, they are read from [`Cli`] itself).
fn given(command: &Command) -> (Option<&PathBuf>, Option<&PathBuf>, bool) {
    match command {
        Command::List(a) => (a.dir.dir.as_ref(), None, false),
        Command::Show(a) => (a.dir.dir.as_ref(), None, false),
        Command::Check(a) => (a.dir.dir.as_ref(), None, false),
        Command::Graph(a) => (a.dir.dir.as_ref(), None, false),
        Command::Exec(a) => (
            a.dir.dir.as_ref(),
            a.log_dir.log_dir.as_ref(),
            a.quiet.quiet,
        ),
        Command::Resume(a) => (None, a.log_dir.log_dir.as_ref(), a.quiet.quiet),
        Command::Log { command } => match command {
            LogCommand::List { log_dir, .. } | LogCommand::Show { log_dir, .. } => {
                (None, log_dir.log_dir.as_ref(), false)
            }
        },
        Command::Report(a) => (None, a.log_dir.log_dir.as_ref(), false),
        Command::Stats(a) => (None, a.log_dir.log_dir.as_ref(), false),
        Command::Serve(a) => (
            a.dir.dir.as_ref(),
            a.log_dir.log_dir.as_ref(),
            a.quiet.quiet,
        ),
        Command::Alerts(a) => (a.dir.dir.as_ref(), a.log_dir.log_dir.as_ref(), false),
        Command::Completions(_) | Command::Man => (None, None, false),
    }
}
