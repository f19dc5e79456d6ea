//! The one road out of the executor: every fact is an [`Event`] given to [`Emitter::emit`],
//! and every piece of step output to [`Emitter::output`]. Each goes to the durable log
//! first, then to the display; both are [`Sink`]s. Nothing in `exec/` prints.

use crate::event as ev;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::event::{Event, Level, LogFailed, Output, Sink};

struct Sinks {
    log: Box<dyn Sink>,
    display: Box<dyn Sink>,
    /// Set by the first failed write; the log is not written again after it.
    failed: Option<LogFailed>,
}

/// A handle on the sinks, shared by the executor and its tasks.
#[derive(Clone)]
pub(crate) struct Emitter {
    sinks: Arc<Mutex<Sinks>>,
}

impl Emitter {
    pub(crate) fn new(log: Box<dyn Sink>, display: Box<dyn Sink>) -> Self {
        Emitter {
            sinks: Arc::new(Mutex::new(Sinks {
                log,
                display,
                failed: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sinks> {
        // A panic while holding the lock must not lose the rest of the log.
        self.sinks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `event` in the log (durably where the log says so), then shows it. An error
    /// means the log could not be written, now or earlier; the display has been told.
    pub(crate) fn emit(&self, event: &Event) -> Result<(), LogFailed> {
        self.record(event, |log| log.event(event))
    }

    /// Records `event` without making it durable yet, then shows it: [`Emitter::sync_then`]
    /// follows, before anything the event announces can happen.
    pub(crate) fn emit_unsynced(&self, event: &Event) -> Result<(), LogFailed> {
        self.record(event, |log| log.event_unsynced(event))
    }

    /// Gives `event` to the log with `log`, then to the display.
    fn record(
        &self,
        event: &Event,
        log: impl FnOnce(&mut dyn Sink) -> io::Result<()>,
    ) -> Result<(), LogFailed> {
        let mut sinks = self.lock();
        let logged = sinks.write(|| what(event), log);
        let _ = sinks.display.event(event);
        logged
    }

    /// Makes every record so far durable on the log's sync thread, then calls `on_durable`
    /// there; what the returned future gives is the sync's result. `event` is the record
    /// that needed it, named in the message should the sync fail. The sync starts now,
    /// whether or not the future is awaited.
    pub(crate) fn sync_then<F: FnOnce() + Send + 'static>(
        &self,
        event: &Event,
        on_durable: F,
    ) -> impl Future<Output = Result<(), LogFailed>> + use<'_, F> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let failed = {
            let mut sinks = self.lock();
            if sinks.failed.is_none() {
                sinks.log.sync_then(Box::new(move |r| {
                    if r.is_ok() {
                        on_durable();
                    }
                    let _ = tx.send(r);
                }));
            }
            sinks.failed.clone()
        };
        let what = what(event);
        async move {
            if let Some(failed) = failed {
                return Err(failed);
            }
            let e = match rx.await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e,
                Err(_) => io::Error::other("the log's sync thread stopped"),
            };
            self.lock().write(|| what, |_| Err(e))
        }
    }

    /// Whether the log's syncs are known to be cheap: a step then starts after its start is
    /// synced, rather than while it is.
    pub(crate) fn syncs_are_cheap(&self) -> bool {
        self.lock().log.syncs_are_cheap()
    }

    /// Records several events with one sync of the log (the starts of a batch of hosts,
    /// all on disk before any of their processes is spawned), then shows them.
    pub(crate) fn emit_all(&self, events: &[Event]) -> Result<(), LogFailed> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let mut sinks = self.lock();
        let logged = sinks.write(|| what(first), |log| log.events(events));
        for e in events {
            let _ = sinks.display.event(e);
        }
        logged
    }

    /// Gives a piece of output to the log (up to its cap) and the display.
    pub(crate) fn output(&self, output: &Output<'_>) -> Result<(), LogFailed> {
        let mut sinks = self.lock();
        let logged = sinks.write(
            || format!("output of step {}", output.step),
            |log| log.output(output),
        );
        let _ = sinks.display.output(output);
        logged
    }

    /// Shows a notice. It is logged too, like every event.
    pub(crate) fn notice(&self, level: Level, step: Option<&str>, text: String) {
        let _ = self.emit(&Event::Notice(ev::Notice {
            level,
            text,
            step: step.map(str::to_string),
        }));
    }

    /// Why the log stopped being written, if it did.
    pub(crate) fn failure(&self) -> Option<LogFailed> {
        self.lock().failed.clone()
    }
}

impl Sinks {
    /// Writes to the log with `f`; `what` says what the record was, for the operator.
    fn write(
        &mut self,
        what: impl FnOnce() -> String,
        f: impl FnOnce(&mut dyn Sink) -> io::Result<()>,
    ) -> Result<(), LogFailed> {
        if let Some(failed) = &self.failed {
            return Err(failed.clone());
        }
        match f(self.log.as_mut()) {
            Ok(()) => Ok(()),
            Err(e) => {
                let failed = LogFailed(e.to_string());
                self.failed = Some(failed.clone());
                // Said once, on the display only: the log is what failed.
                let _ = self.display.event(&Event::Notice(ev::Notice {
                    level: Level::Error,
                    text: format!(
                        "{failed}; {} is not recorded. No new step starts; the run stops \
                         when the running ones end, and is left open for `runbook resume` \
                         once there is room",
                        what()
                    ),
                    step: None,
                }));
                Err(failed)
            }
        }
    }
}

/// What a record says, in a few words: what is lost if it cannot be written.
fn what(event: &Event) -> String {
    match event {
        Event::RunStarted(_) => "the start of the run".into(),
        Event::StepStarted(ev::StepStarted { step, .. }) => format!("the start of step {step}"),
        Event::StepOutput(ev::StepOutput { step, .. }) => format!("output of step {step}"),
        Event::StepSpawned(ev::StepSpawned { step, .. }) => {
            format!("the process group of step {step}")
        }
        Event::StepFinished(ev::StepFinished { step, status, .. }) => {
            format!("the end of step {step} ({})", status.as_str())
        }
        Event::StepRetrying(ev::StepRetrying { step, .. }) => format!("a retry of step {step}"),
        Event::PromptOpened(ev::PromptOpened { step, .. })
        | Event::PromptClosed(ev::PromptClosed { step, .. }) => {
            format!("a prompt for step {step}")
        }
        Event::Notice(ev::Notice { .. }) => "a notice".into(),
        Event::NotRolledBack(ev::NotRolledBack { .. }) => {
            "the list of changes not rolled back".into()
        }
        Event::Milestone(ev::Milestone { name, .. }) => format!("the milestone {name}"),
        Event::RunResumed(ev::RunResumed { .. }) => "the resumption of the run".into(),
        Event::RunFinished(ev::RunFinished { status, .. }) => {
            format!("the end of the run ({})", status.as_str())
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A sink that keeps what it receives, and can be told to fail.
    #[derive(Clone, Default)]
    pub(crate) struct Memory {
        pub events: Arc<Mutex<Vec<Event>>>,
        pub fail: bool,
    }

    impl Sink for Memory {
        fn event(&mut self, event: &Event) -> io::Result<()> {
            if self.fail {
                return Err(io::Error::other("No space left on device"));
            }
            self.events.lock().unwrap().push(event.clone());
            Ok(())
        }
        fn output(&mut self, _: &Output<'_>) -> io::Result<()> {
            if self.fail {
                return Err(io::Error::other("No space left on device"));
            }
            Ok(())
        }
    }

    fn milestone() -> Event {
        Event::Milestone(ev::Milestone {
            name: "mitigated".into(),
            step: "a".into(),
        })
    }

    #[test]
    fn a_failed_log_is_said_once_on_the_display_and_never_written_again() {
        let log = Memory {
            fail: true,
            ..Memory::default()
        };
        let display = Memory::default();
        let shown = display.events.clone();
        let emitter = Emitter::new(Box::new(log), Box::new(display));
        assert!(emitter.emit(&milestone()).is_err());
        assert!(emitter.emit(&milestone()).is_err());
        let shown = shown.lock().unwrap();
        let notices = shown
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::Notice(ev::Notice {
                        level: Level::Error,
                        ..
                    })
                )
            })
            .count();
        assert_eq!(notices, 1);
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert!(emitter.failure().is_some());
    }
}
