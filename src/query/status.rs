//! `{"query": "status"}`: a delivery's phase, from its record and live from Tencent.
//!
//! In-place restores are followed through DescribeTaskInfo (status and Tencent's message) and,
//! under API 3.0, DescribeTaskList (progress and end time). A delivery whose outcome is
//! unknown is reconciled against the task list first. Clone restores (`mode: "clone"`) take
//! their phase from the clone instance's status instead ([`clone_phase`]).

use serde_json::{Value, json};

use super::reconcile::{self, Reconciliation};
use super::record::{self, DeliveryRecord, Stage};
use crate::clock::{rfc3339_ms, unix_ms};
use crate::error::RestoreError;
use crate::idempotency::{Key, StoredResponse};
use crate::state::AppState;
use crate::tencent::{ApiVersion, TaskId, TaskKind, TaskStatus};

/// The answer to a status query.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusAnswer {
    pub delivery_id: String,
    pub redis_id: crate::payload::RedisId,
    pub mode: String,
    pub region: String,
    /// `accepted`, `running`, `succeeded`, `failed` or `unknown`.
    pub phase: &'static str,
    pub task_id: Option<TaskId>,
    pub clone_instance_id: Option<String>,
    pub tencent_status: Option<String>,
    pub progress: Option<u8>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub error: Option<Value>,
    pub reconciled: bool,
    pub candidates: Option<Vec<TaskId>>,
    pub note: Option<String>,
    pub dry_run: bool,
}

impl StatusAnswer {
    fn from_record(r: &DeliveryRecord, phase: &'static str) -> Self {
        Self {
            delivery_id: r.delivery_id.clone(),
            redis_id: r.redis_id.clone(),
            mode: r.mode.clone(),
            region: r.region.to_string(),
            phase,
            task_id: r.task_id,
            clone_instance_id: r.clone_instance_id.clone(),
            tencent_status: None,
            progress: None,
            started_at_ms: r.started_at_ms,
            finished_at_ms: r.finished_at_ms,
            error: r.error.clone(),
            reconciled: r.reconciled,
            candidates: None,
            note: None,
            dry_run: r.stage == Stage::DryRunOk,
        }
    }

    pub fn duration_seconds(&self) -> Option<i64> {
        Some((self.finished_at_ms? - self.started_at_ms?).max(0) / 1000)
    }

    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "deliveryId": self.delivery_id,
            "redisId": self.redis_id.as_str(),
            "mode": self.mode,
            "region": self.region,
            "phase": self.phase,
        });
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                body[k] = v;
            }
        };
        put("taskId", self.task_id.map(Value::from));
        put("cloneInstanceId", self.clone_instance_id.clone().map(Value::from));
        put("tencentStatus", self.tencent_status.clone().map(Value::from));
        put("progress", self.progress.map(Value::from));
        put("startedAt", self.started_at_ms.map(|ms| rfc3339_ms(ms).into()));
        put("finishedAt", self.finished_at_ms.map(|ms| rfc3339_ms(ms).into()));
        put("durationSeconds", self.duration_seconds().map(Value::from));
        put("error", self.error.clone());
        put("reconciled", self.reconciled.then_some(Value::Bool(true)));
        put("candidates", self.candidates.clone().map(Value::from));
        put("note", self.note.clone().map(Value::from));
        put("dryRun", self.dry_run.then_some(Value::Bool(true)));
        body
    }
}

/// The status of `source`'s delivery `delivery_id`. With `caller`, only that caller's delivery
/// is found: another's answers exactly like one that does not exist.
pub async fn status_of(
    state: &AppState,
    source: &str,
    delivery_id: &str,
    caller: Option<&str>,
) -> Result<StatusAnswer, RestoreError> {
    let record = record::load(state, source, delivery_id).await?;
    let Some(mut record) = record.filter(|r| caller.is_none_or(|c| r.caller == c)) else {
        return Err(RestoreError::DeliveryNotFound);
    };
    if record.stage == Stage::Unknown {
        match reconcile_record(state, &mut record).await {
            Reconciliation::Found { .. } => {}
            other => {
                let mut answer = StatusAnswer::from_record(&record, "unknown");
                let (candidates, note) = other.explain();
                answer.candidates = candidates;
                answer.note = Some(note);
                answer.error = Some(json!({
                    "code": "OutcomeUnknown",
                    "message": "RestoreInstance was sent and its answer lost; the restore may have started",
                }));
                return Ok(answer);
            }
        }
    }
    live(state, &record).await
}

/// Looks for the delivery's task; when found, records it as the delivery's outcome (the record,
/// and for a synchronous delivery its claim, so replays answer with the task too).
pub(crate) async fn reconcile_record(state: &AppState, record: &mut DeliveryRecord) -> Reconciliation {
    if record.mode == "clone" {
        // A clone is looked for by its delivery tag (the clone path does that), not in the task list.
        return Reconciliation::NotPossible(format!(
            "a clone whose answer was lost is found by the instance tag crs-restore:delivery={}",
            record.delivery_id
        ));
    }
    let found =
        reconcile::find(state, &record.redis_id, &record.region, record.claimed_at_ms, record.unknown_at_ms).await;
    if let Reconciliation::Found { task_id, .. } = &found {
        tracing::info!(delivery_id = %record.delivery_id, task_id, "outcome reconciled from Tencent's task list");
        record.started(*task_id, record.unknown_at_ms.unwrap_or_else(unix_ms));
        record.reconciled = true;
        record.error = None;
        record::save(state, record).await;
        if record.source == "webhook" && !record.asynchronous {
            let key = Key::settle_only("webhook", &record.delivery_id);
            let answer = StoredResponse { status: 202, body: super::started_body(record) };
            if let Err(e) = state.idempotency.complete(&key, &answer).await {
                tracing::warn!(delivery_id = %record.delivery_id, error = %e, "could not record the reconciled outcome");
            }
        }
    }
    found
}

/// The phase from Tencent, for a delivery that got past the claim.
async fn live(state: &AppState, record: &DeliveryRecord) -> Result<StatusAnswer, RestoreError> {
    let from_record = |phase| StatusAnswer::from_record(record, phase);
    match (record.stage, record.task_id) {
        (Stage::Accepted, _) => return Ok(from_record("accepted")),
        (Stage::DryRunOk, _) => return Ok(from_record("succeeded")),
        (Stage::Failed, None) => return Ok(from_record("failed")),
        _ => {}
    }
    let creds = state.secrets.tencent_credentials(false).await?;
    // A clone is followed by its instance, not by a task.
    if record.mode == "clone" {
        return clone_phase(state, record, &creds).await;
    }
    let Some(task_id) = record.task_id else {
        return Ok(from_record("unknown"));
    };
    let detail = match state.tencent.task_detail(&creds, &record.region, task_id).await {
        Ok(d) => d,
        // What a finished wait recorded stays true when Tencent cannot be asked.
        Err(_) if matches!(record.stage, Stage::Succeeded | Stage::Failed) => {
            let phase = if record.stage == Stage::Succeeded { "succeeded" } else { "failed" };
            return Ok(from_record(phase));
        }
        Err(e) => return Err(e.into()),
    };
    let (phase, error) = match detail.status {
        TaskStatus::Succeeded => ("succeeded", None),
        TaskStatus::Failed => {
            let message = if detail.message.is_empty() {
                "Tencent reports the restore task as failed".to_owned()
            } else {
                format!("Tencent reports the restore task as failed: {}", detail.message)
            };
            ("failed", Some(json!({"code": "RestoreTaskFailed", "message": message})))
        }
        TaskStatus::Pending | TaskStatus::Running | TaskStatus::Unknown => ("running", None),
    };
    let mut answer = from_record(phase);
    answer.tencent_status = Some(detail.raw_status);
    answer.error = error;
    if phase == "running" {
        answer.finished_at_ms = None;
    }
    if state.tencent.version() == ApiVersion::V3 {
        // Progress and end time are only in the task list; without them the answer still holds.
        let started = record.started_at_ms.unwrap_or(record.claimed_at_ms);
        let from = reconcile::beijing(started.div_euclid(1000) - 86_400);
        if let Ok(list) =
            state.tencent.list_tasks(&creds, &record.region, &record.redis_id, &[TaskKind::Restore], &from).await
            && let Some(task) = list.tasks.iter().find(|t| t.task_id == Some(task_id))
        {
            answer.progress = task.progress;
            if phase != "running"
                && let Some(end) = task.end_time.as_deref().and_then(beijing_to_ms)
            {
                answer.finished_at_ms = Some(end);
            }
        }
    }
    if phase != "running" && answer.finished_at_ms.is_none() {
        // Without Tencent's end time (API 2.0, or a list that could not be read), the end is
        // when the function first saw it: recorded, so every later answer gives the same time.
        let seen = record.finished_at_ms.unwrap_or_else(unix_ms);
        answer.finished_at_ms = Some(seen);
        if record.finished_at_ms.is_none() {
            let mut ended = record.clone();
            ended.finished_at_ms = Some(seen);
            ended.stage = if phase == "succeeded" { Stage::Succeeded } else { Stage::Failed };
            ended.error.clone_from(&answer.error);
            record::save(state, &ended).await;
        }
    }
    Ok(answer)
}

/// A clone restore's phase: the clone instance's `Status` (2 = running = the clone is ready
/// and holds the backup's data; not listed yet, or any other status, = still being made).
async fn clone_phase(
    state: &AppState,
    record: &DeliveryRecord,
    creds: &crate::secrets::TencentCredentials,
) -> Result<StatusAnswer, RestoreError> {
    let from_record = |phase| StatusAnswer::from_record(record, phase);
    let Some(clone_id) = record.clone_instance_id.as_deref().and_then(|id| crate::payload::RedisId::parse(id).ok())
    else {
        return Ok(from_record("accepted"));
    };
    let instance = state.tencent.describe_instance(creds, &record.region, &clone_id).await?;
    let status = instance.as_ref().and_then(|i| i.status);
    let mut answer = from_record(if status == Some(2) { "succeeded" } else { "running" });
    answer.tencent_status = status.map(|s| s.to_string());
    if status == Some(2) && answer.finished_at_ms.is_none() {
        let seen = unix_ms();
        answer.finished_at_ms = Some(seen);
        let mut ended = record.clone();
        ended.finished_at_ms = Some(seen);
        ended.stage = Stage::Succeeded;
        record::save(state, &ended).await;
    } else if status != Some(2) {
        answer.finished_at_ms = None;
    }
    Ok(answer)
}

/// Tencent's `YYYY-MM-DD HH:MM:SS` (Beijing time) as unix milliseconds.
fn beijing_to_ms(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let t = time::PrimitiveDateTime::parse(s, &format).ok()?.assume_offset(time::macros::offset!(+8));
    Some(t.unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tencent_times_are_beijing_time() {
        assert_eq!(beijing_to_ms("2026-11-26 14:30:00"), Some(1_795_674_600_000));
        assert_eq!(beijing_to_ms("0000-00-00 00:00:00"), None);
    }
}
