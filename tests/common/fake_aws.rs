//! A scriptable fake of the two AWS JSON APIs the function calls (Secrets Manager, JSON 1.1, and
//! DynamoDB, JSON 1.0) on 127.0.0.1: it serves secrets from a map and answers any operation with
//! a scripted fault (an AWS error document, a bare HTTP status, garbage, or silence past the SDK's
//! timeouts). Included with `#[path = "common/fake_aws.rs"] mod fake_aws;`.
#![allow(dead_code)] // each test binary uses a different part of it

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// How the fake answers one operation.
#[derive(Debug, Clone)]
pub enum Answer {
    /// An AWS error document (`{"__type", "message"}`) with this HTTP status.
    AwsError { status: u16, kind: String, message: String },
    /// This status and body, verbatim.
    Raw { status: u16, content_type: &'static str, body: String },
    /// Nothing until this much time has passed, then a 500.
    Sleep(Duration),
    /// The healthy answer as it was when the call arrived, sent this much later (a slow read).
    Late(Duration),
}

impl Answer {
    /// Secrets Manager's and DynamoDB's throttling answer.
    pub fn throttling() -> Self {
        Self::aws_error(400, "ThrottlingException", "Rate exceeded")
    }

    pub fn aws_error(status: u16, kind: &str, message: &str) -> Self {
        Self::AwsError { status, kind: kind.to_owned(), message: message.to_owned() }
    }

    /// A bare status with a plain-text body, as a load balancer in front of the API would answer.
    pub fn status(status: u16) -> Self {
        Self::Raw { status, content_type: "text/plain", body: format!("fake aws: HTTP {status}\n") }
    }
}

#[derive(Default)]
struct Inner {
    secrets: HashMap<String, String>,
    binary_secrets: HashMap<String, Vec<u8>>,
    /// Operation name (`GetSecretValue`, `PutItem`, ...) → scripted answer, for every call.
    rules: HashMap<String, Answer>,
    calls: HashMap<String, usize>,
}

/// A running fake; clones share the server.
#[derive(Clone)]
pub struct FakeAws {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FakeAws {
    /// Binds a free loopback port and serves until the test's runtime ends.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake aws");
        let addr = listener.local_addr().expect("addr");
        let me = Self { addr, inner: Arc::default() };
        let app = Router::new().fallback(serve).with_state(me.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        me
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates or replaces a secret with a `SecretString`.
    pub fn put_secret(&self, id: &str, value: &str) {
        let mut inner = self.lock();
        inner.binary_secrets.remove(id);
        inner.secrets.insert(id.to_owned(), value.to_owned());
    }

    /// Replaces a secret with one that has only a `SecretBinary`.
    pub fn put_binary_secret(&self, id: &str, value: &[u8]) {
        let mut inner = self.lock();
        inner.secrets.remove(id);
        inner.binary_secrets.insert(id.to_owned(), value.to_vec());
    }

    pub fn delete_secret(&self, id: &str) {
        let mut inner = self.lock();
        inner.secrets.remove(id);
        inner.binary_secrets.remove(id);
    }

    /// From now on, every call of `operation` gets `answer`.
    pub fn script(&self, operation: &str, answer: Answer) {
        self.lock().rules.insert(operation.to_owned(), answer);
    }

    /// Calls received for `operation` (`GetSecretValue`, `PutItem`, ...), retries included.
    pub fn calls(&self, operation: &str) -> usize {
        self.lock().calls.get(operation).copied().unwrap_or(0)
    }
}

async fn serve(State(aws): State<FakeAws>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (service, operation) = target.split_once('.').unwrap_or(("", target));
    let json_version = if service.starts_with("DynamoDB") { "1.0" } else { "1.1" };
    let rule = {
        let mut inner = aws.lock();
        *inner.calls.entry(operation.to_owned()).or_default() += 1;
        inner.rules.get(operation).cloned()
    };
    match rule {
        Some(Answer::AwsError { status, kind, message }) => aws_json(status, json_version, &error_doc(&kind, &message)),
        Some(Answer::Raw { status, content_type, body }) => {
            (status_code(status), [(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Some(Answer::Sleep(d)) => {
            tokio::time::sleep(d).await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Some(Answer::Late(d)) => {
            let response = answer(&aws, operation, json_version, &body);
            tokio::time::sleep(d).await;
            response
        }
        None => answer(&aws, operation, json_version, &body),
    }
}

/// What a healthy service answers.
fn answer(aws: &FakeAws, operation: &str, json_version: &str, body: &[u8]) -> Response {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match operation {
        "GetSecretValue" => {
            let id = request["SecretId"].as_str().unwrap_or_default().to_owned();
            let inner = aws.lock();
            let mut doc = json!({
                "ARN": format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{id}-AbCdEf"),
                "Name": id,
                "VersionId": "00000000-0000-4000-8000-000000000001",
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": 1_764_000_000.0,
            });
            if let Some(value) = inner.secrets.get(&id) {
                doc["SecretString"] = value.clone().into();
            } else if let Some(bytes) = inner.binary_secrets.get(&id) {
                use base64::Engine as _;
                doc["SecretBinary"] = base64::engine::general_purpose::STANDARD.encode(bytes).into();
            } else {
                let doc = error_doc("ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
                return aws_json(400, json_version, &doc);
            }
            aws_json(200, json_version, &doc)
        }
        // The idempotency store's writes succeed and it never finds an item: enough for faults
        // scripted on one operation while the others behave.
        "PutItem" | "UpdateItem" | "DeleteItem" | "GetItem" => aws_json(200, json_version, &json!({})),
        _ => aws_json(400, json_version, &error_doc("UnknownOperationException", "not faked")),
    }
}

fn error_doc(kind: &str, message: &str) -> Value {
    json!({"__type": kind, "message": message})
}

fn aws_json(status: u16, json_version: &str, doc: &Value) -> Response {
    let content_type = format!("application/x-amz-json-{json_version}");
    (status_code(status), [(header::CONTENT_TYPE, content_type)], doc.to_string()).into_response()
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
