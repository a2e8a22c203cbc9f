//! `{"query": "tasks"}`: an instance's restore, clone and backup tasks of the last 30 days,
//! newest first: the "is a restore already running?" question.

use serde_json::{Value, json};

use super::reconcile::beijing;
use crate::clock::unix_now;
use crate::error::RestoreError;
use crate::payload::{RedisId, Region};
use crate::state::AppState;
use crate::tencent::{ListedTask, TaskKind, TaskList, TaskStatus};

/// Tencent keeps 30 days of tasks; a minute less, so a clock difference never asks for day 31.
const WINDOW_SECS: i64 = 30 * 86_400 - 60;

/// The start of the window Tencent keeps tasks for, in its own time format.
pub fn window_start() -> String {
    beijing(unix_now() - WINDOW_SECS)
}

/// The instance's recent tasks, read live.
pub async fn list(state: &AppState, redis_id: &RedisId, region: &Region) -> Result<Value, RestoreError> {
    let since = window_start();
    let list = recent(state, redis_id, region, &TaskKind::ALL, &since).await?;
    Ok(to_json(redis_id, region, &since, &list))
}

/// The tasks of `kinds` since `since` (Beijing time); shared with Slack's `status` command.
pub async fn recent(
    state: &AppState,
    redis_id: &RedisId,
    region: &Region,
    kinds: &[TaskKind],
    since: &str,
) -> Result<TaskList, RestoreError> {
    let creds = state.secrets.tencent_credentials(false).await?;
    Ok(state.tencent.list_tasks(&creds, region, redis_id, kinds, since).await?)
}

pub fn result_name(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Pending => "pending",
        TaskStatus::Running => "running",
        TaskStatus::Succeeded => "succeeded",
        TaskStatus::Failed => "failed",
        TaskStatus::Unknown => "unknown",
    }
}

fn task_json(t: &ListedTask) -> Value {
    let mut v = json!({"type": t.kind.as_str(), "startTime": t.start_time, "result": result_name(t.status)});
    if let Some(id) = t.task_id {
        v["taskId"] = id.into();
    }
    if let Some(end) = &t.end_time {
        v["endTime"] = end.clone().into();
    }
    if let Some(p) = t.progress {
        v["progress"] = p.into();
    }
    v
}

fn to_json(redis_id: &RedisId, region: &Region, since: &str, list: &TaskList) -> Value {
    let running = |kind| list.tasks.iter().any(|t| t.kind == kind && !t.status.is_terminal());
    let mut body = json!({
        "redisId": redis_id.as_str(),
        "region": region.as_str(),
        "since": since,
        "restoreRunning": running(TaskKind::Restore),
        "cloneRunning": running(TaskKind::Clone),
        "tasks": list.tasks.iter().map(task_json).collect::<Vec<_>>(),
    });
    if !list.unavailable.is_empty() {
        body["unavailable"] = list.unavailable.iter().map(|s| Value::from(*s)).collect::<Vec<_>>().into();
        body["note"] =
            "API 2.0's task list (GetRedisTaskList) has no task ids, end times or progress, and no clone tasks".into();
    }
    body
}
