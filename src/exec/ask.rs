//! What the executor asks a person, and what the answers mean. How a question is put on
//! screen (menus on a terminal, one line per prompt otherwise) is the terminal's business
//! (`crate::terminal::prompt`); the executor only needs a [`Prompter`].

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::event::{Answer, PromptKind};

/// What the operator is asked.
#[derive(Debug, Clone)]
pub(crate) struct Question {
    pub kind: PromptKind,
    pub step: String,
    pub title: String,
    /// Manual steps: the rendered instructions. Confirm and rollback: the command that
    /// will run. Failure: what went wrong. In doubt: what the step was.
    pub body: String,
    /// Manual steps with `ask`: the variable the person types a value for.
    pub ask: Option<String>,
    /// Manual steps with `ask`: the steps not yet run that use the value, which fail
    /// without it (so skipping is offered a value instead).
    pub needed_by: Vec<String>,
    /// In doubt: when the step started.
    pub started: Option<String>,
    /// Which question this is in the run (1, 2, ...): a prompter gives up on it once the
    /// executor's [`Withdrawn`] reaches this number.
    pub seq: u64,
    /// Interrupt: whether completed steps can be rolled back (else only stop or carry on).
    pub can_roll_back: bool,
}

impl Question {
    /// The answers on offer, the default first.
    pub(crate) fn choices(&self) -> &'static [Answer] {
        match self.kind {
            PromptKind::Interrupt if !self.can_roll_back => &[Answer::Stop, Answer::CarryOn],
            kind => choices(kind),
        }
    }

    /// What `done` / `yes` / `y` mean here: for a step in doubt, that it completed;
    /// elsewhere, the default answer.
    pub(crate) fn positive(&self) -> Answer {
        match self.kind {
            PromptKind::InDoubt | PromptKind::Stopped => Answer::Done,
            _ => self.choices()[0],
        }
    }
}

/// The answers a prompt of this kind offers, the default (the "yes" of it) first.
pub(crate) fn choices(kind: PromptKind) -> &'static [Answer] {
    match kind {
        PromptKind::Manual => &[Answer::Done, Answer::Skip, Answer::Abort],
        PromptKind::Confirm => &[Answer::Yes, Answer::Skip, Answer::Abort],
        PromptKind::Failure => &[Answer::Retry, Answer::Skip, Answer::Abort],
        PromptKind::Rollback => &[Answer::Run, Answer::Skip, Answer::Stop],
        PromptKind::InDoubt | PromptKind::Stopped => {
            &[Answer::Retry, Answer::Done, Answer::Skip, Answer::Abort]
        }
        PromptKind::Running => &[Answer::Wait, Answer::Stop],
        PromptKind::Interrupt => &[Answer::Stop, Answer::RollBack, Answer::CarryOn],
    }
}

/// The operator's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub answer: Answer,
    pub note: Option<String>,
    pub value: Option<String>,
}

impl Reply {
    /// An answer given for the operator (by `--yes`).
    pub(crate) fn auto(answer: Answer) -> Self {
        Reply {
            answer,
            note: None,
            value: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PromptError {
    #[error("end of input")]
    EndOfInput,
    #[error("interrupted")]
    Interrupted,
    /// The terminal went away while the question was on it.
    #[error("the terminal hung up")]
    HangUp,
    /// The executor took the question back (see [`Withdrawn`]) before it was answered.
    #[error("the question was taken back")]
    Withdrawn,
    #[error("cannot read the answer: {0}")]
    Io(#[from] io::Error),
}

/// Questions taken back: every question whose `seq` is at most this number. A prompter
/// that can give up on a question (a terminal) watches it while it waits, so the executor
/// can put another question (after Ctrl-C, say) without waiting for an answer.
pub(crate) type Withdrawn = Arc<AtomicU64>;

/// Puts questions to a person; blocks until they answer.
pub(crate) trait Prompter: Send {
    fn ask(&mut self, q: &Question) -> Result<Reply, PromptError>;

    /// What this prompter watches for questions taken back, if it can give up on one.
    fn withdrawn(&self) -> Option<Withdrawn> {
        None
    }
}

/// What an answer decides, whatever the question: the same four outcomes in other words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Go ahead: run the confirmed step, retry the failed one, run the rollback, wait for
    /// a step still running.
    Go,
    /// The step is done (a manual step, or one in doubt that did complete).
    Done,
    /// Go on without it.
    Skip,
    /// Stop: no new step starts (for a rollback: no further rollback runs; for a step
    /// still running: stop its processes).
    Abort,
}

/// What `answer` to a question of `kind` means.
pub(crate) fn verdict(kind: PromptKind, answer: Answer) -> Verdict {
    match (kind, answer) {
        (_, Answer::Skip) => Verdict::Skip,
        (_, Answer::Abort | Answer::Stop | Answer::RollBack) => Verdict::Abort,
        (_, Answer::CarryOn) => Verdict::Go,
        (PromptKind::Manual, _) => Verdict::Done,
        (PromptKind::InDoubt | PromptKind::Stopped, Answer::Done | Answer::Yes) => Verdict::Done,
        (_, Answer::Retry | Answer::Run | Answer::Yes | Answer::Done | Answer::Wait) => Verdict::Go,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_on_offer_has_a_meaning() {
        use Verdict::*;
        let table = [
            (PromptKind::Manual, Answer::Done, Done),
            (PromptKind::Manual, Answer::Skip, Skip),
            (PromptKind::Manual, Answer::Abort, Abort),
            (PromptKind::Confirm, Answer::Yes, Go),
            (PromptKind::Confirm, Answer::Skip, Skip),
            (PromptKind::Confirm, Answer::Abort, Abort),
            (PromptKind::Failure, Answer::Retry, Go),
            (PromptKind::Failure, Answer::Skip, Skip),
            (PromptKind::Failure, Answer::Abort, Abort),
            (PromptKind::Rollback, Answer::Run, Go),
            (PromptKind::Rollback, Answer::Skip, Skip),
            (PromptKind::Rollback, Answer::Stop, Abort),
            (PromptKind::InDoubt, Answer::Retry, Go),
            (PromptKind::InDoubt, Answer::Done, Done),
            (PromptKind::InDoubt, Answer::Skip, Skip),
            (PromptKind::InDoubt, Answer::Abort, Abort),
            (PromptKind::Stopped, Answer::Retry, Go),
            (PromptKind::Stopped, Answer::Done, Done),
            (PromptKind::Stopped, Answer::Skip, Skip),
            (PromptKind::Stopped, Answer::Abort, Abort),
            (PromptKind::Running, Answer::Wait, Go),
            (PromptKind::Running, Answer::Stop, Abort),
            (PromptKind::Interrupt, Answer::Stop, Abort),
            (PromptKind::Interrupt, Answer::RollBack, Abort),
            (PromptKind::Interrupt, Answer::CarryOn, Go),
        ];
        for (kind, answer, want) in table {
            assert!(choices(kind).contains(&answer), "{kind:?} {answer:?}");
            assert_eq!(verdict(kind, answer), want, "{kind:?} {answer:?}");
        }
    }
}
