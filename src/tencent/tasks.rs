//! Reading tasks: one task's details (DescribeTaskInfo) and an instance's task list
//! (DescribeTaskList in API 3.0, GetRedisTaskList in API 2.0), in one shape for both.
//!
//! API 2.0's task list carries no task ids, end times or progress percentages (its `progress`
//! is 0 unfinished / 1 finished) and knows no clone tasks; [`TaskList::unavailable`] says so,
//! so callers can tell their users what this generation cannot answer.

use serde_json::{Value, json};

use super::{ApiVersion, TaskId, TaskStatus, TencentClient, TencentError, lenient_i64};
use crate::payload::{RedisId, Region};
use crate::secrets::TencentCredentials;

/// The kinds of task the service reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// Restore from backup: `"010"` (FLOW_RESTOREBACKUP) / `restoreBackup`.
    Restore,
    /// Manual or automatic backup: `"012"` / `"017"` / `backupInstance`.
    Backup,
    /// Clone from a backup: `"026"` (FLOW_CLONEBACKUP); API 3.0 only.
    Clone,
}

impl TaskKind {
    pub const ALL: [Self; 3] = [Self::Restore, Self::Backup, Self::Clone];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restore => "restore",
            Self::Backup => "backup",
            Self::Clone => "clone",
        }
    }

    /// API 3.0 `TaskTypes` codes (models.py, `DescribeTaskListRequest.TaskTypes`).
    pub fn v3_codes(self) -> &'static [&'static str] {
        match self {
            Self::Restore => &["010"],
            Self::Backup => &["012", "017"],
            Self::Clone => &["026"],
        }
    }

    /// API 2.0 `taskType.n` filter values; clones have none.
    fn v2_filter(self) -> Option<&'static str> {
        match self {
            Self::Restore => Some("task_restoreBackup"),
            Self::Backup => Some("task_backupInstance"),
            Self::Clone => None,
        }
    }

    fn from_v3(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.v3_codes().contains(&code))
    }

    fn from_v2(name: &str) -> Option<Self> {
        match name {
            "restoreBackup" => Some(Self::Restore),
            "backupInstance" => Some(Self::Backup),
            _ => None,
        }
    }
}

/// One task as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedTask {
    pub kind: TaskKind,
    /// `None` under API 2.0, whose list has no ids.
    pub task_id: Option<TaskId>,
    pub instance_id: String,
    /// `YYYY-MM-DD HH:MM:SS`, Beijing time.
    pub start_time: String,
    /// `None` while running (Tencent's zero date or an empty string) and under API 2.0.
    pub end_time: Option<String>,
    pub status: TaskStatus,
    /// 0–100 where Tencent gives a fraction (API 3.0 `Progress`, a float).
    pub progress: Option<u8>,
}

/// An instance's tasks, newest first, and what this API generation cannot tell.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskList {
    pub tasks: Vec<ListedTask>,
    pub total: usize,
    pub unavailable: &'static [&'static str],
}

/// What DescribeTaskInfo says about one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDetail {
    pub status: TaskStatus,
    /// The raw status as Tencent wrote it (`running`, `succeed`, or the v2 number).
    pub raw_status: String,
    pub start_time: Option<String>,
    /// Tencent's error text for a failed task (API 3.0 `TaskMessage`), empty otherwise.
    pub message: String,
}

/// API 3.0 `Result`: 0 initialising, 1 running, 2 done, 4 failed.
fn status_from_result(result: i64) -> TaskStatus {
    match result {
        0 => TaskStatus::Pending,
        1 => TaskStatus::Running,
        2 => TaskStatus::Succeeded,
        4 => TaskStatus::Failed,
        _ => TaskStatus::Unknown,
    }
}

/// API 3.0 `Progress` is a float. Tencent's own example shows `1` on finished tasks, so it is
/// read as a fraction (undocumented; values above 1 are taken as already being percentages).
fn progress_percent(v: &Value) -> Option<u8> {
    let p = v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
    if !p.is_finite() || p < 0.0 {
        return None;
    }
    let percent = if p <= 1.0 { p * 100.0 } else { p };
    // Clamped to 0..=100 first, so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(percent.clamp(0.0, 100.0).round() as u8)
}

/// A real `YYYY-MM-DD HH:MM:SS`, not Tencent's zero date or an empty field.
fn real_time(v: Option<&Value>) -> Option<String> {
    let s = v?.as_str()?.trim();
    (s.len() == 19 && !s.starts_with("0000")).then(|| s.to_owned())
}

/// API 3.0's documented page limit, and how many pages one listing reads at most.
const PAGE: usize = 100;
const MAX_PAGES: usize = 5;

impl TencentClient {
    /// DescribeTaskInfo with everything it returns. Read-only.
    pub async fn task_detail(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        task_id: TaskId,
    ) -> Result<TaskDetail, TencentError> {
        const ACTION: &str = "DescribeTaskInfo";
        let id = task_id.to_string();
        let data = self.call(creds, region, ACTION, &[("requestId", &id)], json!({"TaskId": task_id})).await?;
        let malformed = || TencentError::Malformed { action: ACTION, detail: "no task status".into() };
        Ok(match self.config.version {
            ApiVersion::V2 => {
                let code = data.pointer("/data/status").and_then(lenient_i64).ok_or_else(malformed)?;
                TaskDetail {
                    status: TaskStatus::from_v2(code),
                    raw_status: code.to_string(),
                    start_time: None,
                    message: String::new(),
                }
            }
            ApiVersion::V3 => {
                let raw = data.get("Status").and_then(Value::as_str).ok_or_else(malformed)?;
                TaskDetail {
                    status: TaskStatus::from_v3(raw),
                    raw_status: raw.to_owned(),
                    start_time: real_time(data.get("StartTime")),
                    message: data.get("TaskMessage").and_then(Value::as_str).unwrap_or_default().to_owned(),
                }
            }
        })
    }

    /// The instance's tasks of `kinds` that started at or after `begin` (Beijing time,
    /// `YYYY-MM-DD HH:MM:SS`; Tencent keeps 30 days), newest first. Read-only.
    pub async fn list_tasks(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        redis_id: &RedisId,
        kinds: &[TaskKind],
        begin: &str,
    ) -> Result<TaskList, TencentError> {
        let (action, unavailable): (&'static str, &'static [&'static str]) = match self.config.version {
            ApiVersion::V2 => ("GetRedisTaskList", &["taskId", "endTime", "progress", "clone tasks"]),
            ApiVersion::V3 => ("DescribeTaskList", &[]),
        };
        let v2_types: Vec<(String, &str)> = kinds
            .iter()
            .filter_map(|k| k.v2_filter())
            .enumerate()
            .map(|(i, name)| (format!("taskType.{i}"), name))
            .collect();
        let v3_types: Vec<&str> = kinds.iter().flat_map(|k| k.v3_codes().iter().copied()).collect();
        let mut tasks = Vec::new();
        let mut total = 0;
        if v2_types.is_empty() && self.config.version == ApiVersion::V2 {
            return Ok(TaskList { tasks, total, unavailable });
        }
        for page in 0..MAX_PAGES {
            let (limit, offset) = (PAGE.to_string(), (page * PAGE).to_string());
            let mut params: Vec<(&str, &str)> =
                vec![("redisId", redis_id.as_str()), ("limit", &limit), ("offset", &offset), ("beginTime", begin)];
            params.extend(v2_types.iter().map(|(k, v)| (k.as_str(), *v)));
            let body = json!({"InstanceId": redis_id.as_str(), "TaskTypes": v3_types, "BeginTime": begin,
                              "Limit": PAGE, "Offset": page * PAGE});
            let data = self.call(creds, region, action, &params, body).await?;
            let (items, count) = match self.config.version {
                ApiVersion::V2 => (data.pointer("/data/redisTaskSet"), data.get("totalCount")),
                ApiVersion::V3 => (data.get("Tasks"), data.get("TotalCount")),
            };
            let items = items.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            total = count.and_then(lenient_i64).and_then(|t| usize::try_from(t).ok()).unwrap_or(items.len());
            tasks
                .extend(items.iter().filter_map(|t| self.parse_task(t)).filter(|t| t.instance_id == redis_id.as_str()));
            if items.len() < PAGE || (page + 1) * PAGE >= total {
                break;
            }
        }
        // `YYYY-MM-DD HH:MM:SS` sorts chronologically as text.
        tasks.sort_by(|a, b| b.start_time.cmp(&a.start_time).then(b.task_id.cmp(&a.task_id)));
        Ok(TaskList { tasks, total, unavailable })
    }

    fn parse_task(&self, t: &Value) -> Option<ListedTask> {
        match self.config.version {
            ApiVersion::V2 => Some(ListedTask {
                kind: TaskKind::from_v2(t.get("taskName")?.as_str()?)?,
                task_id: None,
                instance_id: t.get("redisId")?.as_str()?.to_owned(),
                start_time: real_time(t.get("startTime"))?,
                end_time: None,
                status: TaskStatus::from_v2(t.get("status").and_then(lenient_i64)?),
                progress: None,
            }),
            ApiVersion::V3 => Some(ListedTask {
                kind: TaskKind::from_v3(t.get("TaskType")?.as_str()?)?,
                task_id: Some(t.get("TaskId").and_then(lenient_i64)?),
                instance_id: t.get("InstanceId")?.as_str()?.to_owned(),
                start_time: real_time(t.get("StartTime"))?,
                end_time: real_time(t.get("EndTime")),
                status: status_from_result(t.get("Result").and_then(lenient_i64)?),
                progress: t.get("Progress").and_then(progress_percent),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_read_as_a_fraction_and_clamped() {
        assert_eq!(progress_percent(&json!(1)), Some(100));
        assert_eq!(progress_percent(&json!(0.355)), Some(36));
        assert_eq!(progress_percent(&json!(0)), Some(0));
        assert_eq!(progress_percent(&json!(45)), Some(45));
        assert_eq!(progress_percent(&json!(250)), Some(100));
        assert_eq!(progress_percent(&json!(-1)), None);
        assert_eq!(progress_percent(&json!("0.5")), Some(50));
        assert_eq!(progress_percent(&json!(null)), None);
    }

    #[test]
    fn zero_dates_and_empty_times_are_no_time() {
        assert_eq!(real_time(Some(&json!("0000-00-00 00:00:00"))), None);
        assert_eq!(real_time(Some(&json!(""))), None);
        assert_eq!(real_time(Some(&json!("2019-11-15 14:25:46"))).as_deref(), Some("2019-11-15 14:25:46"));
    }

    #[test]
    fn task_types_map_both_ways_and_clones_have_no_v2_name() {
        assert_eq!(TaskKind::from_v3("010"), Some(TaskKind::Restore));
        assert_eq!(TaskKind::from_v3("017"), Some(TaskKind::Backup));
        assert_eq!(TaskKind::from_v3("026"), Some(TaskKind::Clone));
        assert_eq!(TaskKind::from_v3("037"), None);
        assert_eq!(TaskKind::from_v2("restoreBackup"), Some(TaskKind::Restore));
        assert_eq!(TaskKind::Clone.v2_filter(), None);
        assert_eq!(status_from_result(4), TaskStatus::Failed);
        assert_eq!(status_from_result(3), TaskStatus::Unknown);
    }
}
