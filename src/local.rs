//! Local mode: serves the function on a loopback port by turning each HTTP request into a real
//! Function URL event, so `make run` exercises exactly the code path Lambda does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::handler::handle_event;
use crate::state::AppState;

/// Serves until the process ends. Refuses anything but a loopback address: this endpoint is
/// for development and carries no TLS.
pub async fn serve(addr: SocketAddr, state: Arc<AppState>) -> std::io::Result<()> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "local mode only binds loopback addresses"));
    }
    serve_on(tokio::net::TcpListener::bind(addr).await?, state).await
}

/// Serves on an already bound loopback listener (tests bind port 0 and read it first).
pub async fn serve_on(listener: tokio::net::TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    let bound = listener.local_addr()?;
    if !bound.ip().is_loopback() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "local mode only binds loopback addresses"));
    }
    // Scripts wait for this exact line to learn the port.
    println!("crs-restore listening on http://{bound}");
    tracing::info!(%bound, "local mode: serving Function URL events on loopback");
    let app = Router::new().fallback(invoke).with_state(state);
    axum::serve(listener, app).await
}

static REQUESTS: AtomicU64 = AtomicU64::new(0);

async fn invoke(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap, body: Bytes) -> Response<Body> {
    let event = function_url_event(&method, &headers, &body);
    let answer = handle_event(&state, event).await;
    to_http(&answer)
}

/// Builds a payload v2.0 event the way Function URLs do: lower-case header names, repeated
/// headers joined with commas, and the body as text only for JSON/text content types.
pub fn function_url_event(method: &Method, headers: &HeaderMap, body: &[u8]) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match map.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                map.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let textual = headers.get("content-type").and_then(|v| v.to_str().ok()).is_none_or(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.starts_with("application/json") || ct.starts_with("text/")
    });
    let (body, encoded) = match std::str::from_utf8(body) {
        Ok(text) if textual => (text.to_owned(), false),
        _ => (STANDARD.encode(body), true),
    };
    let n = REQUESTS.fetch_add(1, Ordering::Relaxed);
    json!({
        "version": "2.0",
        "rawPath": "/",
        "headers": map,
        "body": body,
        "isBase64Encoded": encoded,
        "requestContext": {
            "http": {"method": method.as_str(), "path": "/", "sourceIp": "127.0.0.1"},
            "requestId": format!("local-{n}"),
        },
    })
}

fn to_http(answer: &Value) -> Response<Body> {
    let status = answer
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let body = match answer.get("body") {
        Some(Value::String(s)) => s.clone(),
        // A non-HTTP answer (not expected here) is returned as JSON.
        _ => answer.to_string(),
    };
    let mut builder = Response::builder().status(status);
    if let Some(Value::Object(headers)) = answer.get("headers") {
        for (k, v) in headers {
            if let Some(v) = v.as_str() {
                builder = builder.header(k.as_str(), v);
            }
        }
    } else {
        builder = builder.header("content-type", "application/json");
    }
    builder.body(Body::from(body)).unwrap_or_else(|_| Response::new(Body::from("{}")))
}
