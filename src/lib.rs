//! crs-restore: restore a Tencent Cloud Redis (CRS) instance from one of its own backups on a
//! signed request. `main.rs` only wires these modules together; everything testable lives here.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod aws;
pub mod callback;
pub mod cli;
pub mod clock;
pub mod config;
pub mod drill;
pub mod error;
pub mod event;
pub mod handler;
pub mod idempotency;
pub mod invoke;
pub mod job;
pub mod local;
pub mod metrics;
pub mod payload;
pub mod query;
pub mod restore;
pub mod sandbox;
pub mod secrets;
pub mod signature;
pub mod slack;
pub mod state;
pub mod telemetry;
pub mod tencent;
pub mod tls;
