//! The restore operation, whoever asked for it, in one of two modes behind [`execute`]:
//! `in_place` (RestoreInstance over the instance itself: Memory Edition 2.8 and CKV) and
//! `clone` (CloneInstances buys a new instance from the backup: every later edition). Shared
//! here: the target, backup resolution, the refetch-once rule, and polling until something ends.

pub mod clone;
pub mod in_place;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audit::Audit;
use crate::error::{CheckFailure, RestoreError};
use crate::payload::{BackupId, BackupRef, PointInTime, RedisId, Region, RestoreMode};
use crate::secrets::{InstancePassword, TencentCredentials};
use crate::state::AppState;
use crate::tencent::instances::Edition;
use crate::tencent::{Backup, Failure, TaskId, TaskStatus, TencentError};

/// What to restore, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub redis_id: RedisId,
    pub backup: BackupRef,
    pub region: Region,
    pub mode: RestoreMode,
    /// Clone only: the second to restore to (the backup then comes from second-level backup).
    pub point_in_time: Option<PointInTime>,
}

/// The backup a restore uses, with its time when it was looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedBackup {
    pub id: BackupId,
    pub start_time: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    /// In place: RestoreInstance started this task.
    Started { task_id: TaskId, backup: ResolvedBackup },
    /// In place, dry run; the edition when API 3.0 reports it.
    DryRunOk { backup: ResolvedBackup, instance_name: String, edition: Option<Edition> },
    /// Clone: the new instance was bought (or found by its delivery tag).
    Cloning(clone::Started),
    /// Clone, dry run: what would be bought.
    CloneDryRunOk(Box<clone::Plan>),
}

/// Runs the restore in the target's mode (or, with `dry_run`, every check it would make, and
/// nothing else). `delivery_id` tags what a clone buys, so an unknown outcome can be found again.
pub async fn execute(
    state: &AppState,
    target: &Target,
    delivery_id: &str,
    dry_run: bool,
    audit: &mut Audit,
) -> Result<Outcome, RestoreError> {
    audit.mode = Some(target.mode);
    match target.mode {
        RestoreMode::InPlace => in_place::execute(state, target, dry_run, audit).await,
        RestoreMode::Clone => clone::execute(state, target, delivery_id, dry_run, audit).await,
    }
}

/// Resolves `latest`, or (with `verify`) checks that a named backup exists and is usable.
pub(crate) async fn resolve_backup(
    state: &AppState,
    creds: &TencentCredentials,
    target: &Target,
    verify: bool,
) -> Result<ResolvedBackup, RestoreError> {
    let tencent = &state.tencent;
    Ok(match &target.backup {
        BackupRef::Latest => {
            let backups = tencent.list_backups(creds, &target.region, &target.redis_id).await?;
            latest_usable(&backups).ok_or(CheckFailure::NoUsableBackup)?
        }
        BackupRef::Id(id) if verify => {
            let backups = tencent.list_backups(creds, &target.region, &target.redis_id).await?;
            let found = backups.iter().find(|b| b.id == id.as_str()).ok_or(CheckFailure::BackupNotExists)?;
            if found.locked || found.status == 1 {
                return Err(CheckFailure::BackupLocked.into());
            }
            if !found.is_usable() {
                return Err(CheckFailure::BackupStatusAbnormal(found.status).into());
            }
            ResolvedBackup { id: id.clone(), start_time: Some(found.start_time.clone()) }
        }
        BackupRef::Id(id) => ResolvedBackup { id: id.clone(), start_time: None },
    })
}

/// Calls `action` with the current secrets; if Tencent rejected the password or the API keys
/// (so nothing changed) and the secret has since changed in Secrets Manager (rotation), calls
/// it once more with the new value.
pub(crate) async fn with_fresh_secrets<T, F, Fut>(
    state: &AppState,
    redis_id: &RedisId,
    secrets: (Arc<TencentCredentials>, Arc<InstancePassword>),
    audit: &mut Audit,
    mut action: F,
) -> Result<T, RestoreError>
where
    F: FnMut(Arc<TencentCredentials>, Arc<InstancePassword>) -> Fut,
    Fut: Future<Output = Result<T, TencentError>>,
{
    let (mut creds, mut password) = secrets;
    let mut refetched = false;
    loop {
        let result = action(creds.clone(), password.clone()).await;
        let retry = match &result {
            Err(TencentError::Api { failure: Failure::PasswordError, .. }) if !refetched => {
                let fresh = state.secrets.instance_password(redis_id, true).await?;
                audit.refetched = Some("instance-password");
                let changed = fresh != password;
                password = fresh;
                changed
            }
            Err(TencentError::Api { failure: Failure::AuthFailure, .. }) if !refetched => {
                let fresh = state.secrets.tencent_credentials(true).await?;
                audit.refetched = Some("tencent-credentials");
                let changed = fresh.secret_id != creds.secret_id
                    || fresh.secret_key != creds.secret_key
                    || fresh.token != creds.token;
                creds = fresh;
                changed
            }
            _ => false,
        };
        refetched = true;
        if !retry {
            return Ok(result?);
        }
    }
}

/// The newest backup that can be restored (status normal, not locked).
pub fn latest_usable(backups: &[Backup]) -> Option<ResolvedBackup> {
    backups
        .iter()
        .filter(|b| b.is_usable())
        // `YYYY-MM-DD HH:MM:SS` sorts chronologically as text.
        .max_by(|a, b| a.start_time.cmp(&b.start_time))
        .and_then(|b| {
            BackupId::parse(&b.id).ok().map(|id| ResolvedBackup { id, start_time: Some(b.start_time.clone()) })
        })
}

/// Backoff between task status polls: `initial`, growing by half each time, up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct PollPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl PollPolicy {
    pub fn delay(self, polls: u32) -> Duration {
        let grown = self.initial.mul_f64(1.5_f64.powi(i32::try_from(polls.min(20)).unwrap_or(20)));
        grown.min(self.max)
    }
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitEnd<T = TaskStatus> {
    Finished(T),
    /// `WAIT_TIMEOUT_SECONDS` passed without a terminal status.
    TimedOut {
        last_error: Option<String>,
    },
    /// The invocation is about to end: continue in a fresh one.
    HandOff {
        polls: u32,
    },
}

/// Polls DescribeTaskInfo until the task ends, `until` passes, or `stop_by` (the invocation's
/// deadline less a margin) would be crossed by the next poll.
pub async fn wait(
    state: &AppState,
    target: &Target,
    task_id: TaskId,
    until: Instant,
    stop_by: Option<Instant>,
    polls: u32,
) -> WaitEnd {
    poll(state, until, stop_by, polls, |creds| async move {
        let status = state.tencent.describe_task(&creds, &target.region, task_id).await.map_err(|e| e.to_string())?;
        Ok(status.is_terminal().then_some(status))
    })
    .await
}

/// Calls `probe` with backoff until it returns `Some`, `until` passes, or `stop_by` would be
/// crossed by the next poll. A failed probe changes nothing: polling goes on until the limit.
pub(crate) async fn poll<T, F, Fut>(
    state: &AppState,
    until: Instant,
    stop_by: Option<Instant>,
    mut polls: u32,
    mut probe: F,
) -> WaitEnd<T>
where
    F: FnMut(Arc<TencentCredentials>) -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let mut last_error = None;
    loop {
        let delay = state.config.poll.delay(polls);
        let next = Instant::now() + delay;
        if next >= until {
            return WaitEnd::TimedOut { last_error };
        }
        if stop_by.is_some_and(|s| next >= s) {
            return WaitEnd::HandOff { polls };
        }
        tokio::time::sleep(delay).await;
        polls += 1;
        let result = match state.secrets.tencent_credentials(false).await {
            Ok(creds) => probe(creds).await,
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(Some(done)) => return WaitEnd::Finished(done),
            Ok(None) => last_error = None,
            Err(e) => {
                tracing::warn!(polls, error = %e, "status poll failed; will poll again");
                last_error = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(id: &str, time: &str, status: i64, locked: bool) -> Backup {
        Backup { id: id.into(), start_time: time.into(), status, locked }
    }

    #[test]
    fn latest_picks_the_newest_usable_backup() {
        let list = [
            backup("11111111-1111-4111-8111-111111111111", "2026-11-24 03:00:00", 2, false),
            backup("22222222-2222-4222-8222-222222222222", "2026-11-26 03:00:00", -1, false),
            backup("33333333-3333-4333-8333-333333333333", "2026-11-25 03:00:00", 2, false),
            backup("44444444-4444-4444-8444-444444444444", "2026-11-25 09:00:00", 2, true),
        ];
        let got = latest_usable(&list).expect("one is usable");
        assert_eq!(got.id.as_str(), "33333333-3333-4333-8333-333333333333");
        assert_eq!(got.start_time.as_deref(), Some("2026-11-25 03:00:00"));
        assert_eq!(latest_usable(&list[1..2]), None);
        assert_eq!(latest_usable(&[]), None);
    }

    #[test]
    fn polls_back_off_from_the_initial_delay_to_the_maximum() {
        let p = PollPolicy { initial: Duration::from_secs(5), max: Duration::from_secs(30) };
        assert_eq!(p.delay(0), Duration::from_secs(5));
        assert!(p.delay(1) > p.delay(0));
        assert_eq!(p.delay(10), Duration::from_secs(30));
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(30));
    }
}
