//! The audit line: exactly one structured log record per request, whatever its outcome.
//!
//! Fields are filled in as the request is understood (a rejected signature has no instance
//! yet) and emitted once at the end. No secrets, no raw bodies: only validated values.

use std::time::Duration;

use crate::payload::{BackupId, RedisId, Region, RestoreMode};

#[derive(Debug, Default, Clone)]
pub struct Audit {
    pub source: &'static str,
    /// `request` (the HTTP front door), `job` (asynchronous restore) or `watch` (hand-off).
    pub phase: &'static str,
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub delivery_id: Option<String>,
    pub key_id: Option<String>,
    pub redis_id: Option<RedisId>,
    pub backup_id: Option<BackupId>,
    pub region: Option<Region>,
    pub reason: Option<String>,
    pub task_id: Option<i64>,
    pub mode: Option<RestoreMode>,
    /// The instance a clone restore bought.
    pub clone_instance_id: Option<String>,
    /// Set when a secret was re-read after Tencent rejected it (password or API keys).
    pub refetched: Option<&'static str>,
    /// How callback deliveries went (the final failure included).
    pub callback: Option<String>,
    /// From RestoreInstance to the task's end (waits and drills).
    pub duration_seconds: Option<u64>,
    pub backup_age_seconds: Option<i64>,
    /// Drill clones: how the clean-up went.
    pub cleanup: Option<String>,
    /// When RestoreInstance was sent and when the task was seen to end (RFC 3339, UTC; jobs).
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

impl Audit {
    pub fn new(source: &'static str) -> Self {
        Self { source, phase: "request", ..Self::default() }
    }

    /// Emits the record of an HTTP answer: `rejected` for 4xx (the caller's to fix), `failed`
    /// for 5xx, and `success` as given for 2xx (`started`, `accepted`, `dry-run-ok`, `replayed`).
    pub fn emit(&self, status: u16, success: &'static str, error_code: Option<&str>, latency: Duration) {
        let outcome = match status {
            200..=299 => success,
            400..=499 => "rejected",
            _ => "failed",
        };
        self.emit_outcome(outcome, Some(status), error_code, latency);
    }

    /// Emits the record with an explicit outcome (asynchronous jobs have no HTTP status).
    pub fn emit_outcome(&self, outcome: &str, status: Option<u16>, error_code: Option<&str>, latency: Duration) {
        tracing::info!(
            target: "crs_restore::audit",
            audit = true,
            source = self.source,
            phase = self.phase,
            outcome,
            status,
            error_code,
            delivery_id = self.delivery_id.as_deref(),
            key_id = self.key_id.as_deref(),
            redis_id = self.redis_id.as_ref().map(RedisId::as_str),
            backup_id = self.backup_id.as_ref().map(BackupId::as_str),
            region = self.region.as_ref().map(Region::as_str),
            reason = self.reason.as_deref(),
            task_id = self.task_id,
            mode = self.mode.map(RestoreMode::as_str),
            clone_instance_id = self.clone_instance_id.as_deref(),
            refetched = self.refetched,
            callback = self.callback.as_deref(),
            duration_seconds = self.duration_seconds,
            backup_age_seconds = self.backup_age_seconds,
            cleanup = self.cleanup.as_deref(),
            started_at = self.started_at.as_deref(),
            finished_at = self.finished_at.as_deref(),
            request_id = self.request_id.as_deref(),
            source_ip = self.source_ip.as_deref(),
            latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            "restore request {outcome}"
        );
    }
}
