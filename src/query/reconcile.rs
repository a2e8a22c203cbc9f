//! Outcome reconciliation: when the answer to RestoreInstance was lost, Tencent's task list
//! (DescribeTaskList) may still show the task that request started.
//!
//! A task of this delivery is a restore task ("010") of this instance that started between
//! the claim and the moment the answer was found lost. Tencent's times are Beijing-time
//! seconds without a zone, so the window is compared at second precision and widened by
//! [`CLOCK_SKEW_SECS`] on both sides for the difference between our clock and Tencent's.
//! Exactly one such task is the delivery's; none or several leave the outcome unknown, with
//! the candidates' ids for the operator. API 2.0's task list has no task ids, so under API 2.0
//! nothing can be reconciled, and the answer says so.

use super::record::{DeliveryRecord, Stage};
use crate::clock::unix_ms;
use crate::error::RestoreError;
use crate::event::HttpResponse;
use crate::payload::{RedisId, Region};
use crate::state::AppState;
use crate::tencent::{ApiVersion, TaskId, TaskKind};

/// Seconds the window is widened by on each side: NTP-synchronised clocks (Lambda's and
/// Tencent's) differ by far less, and a wider window only risks more "several" answers.
pub const CLOCK_SKEW_SECS: i64 = 2;

/// What the task list said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciliation {
    /// Exactly one restore task started in the window: this delivery's.
    Found { task_id: TaskId, start_time: String },
    /// None (empty) or several restore tasks started in the window.
    Candidates(Vec<TaskId>),
    /// The task list could not be read, or this API generation cannot answer; why.
    NotPossible(String),
}

impl Reconciliation {
    /// Fields added to an `OutcomeUnknown` answer, and a sentence for its message.
    pub fn explain(&self) -> (Option<Vec<TaskId>>, String) {
        match self {
            Self::Found { task_id, .. } => (None, format!("task {task_id} was found in Tencent's task list")),
            Self::Candidates(ids) if ids.is_empty() => {
                (Some(Vec::new()), "Tencent's task list shows no restore task started since the claim".into())
            }
            Self::Candidates(ids) => (
                Some(ids.clone()),
                format!(
                    "Tencent's task list shows {} restore tasks started since the claim ({}); check which one is this delivery's",
                    ids.len(),
                    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
            ),
            Self::NotPossible(why) => (None, why.clone()),
        }
    }
}

/// Formats unix seconds as Tencent writes times: Beijing wall-clock, `YYYY-MM-DD HH:MM:SS`.
pub fn beijing(unix_secs: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::macros::offset!(+8))
        .format(format)
        .unwrap_or_default()
}

/// Looks for the restore task a delivery claimed at `claimed_at_ms` may have started, up to
/// `lost_at_ms` (when its answer was found lost; `None`: now).
pub async fn find(
    state: &AppState,
    redis_id: &RedisId,
    region: &Region,
    claimed_at_ms: i64,
    lost_at_ms: Option<i64>,
) -> Reconciliation {
    if state.tencent.version() == ApiVersion::V2 {
        return Reconciliation::NotPossible(
            "API 2.0 cannot reconcile the outcome: its task list (GetRedisTaskList) carries no task ids; \
             check the instance's tasks with a `tasks` query or in the console"
                .into(),
        );
    }
    let from = beijing(claimed_at_ms.div_euclid(1000) - CLOCK_SKEW_SECS);
    // A second that has begun counts whole: a task stamped with it may have started in it.
    let until = beijing(lost_at_ms.unwrap_or_else(unix_ms).div_euclid(1000) + 1 + CLOCK_SKEW_SECS);
    let creds = match state.secrets.tencent_credentials(false).await {
        Ok(c) => c,
        Err(e) => return Reconciliation::NotPossible(format!("the task list could not be read: {e}")),
    };
    let list = match state.tencent.list_tasks(&creds, region, redis_id, &[TaskKind::Restore], &from).await {
        Ok(list) => list,
        Err(e) => return Reconciliation::NotPossible(format!("the task list could not be read: {e}")),
    };
    let mut ids: Vec<(TaskId, String)> = list
        .tasks
        .into_iter()
        .filter(|t| t.kind == TaskKind::Restore && t.start_time >= from && t.start_time <= until)
        .filter_map(|t| Some((t.task_id?, t.start_time)))
        .collect();
    ids.sort();
    ids.dedup_by_key(|(id, _)| *id);
    match ids.as_slice() {
        [(task_id, start_time)] => Reconciliation::Found { task_id: *task_id, start_time: start_time.clone() },
        _ => Reconciliation::Candidates(ids.into_iter().map(|(id, _)| id).collect()),
    }
}

/// The first attempt's answer when RestoreInstance's answer was lost: the normal 202 with the
/// task id and `"reconciled": true` if the task list settles it, else `err` with the candidates.
pub async fn on_lost_answer(
    state: &AppState,
    record: &mut DeliveryRecord,
    err: RestoreError,
) -> Result<(HttpResponse, &'static str), RestoreError> {
    let found = super::status::reconcile_record(state, record).await;
    if let Reconciliation::Found { .. } = found {
        return Ok((HttpResponse::json(202, super::started_body(record)), "started"));
    }
    let (candidates, explanation) = found.explain();
    Err(RestoreError::Unreconciled { cause: Box::new(err), candidates, explanation })
}

/// A replay of a delivery whose outcome is unknown: reconciled now if the task list settles
/// it (and recorded, so later replays answer the same), else `OutcomeUnknown` with candidates.
pub async fn on_replay(state: &AppState, delivery_id: &str) -> Result<(HttpResponse, &'static str), RestoreError> {
    let mut record = match super::record::load(state, "webhook", delivery_id).await {
        Ok(Some(r)) if r.stage == Stage::Unknown => r,
        _ => return Err(RestoreError::OutcomeUnknown(delivery_id.to_owned())),
    };
    let found = super::status::reconcile_record(state, &mut record).await;
    if let Reconciliation::Found { .. } = found {
        let mut body = super::started_body(&record);
        body["replayed"] = true.into();
        return Ok((HttpResponse::json(202, body), "replayed"));
    }
    let (candidates, explanation) = found.explain();
    let cause = Box::new(RestoreError::OutcomeUnknown(delivery_id.to_owned()));
    Err(RestoreError::Unreconciled { cause, candidates, explanation })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_beijing_time() {
        // 2026-11-26T06:30:00Z
        assert_eq!(beijing(1_795_674_600), "2026-11-26 14:30:00");
    }

    #[test]
    fn the_explanation_lists_candidates_or_says_there_are_none() {
        let (c, m) = Reconciliation::Candidates(vec![]).explain();
        assert_eq!(c, Some(vec![]));
        assert!(m.contains("no restore task"), "{m}");
        let (c, m) = Reconciliation::Candidates(vec![7, 9]).explain();
        assert_eq!(c, Some(vec![7, 9]));
        assert!(m.contains("7, 9"), "{m}");
        assert_eq!(Reconciliation::NotPossible("x".into()).explain(), (None, "x".into()));
    }
}
