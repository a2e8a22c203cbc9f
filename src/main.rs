//! Lambda entry point: logging, configuration and clients once, then the run loop.
// The AWS SDK and axum futures nest deeply enough to exceed the default layout query depth.
#![recursion_limit = "256"]

use std::sync::Arc;

use crs_restore::{config::Config, handler, local, state::AppState, telemetry};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;

fn main() -> Result<(), Error> {
    let local_addr = std::env::var("CRS_RESTORE_LOCAL_ADDR").ok();
    // Lambda hands us one invocation at a time on a fraction of a vCPU: one thread does it all,
    // without waking other threads for each I/O event (BENCHMARKS.md, "Tuning"). Local mode
    // serves concurrent requests, so it gets a thread per core.
    let mut runtime = match local_addr {
        Some(_) => tokio::runtime::Builder::new_multi_thread(),
        None => tokio::runtime::Builder::new_current_thread(),
    };
    runtime.enable_all().build()?.block_on(run(local_addr))
}

async fn run(local_addr: Option<String>) -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let state = Arc::new(AppState::from_env(config)?);

    // Local development: the same handler behind a loopback HTTP server (see `make run`).
    if let Some(addr) = local_addr {
        let addr = addr.parse().map_err(|e| format!("CRS_RESTORE_LOCAL_ADDR: {e}"))?;
        return Ok(local::serve(addr, state).await?);
    }

    // The payload as raw text: the runtime only checks that it is JSON (any depth), and the
    // handler parses it, so even a payload serde_json cannot hold gets the handler's answer.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let state = Arc::clone(&state);
        async move {
            // The deadline is wall-clock milliseconds; turn it into a monotonic instant.
            let left = event.context.deadline().duration_since(std::time::SystemTime::now()).unwrap_or_default();
            let deadline = std::time::Instant::now() + left;
            Ok::<_, Error>(handler::handle_raw_invocation(&state, event.payload.get(), Some(deadline)).await)
        }
    }))
    .await
}
