//! One integration-test binary: every test runs the real `runbook` binary through the
//! [`test::Test`] builder.

mod test;

mod check;
mod commands;
mod diagnostics;
