//! What the display and the prompt on a terminal share while a run is on screen: the
//! status they both draw, and the lines the display has for the operator while a prompt
//! holds the bottom of the terminal (the prompt prints them above itself, so it is never
//! drawn over).

use std::sync::{Arc, Mutex, MutexGuard};

use super::status::Status;

#[derive(Debug, Default)]
pub(crate) struct Board {
    pub(crate) status: Status,
    /// A key prompt is drawn at the bottom of the terminal.
    pub(crate) prompt_on_screen: bool,
    /// Lines that must be seen now (a failure elsewhere), waiting for the prompt to print.
    pub(crate) urgent: Vec<String>,
}

pub(crate) type Shared = Arc<Mutex<Board>>;

/// The board, whatever a panicking holder left it as.
pub(crate) fn lock(board: &Shared) -> MutexGuard<'_, Board> {
    board.lock().unwrap_or_else(|p| p.into_inner())
}
