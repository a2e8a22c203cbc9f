//! `/crs-restore status <instance> [region]`: the instance's recent restore and clone tasks
//! (Tencent's task list, last 30 days), answered ephemerally to an allowed user in an allowed
//! channel. A read: nothing is claimed or confirmed.

use serde_json::Value;

use super::messages::{self, escape};
use crate::payload::{RedisId, Region};
use crate::query::tasks::{recent, result_name, window_start};
use crate::state::AppState;
use crate::tencent::TaskKind;

/// A Slack message is for reading, not scrolling: the newest tasks only.
const SHOWN: usize = 10;

/// The ephemeral answer, or the error code for the audit line with an ephemeral explanation.
pub async fn answer(state: &AppState, redis_id: &RedisId, region: &Region) -> Result<Value, (String, Value)> {
    let since = window_start();
    let list = recent(state, redis_id, region, &[TaskKind::Restore, TaskKind::Clone], &since).await.map_err(|e| {
        let text = format!(":x: Could not read the task list of `{redis_id}`: {}", escape(&e.message()));
        (e.code(), messages::ephemeral(&text))
    })?;
    let running = list.tasks.iter().any(|t| !t.status.is_terminal());
    let headline = if running {
        format!(":hourglass_flowing_sand: A restore or clone of `{redis_id}` ({region}) is running now.")
    } else {
        format!(":white_check_mark: No restore or clone of `{redis_id}` ({region}) is running.")
    };
    let mut text = headline;
    if list.tasks.is_empty() {
        text.push_str("\nNo restore or clone task in the last 30 days.");
    }
    for t in list.tasks.iter().take(SHOWN) {
        let id = t.task_id.map(|id| format!(" `{id}`")).unwrap_or_default();
        let progress = t.progress.filter(|_| !t.status.is_terminal()).map(|p| format!(" {p}%")).unwrap_or_default();
        let end = t.end_time.as_deref().map(|e| format!(", ended {}", escape(e))).unwrap_or_default();
        text.push_str(&format!(
            "\n• {}{id}: *{}*{progress}, started {}{end} (UTC+8)",
            t.kind.as_str(),
            result_name(t.status),
            escape(&t.start_time)
        ));
    }
    if list.tasks.len() > SHOWN {
        text.push_str(&format!("\n…and {} older.", list.tasks.len() - SHOWN));
    }
    if !list.unavailable.is_empty() {
        text.push_str("\n_API 2.0 lists no task ids, end times, progress or clone tasks._");
    }
    Ok(messages::ephemeral(&text))
}
