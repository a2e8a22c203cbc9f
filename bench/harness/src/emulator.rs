//! A minimal Lambda Runtime API on loopback, one per function process: it hands out events on
//! `GET /2018-06-01/runtime/invocation/next`, takes answers on `POST .../{id}/response` and
//! `.../{id}/error`, and times, from the moment the process was spawned:
//!
//! * init: spawn → first `/next`;
//! * cold: spawn → first response;
//! * every invocation: `/next` answered → response received, with the backend time and calls
//!   that fell inside it (from the timing proxies' [`Meter`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use tokio::sync::watch;

use crate::meter::{Meter, Snapshot};

/// Builds the body of event number `i` (0 is the cold one). Called when the runtime asks for
/// it, so a signed event is signed at the time it is delivered.
pub type EventFn = Box<dyn Fn(usize) -> Vec<u8> + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Invocation {
    pub index: usize,
    pub latency: Duration,
    /// Backend calls and time inside this invocation.
    pub backend: Snapshot,
    /// `statusCode` of the answer, when it is a Function URL response.
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl Invocation {
    /// The function's own share: latency minus the time a backend call was in flight.
    pub fn own(&self) -> Duration {
        self.latency.saturating_sub(Duration::from_nanos(self.backend.wall_ns))
    }
}

/// Everything measured for one process.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Spawn → first `/next`.
    pub init: Option<Duration>,
    /// Backend calls made before the first `/next` (there should be none).
    pub init_backend: Snapshot,
    /// Spawn → first response.
    pub first_response: Option<Duration>,
    pub invocations: Vec<Invocation>,
    /// (invocations answered, VmRSS in KiB), every `rss_every` invocations.
    pub rss_samples: Vec<(usize, u64)>,
    /// VmHWM in KiB just before the process was stopped.
    pub peak_rss_kib: Option<u64>,
    /// CPU time of all the process's threads (schedstat): at the first `/next`, at the first
    /// response, and when it was stopped.
    pub cpu_at_init_ns: Option<u64>,
    pub cpu_at_first_ns: Option<u64>,
    pub cpu_at_end_ns: Option<u64>,
    pub failure: Option<String>,
}

struct Inner {
    t0: Instant,
    at_spawn: Snapshot,
    pid: Option<u32>,
    inflight: HashMap<usize, (Instant, Snapshot)>,
    run: Run,
}

struct Emu {
    events: EventFn,
    total: usize,
    rss_every: usize,
    trace_ids: bool,
    meter: Arc<Meter>,
    next: AtomicUsize,
    answered: AtomicUsize,
    inner: Mutex<Inner>,
    finished: watch::Sender<bool>,
    stop: watch::Sender<bool>,
}

impl Emu {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn answered_one(&self, pid: Option<u32>) {
        let done = self.answered.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(pid) = pid
            && (done.is_multiple_of(self.rss_every) || done == self.total)
            && let Some(rss) = proc_status_kib(pid, "VmRSS:")
        {
            self.inner().run.rss_samples.push((done, rss));
        }
        if done >= self.total {
            self.finished.send_replace(true);
        }
    }
}

fn request_index(id: &str) -> Option<usize> {
    id.strip_prefix("bench-")?.parse().ok()
}

async fn next(State(emu): State<Arc<Emu>>) -> Response {
    let now = Instant::now();
    let index = emu.next.fetch_add(1, Ordering::SeqCst);
    {
        let mut inner = emu.inner();
        if inner.run.init.is_none() {
            inner.run.init = Some(now.duration_since(inner.t0));
            inner.run.init_backend = emu.meter.snapshot().since(inner.at_spawn);
            inner.run.cpu_at_init_ns = inner.pid.and_then(cpu_ns);
        }
    }
    if emu.total == 0 {
        // Init only: done as soon as the runtime asks for work.
        emu.finished.send_replace(true);
    }
    if index >= emu.total {
        // No more work: park the runtime until the process is stopped.
        let mut stop = emu.stop.subscribe();
        let _ = stop.wait_for(|s| *s).await;
        return empty(StatusCode::GONE);
    }
    let body = (emu.events)(index);
    let deadline_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()) + 60_000;
    let started = Instant::now();
    emu.inner().inflight.insert(index, (started, emu.meter.snapshot()));
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", format!("bench-{index}"))
        .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
        .header("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:000000000000:function:bench");
    if emu.trace_ids {
        // A new X-Ray trace id per invocation, as Lambda sends.
        response = response.header("lambda-runtime-trace-id", format!("Root=1-00000000-{index:024x};Sampled=0"));
    }
    response.body(Body::from(body)).unwrap_or_else(|_| empty(StatusCode::INTERNAL_SERVER_ERROR))
}

fn finish(emu: &Emu, id: &str, status: Option<u16>, error: Option<String>) -> StatusCode {
    let now = Instant::now();
    let after = emu.meter.snapshot();
    let Some(index) = request_index(id) else {
        return StatusCode::BAD_REQUEST;
    };
    let pid = {
        let mut inner = emu.inner();
        let Some((started, before)) = inner.inflight.remove(&index) else {
            return StatusCode::BAD_REQUEST;
        };
        if inner.run.first_response.is_none() {
            inner.run.first_response = Some(now.duration_since(inner.t0));
            inner.run.cpu_at_first_ns = inner.pid.and_then(cpu_ns);
        }
        let latency = now.duration_since(started);
        inner.run.invocations.push(Invocation { index, latency, backend: after.since(before), status, error });
        inner.pid
    };
    emu.answered_one(pid);
    StatusCode::ACCEPTED
}

async fn response(State(emu): State<Arc<Emu>>, UrlPath(id): UrlPath<String>, body: Bytes) -> Response {
    let status = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("statusCode").and_then(serde_json::Value::as_u64))
        .and_then(|s| u16::try_from(s).ok());
    empty(finish(&emu, &id, status, None))
}

async fn error(State(emu): State<Arc<Emu>>, UrlPath(id): UrlPath<String>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).chars().take(500).collect();
    empty(finish(&emu, &id, None, Some(text)))
}

async fn init_error(State(emu): State<Arc<Emu>>, body: Bytes) -> Response {
    emu.inner().run.failure = Some(format!("init error: {}", String::from_utf8_lossy(&body)));
    emu.finished.send_replace(true);
    empty(StatusCode::ACCEPTED)
}

fn empty(code: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}

/// CPU time used so far by every thread of `pid`, in nanoseconds (`/proc/PID/task/*/schedstat`).
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let text = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += text.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    }
    Some(total)
}

/// Reads a `kB` line (`VmRSS:`, `VmHWM:`) of `/proc/PID/status`.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// What to run and how.
pub struct Spec<'a> {
    pub binary: &'a Path,
    pub env: Vec<(String, String)>,
    pub log: &'a Path,
    pub events: EventFn,
    /// Invocations to deliver (the first is the cold one).
    pub total: usize,
    pub rss_every: usize,
    pub timeout: Duration,
    /// Send `Lambda-Runtime-Trace-Id` (a new id per invocation) as Lambda does.
    pub trace_ids: bool,
}

/// Spawns the binary against a fresh emulator, delivers `total` events one at a time, then
/// kills the process (Lambda would freeze it) and returns what was measured.
pub async fn run(spec: Spec<'_>, meter: Arc<Meter>) -> std::io::Result<Run> {
    let (finished, _) = watch::channel(false);
    let (stop, _) = watch::channel(false);
    let emu = Arc::new(Emu {
        events: spec.events,
        total: spec.total,
        rss_every: spec.rss_every.max(1),
        trace_ids: spec.trace_ids,
        meter: Arc::clone(&meter),
        next: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
        inner: Mutex::new(Inner {
            t0: Instant::now(),
            at_spawn: Snapshot::default(),
            pid: None,
            inflight: HashMap::new(),
            run: Run::default(),
        }),
        finished,
        stop,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(Arc::clone(&emu));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let log = std::fs::OpenOptions::new().create(true).append(true).open(spec.log)?;
    let mut command = tokio::process::Command::new(spec.binary);
    command
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    {
        let mut inner = emu.inner();
        inner.at_spawn = meter.snapshot();
        inner.t0 = Instant::now();
    }
    let mut child = command.spawn()?;
    let pid = child.id();
    emu.inner().pid = pid;

    let mut finished = emu.finished.subscribe();
    let outcome = tokio::select! {
        _ = finished.wait_for(|f| *f) => None,
        status = child.wait() => Some(format!("the process exited early: {status:?}")),
        () = tokio::time::sleep(spec.timeout) => Some(format!("timed out after {:?}", spec.timeout)),
    };
    let peak = pid.and_then(|p| proc_status_kib(p, "VmHWM:"));
    let cpu_end = pid.and_then(cpu_ns);
    let _ = child.kill().await;
    emu.stop.send_replace(true);
    server.abort();
    let mut inner = emu.inner();
    let mut run = std::mem::take(&mut inner.run);
    run.peak_rss_kib = peak;
    run.cpu_at_end_ns = cpu_end;
    if run.failure.is_none() {
        run.failure = outcome;
    }
    run.invocations.sort_by_key(|i| i.index);
    Ok(run)
}
