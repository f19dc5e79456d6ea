use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(runbook::run(std::env::args_os()))
}
