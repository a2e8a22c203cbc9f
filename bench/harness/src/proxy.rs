//! A counting, timing reverse proxy on loopback, put in front of moto and the CRS sandbox so
//! each backend call is counted and timed from the backend's side of the function.
//!
//! A call's time runs from the moment the proxy has the whole request until it has the whole
//! answer: the proxy-to-backend hop and the backend's own work. The function-to-proxy hop
//! stays on the function's side of the ledger (its HTTP client does that work either way).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::meter::{Kind, Meter};

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    meter: Arc<Meter>,
    tencent: bool,
}

/// Serves a proxy to `upstream` (`http://127.0.0.1:PORT`) on a fresh loopback port.
/// `tencent` says the upstream is the CRS sandbox (every call counts as Tencent).
pub async fn spawn(upstream: &str, meter: Arc<Meter>, tencent: bool) -> std::io::Result<SocketAddr> {
    let client =
        reqwest::Client::builder().no_proxy().pool_max_idle_per_host(256).build().map_err(std::io::Error::other)?;
    let proxy = Arc::new(Proxy { upstream: upstream.trim_end_matches('/').to_owned(), client, meter, tencent });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
            eprintln!("proxy stopped: {e}");
        }
    });
    Ok(addr)
}

fn classify(tencent: bool, headers: &HeaderMap, body: &[u8]) -> (Kind, String) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if tencent {
        let action = header("x-tc-action").or_else(|| form_urlencoded_action(body).map(|a| format!("v2:{a}")));
        return (Kind::Tencent, action.unwrap_or_else(|| "tencent:?".into()));
    }
    match header("x-amz-target") {
        Some(t) if t.starts_with("secretsmanager.") => (Kind::SecretsManager, t),
        Some(t) if t.starts_with("DynamoDB_") => (Kind::DynamoDb, t),
        Some(t) => (Kind::Other, t),
        None => (Kind::Other, "aws:?".into()),
    }
}

fn form_urlencoded_action(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| pair.strip_prefix("Action=")).map(str::to_owned)
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 << 20).await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let (kind, action) = classify(proxy.tencent, &parts.headers, &bytes);
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", proxy.upstream);
    let guard = proxy.meter.enter(kind, &action, peer);
    let mut request = proxy.client.request(parts.method, url);
    for (name, value) in &parts.headers {
        // Host is kept: both Tencent signatures cover it.
        if !matches!(name.as_str(), "content-length" | "connection" | "transfer-encoding") {
            request = request.header(name, value);
        }
    }
    let answer = match request.body(Bytes::clone(&bytes)).send().await {
        Ok(resp) => {
            let code = resp.status();
            let headers = resp.headers().clone();
            match resp.bytes().await {
                Ok(body) => Some((code, headers, body)),
                Err(_) => None,
            }
        }
        Err(_) => None,
    };
    drop(guard);
    let Some((code, headers, body)) = answer else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let mut response = Response::builder().status(code.as_u16());
    for (name, value) in &headers {
        if !matches!(name.as_str(), "content-length" | "connection" | "transfer-encoding") {
            response = response.header(name, value);
        }
    }
    response.body(Body::from(body)).unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY))
}

fn status(code: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = code;
    response
}
