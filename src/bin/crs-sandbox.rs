//! `crs-sandbox`: serves the CRS sandbox on loopback for `make run` and manual testing.
//!
//! Prints `crs-sandbox listening on http://ADDR` as its only stdout line so scripts can read the
//! port; logs go to stderr.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use crs_restore::sandbox::{self, SandboxConfig};

const USAGE: &str =
    "usage: crs-sandbox [--listen 127.0.0.1:PORT] [--seed seed.json] [--restore-seconds N] [--clone-seconds N]";

struct Args {
    listen: SocketAddr,
    seed: Option<String>,
    restore_seconds: Option<u64>,
    clone_seconds: Option<u64>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed =
        Args { listen: SocketAddr::from(([127, 0, 0, 1], 0)), seed: None, restore_seconds: None, clone_seconds: None };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => {
                let raw = value()?;
                parsed.listen = raw.parse().map_err(|e| format!("--listen {raw}: {e}"))?;
            }
            "--seed" => parsed.seed = Some(value()?),
            "--restore-seconds" => {
                let raw = value()?;
                parsed.restore_seconds = Some(raw.parse().map_err(|e| format!("--restore-seconds {raw}: {e}"))?);
            }
            "--clone-seconds" => {
                let raw = value()?;
                parsed.clone_seconds = Some(raw.parse().map_err(|e| format!("--clone-seconds {raw}: {e}"))?);
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    // The sandbox accepts well-known keys and exposes an unauthenticated control plane.
    if !parsed.listen.ip().is_loopback() {
        return Err(format!("refusing to listen on non-loopback address {}", parsed.listen));
    }
    Ok(parsed)
}

fn load_config(args: &Args) -> Result<SandboxConfig, String> {
    let mut config = match &args.seed {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            SandboxConfig::from_json(&text)?
        }
        None => SandboxConfig::demo(),
    };
    if let Some(seconds) = args.restore_seconds {
        config.restore_duration = Duration::from_secs(seconds);
    }
    if let Some(seconds) = args.clone_seconds {
        config.clone_duration = Duration::from_secs(seconds);
    }
    Ok(config)
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM; only Ctrl-C stops the sandbox");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            tracing::error!("{message}");
            return ExitCode::from(2);
        }
    };
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(message) => {
            tracing::error!("{message}");
            return ExitCode::from(2);
        }
    };
    let sandbox = match sandbox::spawn(config, args.listen).await {
        Ok(sandbox) => sandbox,
        Err(err) => {
            tracing::error!(%err, listen = %args.listen, "cannot start the sandbox");
            return ExitCode::FAILURE;
        }
    };

    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "crs-sandbox listening on http://{}", sandbox.addr()).and_then(|()| stdout.flush()).is_err() {
        tracing::warn!("stdout is closed; the listening address is only in this log: {}", sandbox.addr());
    }
    drop(stdout);

    stop_signal().await;
    tracing::info!("stopping");
    sandbox.shutdown();
    ExitCode::SUCCESS
}
