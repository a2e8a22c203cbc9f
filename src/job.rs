//! Asynchronous restore jobs: what runs after a request was accepted with a callback URL, and
//! the watch that follows a task to its end, across invocations when one would time out.
//!
//! A job arrives as `{"crsRestoreJob": {...}}` from our own `Invoke` (trusted because only IAM
//! could deliver it); its fields are re-validated on the way in all the same.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::Audit;
use crate::callback::{CallbackEvent, CallbackUrl};
use crate::clock::{claim_window, rfc3339_ms, unix_ms, unix_now};
use crate::error::RestoreError;
use crate::idempotency::{Claim, Key, StoredResponse};
use crate::payload::{BackupId, BackupRef, PointInTime, RedisId, Region, RestoreMode};
use crate::query::record::{self, DeliveryRecord, Stage};
use crate::restore::{self, Outcome, Target, WaitEnd};
use crate::state::AppState;
use crate::tencent::TaskStatus;
use crate::tencent::instances::InstanceDetail;

/// The event key of a job; a Function URL event can never have it at the top level.
pub const ENVELOPE_KEY: &str = "crsRestoreJob";

/// Time kept back from the invocation's deadline for the hand-off and the last callback.
const HANDOFF_MARGIN: Duration = Duration::from_secs(60);

/// A restore to run (or a task to keep watching) in an asynchronous invocation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Job {
    pub delivery_id: String,
    /// `webhook`, `slack` or `drill`.
    pub source: String,
    /// Who asked: the verifying key id, the Slack user, or the scheduler.
    pub caller: String,
    pub redis_id: RedisId,
    pub backup: BackupRef,
    pub region: Region,
    #[serde(default)]
    pub mode: RestoreMode,
    #[serde(default)]
    pub point_in_time: Option<PointInTime>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub callback_url: Option<CallbackUrl>,
    #[serde(default)]
    pub wait: bool,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub drill: bool,
    /// Set once the restore has started and a later invocation keeps watching it.
    #[serde(default)]
    pub watch: Option<Watch>,
    /// Set for restores confirmed in Slack: events are also posted to the channel.
    #[serde(default)]
    pub slack: Option<crate::slack::SlackTarget>,
}

/// The state of a watch handed from one invocation to the next.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Watch {
    /// The RestoreInstance task (in place); 0 for a clone.
    #[serde(default)]
    pub task_id: i64,
    /// The instance a clone restore bought: the watch follows it to `Status` 2.
    #[serde(default)]
    pub clone_instance_id: Option<String>,
    #[serde(default)]
    pub deal_id: Option<String>,
    /// The backup (a second-level backup id for a point in time).
    pub backup_id: String,
    #[serde(default)]
    pub backup_start_time: Option<String>,
    /// Unix milliseconds when RestoreInstance / CloneInstances answered.
    pub started_at_ms: i64,
    /// Unix seconds after which the wait gives up (`WAIT_TIMEOUT_SECONDS` from the start).
    pub wait_until: i64,
    pub polls: u32,
    pub handoffs: u32,
}

pub fn envelope(job: &Job) -> Value {
    json!({ ENVELOPE_KEY: job })
}

/// What a job did, for its audit line and for direct invokers (drills).
#[derive(Debug, Clone, PartialEq)]
pub struct JobReport {
    pub outcome: &'static str,
    pub error_code: Option<String>,
    pub task_id: Option<i64>,
    pub backup_id: Option<String>,
    pub backup_start_time: Option<String>,
    pub duration_seconds: Option<u64>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub callbacks: Vec<String>,
    /// RestoreInstance may have started although the job could not tell (see `TencentError::outcome_unknown`).
    pub outcome_unknown: bool,
    pub clone_instance_id: Option<String>,
    /// Drill clones: how the clean-up went (`purged`, `destroyed`, or why it failed).
    pub cleanup: Option<String>,
    pub cleanup_failed: bool,
}

impl JobReport {
    /// A report of a job that failed before it began.
    pub fn failed(error_code: &str) -> Self {
        let mut report = Self::new("failed");
        report.error_code = Some(error_code.to_owned());
        report
    }

    #[cfg(test)]
    pub(crate) fn test_report(outcome: &'static str) -> Self {
        Self::new(outcome)
    }

    fn new(outcome: &'static str) -> Self {
        Self {
            outcome,
            error_code: None,
            task_id: None,
            backup_id: None,
            backup_start_time: None,
            duration_seconds: None,
            started_at_ms: None,
            finished_at_ms: None,
            callbacks: Vec::new(),
            outcome_unknown: false,
            clone_instance_id: None,
            cleanup: None,
            cleanup_failed: false,
        }
    }

    /// How old the backup was when the restore started, if its time is known.
    pub fn backup_age_seconds(&self) -> Option<i64> {
        let taken = crate::clock::beijing_unix(self.backup_start_time.as_deref()?)?;
        let started_ms = self.started_at_ms.unwrap_or_else(unix_ms);
        Some(started_ms / 1000 - taken)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "outcome": self.outcome,
            "backupAgeSeconds": self.backup_age_seconds(),
            "startedAt": self.started_at_ms.map(rfc3339_ms),
            "finishedAt": self.finished_at_ms.map(rfc3339_ms),
            "errorCode": self.error_code,
            "taskId": self.task_id,
            "backupId": self.backup_id,
            "backupStartTime": self.backup_start_time,
            "durationSeconds": self.duration_seconds,
            "callbacks": self.callbacks,
            "cloneInstanceId": self.clone_instance_id,
            "cleanup": self.cleanup,
        })
    }
}

/// Runs a job to its end (or to a hand-off). Never fails: every failure becomes a callback
/// event and an audit line.
pub async fn run(state: &Arc<AppState>, job: Job, deadline: Option<Instant>) -> JobReport {
    let started = Instant::now();
    let mut audit = Audit::new(source_name(&job.source));
    audit.phase = if job.watch.is_some() { "watch" } else { "job" };
    audit.delivery_id = Some(job.delivery_id.clone());
    audit.key_id = Some(job.caller.clone());
    audit.redis_id = Some(job.redis_id.clone());
    audit.region = Some(job.region.clone());
    audit.reason.clone_from(&job.reason);
    if let BackupRef::Id(id) = &job.backup {
        audit.backup_id = Some(id.clone());
    }
    let stop_by = deadline.map(|d| d.checked_sub(HANDOFF_MARGIN).unwrap_or(d));
    // Only our own IAM-authorized Invoke sends jobs, but their callback URL is checked against
    // the policy again anyway: a job must never be a way around the SSRF rules.
    let mut job = job;
    if let Some(url) = &job.callback_url
        && let Err(e) = CallbackUrl::parse(&url.to_string(), &state.config.callback_policy)
    {
        tracing::error!(error = %e, "job callback URL refused by the callback policy; no callbacks will be sent");
        job.callback_url = None;
    }
    let report = match job.watch.clone() {
        None => {
            // Lambda may deliver an asynchronous event more than once: the job claims its own
            // key so a second delivery can never start a second restore.
            let key = Key::new("job", &job.delivery_id, &serde_json::to_vec(&job).unwrap_or_default());
            let (now_ms, until_ms) = claim_window(deadline);
            match state.idempotency.claim(&key, until_ms, now_ms).await {
                Ok(Claim::Claimed) => {
                    let report = start(state, &job, stop_by, deadline, &mut audit).await;
                    let settled = if report.outcome_unknown {
                        state.idempotency.mark_outcome_unknown(&key).await
                    } else {
                        state.idempotency.complete(&key, &StoredResponse { status: 200, body: report.to_json() }).await
                    };
                    if let Err(e) = settled {
                        tracing::error!(key = %key.id, error = %e, "could not record the job's outcome");
                    }
                    report
                }
                Ok(_) => {
                    let mut report = JobReport::new("duplicate");
                    report.error_code = Some("DuplicateJob".into());
                    report
                }
                Err(e) => {
                    // Fail closed: without the claim, nothing is restored; the caller is told.
                    let err = RestoreError::from(e);
                    let mut report = JobReport::new("failed");
                    report.error_code = Some(err.code());
                    let mut event = base_event(&job, "restore.rejected");
                    event.error = Some(error_json(&err));
                    notify(state, &job, &event, deadline, &mut report).await;
                    report
                }
            }
        }
        Some(watch) => follow(state, &job, watch, stop_by, deadline, &mut audit).await,
    };
    audit.task_id = report.task_id;
    audit.duration_seconds = report.duration_seconds;
    audit.backup_age_seconds = report.backup_age_seconds();
    audit.cleanup.clone_from(&report.cleanup);
    audit.started_at = report.started_at_ms.map(rfc3339_ms);
    audit.finished_at = report.finished_at_ms.map(rfc3339_ms);
    audit.callback = (!report.callbacks.is_empty()).then(|| report.callbacks.join("; "));
    audit.emit_outcome(report.outcome, None, report.error_code.as_deref(), started.elapsed());
    report
}

fn source_name(source: &str) -> &'static str {
    match source {
        "slack" => "slack",
        "drill" => "drill",
        _ => "webhook",
    }
}

async fn start(
    state: &Arc<AppState>,
    job: &Job,
    stop_by: Option<Instant>,
    deadline: Option<Instant>,
    audit: &mut Audit,
) -> JobReport {
    let target = job_target(job);
    let started_ms = unix_ms();
    // A clone drill buys its throwaway clone its own way (drill tags, always pay-as-you-go,
    // within the drill's price limit); everything after the purchase is a clone restore's.
    let executed = if job.drill && job.mode == RestoreMode::Clone {
        crate::drill::clone::start(state, job, audit).await
    } else {
        restore::execute(state, &target, &job.delivery_id, job.dry_run, audit).await
    };
    let executed = match executed {
        // An in-place restore's answer was lost: Tencent's task list may show the task (then it is
        // followed as usual). A clone's is looked for by its delivery tag inside the clone path.
        Err(err) if err.outcome_unknown() && job.mode == RestoreMode::InPlace => {
            reconciled(state, job, audit).await.ok_or(err)
        }
        other => other,
    };
    match executed {
        Err(err) => {
            let error = error_json(&err);
            let unknown = err.outcome_unknown();
            note(state, job, |r| if unknown { r.unknown() } else { r.failed(error) }).await;
            // A restore whose outcome is unknown may be running, and a purchase Tencent refused
            // is a failed restore: failures to report, not rejections the caller can simply
            // correct and retry.
            let failed = err.outcome_unknown() || err.purchase_failed();
            let kind = if failed { "restore.failed" } else { "restore.rejected" };
            let mut report = JobReport::new(if failed { "failed" } else { "rejected" });
            report.error_code = Some(err.code());
            report.outcome_unknown = err.outcome_unknown();
            let mut event = base_event(job, kind);
            event.error = Some(error_json(&err));
            if let BackupRef::Id(id) = &job.backup {
                event.backup_id = Some(id.to_string());
            }
            notify(state, job, &event, deadline, &mut report).await;
            report
        }
        Ok(outcome @ Outcome::CloneDryRunOk(_)) => {
            note(state, job, |r| r.stage = Stage::DryRunOk).await;
            let (_, body, _) = crate::handler::outcome_answer(&target, &job.delivery_id, outcome);
            let mut report = JobReport::new("dry-run-ok");
            report.backup_id = body["backupId"].as_str().map(str::to_owned);
            let mut event = base_event(job, "restore.succeeded");
            event.dry_run = Some(true);
            event.backup_id.clone_from(&report.backup_id);
            event.clone = Some(body["clone"].clone());
            notify(state, job, &event, deadline, &mut report).await;
            report
        }
        Ok(Outcome::Cloning(clone)) => {
            let (instance_id, backup_id, reconciled) =
                (clone.instance_id.clone(), clone.backup_id.clone(), clone.reconciled);
            note(state, job, |r| {
                r.mode = "clone".into();
                r.backup = backup_id;
                r.clone_instance_id = Some(instance_id);
                r.reconciled = reconciled;
                r.stage = Stage::Started;
                r.started_at_ms = Some(started_ms);
            })
            .await;
            let mut report = JobReport::new("cloning");
            report.started_at_ms = Some(started_ms);
            report.backup_id = Some(clone.backup_id.clone());
            report.backup_start_time.clone_from(&clone.backup_start_time);
            report.clone_instance_id = Some(clone.instance_id.clone());
            let mut event = base_event(job, "restore.started");
            event.backup_id = Some(clone.backup_id.clone());
            event.backup_start_time.clone_from(&clone.backup_start_time);
            event.clone_instance_id = Some(clone.instance_id.clone());
            event.deal_id.clone_from(&clone.deal_id);
            event.started_at = Some(rfc3339_ms(started_ms));
            let watch = Watch::started(
                0,
                Some(clone.instance_id),
                clone.deal_id,
                clone.backup_id,
                clone.backup_start_time,
                started_ms,
            );
            announce_and_follow(state, job, report, &event, watch, stop_by, deadline, audit).await
        }
        Ok(Outcome::DryRunOk { backup, .. }) => {
            note(state, job, |r| r.stage = Stage::DryRunOk).await;
            let mut report = JobReport::new("dry-run-ok");
            report.backup_id = Some(backup.id.to_string());
            report.backup_start_time.clone_from(&backup.start_time);
            let mut event = base_event(job, "restore.succeeded");
            event.dry_run = Some(true);
            event.backup_id = Some(backup.id.to_string());
            event.backup_start_time = backup.start_time;
            notify(state, job, &event, deadline, &mut report).await;
            report
        }
        Ok(Outcome::Started { task_id, backup }) => {
            let backup_id = backup.id.to_string();
            note(state, job, |r| {
                r.backup = backup_id;
                r.started(task_id, started_ms);
            })
            .await;
            let mut report = JobReport::new("started");
            report.started_at_ms = Some(started_ms);
            report.task_id = Some(task_id);
            report.backup_id = Some(backup.id.to_string());
            report.backup_start_time.clone_from(&backup.start_time);
            let mut event = base_event(job, "restore.started");
            event.task_id = Some(task_id);
            event.backup_id = Some(backup.id.to_string());
            event.backup_start_time.clone_from(&backup.start_time);
            event.started_at = Some(rfc3339_ms(started_ms));
            let watch = Watch::started(task_id, None, None, backup.id.to_string(), backup.start_time, started_ms);
            announce_and_follow(state, job, report, &event, watch, stop_by, deadline, audit).await
        }
    }
}

impl Watch {
    /// The watch of a restore task (`task_id`) or a clone (`clone_instance_id`) that has just
    /// started; its wait limit is set when the wait begins ([`announce_and_follow`]).
    fn started(
        task_id: i64,
        clone_instance_id: Option<String>,
        deal_id: Option<String>,
        backup_id: String,
        backup_start_time: Option<String>,
        started_at_ms: i64,
    ) -> Self {
        Self {
            task_id,
            clone_instance_id,
            deal_id,
            backup_id,
            backup_start_time,
            started_at_ms,
            wait_until: 0,
            polls: 0,
            handoffs: 0,
        }
    }
}

/// After a restore task or a clone started: sends its `restore.started` event and, when the
/// job waits, follows it from now for `WAIT_TIMEOUT_SECONDS` (the clock starts after the event
/// was delivered, as the callback's retries may take a while).
#[allow(clippy::too_many_arguments)]
async fn announce_and_follow(
    state: &Arc<AppState>,
    job: &Job,
    mut report: JobReport,
    event: &CallbackEvent,
    mut watch: Watch,
    stop_by: Option<Instant>,
    deadline: Option<Instant>,
    audit: &mut Audit,
) -> JobReport {
    notify(state, job, event, deadline, &mut report).await;
    if !job.wait {
        return report;
    }
    watch.wait_until = unix_now().saturating_add(wait_seconds(state));
    let followed = follow(state, job, watch, stop_by, deadline, audit).await;
    merge(report, followed)
}

fn wait_seconds(state: &AppState) -> i64 {
    i64::try_from(state.config.wait_timeout.as_secs()).unwrap_or(i64::MAX)
}

pub(crate) fn job_target(job: &Job) -> Target {
    Target {
        redis_id: job.redis_id.clone(),
        backup: job.backup.clone(),
        region: job.region.clone(),
        mode: job.mode,
        point_in_time: job.point_in_time,
    }
}

/// The clone as the succeeded event reports it.
fn clone_json(clone: &InstanceDetail) -> Value {
    json!({"instanceId": clone.id, "name": clone.name, "vip": clone.vip, "port": clone.port})
}

/// Keeps the earlier callbacks' record when the wait adds its own.
fn merge(mut first: JobReport, then: JobReport) -> JobReport {
    first.callbacks.extend(then.callbacks);
    JobReport { callbacks: first.callbacks, ..then }
}

async fn follow(
    state: &Arc<AppState>,
    job: &Job,
    watch: Watch,
    stop_by: Option<Instant>,
    deadline: Option<Instant>,
    audit: &mut Audit,
) -> JobReport {
    audit.backup_id = BackupId::parse(&watch.backup_id).ok();
    audit.clone_instance_id.clone_from(&watch.clone_instance_id);
    let target = job_target(job);
    let remaining = u64::try_from(watch.wait_until.saturating_sub(unix_now())).unwrap_or(0);
    let until = Instant::now() + Duration::from_secs(remaining);
    // A clone is followed to running; an in-place restore to its task's end. Both end the same
    // ways, so one account of the end follows.
    let (end, clone) = match &watch.clone_instance_id {
        Some(id) => {
            match restore::clone::wait_until_running(state, &target.region, id, until, stop_by, watch.polls).await {
                WaitEnd::Finished(i) if restore::clone::clone_has_failed(&i) => {
                    (WaitEnd::Finished(TaskStatus::Failed), Some(i))
                }
                WaitEnd::Finished(i) => (WaitEnd::Finished(TaskStatus::Succeeded), Some(i)),
                WaitEnd::TimedOut { last_error } => (WaitEnd::TimedOut { last_error }, None),
                WaitEnd::HandOff { polls } => (WaitEnd::HandOff { polls }, None),
            }
        }
        None => (restore::wait(state, &target, watch.task_id, until, stop_by, watch.polls).await, None),
    };
    let is_clone = watch.clone_instance_id.is_some();

    let finished_ms = unix_ms();
    let duration = u64::try_from((finished_ms - watch.started_at_ms).max(0) / 1000).unwrap_or(0);
    let mut event = base_event(job, "restore.failed");
    event.task_id = (!is_clone).then_some(watch.task_id);
    event.clone_instance_id.clone_from(&watch.clone_instance_id);
    event.deal_id.clone_from(&watch.deal_id);
    event.backup_id = Some(watch.backup_id.to_string());
    event.backup_start_time.clone_from(&watch.backup_start_time);
    event.started_at = Some(rfc3339_ms(watch.started_at_ms));
    let mut report = JobReport::new("failed");
    report.started_at_ms = Some(watch.started_at_ms);
    report.finished_at_ms = Some(finished_ms);
    report.task_id = (!is_clone).then_some(watch.task_id);
    report.clone_instance_id.clone_from(&watch.clone_instance_id);
    report.backup_id = Some(watch.backup_id.to_string());
    report.backup_start_time.clone_from(&watch.backup_start_time);
    match end {
        WaitEnd::Finished(TaskStatus::Succeeded) => {
            event.kind = "restore.succeeded".into();
            event.clone = clone.as_ref().map(clone_json);
            report.outcome = "succeeded";
            note(state, job, |r| {
                r.stage = Stage::Succeeded;
                r.finished_at_ms = Some(finished_ms);
            })
            .await;
        }
        WaitEnd::Finished(_) if is_clone => {
            report.error_code = Some("CloneFailed".into());
            let status = clone.as_ref().map_or(0, |i| i.status);
            event.error = Some(json!({
                "code": "CloneFailed",
                "message": format!("Tencent reports the clone with status {status} (isolated or being deleted); it will not run"),
            }));
        }
        WaitEnd::Finished(_) => {
            report.error_code = Some("RestoreTaskFailed".into());
            let error = json!({"code": "RestoreTaskFailed", "message": "Tencent reports the restore task as failed"});
            note(state, job, |r| {
                r.finished_at_ms = Some(finished_ms);
                r.failed(error.clone());
            })
            .await;
            event.error = Some(error);
        }
        WaitEnd::TimedOut { last_error } => {
            report.error_code = Some("WaitTimeout".into());
            let detail = last_error.map(|e| format!(" (last poll error: {e})")).unwrap_or_default();
            let what = match &watch.clone_instance_id {
                Some(id) => format!(
                    "the clone {id} was not running when WAIT_TIMEOUT_SECONDS ran out{detail}; it exists and is billed: check it in the instance list"
                ),
                None => format!(
                    "the restore task had not finished when WAIT_TIMEOUT_SECONDS ran out{detail}; check the instance's task list"
                ),
            };
            event.error = Some(json!({"code": "WaitTimeout", "message": what}));
        }
        WaitEnd::HandOff { polls } => {
            let mut next = job.clone();
            next.watch = Some(Watch { polls, handoffs: watch.handoffs + 1, ..watch.clone() });
            match state.invoker.dispatch(state, next).await {
                Ok(()) => {
                    report.outcome = "handed-off";
                    return report;
                }
                Err(e) => {
                    tracing::error!(error = %e, task_id = watch.task_id, "could not hand the watch on");
                    report.error_code = Some("WatchLost".into());
                    event.error = Some(json!({
                        "code": "WatchLost",
                        "message": "the restore is running but could no longer be followed; check the instance's task list",
                    }));
                }
            }
        }
    }
    // A drill's clone is destroyed however the wait ended (a hand-off returned above: the next
    // invocation does it).
    if job.drill
        && let Some(id) = &watch.clone_instance_id
    {
        crate::drill::clone::finish(state, job, id, clone.as_ref(), &mut report, &mut event).await;
    }
    event.finished_at = Some(rfc3339_ms(finished_ms));
    event.duration_seconds = Some(duration);
    report.duration_seconds = Some(duration);
    notify(state, job, &event, deadline, &mut report).await;
    report
}

/// Records the unknown outcome and looks for the task in Tencent's task list; `Some` when
/// exactly one restore task started while the request was in flight.
async fn reconciled(state: &AppState, job: &Job, audit: &Audit) -> Option<Outcome> {
    let backup = audit.backup_id.clone().or_else(|| match &job.backup {
        BackupRef::Id(id) => Some(id.clone()),
        BackupRef::Latest => None,
    })?;
    let mut found = None;
    note(state, job, |r| r.unknown()).await;
    let mut record = record::load(state, &job.source, &job.delivery_id).await.ok().flatten()?;
    if let crate::query::reconcile::Reconciliation::Found { task_id, .. } =
        crate::query::reconcile_record(state, &mut record).await
    {
        found = Some(Outcome::Started { task_id, backup: restore::ResolvedBackup { id: backup, start_time: None } });
    }
    found
}

/// Moves the delivery's record (what status queries read) on; creates it for sources that
/// have none yet (Slack, drills).
async fn note(state: &AppState, job: &Job, change: impl FnOnce(&mut DeliveryRecord)) {
    let base = || {
        let mut r = DeliveryRecord::new(
            &job.source,
            &job.delivery_id,
            &job.caller,
            &job.redis_id,
            &job.region,
            &String::from(job.backup.clone()),
        );
        r.asynchronous = true;
        r.mode = job.mode.as_str().to_owned();
        r
    };
    record::update(state, &job.source, &job.delivery_id, base, change).await;
}

fn base_event(job: &Job, kind: &str) -> CallbackEvent {
    let clone = job.mode == RestoreMode::Clone;
    CallbackEvent {
        mode: clone.then(|| job.mode.as_str().to_owned()),
        point_in_time: job.point_in_time.map(PointInTime::to_rfc3339),
        kind: kind.to_owned(),
        delivery_id: job.delivery_id.clone(),
        redis_id: job.redis_id.to_string(),
        backup_id: None,
        backup_start_time: None,
        region: job.region.to_string(),
        task_id: None,
        started_at: None,
        finished_at: None,
        duration_seconds: None,
        dry_run: None,
        drill: job.drill.then_some(true),
        error: None,
        clone_instance_id: None,
        deal_id: None,
        clone: None,
        cleanup: None,
    }
}

fn error_json(err: &RestoreError) -> Value {
    let body = err.to_response(None).body;
    body["error"].clone()
}

/// Sends the event to the job's callback and Slack channel, if it has them, and records how
/// that went.
async fn notify(
    state: &Arc<AppState>,
    job: &Job,
    event: &CallbackEvent,
    deadline: Option<Instant>,
    report: &mut JobReport,
) {
    if let Some(target) = &job.slack {
        crate::slack::notify(state, job, target, event, deadline, report).await;
    }
    let Some(url) = &job.callback_url else {
        return;
    };
    let secret = match state.secrets.signing_keys().await {
        Ok(keys) => keys.callback_secret.clone(),
        Err(e) => {
            report.callbacks.push(format!("{} not sent: {e}", event.kind));
            return;
        }
    };
    let Some(secret) = secret else {
        report.callbacks.push(format!("{} not sent: no callbackSecret in the signing keys secret", event.kind));
        return;
    };
    let deadline = deadline.map(|d| d.checked_sub(Duration::from_secs(2)).unwrap_or(d));
    let delivery = state.callback.deliver(url, &secret, event, deadline).await;
    let line = match &delivery.result {
        Ok(status) => format!("{} delivered (HTTP {status}, {} attempt(s))", event.kind, delivery.attempts),
        Err(reason) => {
            tracing::warn!(kind = %event.kind, host = url.host(), %reason, "callback delivery failed");
            format!("{} failed after {} attempt(s): {reason}", event.kind, delivery.attempts)
        }
    };
    report.callbacks.push(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_round_trips_through_its_envelope_and_refuses_invalid_ids() {
        let job: Job = serde_json::from_value(json!({
            "deliveryId": "msg_1", "source": "webhook", "caller": "runbooks", "redisId": "crs-izbob1wh",
            "backup": "latest", "region": "ap-guangzhou", "callbackUrl": "https://hooks.example.com/x", "wait": true
        }))
        .expect("valid job");
        let back: Job = serde_json::from_value(envelope(&job)[ENVELOPE_KEY].clone()).expect("round trip");
        assert_eq!(back, job);
        let bad = json!({"deliveryId": "m", "source": "webhook", "caller": "c", "redisId": "crs-../../x",
            "backup": "latest", "region": "ap-guangzhou"});
        assert!(serde_json::from_value::<Job>(bad).is_err());
    }

    #[test]
    fn the_backup_age_reads_tencent_times_as_beijing_time() {
        let mut r = JobReport::new("succeeded");
        r.backup_start_time = Some("2026-11-26 14:30:00".into()); // 06:30:00 UTC
        r.started_at_ms = Some(1_795_674_600_000 + 3_600_000); // 07:30:00 UTC
        assert_eq!(r.backup_age_seconds(), Some(3600));
        r.backup_start_time = Some("yesterday".into());
        assert_eq!(r.backup_age_seconds(), None);
    }
}
