//! The HTTP side: `POST /alertmanager`, the bearer token, the body limit, and the reply.
//! A request is answered 200 only once its notification is on disk; anything wrong with
//! it gets a 4xx that says what, nothing is stored, and the server goes on.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::diagnose::Runner;
use super::intake::Intake;
use crate::alert::payload::{MAX_BODY, PayloadError, parse};

pub(crate) struct App {
    pub(crate) token: Option<String>,
    pub(crate) intake: Arc<Mutex<Intake>>,
    pub(crate) runner: Arc<Runner>,
    pub(crate) quiet: bool,
}

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/alertmanager", post(alertmanager))
        .with_state(app)
}

fn reply(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text + "\n",
    )
        .into_response()
}

async fn alertmanager(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    if let Some(token) = &app.token
        && !authorized(&headers, token)
    {
        return reply(
            StatusCode::UNAUTHORIZED,
            "error: a bearer token is required (Authorization: Bearer ...), and this one is not it"
                .into(),
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared.filter(|&n| n > MAX_BODY) {
        return too_large(size);
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return too_large(MAX_BODY + 1),
    };
    let notification = match parse(&bytes) {
        Ok(n) => n,
        Err(e) => return reply(StatusCode::BAD_REQUEST, format!("error: {e}")),
    };
    let intake = Arc::clone(&app.intake);
    // The write waits for the disk: off the runtime's thread.
    let accepted = tokio::task::spawn_blocking(move || {
        intake
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .accept(notification)
    })
    .await;
    let accepted = match accepted {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "error: cannot store a notification: {e}"
            );
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("error: cannot store the notification: {e}"),
            );
        }
        Err(e) => {
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("error: internal error (a bug in runbook: please report it): {e}"),
            );
        }
    };
    if !app.quiet {
        let mut err = std::io::stderr().lock();
        for (id, name, runbook) in &accepted.new {
            let to = runbook
                .as_deref()
                .map_or("no runbook matches".to_string(), |r| format!("runbook {r}"));
            let _ = writeln!(err, "alert {id} {name}: {to}");
        }
    }
    let jobs = accepted.jobs.len();
    for job in accepted.jobs {
        app.runner.start(job);
    }
    reply(
        StatusCode::OK,
        format!(
            "stored: {} alert{}, {} new, {jobs} rehearsal{} started",
            accepted.alerts,
            if accepted.alerts == 1 { "" } else { "s" },
            accepted.new.len(),
            if jobs == 1 { "" } else { "s" }
        ),
    )
}

fn too_large(size: usize) -> Response {
    reply(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("error: {}", PayloadError::TooLarge { size }),
    )
}

/// `Authorization: Bearer TOKEN`, compared in time that does not depend on where the
/// two first differ.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
