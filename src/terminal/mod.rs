//! The operator's terminal: the live display (a sink of the run's events) and the prompts
//! (a `Prompter` for the executor), and the terminal settings put back after a run.

pub(crate) mod board;
pub(crate) mod display;
pub(crate) mod keys;
pub(crate) mod params;
pub(crate) mod prompt;
mod spinners;
pub(crate) mod status;
mod visible;
pub(crate) mod wrap;

use std::io::IsTerminal;

fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// The terminal's settings at the start, put back at the end: a prompt interrupted by a
/// signal leaves raw mode on and the cursor hidden.
pub(crate) struct TerminalState(nix::sys::termios::Termios);

impl TerminalState {
    /// The current settings, when stdin is a terminal a person uses.
    pub(crate) fn save() -> Option<Self> {
        if !interactive() {
            return None;
        }
        nix::sys::termios::tcgetattr(std::io::stdin())
            .ok()
            .map(TerminalState)
    }

    /// No echo of keys typed while the run draws on the terminal (Ctrl-C still signals).
    pub(crate) fn quiet_keys(&self) {
        use nix::sys::termios::LocalFlags;
        let mut t = self.0.clone();
        t.local_flags &= !(LocalFlags::ECHO | LocalFlags::ECHOCTL);
        let _ =
            nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &t);
    }

    pub(crate) fn restore(&self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.0,
        );
        let _ = console::Term::stderr().show_cursor();
    }
}
