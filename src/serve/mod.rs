//! `runbook serve`: the Alertmanager webhook receiver ([`http`]), what it does with a
//! notification ([`intake`]: journal, routes, which alerts to rehearse), the runbooks it
//! routes to ([`runbooks`]) and the bounded runner of diagnostic rehearsals ([`diagnose`]).
//! The alerts themselves (payload, routing, journal) are `crate::alert`'s.

mod diagnose;
mod http;
mod intake;
mod runbooks;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::alert::store;
use crate::error::{Error, exit};

/// The receiver's settings, checked.
pub(crate) struct Settings {
    pub(crate) listen: SocketAddr,
    pub(crate) token: Option<String>,
    pub(crate) token_env: Option<String>,
    pub(crate) max_diagnostics: usize,
    pub(crate) dir: PathBuf,
    pub(crate) log_dir: PathBuf,
    pub(crate) quiet: bool,
}

/// How long a stopping server waits for rehearsals to record their end.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves until SIGINT or SIGTERM.
pub(crate) fn run(s: Settings) -> Result<u8, Error> {
    let io = |action: &'static str, path: PathBuf| {
        move |source: std::io::Error| Error::Io {
            action,
            path,
            source,
        }
    };
    let alerts_dir = store::dir(&s.log_dir);
    let Some(_lock) = store::lock(&s.log_dir).map_err(io("lock", alerts_dir.clone()))? else {
        return Err(Error::Locked(format!(
            "another `runbook serve` receives alerts into {} (it holds {}/serve.lock)",
            alerts_dir.display(),
            alerts_dir.display()
        )));
    };
    let journal = store::Journal::open(&s.log_dir)
        .map_err(io("open the alerts journal in", alerts_dir.clone()))?;
    let read =
        store::read(&s.log_dir).map_err(io("read the alerts journal in", alerts_dir.clone()))?;
    let exe = std::env::current_exe().map_err(io("find", PathBuf::from("the runbook binary")))?;
    let intake = Arc::new(Mutex::new(intake::Intake {
        journal,
        alerts: read.alerts,
        runbooks: runbooks::Runbooks::new(s.dir.clone()),
    }));
    let runner = Arc::new(diagnose::Runner::new(
        s.max_diagnostics,
        exe,
        s.dir.clone(),
        s.log_dir.clone(),
        s.token_env.clone(),
        Arc::clone(&intake),
    ));
    let app = Arc::new(http::App {
        token: s.token.clone(),
        intake,
        runner: Arc::clone(&runner),
        quiet: s.quiet,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let listen = s.listen;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(io("listen on", PathBuf::from(listen.to_string())))?;
        let bound = listener
            .local_addr()
            .map_err(io("listen on", PathBuf::from(listen.to_string())))?;
        {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "listening on http://{bound}/alertmanager");
            if read.skipped > 0 {
                let _ = writeln!(
                    err,
                    "warning: {} line(s) of the alerts journal could not be read and were skipped",
                    read.skipped
                );
            }
            if !bound.ip().is_loopback() && s.token.is_none() {
                let _ = writeln!(
                    err,
                    "warning: listening beyond loopback without --token-env: anyone who reaches {bound} can post alerts"
                );
            }
        }
        axum::serve(listener, http::router(app))
            .with_graceful_shutdown(stop_signal())
            .await
            .map_err(io("serve on", PathBuf::from(bound.to_string())))?;
        runner.stop_all();
        let deadline = tokio::time::Instant::now() + DRAIN;
        while runner.busy() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok::<(), Error>(())
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(exit::OK)
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        // Without signal handlers the default action (exit) still stops the server.
        _ => std::future::pending::<()>().await,
    }
}
