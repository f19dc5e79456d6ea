//! One integration-test binary: every test runs the real `runbook` binary through the
//! [`test::Test`] builder.

// Tests may unwrap: a failure here is a test failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod test;

mod alerts;
mod check;
mod commands;
mod diagnostics;
mod escapes;
mod exec;
mod fleet;
mod hostile;
mod hosts;
mod layout;
mod log;
mod properties;
mod pty;
mod recovery;
mod report;
mod resume;
mod secrets;
mod spawn;
mod stats;
mod streams;
mod templates;
mod ux;
