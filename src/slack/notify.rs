//! Job events posted to the Slack channel a restore was confirmed in: the task id when it
//! starts, the final status and duration when it ends, and any refusal with its error code.
//!
//! Slack allows 5 posts per `response_url` within 30 minutes. Each job event posts at most
//! once, so the count is derived from the events themselves (and survives hand-offs between
//! invocations): the posts made before the job, plus the start message for a final event.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::callback::CallbackEvent;
use crate::clock::unix_now;
use crate::job::{Job, JobReport};
use crate::state::AppState;

use super::messages::{self, escape, mention};
use super::respond::{self, MAX_POSTS, ResponseUrl};

/// Where a Slack-confirmed job reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackTarget {
    /// The confirming interaction's `response_url`.
    pub response_url: ResponseUrl,
    /// Who confirmed (the requester).
    pub user_id: String,
    /// When the backup was taken, as the prompt showed it.
    #[serde(default)]
    pub backup_start_time: Option<String>,
    /// Posts to `response_url` made before the job began ("restore started by").
    pub posts_before: u32,
    /// Unix seconds after which Slack no longer accepts posts to `response_url`.
    pub expires_at: i64,
}

/// Posts `event` for `job` and records how that went in the report.
pub async fn notify(
    state: &AppState,
    job: &Job,
    target: &SlackTarget,
    event: &CallbackEvent,
    deadline: Option<Instant>,
    report: &mut JobReport,
) {
    let Some(message) = message(job, target, event) else {
        return;
    };
    let follows_start =
        matches!(event.kind.as_str(), "restore.succeeded" | "restore.failed") && event.task_id.is_some();
    let used = target.posts_before + u32::from(follows_start);
    let line = if used >= MAX_POSTS {
        format!("slack {} not posted: the response_url was already used {MAX_POSTS} times", event.kind)
    } else if unix_now() > target.expires_at {
        format!("slack {} not posted: the response_url expired (Slack allows 30 minutes)", event.kind)
    } else {
        let soon = Instant::now() + Duration::from_secs(30);
        let by = deadline.map_or(soon, |d| d.checked_sub(Duration::from_secs(2)).unwrap_or(d).min(soon));
        match respond::post(&target.response_url, &message, state.config.callback_policy.allow_loopback, by).await {
            Ok(status) => format!("slack {} posted (HTTP {status})", event.kind),
            Err(reason) => {
                tracing::warn!(kind = %event.kind, %reason, "posting a restore event to Slack failed");
                format!("slack {} not posted: {reason}", event.kind)
            }
        }
    };
    report.callbacks.push(line);
}

/// The channel message for an event; `None` for events Slack users need not see.
fn message(job: &Job, target: &SlackTarget, event: &CallbackEvent) -> Option<Value> {
    let redis = &event.redis_id;
    let who = mention(&target.user_id);
    let backup = event.backup_id.as_deref().unwrap_or("?");
    let task = event.task_id.map(|t| format!("task {t}")).unwrap_or_else(|| "no task".into());
    let error = || {
        let e = event.error.as_ref();
        let field = |k: &str| e.and_then(|e| e.get(k)).and_then(Value::as_str).unwrap_or_default().to_owned();
        format!("*{}* {}", escape(&field("code")), escape(&field("message")))
    };
    let took = event.duration_seconds.map(messages::duration);
    let text = match event.kind.as_str() {
        "restore.started" if event.clone_instance_id.is_some() => format!(
            ":arrows_counterclockwise: {who} started a restore of `{redis}` ({}) by clone from backup `{backup}`: \
             new instance `{}` is being created and billed. I will post here when it runs.",
            event.region,
            escape(event.clone_instance_id.as_deref().unwrap_or_default()),
        ),
        "restore.started" => {
            let taken = event
                .backup_start_time
                .as_deref()
                .or(target.backup_start_time.as_deref())
                .map(|t| format!(", taken {} (UTC+8)", escape(t)))
                .unwrap_or_default();
            let reason = job.reason.as_deref().map(|r| format!("\nReason: {}", escape(r))).unwrap_or_default();
            format!(
                ":arrows_counterclockwise: {who} started a restore of `{redis}` ({}) from backup `{backup}`{taken}.\n\
                 Tencent task ID: *{}*. I will post here when it ends.{reason}",
                event.region,
                event.task_id.map_or_else(|| "unknown".into(), |t| t.to_string()),
            )
        }
        "restore.succeeded" if event.clone.is_some() => {
            let clone = event.clone.as_ref();
            let field =
                |k: &str| clone.and_then(|c| c.get(k)).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
            format!(
                ":white_check_mark: The clone of `{redis}` from backup `{backup}` is running{} (started by {who}): \
                 `{}` (`{}`) at `{}:{}`. `{redis}` is unchanged; point clients at the clone to use the restored data.",
                took.map(|d| format!(" after {d}")).unwrap_or_default(),
                escape(&field("instanceId").unwrap_or_default()),
                escape(&field("name").unwrap_or_default()),
                escape(&field("vip").unwrap_or_default()),
                escape(&field("port").unwrap_or_default()),
            )
        }
        "restore.succeeded" => format!(
            ":white_check_mark: Restore of `{redis}` from backup `{backup}` succeeded{} ({task}, started by {who}).",
            took.map(|d| format!(" in {d}")).unwrap_or_default()
        ),
        "restore.failed" => format!(
            ":x: Restore of `{redis}` failed{}: {} ({task}, started by {who}).",
            took.map(|d| format!(" after {d}")).unwrap_or_default(),
            error()
        ),
        "restore.rejected" => {
            format!(":x: Restore of `{redis}` could not start: {} (confirmed by {who}; nothing was changed).", error())
        }
        _ => return None,
    };
    Some(messages::in_channel(&text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job() -> Job {
        serde_json::from_value(json!({
            "deliveryId": "slack-0123", "source": "slack", "caller": "U0123ALICE", "redisId": "crs-izbob1wh",
            "backup": "e824aecc-ef5e-11e6-a2c7-525400082493", "region": "ap-guangzhou", "reason": "INC-1 <x>", "wait": true,
            "slack": {"responseUrl": "https://hooks.slack.com/actions/T1/2/x", "userId": "U0123ALICE",
                      "postsBefore": 1, "expiresAt": 4_000_000_000_i64}
        }))
        .expect("valid job")
    }

    fn event(kind: &str) -> CallbackEvent {
        serde_json::from_value(json!({"type": kind, "deliveryId": "slack-0123", "redisId": "crs-izbob1wh",
            "backupId": "e824aecc-ef5e-11e6-a2c7-525400082493", "region": "ap-guangzhou", "taskId": 375074,
            "durationSeconds": 65, "error": {"code": "PasswordError", "message": "Tencent rejected <it>"}}))
        .expect("event")
    }

    #[test]
    fn each_event_becomes_a_channel_message_with_what_matters() {
        let job = job();
        let target = job.slack.clone().expect("slack target");
        let text =
            |kind: &str| message(&job, &target, &event(kind)).map(|m| m["text"].as_str().unwrap_or("").to_owned());
        let started = text("restore.started").expect("started");
        assert!(started.contains("375074") && started.contains("<@U0123ALICE>") && started.contains("INC-1 &lt;x&gt;"));
        assert!(text("restore.succeeded").expect("succeeded").contains("succeeded in 1 min 5 s"));
        let failed = text("restore.failed").expect("failed");
        assert!(failed.contains("*PasswordError*") && failed.contains("&lt;it&gt;"), "{failed}");
        assert!(text("restore.rejected").expect("rejected").contains("could not start"));
        assert_eq!(text("restore.other"), None);
        let m = message(&job, &target, &event("restore.started")).expect("message");
        assert_eq!((m["response_type"].as_str(), m["replace_original"].as_bool()), (Some("in_channel"), Some(false)));
    }
}
