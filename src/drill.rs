//! Scheduled disaster-recovery drills: an EventBridge Scheduler event invokes the function
//! directly with `{"drill": {...}}`, and the newest backup of a drill instance is restored,
//! followed to the end, and reported (callback, audit line, CloudWatch metrics).
//!
//! A direct invocation is trusted because only IAM could deliver it (a Function URL request
//! always arrives wrapped in an HTTP envelope). What it may touch is still limited: only
//! instances matching `DRILL_ALLOWED_INSTANCES`, so a drill can never restore production.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::callback::CallbackUrl;
use crate::clock;
use crate::job::{self, Job, JobReport};
use crate::metrics;
use crate::payload::{BackupRef, Object, PayloadError, Reason, RedisId, Region};
use crate::state::AppState;

/// The fields a drill event may carry; `executionId` comes from the scheduler's
/// `<aws.scheduler.execution-id>` and makes the drill idempotent.
const FIELDS: &[&str] = &["redisId", "backupId", "region", "callbackUrl", "reason", "executionId", "scheduledTime"];

/// A validated drill.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillRequest {
    pub redis_id: RedisId,
    pub backup: BackupRef,
    pub region: Option<Region>,
    pub callback_url: Option<String>,
    pub reason: String,
    pub execution_id: Option<String>,
}

impl DrillRequest {
    pub fn parse(drill: &Value) -> Result<Self, PayloadError> {
        let object = Object::parse(drill.to_string().as_bytes())?;
        object.check_fields(FIELDS)?;
        let invalid = |field: &'static str| move |reason: String| PayloadError::InvalidField { field, reason };
        let execution_id = object.optional_str("executionId")?.map(str::to_owned);
        if execution_id.as_ref().is_some_and(|id| id.is_empty() || id.len() > 128 || id.contains(char::is_control)) {
            return Err(PayloadError::InvalidField {
                field: "executionId",
                reason: "must be 1-128 printable characters".into(),
            });
        }
        Ok(Self {
            redis_id: RedisId::parse(object.required_str("redisId")?).map_err(invalid("redisId"))?,
            backup: BackupRef::parse(object.optional_str("backupId")?.unwrap_or("latest"))
                .map_err(invalid("backupId"))?,
            region: object.optional_str("region")?.map(Region::parse).transpose().map_err(invalid("region"))?,
            callback_url: object.optional_str("callbackUrl")?.filter(|u| !u.is_empty()).map(str::to_owned),
            reason: Reason::parse(object.optional_str("reason")?.unwrap_or("scheduled DR drill"))
                .map_err(invalid("reason"))?
                .as_str()
                .to_owned(),
            execution_id,
        })
    }
}

/// Runs a drill to its end and reports it. Refusals are reported the same way (a drill that
/// cannot run is a failed drill: the alarm must fire).
pub async fn run(state: &Arc<AppState>, event: &Value, deadline: Option<Instant>) -> Value {
    let raw = event.get("drill").cloned().unwrap_or(Value::Null);
    let redis_hint =
        raw.get("redisId").and_then(Value::as_str).unwrap_or("unknown").chars().take(32).collect::<String>();
    match prepare(state, &raw).await {
        Ok(job) => {
            let redis_id = job.redis_id.to_string();
            let report = job::run(state, job, deadline).await;
            if report.outcome != "handed-off" && report.outcome != "duplicate" {
                emit(state, &redis_id, &report);
            }
            report.to_json()
        }
        Err((code, message)) => {
            tracing::warn!(audit = true, source = "drill", outcome = "rejected", error_code = code, %message, "drill refused");
            let mut report = JobReport::failed(code);
            report.outcome = "rejected";
            emit(state, &redis_hint, &report);
            json!({"outcome": "rejected", "errorCode": code, "message": message})
        }
    }
}

fn emit(state: &AppState, redis_id: &str, report: &JobReport) {
    let record = metrics::drill_record(&state.config.metrics_namespace, redis_id, report, clock::unix_ms());
    metrics::emit(&state.metrics, record);
}

async fn prepare(state: &AppState, raw: &Value) -> Result<Job, (&'static str, String)> {
    let drill = DrillRequest::parse(raw).map_err(|e| ("InvalidDrill", e.to_string()))?;
    if state.config.drill_allowed.is_empty() {
        return Err(("DrillsDisabled", "DRILL_ALLOWED_INSTANCES is empty: drills are disabled".into()));
    }
    if !state.config.drill_allowed.allows(&drill.redis_id) {
        return Err((
            "InstanceNotAllowed",
            format!("{} does not match DRILL_ALLOWED_INSTANCES: drills never touch other instances", drill.redis_id),
        ));
    }
    let region = drill
        .region
        .clone()
        .or_else(|| state.config.default_region.clone())
        .ok_or(("MissingField", "the drill names no region and TENCENT_REGION is not set".to_owned()))?;
    let callback_url = match &drill.callback_url {
        Some(raw) => {
            let policy = &state.config.callback_policy;
            let url = CallbackUrl::parse(raw, policy).map_err(|e| ("CallbackUrlNotAllowed", e.to_string()))?;
            url.check_resolution(policy).await.map_err(|e| ("CallbackUrlNotAllowed", e.to_string()))?;
            Some(url)
        }
        None => None,
    };
    // Without the scheduler's execution id every event is new; with it, a redelivered event
    // finds the first one's claim and does not restore again.
    let delivery_id = match &drill.execution_id {
        Some(id) => format!("drill-{id}"),
        None => format!("drill-{}-{}", drill.redis_id, clock::unix_ms()),
    };
    Ok(Job {
        delivery_id,
        source: "drill".into(),
        caller: "scheduler".into(),
        redis_id: drill.redis_id,
        backup: drill.backup,
        region,
        mode: crate::payload::RestoreMode::InPlace,
        point_in_time: None,
        reason: Some(drill.reason),
        callback_url,
        wait: true,
        dry_run: false,
        drill: true,
        watch: None,
        slack: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drill_defaults_to_the_latest_backup_and_a_drill_reason() {
        let d = DrillRequest::parse(&json!({"redisId": "crs-drill001"})).expect("valid");
        assert_eq!(d.backup, BackupRef::Latest);
        assert_eq!(d.reason, "scheduled DR drill");
        assert_eq!((d.region, d.callback_url, d.execution_id), (None, None, None));
    }

    #[test]
    fn unknown_fields_and_invalid_ids_are_refused() {
        assert!(DrillRequest::parse(&json!({"redisId": "crs-drill001", "force": true})).is_err());
        assert!(DrillRequest::parse(&json!({"redisId": "prod"})).is_err());
        assert!(DrillRequest::parse(&json!({"redisId": "crs-drill001", "executionId": ""})).is_err());
        assert!(DrillRequest::parse(&json!("crs-drill001")).is_err());
    }
}
