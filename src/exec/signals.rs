//! The signals a run answers: SIGINT and SIGTERM stop it (twice: at once), SIGHUP (the
//! terminal went away) leaves it open for `resume`.

use tokio::signal::unix::{Signal, SignalKind, signal};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caught {
    Interrupt,
    Terminate,
    HangUp,
}

impl Caught {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Caught::Interrupt => "SIGINT",
            Caught::Terminate => "SIGTERM",
            Caught::HangUp => "SIGHUP",
        }
    }
}

/// The handlers, installed for the whole run.
pub(crate) struct Signals {
    int: Option<Signal>,
    term: Option<Signal>,
    hup: Option<Signal>,
}

impl Signals {
    /// Installs the handlers; one that cannot be installed is left to the default action.
    pub(crate) fn install() -> Self {
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
            hup: signal(SignalKind::hangup()).ok(),
        }
    }

    /// The next signal.
    pub(crate) async fn next(&mut self) -> Caught {
        tokio::select! {
            Some(()) = recv(&mut self.int) => Caught::Interrupt,
            Some(()) = recv(&mut self.term) => Caught::Terminate,
            Some(()) = recv(&mut self.hup) => Caught::HangUp,
            else => std::future::pending::<Caught>().await,
        }
    }
}

async fn recv(s: &mut Option<Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
