//! `runbook serve` as a command: the flags checked into the receiver's settings.

use std::net::SocketAddr;

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::error::Error;
use crate::serve::{self, Settings};

pub(crate) fn serve(config: &Config, args: &ServeArgs) -> Result<u8, Error> {
    let listen: SocketAddr = args.listen.parse().map_err(|_| Error::Flag {
        flag: "listen",
        value: args.listen.clone(),
        problem: "not an address: give IP:PORT, such as 127.0.0.1:9095".into(),
    })?;
    let token = match &args.token_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            _ => {
                return Err(Error::Flag {
                    flag: "token-env",
                    value: var.clone(),
                    problem: format!("the environment variable {var} is not set, or empty"),
                });
            }
        },
    };
    if !config.dir.is_dir() {
        return Err(
            crate::runbook::lookup::LookupError::NoDir(config.dir.display().to_string()).into(),
        );
    }
    let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    serve::run(Settings {
        listen,
        token,
        token_env: args.token_env.clone(),
        max_diagnostics: usize::from(args.max_diagnostics),
        dir: abs(&config.dir),
        log_dir: abs(config.log_dir()?),
        quiet: config.quiet,
    })
}
