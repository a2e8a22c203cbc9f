//! The CRS sandbox: a local stand-in for Tencent's Redis API used by tests and `make run`.
//!
//! It plays both API 2.0 (`/v2/index.php`) and API 3.0 (`/`) over plain HTTP on loopback and is
//! as strict as Tencent documents: every request's signature, timestamp and nonce are checked,
//! instance passwords are verified, and restores lock the instance for a while. Tests steer it
//! through [`Sandbox`]; other processes through the `/_sandbox/*` control plane.
//!
//! * `config`: what a sandbox starts with ([`SandboxConfig`]).
//! * `state`: instances, backups, tasks and the business rules shared by both API versions.
//! * `errors`: the one table of error codes, in both wire formats.
//! * `clone`: CloneInstances and what a clone needs (security groups, second-level backup, price).
//! * `auth`: credentials, clock window, nonce cache.
//! * `v2`, `v3`: the two wire formats; `control`: the control plane.
//! * `faults`: injected misbehaviour; `conn`: connections a fault can cut.

mod auth;
mod clone;
mod config;
mod conn;
mod control;
mod errors;
mod faults;
mod lifecycle;
mod state;
mod v2;
mod v3;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{
    DEMO_SECRET_ID, DEMO_SECRET_KEY, SandboxConfig, SandboxCredential, SecondLevelSeed, SeedBackup, SeedGap,
    SeedInstance, SeedNetwork, SeedTag,
};
pub use faults::{Fault, FaultKind};
pub use lifecycle::NextClone;

use conn::{Connection, CuttableListener};
use state::State;

/// What every handler shares. Credentials and tolerance never change, so they live outside the lock.
pub(crate) struct Shared {
    state: Mutex<State>,
    credentials: Vec<SandboxCredential>,
    tolerance_secs: i64,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    /// A handler that panicked mid-update cannot leave the state half-written in a way that
    /// matters for a test double, so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Exactly `application/json`, as Tencent sends it: the official SDKs read `Response.Error` only
/// under that exact value, so a `; charset=utf-8` suffix makes them take an error for a success.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json";

fn json_response(body: serde_json::Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, JSON_CONTENT_TYPE)], body.to_string()).into_response()
}

/// A running sandbox. Clones share the same server and state.
#[derive(Clone)]
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// Binds `addr` (port 0 picks a free port) and serves on a spawned task until [`Sandbox::shutdown`].
pub async fn spawn(config: SandboxConfig, addr: SocketAddr) -> std::io::Result<Sandbox> {
    config.validate().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (shutdown, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        state: Mutex::new(State::new(&config)),
        credentials: config.credentials,
        tolerance_secs: config.timestamp_tolerance_secs,
        shutdown,
    });

    let app = Router::new()
        .route(v2::PATH, any(v2::handle))
        .route("/", any(v3::handle))
        .route("/_sandbox/state", get(control::state))
        .route("/_sandbox/faults", post(control::faults))
        .route("/_sandbox/instances/{id}/password", post(control::password))
        .with_state(Arc::clone(&shared));
    let mut stopping = shared.shutdown.subscribe();
    let server = axum::serve(CuttableListener(listener), app.into_make_service_with_connect_info::<Connection>())
        .with_graceful_shutdown(async move {
            // An error means every sender is gone, which is a shutdown too.
            let _ = stopping.wait_for(|stop| *stop).await;
        });
    tokio::spawn(async move {
        if let Err(err) = server.await {
            tracing::error!(%err, "crs sandbox server stopped");
        }
    });
    tracing::info!(%addr, "crs sandbox listening");
    Ok(Sandbox { addr, shared })
}

impl Sandbox {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn endpoint_v2(&self) -> String {
        format!("http://{}{}", self.addr, v2::PATH)
    }

    pub fn endpoint_v3(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Requests received for this Action, whatever their outcome (auth failures and faults included).
    pub fn calls(&self, action: &str) -> usize {
        self.shared.lock().calls(action)
    }

    /// RestoreInstance calls that actually started a restore task.
    pub fn restores_started(&self, redis_id: &str) -> usize {
        self.shared.lock().restores_started(redis_id)
    }

    pub fn total_restores_started(&self) -> usize {
        self.shared.lock().total_restores_started()
    }

    /// CloneInstances calls that bought instances from this source.
    pub fn clones_started(&self, source: &str) -> usize {
        self.shared.lock().clones_started.get(source).copied().unwrap_or(0)
    }

    /// Ids of the instances cloned from `source`, oldest first.
    pub fn clones_of(&self, source: &str) -> Vec<String> {
        let state = self.shared.lock();
        state
            .instances
            .iter()
            .filter(|i| i.cloned_from.as_deref() == Some(source))
            .map(|i| i.redis_id.clone())
            .collect()
    }

    /// Queues a fault; matching requests consume queued faults in order.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().inject(fault);
    }

    pub fn set_password(&self, redis_id: &str, password: Option<&str>) {
        if !self.shared.lock().set_password(redis_id, password) {
            tracing::warn!(redis_id, "set_password: no such instance");
        }
    }

    pub fn set_instance_status(&self, redis_id: &str, status: i64) {
        if !self.shared.lock().set_instance_status(redis_id, status) {
            tracing::warn!(redis_id, "set_instance_status: no such instance");
        }
    }

    /// The next restore task started for this instance ends failed.
    pub fn fail_next_task(&self, redis_id: &str) {
        if !self.shared.lock().fail_next_task(redis_id) {
            tracing::warn!(redis_id, "fail_next_task: no such instance");
        }
    }

    /// How the next clone of `source` turns out (it runs, it fails, or it is not a twin).
    pub fn next_clone(&self, source: &str, outcome: NextClone) {
        self.shared.lock().set_next_clone(source, outcome);
    }

    /// An instance's `Status` now, `None` once it is gone (cleaned up).
    pub fn instance_status(&self, redis_id: &str) -> Option<i64> {
        let state = self.shared.lock();
        state.instances.iter().find(|i| i.redis_id == redis_id).map(|i| i.status_at(std::time::Instant::now()))
    }

    /// Stops accepting connections; requests in flight (even delayed ones) are answered first.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }
}
