//! Scheduled disaster-recovery drills: an EventBridge Scheduler event invokes the function
//! directly with `{"drill": {...}}`, the newest backup of an instance is restored, followed to
//! the end, and reported (callback, audit line, CloudWatch metrics). Two kinds:
//!
//! - `clone` (the default, [`clone`]): the backup of any instance matching `DRILL_CLONE_SOURCES`
//!   (production included) is cloned into a throwaway instance, checked and destroyed; the
//!   source is only read.
//! - `inPlace`: the drill instance itself is overwritten, so only instances matching
//!   `DRILL_ALLOWED_INSTANCES` (disposable ones), and only on editions that restore in place.
//!
//! A direct invocation is trusted because only IAM could deliver it (a Function URL request
//! always arrives wrapped in an HTTP envelope); what it may touch is limited all the same.

pub mod clone;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::callback::CallbackUrl;
use crate::clock;
use crate::job::{self, Job, JobReport};
use crate::metrics;
use crate::payload::{BackupRef, Object, PayloadError, Reason, RedisId, Region, RestoreMode};
use crate::state::AppState;
use crate::tencent::ApiVersion;

/// The fields a drill event may carry. `scheduleName` and `scheduledTime` (the scheduler's
/// `<aws.scheduler.scheduled-time>`) name one scheduled run whatever its retries: they key the
/// drill. `executionId` (`<aws.scheduler.execution-id>`) is new for every *attempt* (AWS documents
/// it so), so it only keys drills that carry no schedule, and is logged for correlation.
const FIELDS: &[&str] =
    &["redisId", "backupId", "region", "callbackUrl", "reason", "mode", "executionId", "scheduleName", "scheduledTime"];

/// A validated drill.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillRequest {
    pub redis_id: RedisId,
    pub backup: BackupRef,
    pub region: Option<Region>,
    /// `clone` unless the event says `inPlace`.
    pub mode: RestoreMode,
    pub callback_url: Option<String>,
    pub reason: String,
    pub execution_id: Option<String>,
    pub schedule_name: Option<String>,
    pub scheduled_time: Option<String>,
}

impl DrillRequest {
    pub fn parse(drill: &Value) -> Result<Self, PayloadError> {
        let object = Object::parse(drill.to_string().as_bytes())?;
        object.check_fields(FIELDS)?;
        let invalid = |field: &'static str| move |reason: String| PayloadError::InvalidField { field, reason };
        let key_part = |field: &'static str| -> Result<Option<String>, PayloadError> {
            let value = object.optional_str(field)?;
            if value.is_some_and(|v| v.is_empty() || v.len() > 128 || v.contains(char::is_control)) {
                return Err(PayloadError::InvalidField { field, reason: "must be 1-128 printable characters".into() });
            }
            Ok(value.map(str::to_owned))
        };
        let execution_id = key_part("executionId")?;
        let schedule_name = key_part("scheduleName")?;
        let scheduled_time = key_part("scheduledTime")?;
        Ok(Self {
            redis_id: RedisId::parse(object.required_str("redisId")?).map_err(invalid("redisId"))?,
            backup: BackupRef::parse(object.optional_str("backupId")?.unwrap_or("latest"))
                .map_err(invalid("backupId"))?,
            region: object.optional_str("region")?.map(Region::parse).transpose().map_err(invalid("region"))?,
            mode: object
                .optional_str("mode")?
                .map_or(Ok(RestoreMode::Clone), RestoreMode::parse)
                .map_err(invalid("mode"))?,
            callback_url: object.optional_str("callbackUrl")?.filter(|u| !u.is_empty()).map(str::to_owned),
            reason: Reason::parse(object.optional_str("reason")?.unwrap_or("scheduled DR drill"))
                .map_err(invalid("reason"))?
                .as_str()
                .to_owned(),
            execution_id,
            schedule_name,
            scheduled_time,
        })
    }

    /// What makes this drill "the same drill" across deliveries: the schedule's name and the
    /// time it was scheduled for (stable across the scheduler's retries), else the execution id,
    /// else nothing (a hand-started drill with neither is always new).
    pub fn execution_key(&self) -> Option<String> {
        match (&self.schedule_name, &self.scheduled_time, &self.execution_id) {
            (Some(name), Some(time), _) => Some(format!("{name}@{time}")),
            (_, _, Some(id)) => Some(id.clone()),
            _ => None,
        }
    }
}

/// Runs a drill to its end and reports it. Refusals are reported the same way (a drill that
/// cannot run is a failed drill: the alarm must fire).
pub async fn run(state: &Arc<AppState>, event: &Value, deadline: Option<Instant>) -> Value {
    let raw = event.get("drill").cloned().unwrap_or(Value::Null);
    // A refusal still names the instance it is about; an id that does not validate is quoted
    // only as far as it is printable and short.
    let redis_hint = raw
        .get("redisId")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .chars()
        .filter(|c| !c.is_control())
        .take(32)
        .collect::<String>();
    match prepare(state, &raw).await {
        Ok(job) => {
            if job.mode == RestoreMode::Clone {
                // Drill clones left by drills that died are removed first (a leaked clone is money).
                let sweep = clone::sweep(state, &job.region, &job.redis_id).await;
                let record = metrics::sweep_record(
                    &state.config.metrics_namespace,
                    job.redis_id.as_str(),
                    sweep.destroyed,
                    !sweep.failures.is_empty(),
                    clock::unix_ms(),
                );
                metrics::emit(&state.metrics, record);
                for failure in &sweep.failures {
                    tracing::error!(audit = true, source = "drill", phase = "sweep", outcome = "failed", redis_id = %job.redis_id, detail = %failure, "an orphaned drill clone could not be removed");
                }
            }
            run_job(state, job, deadline).await.to_json()
        }
        Err((code, message)) => {
            // `detail`, not `message`: the JSON formatter already writes the event's text as `message`.
            tracing::warn!(
                target: "crs_restore::audit",
                audit = true,
                source = "drill",
                phase = "request",
                outcome = "rejected",
                error_code = code,
                redis_id = %redis_hint,
                detail = %message,
                "drill refused"
            );
            let mut report = JobReport::failed(code);
            report.outcome = "rejected";
            emit(state, &redis_hint, &report, false);
            json!({"outcome": "rejected", "errorCode": code, "message": message})
        }
    }
}

/// Runs a drill's job (its start, or a hand-off's continuation) and, once the drill has ended
/// here, emits its metrics: a duplicate or a hand-off ends nothing.
pub async fn run_job(state: &Arc<AppState>, job: Job, deadline: Option<Instant>) -> JobReport {
    let redis_id = job.redis_id.to_string();
    let clone = job.mode == RestoreMode::Clone;
    let report = job::run(state, job, deadline).await;
    if report.outcome != "handed-off" && report.outcome != "duplicate" {
        emit(state, &redis_id, &report, clone);
    }
    report
}

fn emit(state: &AppState, redis_id: &str, report: &JobReport, clone: bool) {
    let record = metrics::drill_record(&state.config.metrics_namespace, redis_id, report, clone, clock::unix_ms());
    metrics::emit(&state.metrics, record);
}

async fn prepare(state: &AppState, raw: &Value) -> Result<Job, (&'static str, String)> {
    let drill = DrillRequest::parse(raw).map_err(|e| ("InvalidDrill", e.to_string()))?;
    match drill.mode {
        RestoreMode::InPlace if state.config.drill_allowed.is_empty() => {
            return Err((
                "DrillsDisabled",
                "DRILL_ALLOWED_INSTANCES is empty: in-place drills are disabled (clone drills use DRILL_CLONE_SOURCES)"
                    .into(),
            ));
        }
        RestoreMode::InPlace if !state.config.drill_allowed.allows(&drill.redis_id) => {
            return Err((
                "InstanceNotAllowed",
                format!(
                    "{} does not match DRILL_ALLOWED_INSTANCES: in-place drills never touch other instances",
                    drill.redis_id
                ),
            ));
        }
        RestoreMode::Clone if state.tencent.version() != ApiVersion::V3 => {
            return Err(("CloneRequiresApi3", "clone drills need Tencent API 3.0 (TENCENT_API_VERSION=3)".into()));
        }
        RestoreMode::Clone if state.config.drill_clone_sources.is_empty() => {
            return Err(("DrillsDisabled", "DRILL_CLONE_SOURCES is empty: clone drills are disabled".into()));
        }
        RestoreMode::Clone if !state.config.drill_clone_sources.allows(&drill.redis_id) => {
            return Err((
                "InstanceNotAllowed",
                format!("{} does not match DRILL_CLONE_SOURCES: clone drills read no other instances", drill.redis_id),
            ));
        }
        RestoreMode::InPlace | RestoreMode::Clone => {}
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
    // A redelivered or retried event finds the first one's claim and does not restore again.
    let delivery_id = match drill.execution_key() {
        Some(key) => format!("drill-{key}"),
        None => format!("drill-{}-{}", drill.redis_id, clock::unix_ms()),
    };
    Ok(Job {
        delivery_id,
        source: "drill".into(),
        caller: "scheduler".into(),
        redis_id: drill.redis_id,
        backup: drill.backup,
        region,
        mode: drill.mode,
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
        assert_eq!(d.execution_key(), None);
        assert_eq!((d.region, d.callback_url, d.execution_id), (None, None, None));
        assert_eq!(d.mode, RestoreMode::Clone, "clone drills are the default kind");
        let in_place = DrillRequest::parse(&json!({"redisId": "crs-drill001", "mode": "inPlace"})).expect("valid");
        assert_eq!(in_place.mode, RestoreMode::InPlace);
        assert!(DrillRequest::parse(&json!({"redisId": "crs-drill001", "mode": "swap"})).is_err());
    }

    #[test]
    fn a_scheduled_drill_is_keyed_on_its_schedule_and_time_not_on_the_attempt() {
        let base =
            json!({"redisId": "crs-drill001", "scheduleName": "prod-drill", "scheduledTime": "2026-12-07T03:00:00Z"});
        let mut first = base.clone();
        first["executionId"] = "attempt-1".into();
        let mut retry = base;
        retry["executionId"] = "attempt-2".into();
        let (a, b) = (DrillRequest::parse(&first).expect("valid"), DrillRequest::parse(&retry).expect("valid"));
        assert_eq!(a.execution_key().as_deref(), Some("prod-drill@2026-12-07T03:00:00Z"));
        assert_eq!(a.execution_key(), b.execution_key());
        let unscheduled = DrillRequest::parse(&json!({"redisId": "crs-drill001", "executionId": "x"})).expect("valid");
        assert_eq!(unscheduled.execution_key().as_deref(), Some("x"));
        assert!(DrillRequest::parse(&json!({"redisId": "crs-drill001", "scheduleName": ""})).is_err());
    }

    #[test]
    fn unknown_fields_and_invalid_ids_are_refused() {
        assert!(DrillRequest::parse(&json!({"redisId": "crs-drill001", "force": true})).is_err());
        assert!(DrillRequest::parse(&json!({"redisId": "prod"})).is_err());
        assert!(DrillRequest::parse(&json!({"redisId": "crs-drill001", "executionId": ""})).is_err());
        assert!(DrillRequest::parse(&json!("crs-drill001")).is_err());
    }
}
