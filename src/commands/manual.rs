//! `runbook completions SHELL` and `runbook man`: shell completions and the manual page,
//! both generated from the clap definitions in [`crate::cli`], so they never drift from
//! what the parser accepts.

use clap::CommandFactory;

use super::print;
use crate::cli::{Cli, Shell};
use crate::error::{Error, exit};

pub(crate) fn completions(shell: Shell) -> Result<u8, Error> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "runbook", &mut out);
    print(&String::from_utf8_lossy(&out))?;
    Ok(exit::OK)
}

/// One page: the program, then every command (`runbook log list` too) with its synopsis,
/// description and options, then the exit codes and the environment.
pub(crate) fn man() -> Result<u8, Error> {
    let mut cmd = Cli::command();
    cmd.build();
    let top = clap_mangen::Man::new(cmd.clone()).manual("runbook manual");
    let mut page = Vec::new();
    let io = |e: std::io::Error| Error::Output(e);
    top.render_title(&mut page).map_err(io)?;
    top.render_name_section(&mut page).map_err(io)?;
    top.render_synopsis_section(&mut page).map_err(io)?;
    top.render_description_section(&mut page).map_err(io)?;
    page.extend_from_slice(b".SH COMMANDS\n");
    let mut commands = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        if sub.has_subcommands() {
            commands.extend(sub.get_subcommands().filter(|s| s.get_name() != "help"));
        } else {
            commands.push(sub);
        }
    }
    for sub in commands {
        let name = sub
            .get_bin_name()
            .map_or_else(|| format!("runbook {}", sub.get_name()), str::to_string);
        let man = clap_mangen::Man::new(sub.clone().bin_name(&name));
        let mut part = Vec::new();
        man.render_synopsis_section(&mut part).map_err(io)?;
        man.render_description_section(&mut part).map_err(io)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(&mut part).map_err(io)?;
        }
        if sub.get_after_long_help().is_some() {
            man.render_extra_section(&mut part).map_err(io)?;
        }
        // Each command is a subsection of COMMANDS: its own section headings become a
        // subsection title (the synopsis) or plain paragraphs.
        for line in String::from_utf8_lossy(&part).lines() {
            match line {
                ".SH SYNOPSIS" => page.extend_from_slice(format!(".SS \"{name}\"\n").as_bytes()),
                l if l.starts_with(".SH ") => page.extend_from_slice(b".PP\n"),
                l => {
                    page.extend_from_slice(l.as_bytes());
                    page.push(b'\n');
                }
            }
        }
    }
    page.extend_from_slice(TAIL.as_bytes());
    print(&String::from_utf8_lossy(&page))?;
    Ok(exit::OK)
}

const TAIL: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
the run succeeded, or the command did its job
.TP
\fB1\fR
a run failed or was aborted
.TP
\fB2\fR
bad input: usage, an invalid runbook, an unknown runbook or run, a bad \-\-var
.TP
\fB3\fR
the runbook is locked by another live run (or the run is still executing)
.TP
\fB4\fR
something runbook needs could not be read or written (the execution log on a full disk); the run is left open for \fBrunbook resume\fR
.TP
\fB129\fR
the terminal hung up; the run is left open for \fBrunbook resume\fR
.TP
\fB130\fR
interrupted (Ctrl\-C, SIGINT or SIGTERM)
.SH ENVIRONMENT
.TP
\fBRUNBOOK_DIR\fR
the runbooks directory when \-\-dir is not given (else ./runbooks)
.TP
\fBRUNBOOK_LOG_DIR\fR
the log directory when \-\-log\-dir is not given (else $XDG_STATE_HOME/runbook/runs, else ~/.local/state/runbook/runs)
.TP
\fBNO_COLOR\fR
set and not empty: no colour
.TP
\fBTZ\fR
the local time zone, for \-\-detected\-at times such as 10:05
"#;
