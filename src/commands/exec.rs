//! `runbook exec` and `runbook resume` as commands: the run prepared from the flags, the
//! terminal's display and prompts given to it, and its outcome as an exit code (spec §2).

use crate::cli::{ExecArgs, ResumeArgs};
use crate::config::Config;
use crate::error::{Error, ParamError, exit};
use crate::event::RunStatus;
use crate::exec::{self, RunOutcome, prepare};
use crate::terminal::{self, TerminalState, display::Display, display::Style};

pub fn exec(config: &Config, args: &ExecArgs) -> Result<u8, Error> {
    let Some(name) = args.name.as_deref() else {
        // Which one, then? The list answers it, and the run starts with the next command.
        let table = super::table_of(config)?;
        let dir = std::path::absolute(&config.dir).unwrap_or_else(|_| config.dir.clone());
        eprint!(
            "error: name the runbook to run: `runbook exec NAME`; the runbooks in {}:\n{}",
            dir.display(),
            table
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
        );
        return Ok(exit::BAD_INPUT);
    };
    let prepared = match prepare::exec(config, name, args) {
        // On a terminal, a param left out is asked for rather than failed on.
        Err(Error::Param(ParamError::Missing(missing))) if config.interactive => {
            let mut args = args.clone();
            let given = terminal::params::ask(name, &missing).map_err(Error::Output)?;
            args.flags.vars.extend(given);
            prepare::exec(config, name, &args)?
        }
        prepared => prepared?,
    };
    if prepared.opts.diagnose
        && let Some(alert) = &prepared.alert
    {
        // The alert's journal names its rehearsal, for `runbook alerts` and for the run
        // that responds to it later.
        let record = crate::alert::store::Record::DiagnosticRun {
            alert: alert.id.clone(),
            runbook: prepared.rb.name.clone(),
            run_id: prepared.opts.run_id.clone(),
        };
        crate::alert::store::append_one(&prepared.log_dir, record).map_err(|source| Error::Io {
            action: "write the alerts journal in",
            path: crate::alert::store::dir(&prepared.log_dir),
            source,
        })?;
    }
    run(config, prepared)
}

pub fn resume(config: &Config, args: &ResumeArgs) -> Result<u8, Error> {
    run(config, prepare::resume(config, args)?)
}

fn run(config: &Config, prepared: prepare::Prepared) -> Result<u8, Error> {
    let style = if config.quiet {
        Style::Quiet
    } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Style::Live
    } else {
        Style::Plain
    };
    let board = terminal::board::Shared::default();
    let display = Display::new(style, config.colour, board.clone());
    let saved = TerminalState::save();
    if let Some(t) = &saved {
        // Keys typed while steps run are not echoed into the display (a ^C would leave a
        // stale spinner line); prompts echo what they read themselves.
        t.quiet_keys();
    }
    let outcome = exec::start(
        prepared,
        Box::new(display),
        terminal::prompt::for_this_process(board, config.colour),
    );
    // A prompt interrupted by a signal leaves raw mode on and the cursor hidden.
    if let Some(t) = saved {
        t.restore();
    }
    Ok(exit_code(&outcome?))
}

fn exit_code(outcome: &RunOutcome) -> u8 {
    if outcome.hung_up {
        return exit::HANGUP;
    }
    if outcome.log_failed {
        return exit::IO;
    }
    match outcome.status {
        RunStatus::Succeeded => exit::OK,
        RunStatus::Failed | RunStatus::Aborted => exit::FAILED,
        RunStatus::Interrupted => exit::INTERRUPTED,
    }
}
