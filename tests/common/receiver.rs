//! A callback receiver on loopback that verifies Standard Webhooks signatures with its own,
//! independent implementation and answers with a scripted sequence of statuses.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::Value;

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub webhook_id: String,
    pub verified: bool,
    pub event: Value,
    pub answered: u16,
}

#[derive(Default)]
struct Inner {
    script: Vec<u16>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    key: Arc<Vec<u8>>,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    /// `script` is the status for each delivery in turn; after it runs out, 204.
    pub async fn start(whsec: &str, script: &[u16]) -> Self {
        let key =
            base64::engine::general_purpose::STANDARD.decode(whsec.trim_start_matches("whsec_")).expect("receiver key");
        let inner = Arc::new(Mutex::new(Inner { script: script.iter().rev().copied().collect(), received: vec![] }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let me = Self { addr, key: Arc::new(key), inner };
        let app = Router::new().fallback(receive).with_state(me.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        me
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/restore", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().expect("lock").received.clone()
    }

    /// Waits (bounded) until `n` deliveries arrived.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let got = self.received();
            if got.len() >= n || tokio::time::Instant::now() >= end {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until an event of `kind` arrived (or the limit passed) and returns all events.
    pub async fn wait_for_kind(&self, kind: &str, limit: Duration) -> Vec<Received> {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let got = self.received();
            if got.iter().any(|r| r.event["type"] == kind) || tokio::time::Instant::now() >= end {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> bool {
        let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let (id, ts, sigs) = (get("webhook-id"), get("webhook-timestamp"), get("webhook-signature"));
        let Ok(ts_num) = ts.parse::<i64>() else { return false };
        if (super::now() - ts_num).abs() > 300 {
            return false;
        }
        let mut signed = format!("{id}.{ts}.").into_bytes();
        signed.extend_from_slice(body);
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("key");
        mac.update(&signed);
        let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        sigs.split(' ').any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
    let verified = r.verify(&headers, &body);
    let event = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let webhook_id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut inner = r.inner.lock().expect("lock");
    let status = inner.script.pop().unwrap_or(204);
    inner.received.push(Received { webhook_id, verified, event, answered: status });
    (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), "")
}
