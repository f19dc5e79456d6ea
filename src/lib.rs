//! `runbook`: an incident-response runbook executor. This crate root wires the command line
//! to the commands; `main.rs` only calls [`run`].

pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod event;
pub mod exec;
pub(crate) mod format;
pub mod log;
pub mod review;
pub mod runbook;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;

use crate::cli::{Cli, Command, LogCommand};
use crate::config::Config;
use crate::error::{Error, exit};

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
    let log_dir = || {
        config.log_dir.clone().ok_or_else(|| {
            Error::Usage(
                "no log directory: set --log-dir or RUNBOOK_LOG_DIR (HOME is not set)".into(),
            )
        })
    };
    let result = match &cli.command {
        Command::List { json } => commands::list(&config, *json),
        Command::Show { name, json } => commands::show(&config, name, *json),
        Command::Check { targets } => commands::check(&config, targets),
        Command::Graph { name, format } => commands::graph(&config, name, *format),
        Command::Resume {
            run,
            force,
            vars,
            yes,
            operator,
            rollback,
        } => exec::resume::resume(
            &config,
            &exec::resume::ResumeArgs {
                run,
                force: *force,
                vars,
                yes: *yes,
                operator: operator.as_deref(),
                rollback: *rollback,
            },
        ),
        Command::Log { command } => match command {
            LogCommand::List { runbook, json } => {
                log_dir().and_then(|d| review::log_cmd::list(&d, runbook.as_deref(), *json))
            }
            LogCommand::Show { run } => log_dir().and_then(|d| review::log_cmd::show(&d, run)),
        },
        Command::Report {
            run,
            format,
            template,
            output,
        } => log_dir().and_then(|d| {
            review::report::report(
                &d,
                &review::report::ReportArgs {
                    run,
                    format: *format,
                    template: template.as_deref(),
                    output: output.as_deref(),
                },
            )
        }),
        Command::Stats {
            runbook,
            since,
            json,
            slo,
            window,
        } => log_dir().and_then(|d| {
            review::stats::stats(
                &d,
                &review::stats::StatsArgs {
                    runbook: runbook.as_deref(),
                    since: since.as_deref(),
                    json: *json,
                    slo: slo.as_deref(),
                    window: window.as_deref(),
                },
            )
        }),
        Command::Exec {
            name,
            dry_run,
            vars,
            yes,
            parallel,
            incident,
            detected_at,
            operator,
            start_at,
            rollback,
            log_output_cap,
        } => exec::exec(
            &config,
            &exec::ExecArgs {
                target: name,
                dry_run: *dry_run,
                vars,
                yes: *yes,
                parallel: usize::from(*parallel),
                incident: incident.as_deref(),
                detected_at: detected_at.as_deref(),
                operator: operator.as_deref(),
                start_at: start_at.as_deref(),
                rollback: *rollback,
                log_output_cap,
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            let mut err = std::io::stderr().lock();
            match &e {
                Error::Reported(_) => {}
                Error::Load(crate::runbook::LoadError::Invalid(report)) => {
                    let _ = write!(err, "{}", report.render(config.colour));
                }
                _ => {
                    let _ = writeln!(err, "error: {e}");
                }
            }
            e.exit_code()
        }
    }
}
