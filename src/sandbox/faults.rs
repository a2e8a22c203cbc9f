//! Injected faults: what they are, how the control plane spells them, and how a request that
//! draws one is answered instead of (or, for a delay, after) being processed.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::conn::Connection;
use super::errors::ApiError;
use super::{JSON_CONTENT_TYPE, Shared};

/// A queued misbehaviour; requests consume the first fault that matches their Action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `None` matches any action.
    pub action: Option<String>,
    pub kind: FaultKind,
    pub times: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// A Tencent error by short name (see `errors::ERROR_CODES`), in the request's wire format.
    Error { name: String },
    /// This status with a small plain-text body, as a gateway in front of the API would answer.
    HttpStatus(u16),
    /// HTTP 200 with an HTML page instead of JSON.
    Html,
    /// HTTP 200 with the first half of a JSON answer.
    TruncatedJson,
    /// The request is processed for real (a restore does start), then answered this much later:
    /// the client's "timed out, but did it happen?" case.
    DelayResponse(Duration),
    /// No answer at all: the connection closes without a response. The request is not processed.
    CloseConnection,
}

impl Fault {
    pub fn error(action: &str, name: &str) -> Self {
        Self { action: Some(action.to_owned()), kind: FaultKind::Error { name: name.to_owned() }, times: 1 }
    }
}

/// `POST /_sandbox/faults` body, e.g. `{"action":"RestoreInstance","kind":{"error":"PasswordError"},"times":1}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FaultSpec {
    #[serde(default)]
    action: Option<String>,
    kind: KindSpec,
    #[serde(default = "once")]
    times: usize,
}

fn once() -> usize {
    1
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum KindSpec {
    Error(String),
    HttpStatus(u16),
    Html,
    TruncatedJson,
    DelayResponseMs(u64),
    CloseConnection,
}

impl From<FaultSpec> for Fault {
    fn from(spec: FaultSpec) -> Self {
        let kind = match spec.kind {
            KindSpec::Error(name) => FaultKind::Error { name },
            KindSpec::HttpStatus(status) => FaultKind::HttpStatus(status),
            KindSpec::Html => FaultKind::Html,
            KindSpec::TruncatedJson => FaultKind::TruncatedJson,
            KindSpec::DelayResponseMs(ms) => FaultKind::DelayResponse(Duration::from_millis(ms)),
            KindSpec::CloseConnection => FaultKind::CloseConnection,
        };
        Self { action: spec.action, kind, times: spec.times }
    }
}

/// How one API version writes errors and what a plausible answer of its looks like.
pub(crate) trait Wire {
    fn error_response(&self, err: &ApiError) -> Response;
    /// A complete JSON answer for this wire format, to be cut in half.
    fn sample_json(&self) -> String;
}

/// Counts the call, draws a fault if one matches, and otherwise runs `process` (which does all
/// the checking and the work, synchronously).
pub(crate) async fn answer(
    shared: &Shared,
    conn: &Connection,
    wire: &impl Wire,
    action: Option<&str>,
    process: impl FnOnce() -> Response,
) -> Response {
    let fault = {
        let mut state = shared.lock();
        if let Some(action) = action {
            state.count_call(action);
        }
        state.take_fault(action)
    };
    let Some(kind) = fault else {
        return process();
    };
    tracing::info!(?kind, action, peer = %conn.peer, "answering with an injected fault");
    match kind {
        FaultKind::Error { name } => wire.error_response(&ApiError::named(&name)),
        FaultKind::HttpStatus(status) => {
            // 1xx would turn the exchange into something else entirely (e.g. 101 Switching Protocols).
            let status = StatusCode::from_u16(status)
                .ok()
                .filter(|s| (200..=599).contains(&s.as_u16()))
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("sandbox: injected HTTP {}\n", status.as_u16()),
            )
                .into_response()
        }
        FaultKind::Html => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>\
             <p>sandbox: injected HTML answer</p></body></html>",
        )
            .into_response(),
        FaultKind::TruncatedJson => {
            let full = wire.sample_json();
            let half = full.get(..full.len() / 2).unwrap_or_default().to_owned();
            (StatusCode::OK, [(header::CONTENT_TYPE, JSON_CONTENT_TYPE)], half).into_response()
        }
        FaultKind::DelayResponse(delay) => {
            let response = process();
            let mut shutdown = shared.shutdown.subscribe();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = shutdown.wait_for(|stopping| *stopping) => {}
            }
            response
        }
        FaultKind::CloseConnection => {
            conn.cut();
            StatusCode::OK.into_response()
        }
    }
}
