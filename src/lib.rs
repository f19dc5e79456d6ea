//! `runbook`: an incident-response runbook executor. This crate root wires the command line
//! to the commands; `main.rs` only calls [`run`].

mod alert;
mod cli;
mod commands;
mod config;
mod error;
mod event;
mod exec;
mod format;
mod log;
mod review;
pub mod runbook;
mod serve;

/// The Alertmanager payload parser, public for its fuzz target (fuzz/fuzz_targets/).
pub use alert::payload as alert_payload;
mod terminal;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;

use crate::cli::{Cli, Command, LogCommand};
use crate::config::Config;
use crate::error::{Error, exit};
use crate::format::Shown;

/// Runs the program with these arguments and returns its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::OK
            };
        }
    };
    let config = Config::from_cli(&cli);
    let log_dir = || config.log_dir().map(std::path::Path::to_path_buf);
    let result = match &cli.command {
        Command::List(args) => commands::list(&config, args.json),
        Command::Show(args) => commands::show(&config, &args.name, args.json),
        Command::Check(args) => commands::check(&config, &args.targets),
        Command::Graph(args) => commands::graph(&config, &args.name, args.format),
        Command::Exec(args) => commands::exec::exec(&config, args),
        Command::Resume(args) => commands::exec::resume(&config, args),
        Command::Log { command } => match command {
            LogCommand::List {
                runbook,
                status,
                json,
                ..
            } => {
                log_dir().and_then(|d| review::log_cmd::list(&d, runbook.as_deref(), status, *json))
            }
            LogCommand::Show { run, .. } => log_dir().and_then(|d| review::log_cmd::show(&d, run)),
        },
        Command::Report(args) => log_dir().and_then(|d| review::report::report(&d, args)),
        Command::Stats(args) => log_dir().and_then(|d| review::stats::stats(&d, args)),
        Command::Serve(args) => commands::serve(&config, args),
        Command::Alerts(args) => commands::alerts(&config, args),
        Command::Completions(args) => commands::completions(args.shell),
        Command::Man => commands::man(),
    };
    match result {
        Ok(code) => code,
        Err(Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            let mut err = std::io::stderr().lock();
            match &e {
                Error::Load(
                    crate::runbook::LoadError::Invalid(report)
                    | crate::runbook::LoadError::Hosts(report),
                ) => {
                    let _ = write!(err, "{}", report.render(config.colour));
                }
                _ => {
                    let text = e.to_string();
                    let _ = writeln!(err, "error: {}", format::visible(&text, Shown::Text));
                }
            }
            e.exit_code()
        }
    }
}
