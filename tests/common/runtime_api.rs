//! The real `crs-restore` binary against a loopback Lambda Runtime API, so a test goes through
//! the runtime library's own loop: its payload decoding and its own logging, as on Lambda.
//!
//! The same server plays the Lambda `Invoke` API the function calls on itself (jobs, hand-offs,
//! Slack prompts): an `InvocationType=Event` invoke is queued as the next invocation, as Lambda
//! would deliver it.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// What the function posted back for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `POST /invocation/{id}/response`: the handler's answer.
    Response(String),
    /// `POST /invocation/{id}/error`: the runtime failed the invocation.
    Error(String),
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<(String, Vec<u8>)>,
    answers: HashMap<String, Answer>,
    /// Events the function sent to itself through `Invoke`, by request id.
    self_invoked: Vec<String>,
    next: usize,
}

#[derive(Clone)]
pub struct RuntimeApi {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind runtime api");
        let addr = listener.local_addr().expect("addr");
        let api = Self { addr, inner: Arc::default() };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/2015-03-31/functions/{name}/invocations", post(invoke))
            .with_state(api.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        api
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues an invocation with exactly these payload bytes; returns its request id.
    pub fn push(&self, payload: impl Into<Vec<u8>>) -> String {
        let mut inner = self.lock();
        inner.next += 1;
        let id = format!("it-request-{}", inner.next);
        inner.queue.push_back((id.clone(), payload.into()));
        id
    }

    /// Waits (bounded) for the answer to `id`.
    pub async fn answer(&self, id: &str, limit: Duration) -> Option<Answer> {
        let end = tokio::time::Instant::now() + limit;
        loop {
            if let Some(answer) = self.lock().answers.get(id).cloned() {
                return Some(answer);
            }
            if tokio::time::Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Request ids of the invocations the function queued on itself, in order.
    pub fn self_invoked(&self) -> Vec<String> {
        self.lock().self_invoked.clone()
    }

    /// Waits (bounded) until every queued invocation, self-invoked ones included, was answered.
    pub async fn settle(&self, limit: Duration) {
        let end = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < end {
            let settled = {
                let inner = self.lock();
                inner.queue.is_empty() && inner.answers.len() == inner.next
            };
            if settled {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn next(State(api): State<RuntimeApi>) -> Response {
    loop {
        if let Some((id, body)) = api.lock().queue.pop_front() {
            let deadline_ms =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis()
                    + 120_000;
            return (
                [
                    ("content-type", "application/json".to_owned()),
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:000000000000:function:crs-restore-it".to_owned(),
                    ),
                ],
                body,
            )
                .into_response();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn record(api: &RuntimeApi, id: String, answer: Answer) -> StatusCode {
    api.lock().answers.insert(id, answer);
    StatusCode::ACCEPTED
}

async fn response(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    record(&api, id, Answer::Response(String::from_utf8_lossy(&body).into_owned()))
}

async fn error(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    record(&api, id, Answer::Error(String::from_utf8_lossy(&body).into_owned()))
}

async fn init_error(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    record(&api, "init".to_owned(), Answer::Error(String::from_utf8_lossy(&body).into_owned()))
}

/// Lambda `Invoke` with `InvocationType=Event`: queued, answered 202 with no body.
async fn invoke(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    let id = api.push(body.to_vec());
    api.lock().self_invoked.push(id);
    StatusCode::ACCEPTED
}

/// A running `crs-restore` process; killed on drop. Its stdout and stderr (the log lines) are
/// collected as they come.
pub struct Function {
    child: Child,
    logs: Arc<Mutex<String>>,
}

impl Function {
    /// Starts the binary as Lambda would: the runtime variables, the application log level
    /// (`AWS_LAMBDA_LOG_LEVEL`, as the template's `LoggingConfig` sets it), AWS services at
    /// `aws_endpoint` (moto), `Invoke` at the runtime API, and the function's own `env`.
    pub fn spawn(api: &RuntimeApi, aws_endpoint: &str, log_level: &str, env: &HashMap<&'static str, String>) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crs-restore"))
            .env_clear()
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "crs-restore-it")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", log_level)
            .env("AWS_ENDPOINT_URL", aws_endpoint)
            .env("AWS_ENDPOINT_URL_LAMBDA", format!("http://{}", api.addr))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_PROXY", "127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("crs-restore starts");
        let logs = Arc::new(Mutex::new(String::new()));
        let collect = |stream: Box<dyn std::io::Read + Send>| {
            let logs = Arc::clone(&logs);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut logs = logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    logs.push_str(&line);
                    logs.push('\n');
                }
            });
        };
        collect(Box::new(child.stdout.take().expect("stdout")));
        collect(Box::new(child.stderr.take().expect("stderr")));
        Self { child, logs }
    }

    /// Every line the process wrote so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
