//! Instances, backups, restore tasks and counters, and the business rules both API versions share.
//!
//! Everything here is synchronous and runs under one mutex: a request's checks and the restore
//! it starts are atomic, so two concurrent RestoreInstance calls can never both start a task.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::auth::NonceCache;
use super::config::{SandboxConfig, SeedBackup, SeedNetwork, SeedTag, beijing_time};
use super::errors::{ApiError, Code};
use super::faults::{Fault, FaultKind};

/// Tencent's own example task id; later tasks count up from it.
const FIRST_TASK_ID: u64 = 375074;

/// Region names with their API 2.0 short code and the numeric `regionId` DescribeRedis reports.
const REGIONS: &[(&str, Option<&str>, i64)] = &[
    ("ap-guangzhou", Some("gz"), 1),
    ("ap-shanghai", Some("sh"), 4),
    ("ap-hongkong", Some("hk"), 5),
    ("na-toronto", Some("ca"), 6),
    ("ap-shanghai-fsi", Some("shjr"), 7),
    ("ap-beijing", Some("bj"), 8),
    ("ap-singapore", Some("sg"), 9),
    ("ap-shenzhen-fsi", Some("szjr"), 11),
    ("ap-guangzhou-open", Some("gzopen"), 12),
    ("na-siliconvalley", Some("usw"), 15),
    ("ap-chengdu", Some("cd"), 16),
    ("eu-frankfurt", Some("de"), 17),
    ("ap-seoul", Some("kr"), 18),
    ("ap-chongqing", None, 19),
    ("ap-mumbai", None, 21),
    ("na-ashburn", None, 22),
    ("ap-bangkok", None, 23),
    ("eu-moscow", None, 24),
    ("ap-tokyo", None, 25),
];

/// Old v2 clients may still send `gz` for `ap-guangzhou`.
fn region_matches(instance_region: &str, requested: &str) -> bool {
    instance_region == requested
        || REGIONS.iter().any(|(name, short, _)| *name == instance_region && *short == Some(requested))
}

pub(crate) fn region_id(region: &str) -> i64 {
    REGIONS.iter().find(|(name, _, _)| *name == region).map_or(0, |(_, _, id)| *id)
}

#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub redis_id: String,
    pub name: String,
    pub region: String,
    pub password: Option<String>,
    pub status: i64,
    pub backups: Vec<SeedBackup>,
    pub type_id: i64,
    pub network: SeedNetwork,
    pub billing_mode: i64,
    pub size_mb: i64,
    /// Second-level backup: unix seconds it began, and its gaps `[from, to]` in unix seconds.
    pub second_level: Option<(i64, Vec<(i64, i64)>)>,
    pub tags: Vec<SeedTag>,
    /// A clone still being created: when CloneInstances ran and how long creation takes.
    pub creating: Option<(Instant, Duration)>,
    /// The instance this one was cloned from.
    pub cloned_from: Option<String>,
    pub shard_num: i64,
    pub replicas_num: i64,
    /// Unix seconds (`Createtime`).
    pub created_unix: i64,
    /// Unix seconds when DestroyPostpaidInstance moved it to the recycle bin (`IsolateTime`).
    pub isolated_unix: Option<i64>,
    pub(super) locked_until: Option<Instant>,
    pub(super) fail_next_task: bool,
}

impl Instance {
    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// `Status` now: a clone is 0 (to be initialised) for its first third, then 1 (in a flow),
    /// then whatever it was created as (2, running).
    pub fn status_at(&self, now: Instant) -> i64 {
        match self.creating {
            Some((start, took)) => {
                let elapsed = now.saturating_duration_since(start);
                if elapsed >= took {
                    self.status
                } else if elapsed < took / 3 {
                    0
                } else {
                    1
                }
            }
            None => self.status,
        }
    }

    /// Memory Edition 2.8 (2, 5) and CKV (3, 4) restore in place; every later edition clones.
    pub fn restores_in_place(&self) -> bool {
        matches!(self.type_id, 2..=5)
    }

    pub fn backup_mode(&self) -> &'static str {
        if self.second_level.is_some() { "SecondLevelBackup" } else { "NormalLevelBackup" }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskStatus {
    Preparing,
    Running,
    Succeeded,
    Failed,
}

impl TaskStatus {
    /// DescribeTaskInfo v2 `data.status`.
    pub fn v2_code(self) -> i64 {
        match self {
            Self::Preparing => 0,
            Self::Running => 1,
            Self::Succeeded => 2,
            Self::Failed => 3,
        }
    }

    /// DescribeTaskInfo v3 `Status`.
    pub fn v3_name(self) -> &'static str {
        match self {
            Self::Preparing => "preparing",
            Self::Running => "running",
            Self::Succeeded => "succeed",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone)]
struct Task {
    redis_id: String,
    backup_id: String,
    started: Instant,
    start_time: String,
    duration: Duration,
    fails: bool,
}

impl Task {
    fn status(&self, now: Instant) -> TaskStatus {
        let elapsed = now.saturating_duration_since(self.started);
        if elapsed >= self.duration {
            if self.fails { TaskStatus::Failed } else { TaskStatus::Succeeded }
        } else if elapsed < self.duration / 10 {
            TaskStatus::Preparing
        } else {
            TaskStatus::Running
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TaskView {
    pub redis_id: String,
    pub status: TaskStatus,
    pub start_time: String,
    pub message: String,
}

/// What RestoreInstance asks for, whichever API version carried it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RestoreRequest<'a> {
    pub redis_id: &'a str,
    pub backup_id: &'a str,
    /// An empty password counts as none.
    pub password: Option<&'a str>,
    /// `None` when the API version does not scope the call to a region.
    pub region: Option<&'a str>,
}

/// Limit/offset as Tencent documents them: limit defaults to 20 and has a maximum of each
/// action's own (100 for most, e.g. DescribeInstanceBackups; 1000 for DescribeInstances).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    limit: usize,
    offset: usize,
}

impl Page {
    /// A page of an action whose `Limit` is at most 100, the common documented maximum (also
    /// used for API 2.0, whose pages have no documented maximum).
    pub fn new(limit: Option<i64>, offset: Option<i64>) -> Result<Self, ApiError> {
        Self::up_to(100, limit, offset)
    }

    /// A page of an action that documents `max_limit` as its maximum.
    pub fn up_to(max_limit: usize, limit: Option<i64>, offset: Option<i64>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(20);
        let offset = offset.unwrap_or(0);
        let limit = usize::try_from(limit).ok().filter(|l| (1..=max_limit).contains(l)).ok_or_else(|| {
            ApiError::new(Code::InvalidParameter, format!("limit {limit} is not within 1..={max_limit}"))
        })?;
        let offset = usize::try_from(offset)
            .map_err(|_| ApiError::new(Code::InvalidParameter, format!("offset {offset} is negative")))?;
        Ok(Self { limit, offset })
    }

    fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = self.offset.min(items.len());
        let end = start.saturating_add(self.limit).min(items.len());
        &items[start..end]
    }
}

pub(crate) struct State {
    pub(super) instances: Vec<Instance>,
    tasks: BTreeMap<u64, Task>,
    next_task_id: u64,
    restore_duration: Duration,
    calls: BTreeMap<String, usize>,
    restores_started: BTreeMap<String, usize>,
    pub(super) clone_duration: Duration,
    /// CloneInstances calls that created instances, by source instance.
    pub(super) clones_started: BTreeMap<String, usize>,
    pub(super) next_deal: u64,
    /// How the next clone of a source turns out (`Sandbox::next_clone`); consumed by CloneInstances.
    pub(super) next_clone: BTreeMap<String, super::lifecycle::NextClone>,
    faults: VecDeque<Fault>,
    pub nonces: NonceCache,
}

impl State {
    pub fn new(config: &SandboxConfig) -> Self {
        let started = super::auth::now_unix();
        let instances = config
            .instances
            .iter()
            .map(|seed| Instance {
                redis_id: seed.redis_id.clone(),
                name: seed.name.clone(),
                region: seed.region.clone(),
                password: seed.password.clone(),
                status: seed.status,
                backups: seed.backups.clone(),
                type_id: seed.type_id,
                network: seed.network.clone(),
                billing_mode: seed.billing_mode,
                size_mb: seed.size_mb,
                second_level: seed.second_level_backup.as_ref().map(|sl| {
                    let gaps =
                        sl.missing.iter().map(|g| (started - g.from_secs_ago, started - g.to_secs_ago)).collect();
                    (started - sl.started_secs_ago, gaps)
                }),
                tags: seed.tags.clone(),
                creating: None,
                cloned_from: None,
                shard_num: seed.shard_num,
                replicas_num: seed.replicas_num,
                created_unix: started - seed.created_secs_ago,
                isolated_unix: None,
                locked_until: None,
                fail_next_task: false,
            })
            .collect();
        Self {
            instances,
            tasks: BTreeMap::new(),
            next_task_id: FIRST_TASK_ID,
            restore_duration: config.restore_duration,
            calls: BTreeMap::new(),
            restores_started: BTreeMap::new(),
            clone_duration: config.clone_duration,
            clones_started: BTreeMap::new(),
            next_deal: 1,
            next_clone: BTreeMap::new(),
            faults: VecDeque::new(),
            nonces: NonceCache::default(),
        }
    }

    pub(super) fn instance(&self, redis_id: &str, region: Option<&str>) -> Result<&Instance, ApiError> {
        self.instances
            .iter()
            .find(|i| i.redis_id == redis_id && region.is_none_or(|r| region_matches(&i.region, r)))
            .ok_or_else(|| {
                let scope = region.map(|r| format!(" in region {r}")).unwrap_or_default();
                ApiError::new(Code::InstanceNotExists, format!("no instance {redis_id}{scope}"))
            })
    }

    /// A task id for an action whose task is not followed (lifecycle actions).
    pub(super) fn allocate_task_id(&mut self) -> u64 {
        let id = self.next_task_id;
        self.next_task_id += 1;
        id
    }

    pub(super) fn instance_mut(&mut self, redis_id: &str) -> Option<&mut Instance> {
        self.instances.iter_mut().find(|i| i.redis_id == redis_id)
    }

    /// The RestoreInstance rules, checked in the order of the documented error table.
    pub fn restore(&mut self, req: RestoreRequest<'_>, now: Instant) -> Result<u64, ApiError> {
        if req.redis_id.is_empty() {
            return Err(ApiError::new(Code::InvalidParameter, "redisId/InstanceId is required"));
        }
        if req.backup_id.is_empty() {
            return Err(ApiError::new(Code::InvalidParameter, "backupId/BackupId is required"));
        }
        let instance = self.instance(req.redis_id, req.region)?;
        let status = instance.status_at(now);
        if status != 2 {
            return Err(ApiError::new(
                Code::InstanceStatusAbnormal,
                format!("instance {} has status {status}", instance.redis_id),
            ));
        }
        // Tencent restores only Memory Edition 2.8 and CKV in place; what RestoreInstance answers
        // for later editions is not documented. Its documented "backup/restore spec not supported"
        // code is the sandbox's reading (and the function's mapping) of that refusal.
        if !instance.restores_in_place() {
            return Err(ApiError::new(
                Code::BackupSpecError,
                format!(
                    "instance {} (Type {}) restores from backup by CloneInstances only",
                    instance.redis_id, instance.type_id
                ),
            ));
        }
        if instance.locked(now) {
            return Err(ApiError::new(
                Code::InstanceLockedError,
                format!("instance {} is being restored", instance.redis_id),
            ));
        }
        if let Some(expected) = &instance.password {
            let given = req.password.filter(|p| !p.is_empty());
            if !given.is_some_and(|p| super::auth::ct_eq(p.as_bytes(), expected.as_bytes())) {
                return Err(ApiError::new(Code::PasswordError, ""));
            }
        }
        let backup = instance.backups.iter().find(|b| b.backup_id == req.backup_id).ok_or_else(|| {
            ApiError::new(Code::BackupNotExists, format!("instance {} has no backup {}", req.redis_id, req.backup_id))
        })?;
        if backup.status == -1 {
            return Err(ApiError::new(Code::BackupStatusAbnormal, "the backup has expired"));
        }
        if backup.locked == 1 || backup.status == 1 {
            return Err(ApiError::new(Code::BackupLockedError, ""));
        }

        let duration = self.restore_duration;
        let id = self.next_task_id;
        let Some(instance) = self.instance_mut(req.redis_id) else {
            return Err(ApiError::new(Code::InternalError, "instance vanished"));
        };
        instance.locked_until = now.checked_add(duration);
        let fails = std::mem::take(&mut instance.fail_next_task);
        self.next_task_id += 1;
        self.tasks.insert(
            id,
            Task {
                redis_id: req.redis_id.to_owned(),
                backup_id: req.backup_id.to_owned(),
                started: now,
                start_time: beijing_time(time::OffsetDateTime::now_utc()),
                duration,
                fails,
            },
        );
        *self.restores_started.entry(req.redis_id.to_owned()).or_default() += 1;
        tracing::info!(task_id = id, redis_id = req.redis_id, backup_id = req.backup_id, fails, "restore started");
        Ok(id)
    }

    pub fn task(&self, id: u64, now: Instant) -> Result<TaskView, ApiError> {
        let task = self.tasks.get(&id).ok_or_else(|| ApiError::new(Code::InvalidParameter, format!("no task {id}")))?;
        let status = task.status(now);
        let message = if status == TaskStatus::Failed {
            format!("restore of {} from {} failed (sandbox fail_next_task)", task.redis_id, task.backup_id)
        } else {
            String::new()
        };
        Ok(TaskView { redis_id: task.redis_id.clone(), status, start_time: task.start_time.clone(), message })
    }

    pub fn backups(
        &self,
        redis_id: &str,
        region: Option<&str>,
        page: Page,
    ) -> Result<(usize, Instance, Vec<SeedBackup>), ApiError> {
        if redis_id.is_empty() {
            return Err(ApiError::new(Code::InvalidParameter, "redisId/InstanceId is required"));
        }
        let instance = self.instance(redis_id, region)?;
        let page_items = page.slice(&instance.backups).to_vec();
        Ok((instance.backups.len(), instance.clone(), page_items))
    }

    pub fn instances(&self, redis_id: Option<&str>, region: Option<&str>, page: Page) -> (usize, Vec<Instance>) {
        self.instances_where(region, page, |i| redis_id.is_none_or(|id| i.redis_id == id))
    }

    /// The instances of a region that `keep` accepts, one page of them, and how many there are.
    pub fn instances_where(
        &self,
        region: Option<&str>,
        page: Page,
        keep: impl Fn(&Instance) -> bool,
    ) -> (usize, Vec<Instance>) {
        let matching: Vec<Instance> = self
            .instances
            .iter()
            .filter(|i| region.is_none_or(|r| region_matches(&i.region, r)))
            .filter(|i| keep(i))
            .cloned()
            .collect();
        (matching.len(), page.slice(&matching).to_vec())
    }

    pub fn count_call(&mut self, action: &str) {
        *self.calls.entry(action.to_owned()).or_default() += 1;
    }

    pub fn calls(&self, action: &str) -> usize {
        self.calls.get(action).copied().unwrap_or(0)
    }

    pub fn restores_started(&self, redis_id: &str) -> usize {
        self.restores_started.get(redis_id).copied().unwrap_or(0)
    }

    pub fn total_restores_started(&self) -> usize {
        self.restores_started.values().sum()
    }

    pub fn inject(&mut self, fault: Fault) {
        if fault.times == 0 {
            tracing::warn!(?fault, "ignoring a fault that would fire zero times");
            return;
        }
        tracing::info!(?fault, "fault queued");
        self.faults.push_back(fault);
    }

    /// Takes one use of the first queued fault matching `action` (`None`: the request named none).
    pub fn take_fault(&mut self, action: Option<&str>) -> Option<FaultKind> {
        let index = self.faults.iter().position(|f| f.action.is_none() || f.action.as_deref() == action)?;
        let fault = self.faults.get_mut(index)?;
        fault.times = fault.times.saturating_sub(1);
        let kind = fault.kind.clone();
        if fault.times == 0 {
            self.faults.remove(index);
        }
        Some(kind)
    }

    /// Returns whether the instance exists.
    pub fn set_password(&mut self, redis_id: &str, password: Option<&str>) -> bool {
        self.instance_mut(redis_id).map(|i| i.password = password.map(str::to_owned)).is_some()
    }

    pub fn set_instance_status(&mut self, redis_id: &str, status: i64) -> bool {
        self.instance_mut(redis_id).map(|i| i.status = status).is_some()
    }

    pub fn fail_next_task(&mut self, redis_id: &str) -> bool {
        self.instance_mut(redis_id).map(|i| i.fail_next_task = true).is_some()
    }

    /// The control plane's view; passwords never leave the sandbox, only whether one is set.
    pub fn snapshot(&self, now: Instant) -> Value {
        let instances: Vec<Value> = self
            .instances
            .iter()
            .map(|i| {
                json!({
                    "redisId": i.redis_id,
                    "name": i.name,
                    "region": i.region,
                    "status": i.status_at(now),
                    "type": i.type_id,
                    "clonedFrom": i.cloned_from,
                    "network": i.network,
                    "billingMode": i.billing_mode,
                    "tags": i.tags,
                    "hasPassword": i.password.is_some(),
                    "locked": i.locked(now),
                    "failNextTask": i.fail_next_task,
                    "backups": i.backups,
                })
            })
            .collect();
        let tasks: Vec<Value> = self
            .tasks
            .iter()
            .map(|(id, t)| {
                json!({
                    "taskId": id,
                    "redisId": t.redis_id,
                    "backupId": t.backup_id,
                    "startTime": t.start_time,
                    "status": t.status(now).v3_name(),
                })
            })
            .collect();
        json!({
            "instances": instances,
            "tasks": tasks,
            "calls": self.calls,
            "restoresStarted": self.restores_started,
            "clonesStarted": self.clones_started,
            "pendingFaults": self.faults.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_outside_the_documented_bounds_is_an_invalid_parameter() {
        assert!(Page::new(Some(0), None).is_err());
        assert!(Page::new(Some(101), None).is_err());
        assert!(Page::new(None, Some(-1)).is_err());
        assert!(Page::up_to(1000, Some(1001), None).is_err());
        assert_eq!(Page::up_to(1000, Some(1000), None), Ok(Page { limit: 1000, offset: 0 }));
        assert_eq!(Page::new(None, None), Ok(Page { limit: 20, offset: 0 }));
        let page = Page::new(Some(2), Some(3)).unwrap_or(Page { limit: 0, offset: 0 });
        assert_eq!(page.slice(&[1, 2, 3, 4]), &[4]);
        assert!(page.slice(&[1]).is_empty());
    }

    #[test]
    fn legacy_short_region_codes_match_their_long_names() {
        assert!(region_matches("ap-guangzhou", "gz"));
        assert!(region_matches("ap-guangzhou", "ap-guangzhou"));
        assert!(!region_matches("ap-guangzhou", "sh"));
        assert_eq!(region_id("ap-guangzhou"), 1);
    }

    #[test]
    fn a_task_prepares_then_runs_then_ends() {
        let start = Instant::now();
        let task = Task {
            redis_id: String::new(),
            backup_id: String::new(),
            started: start,
            start_time: String::new(),
            duration: Duration::from_secs(10),
            fails: true,
        };
        assert_eq!(task.status(start), TaskStatus::Preparing);
        assert_eq!(task.status(start + Duration::from_secs(5)), TaskStatus::Running);
        assert_eq!(task.status(start + Duration::from_secs(10)), TaskStatus::Failed);
    }
}
