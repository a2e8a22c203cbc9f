//! The restore operation, whoever asked for it: resolve the backup, check it (dry run) or
//! start it, and follow the task to its end.

use std::time::{Duration, Instant};

use crate::audit::Audit;
use crate::error::{CheckFailure, RestoreError};
use crate::payload::{BackupId, BackupRef, RedisId, Region};
use crate::secrets::InstancePassword;
use crate::state::AppState;
use crate::tencent::{ApiVersion, Backup, Failure, TaskId, TaskStatus, TencentError};

/// What to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub redis_id: RedisId,
    pub backup: BackupRef,
    pub region: Region,
}

/// The backup a restore uses, with its time when it was looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedBackup {
    pub id: BackupId,
    pub start_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Started { task_id: TaskId, backup: ResolvedBackup },
    DryRunOk { backup: ResolvedBackup, instance_name: String },
}

/// Runs the restore (or, with `dry_run`, every check a restore would make, and nothing else).
pub async fn execute(
    state: &AppState,
    target: &Target,
    dry_run: bool,
    audit: &mut Audit,
) -> Result<Outcome, RestoreError> {
    let secrets = &state.secrets;
    let (creds, password) =
        tokio::join!(secrets.tencent_credentials(false), secrets.instance_password(&target.redis_id, false));
    let (mut creds, mut password) = (creds?, password?);
    let tencent = &state.tencent;
    let region = &target.region;

    // A dry run checks the instance first, as Tencent would, so a missing instance is reported
    // as such rather than as a missing backup.
    let instance_name = if dry_run {
        let instance = tencent
            .describe_instance(&creds, region, &target.redis_id)
            .await?
            .ok_or(CheckFailure::InstanceNotExists)?;
        if instance.status != Some(2) {
            return Err(CheckFailure::InstanceStatusAbnormal(instance.status).into());
        }
        if tencent.version() == ApiVersion::V2 && *password == InstancePassword::PasswordFree {
            return Err(RestoreError::Tencent(TencentError::Config(format!(
                "instance {} is configured as password-free, which only TENCENT_API_VERSION=3 supports",
                target.redis_id
            ))));
        }
        Some(instance.name)
    } else {
        None
    };

    let backup = match &target.backup {
        BackupRef::Latest => {
            let backups = tencent.list_backups(&creds, region, &target.redis_id).await?;
            latest_usable(&backups).ok_or(CheckFailure::NoUsableBackup)?
        }
        BackupRef::Id(id) if dry_run => {
            let backups = tencent.list_backups(&creds, region, &target.redis_id).await?;
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
    };
    audit.backup_id = Some(backup.id.clone());

    if let Some(instance_name) = instance_name {
        return Ok(Outcome::DryRunOk { backup, instance_name });
    }

    let mut refetched = false;
    let task_id = loop {
        let result = tencent.restore_instance(&creds, region, &target.redis_id, &backup.id, &password).await;
        // Tencent said no without changing anything: if the secret it rejected has changed in
        // Secrets Manager (rotation), retry once with the new value.
        let retry = match &result {
            Err(TencentError::Api { failure: Failure::PasswordError, .. }) if !refetched => {
                let fresh = secrets.instance_password(&target.redis_id, true).await?;
                audit.refetched = Some("instance-password");
                let changed = fresh != password;
                password = fresh;
                changed
            }
            Err(TencentError::Api { failure: Failure::AuthFailure, .. }) if !refetched => {
                let fresh = secrets.tencent_credentials(true).await?;
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
            break result?;
        }
    };
    audit.task_id = Some(task_id);
    Ok(Outcome::Started { task_id, backup })
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
pub enum WaitEnd {
    Finished(TaskStatus),
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
    mut polls: u32,
) -> WaitEnd {
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
        // A failed poll changes nothing: keep polling until the wait's own limit.
        let status = match state.secrets.tencent_credentials(false).await {
            Ok(creds) => state.tencent.describe_task(&creds, &target.region, task_id).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match status {
            Ok(s) if s.is_terminal() => return WaitEnd::Finished(s),
            Ok(_) => last_error = None,
            Err(e) => {
                tracing::warn!(task_id, error = %e, "task status poll failed; will poll again");
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
