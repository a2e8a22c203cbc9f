//! What the function remembers about a delivery for status queries: who sent it, what it
//! asked for, and how far it got. Stored as a document on the delivery's claim (same item,
//! same TTL), written as the delivery moves on; a failure to write one is logged and never
//! turns into a failed restore.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::unix_ms;
use crate::payload::{RedisId, Region};
use crate::state::AppState;
use crate::tencent::TaskId;

/// How far a delivery got, as far as the function itself saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// Claimed (or, with a callback, handed to a job); no restore has been sent yet.
    Accepted,
    /// Tencent answered with a task id.
    Started,
    /// A wait (callback mode) saw the task succeed.
    Succeeded,
    /// Refused, failed before the restore, or a wait saw the task fail.
    Failed,
    /// RestoreInstance was sent and its answer lost.
    Unknown,
    /// A dry run whose checks passed.
    DryRunOk,
}

/// The stored record of one delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub delivery_id: String,
    /// `webhook`, `slack` or `drill`: deliveries of different sources never meet.
    pub source: String,
    /// The verifying key's id (webhook), the Slack user, or the scheduler.
    pub caller: String,
    pub redis_id: RedisId,
    pub region: Region,
    /// `inPlace` (a restore of the instance itself) or `clone`.
    #[serde(default = "in_place")]
    pub mode: String,
    /// The backup asked for, then the one actually used once known.
    pub backup: String,
    pub claimed_at_ms: i64,
    pub stage: Stage,
    #[serde(default)]
    pub task_id: Option<TaskId>,
    #[serde(default)]
    pub clone_instance_id: Option<String>,
    #[serde(default)]
    pub started_at_ms: Option<i64>,
    #[serde(default)]
    pub finished_at_ms: Option<i64>,
    /// When the answer to RestoreInstance was found lost: a task of this delivery started
    /// between the claim and this moment.
    #[serde(default)]
    pub unknown_at_ms: Option<i64>,
    /// `{code, message}` when the delivery failed.
    #[serde(default)]
    pub error: Option<Value>,
    /// Answered `accepted` at once and continued in a job (callback mode).
    #[serde(default)]
    pub asynchronous: bool,
    /// The task id was found in Tencent's task list after the answer to RestoreInstance was lost.
    #[serde(default)]
    pub reconciled: bool,
}

fn in_place() -> String {
    "inPlace".into()
}

/// The record rides on the delivery's claim (`source#delivery`): written with the claim and its
/// outcome in the same DynamoDB calls, so a restore costs no extra call for it.
fn document_id(source: &str, delivery_id: &str) -> String {
    format!("{source}#{delivery_id}")
}

impl DeliveryRecord {
    pub fn new(
        source: &str,
        delivery_id: &str,
        caller: &str,
        redis_id: &RedisId,
        region: &Region,
        backup: &str,
    ) -> Self {
        Self {
            delivery_id: delivery_id.to_owned(),
            source: source.to_owned(),
            caller: caller.to_owned(),
            redis_id: redis_id.clone(),
            region: region.clone(),
            mode: in_place(),
            backup: backup.to_owned(),
            claimed_at_ms: unix_ms(),
            stage: Stage::Accepted,
            task_id: None,
            clone_instance_id: None,
            started_at_ms: None,
            finished_at_ms: None,
            unknown_at_ms: None,
            error: None,
            asynchronous: false,
            reconciled: false,
        }
    }

    pub fn started(&mut self, task_id: TaskId, started_at_ms: i64) {
        self.stage = Stage::Started;
        self.task_id = Some(task_id);
        self.started_at_ms = Some(started_at_ms);
    }

    pub fn failed(&mut self, error: Value) {
        self.stage = Stage::Failed;
        self.error = Some(error);
        self.finished_at_ms.get_or_insert_with(unix_ms);
    }

    pub fn unknown(&mut self) {
        self.stage = Stage::Unknown;
        self.unknown_at_ms = Some(unix_ms());
    }

    pub fn to_document(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The record of a delivery, `None` if there is none (or the store cannot be read: a status
/// query then says so itself).
pub async fn load(
    state: &AppState,
    source: &str,
    delivery_id: &str,
) -> Result<Option<DeliveryRecord>, crate::idempotency::StoreError> {
    let doc = state.idempotency.get_document(&document_id(source, delivery_id), unix_ms()).await?;
    Ok(doc.and_then(|d| serde_json::from_value(d).ok()))
}

/// Writes the record onto its (existing) claim; a failure is logged only (the delivery itself
/// goes on).
pub async fn save(state: &AppState, record: &DeliveryRecord) {
    let id = document_id(&record.source, &record.delivery_id);
    if let Err(e) = state.idempotency.set_document(&id, &record.to_document()).await {
        tracing::warn!(delivery_id = %record.delivery_id, error = %e, "could not record the delivery for status queries");
    }
}

/// Changes the stored record (or, if there is none, `base()`) with `change` and saves it.
pub async fn update(
    state: &AppState,
    source: &str,
    delivery_id: &str,
    base: impl FnOnce() -> DeliveryRecord,
    change: impl FnOnce(&mut DeliveryRecord),
) {
    let mut record = match load(state, source, delivery_id).await {
        Ok(Some(r)) => r,
        Ok(None) => base(),
        Err(e) => {
            tracing::warn!(delivery_id, error = %e, "could not read the delivery record; writing a fresh one");
            base()
        }
    };
    change(&mut record);
    save(state, &record).await;
}
