//! Clone drills: prove that a production instance's newest backup comes back, and how long that
//! takes, without touching production. The backup is cloned into a throwaway pay-as-you-go
//! instance (tagged `crs-restore:drill=<execution key>` and `crs-restore:source=<redisId>`),
//! followed until it runs, checked to be the source's twin, and destroyed, whatever happened.
//!
//! The drill reuses a clone restore's building blocks (`restore::clone`) and the job machinery
//! (waiting, hand-offs, callbacks); what is its own lives here: the purchase rules (drill tags,
//! never prepaid, the price limit), the twin check, the clean-up, and the orphan sweep.
//!
//! Only instances that carry both drill tags and are pay-as-you-go are ever destroyed: the
//! function never deletes anything it did not create ([`Owned`]).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::audit::Audit;
use crate::callback::CallbackEvent;
use crate::clock::unix_now;
use crate::error::RestoreError;
use crate::job::{Job, JobReport, job_target};
use crate::payload::{RedisId, Region};
use crate::restore::Outcome;
use crate::restore::clone::{self as cloning, SOURCE_TAG, labelled_name};
use crate::secrets::TencentCredentials;
use crate::state::AppState;
use crate::tencent::clone::Billing;
use crate::tencent::instances::{InstanceDetail, InstanceQuery, Tag};

/// The tag key of drill clones; its value is the drill's execution key.
pub const DRILL_TAG: &str = "crs-restore:drill";

/// How long the clean-up waits for a destroyed clone to reach the recycle bin before
/// `CleanUpInstance` (Tencent isolates asynchronously; bounded, the invocation is finite).
const ISOLATION_WAIT: Duration = Duration::from_secs(90);

/// A drill clone's execution key, from the drill's delivery id (`drill-<key>`).
fn execution_key(job: &Job) -> &str {
    job.delivery_id.strip_prefix("drill-").unwrap_or(&job.delivery_id)
}

/// Buys the drill's clone: the twin a clone restore would buy, but always pay-as-you-go, named
/// `<source>-drill-<time>`, tagged as a drill, and only within `DRILL_MAX_HOURLY_PRICE` (checked
/// before anything is bought, where Tencent's price inquiry answers).
pub async fn start(state: &AppState, job: &Job, audit: &mut Audit) -> Result<Outcome, RestoreError> {
    let target = job_target(job);
    let (creds, mut plan) = cloning::checked_plan(state, &target, &job.delivery_id, audit).await?;
    plan.request.billing = Billing::Postpaid;
    plan.request.name = labelled_name(&plan.source.name, &plan.source.id, "drill", unix_now());
    plan.request.tags.push(Tag { key: DRILL_TAG.to_owned(), value: execution_key(job).to_owned() });
    if let Some(limit) = state.config.drill_max_hourly_price {
        match cloning::quote(state, &creds, &target.region, &plan.source, Billing::Postpaid).await {
            Some(price) if price.amount > limit => {
                return Err(RestoreError::DrillPriceLimit { price: price.amount, currency: price.currency, limit });
            }
            Some(_) => {}
            None => tracing::warn!(
                redis_id = %target.redis_id,
                "no price from Tencent: DRILL_MAX_HOURLY_PRICE cannot be checked; the drill goes on"
            ),
        }
    }
    Ok(Outcome::Cloning(cloning::purchase(state, creds, &target.region, plan, audit).await?))
}

/// Ends a drill's clone: checks that a running clone is the source's twin (a clone that is not
/// fails the drill), then destroys it, whatever the outcome. Records both in the report and
/// the final event.
pub async fn finish(
    state: &Arc<AppState>,
    job: &Job,
    clone_id: &str,
    clone: Option<&InstanceDetail>,
    report: &mut JobReport,
    event: &mut CallbackEvent,
) {
    let creds = match state.secrets.tencent_credentials(false).await {
        Ok(creds) => creds,
        Err(e) => {
            record_cleanup(report, event, Err(format!("the Tencent credentials could not be read: {e}")));
            return;
        }
    };
    if report.outcome == "succeeded"
        && let Some(clone) = clone
        && let Err(difference) = twin_check(state, &creds, &job.region, &job.redis_id, clone).await
    {
        report.outcome = "failed";
        report.error_code = Some("CloneNotTwin".into());
        event.kind = "restore.failed".into();
        event.clone = None;
        event.error = Some(json!({
            "code": "CloneNotTwin",
            "message": format!("the clone {} runs but is not a twin of {}: {difference}", clone.id, job.redis_id),
        }));
    }
    let result = destroy(state, &creds, &job.region, clone_id).await;
    record_cleanup(report, event, result);
}

fn record_cleanup(report: &mut JobReport, event: &mut CallbackEvent, result: Result<&'static str, String>) {
    let text = match result {
        Ok(done) => done.to_owned(),
        Err(why) => {
            tracing::error!(clone = ?report.clone_instance_id, reason = %why, "drill clone clean-up failed: a billed instance may be left");
            report.cleanup_failed = true;
            format!("failed: {why}")
        }
    };
    event.cleanup = Some(text.clone());
    report.cleanup = Some(text);
}

/// The clone must match its source in edition, shard and replica counts and memory size.
async fn twin_check(
    state: &AppState,
    creds: &TencentCredentials,
    region: &Region,
    source_id: &RedisId,
    clone: &InstanceDetail,
) -> Result<(), String> {
    let source = state
        .tencent
        .describe_instance_detail(creds, region, source_id.as_str())
        .await
        .map_err(|e| format!("the source could not be read to compare: {e}"))?
        .ok_or_else(|| format!("the source {source_id} is no longer listed"))?;
    let pairs = [
        ("edition (Type)", source.edition.0, clone.edition.0),
        ("RedisShardNum", source.shard_num, clone.shard_num),
        ("RedisReplicasNum", source.replicas_num, clone.replicas_num),
        ("Size (MB)", source.size_mb, clone.size_mb),
    ];
    let differences: Vec<String> =
        pairs.iter().filter(|(_, a, b)| a != b).map(|(name, a, b)| format!("{name} {b}, source {a}")).collect();
    if differences.is_empty() { Ok(()) } else { Err(differences.join("; ")) }
}

/// An instance this function bought for a drill: both drill tags, pay-as-you-go. Nothing else
/// is ever destroyed.
struct Owned<'a>(&'a InstanceDetail);

impl<'a> Owned<'a> {
    fn check(detail: &'a InstanceDetail) -> Result<Self, String> {
        if detail.tag(DRILL_TAG).is_none() || detail.tag(SOURCE_TAG).is_none() {
            return Err(format!(
                "{} does not carry the {DRILL_TAG} and {SOURCE_TAG} tags: not ours to destroy",
                detail.id
            ));
        }
        if detail.billing_mode != 0 {
            return Err(format!(
                "{} is prepaid (BillingMode {}): drill clones never are",
                detail.id, detail.billing_mode
            ));
        }
        Ok(Self(detail))
    }
}

/// Destroys a drill clone (`DestroyPostpaidInstance`) and, with `DRILL_PURGE`, removes it from
/// the recycle bin (`CleanUpInstance`) once Tencent shows it isolated. `Ok` says what was done.
pub async fn destroy(
    state: &AppState,
    creds: &TencentCredentials,
    region: &Region,
    id: &str,
) -> Result<&'static str, String> {
    let tencent = &state.tencent;
    let Some(detail) = tencent.describe_instance_detail(creds, region, id).await.map_err(|e| e.to_string())? else {
        return Ok("gone");
    };
    let owned = Owned::check(&detail)?;
    if owned.0.status >= 0 {
        tencent
            .destroy_postpaid_instance(creds, region, id)
            .await
            .map_err(|e| format!("DestroyPostpaidInstance {id}: {e}"))?;
    }
    if !state.config.drill_purge {
        return Ok("destroyed");
    }
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        match tencent.describe_instance_detail(creds, region, id).await {
            Ok(None) => return Ok("purged"),
            Ok(Some(i)) if i.status == -2 => break,
            Ok(Some(_)) | Err(_) if started.elapsed() + delay > ISOLATION_WAIT => {
                return Err(format!("destroyed, but {id} did not reach the recycle bin within {ISOLATION_WAIT:?}"));
            }
            Ok(Some(_)) | Err(_) => {}
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    tencent
        .clean_up_instance(creds, region, id)
        .await
        .map_err(|e| format!("destroyed, but CleanUpInstance {id}: {e}"))?;
    Ok("purged")
}

/// What an orphan sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    pub destroyed: u32,
    pub failures: Vec<String>,
}

/// Destroys drill clones left by drills that died (of any source: a drill whose schedule was
/// removed leaves its orphans to the others): tagged as drill clones and older than
/// `DRILL_MAX_AGE_MINUTES` (never younger than `WAIT_TIMEOUT_SECONDS` plus half an hour, so a
/// drill still waiting on its clone keeps it), and, with `DRILL_PURGE`, drill clones already in
/// the recycle bin. `drill_source` is the source of the drill that sweeps (for its log lines).
pub async fn sweep(state: &AppState, region: &Region, drill_source: &RedisId) -> Sweep {
    let mut sweep = Sweep::default();
    let creds = match state.secrets.tencent_credentials(false).await {
        Ok(creds) => creds,
        Err(e) => {
            sweep.failures.push(format!("the Tencent credentials could not be read: {e}"));
            return sweep;
        }
    };
    let found = match state.tencent.describe_instances(&creds, region, InstanceQuery::TagKey(DRILL_TAG)).await {
        Ok(found) => found,
        Err(e) => {
            sweep.failures.push(format!("drill clones could not be listed: {e}"));
            return sweep;
        }
    };
    let max_age = state.config.drill_max_age.max(state.config.wait_timeout + Duration::from_secs(1800));
    let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    let now = unix_now();
    for orphan in &found {
        let in_recycle_bin = orphan.status == -2 && state.config.drill_purge;
        let too_old = orphan.created_unix().is_some_and(|created| now - created > max_age);
        if !(in_recycle_bin || too_old) || Owned::check(orphan).is_err() {
            continue;
        }
        match destroy(state, &creds, region, &orphan.id).await {
            Ok(done) => {
                tracing::warn!(
                    target: "crs_restore::audit",
                    audit = true,
                    source = "drill",
                    phase = "sweep",
                    outcome = done,
                    clone_instance_id = %orphan.id,
                    cloned_from = orphan.tag(SOURCE_TAG),
                    redis_id = %drill_source,
                    "orphaned drill clone removed"
                );
                sweep.destroyed += 1;
            }
            Err(why) => sweep.failures.push(why),
        }
    }
    sweep
}
