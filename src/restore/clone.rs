//! Clone: restore a backup (or a second of second-level backup) into a new instance that is a
//! drop-in twin of the source, bought with `CloneInstances`. The source is never touched; moving
//! clients over is a separate, human decision (README "Restore modes", docs/RUNBOOK.md).
//!
//! The building blocks are public so that other flows (DR drills) compose them: [`read_source`],
//! [`twin_request`], [`buy`] (exactly once, with [`find_by_tag`] when the answer is lost),
//! [`wait_until_running`] and [`describe_clone`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Outcome, ResolvedBackup, Target, WaitEnd, poll, resolve_backup, with_fresh_secrets};
use crate::audit::Audit;
use crate::clock::unix_now;
use crate::error::{CheckFailure, RestoreError};
use crate::payload::{PointInTime, RedisId, Region};
use crate::secrets::{InstancePassword, TencentCredentials};
use crate::state::AppState;
use crate::tencent::clone::{Billing, CloneFrom, CloneRequest, Price, password_follows_clone_rules};
use crate::tencent::instances::{InstanceDetail, InstanceQuery, STATUS_RUNNING, Tag};
use crate::tencent::{ApiVersion, Failure, TencentError};

/// The tag key that marks what one delivery bought; its value is the delivery id.
pub const DELIVERY_TAG: &str = "crs-restore:delivery";
/// The tag key naming the instance a clone was restored from.
pub const SOURCE_TAG: &str = "crs-restore:source";

/// Second-level backups reach back 7 days.
const POINT_IN_TIME_WINDOW_SECS: i64 = 7 * 86_400;
/// Tencent: `InstanceName` shorter than 60 characters.
const MAX_NAME_CHARS: usize = 59;
/// Looks for a clone whose CloneInstances answer was lost: Tencent's tag index may lag the
/// purchase by a moment, so a few looks, ~3.5 s in all (bounded: the caller is waiting).
const RECONCILE_DELAYS: [Duration; 4] =
    [Duration::ZERO, Duration::from_millis(500), Duration::from_millis(1000), Duration::from_millis(2000)];

pub fn delivery_tag(delivery_id: &str) -> Tag {
    Tag { key: DELIVERY_TAG.to_owned(), value: delivery_id.to_owned() }
}

pub fn source_tag(redis_id: &RedisId) -> Tag {
    Tag { key: SOURCE_TAG.to_owned(), value: redis_id.to_string() }
}

/// `<source name>-restored-<YYYYMMDDHHmm>` (UTC), within Tencent's limits: characters Tencent
/// does not allow in names become `-`, and the source name is shortened so the whole stays
/// under 60 characters.
pub fn clone_name(source_name: &str, source_id: &str, at_unix: i64) -> String {
    labelled_name(source_name, source_id, "restored", at_unix)
}

/// `<source name>-<label>-<YYYYMMDDHHmm>` (UTC) within Tencent's name rules (see [`clone_name`]).
pub fn labelled_name(source_name: &str, source_id: &str, label: &str, at_unix: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(at_unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!("[year][month][day][hour][minute]");
    let suffix = format!("-{label}-{}", at.format(format).unwrap_or_default());
    let base = if source_name.trim().is_empty() { source_id } else { source_name };
    let keep = MAX_NAME_CHARS.saturating_sub(suffix.chars().count());
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || ('\u{4e00}'..='\u{9fff}').contains(&c) {
                c
            } else {
                '-'
            }
        })
        .take(keep)
        .collect();
    format!("{cleaned}{suffix}")
}

/// The CloneInstances request for a drop-in twin of `source`: same zone, VPC, subnet, port and
/// project, the given security groups, name, tags and billing, and the source's password (or
/// `NoAuth` for a password-free source).
pub fn twin_request(
    source: &InstanceDetail,
    security_groups: Vec<String>,
    from: CloneFrom,
    name: String,
    tags: Vec<Tag>,
    billing: Billing,
    password: InstancePassword,
) -> CloneRequest {
    CloneRequest {
        source_id: source.id.clone(),
        zone_id: source.zone_id,
        billing,
        security_groups,
        from,
        vpc_id: source.vpc_id.clone(),
        subnet_id: source.subnet_id.clone(),
        name,
        password,
        port: source.port,
        project_id: source.project_id,
        tags,
    }
}

/// What a clone restore would buy, after every check it needs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub source: InstanceDetail,
    pub request: CloneRequest,
    /// The backup as listed (`None` for a point in time).
    pub backup: Option<ResolvedBackup>,
    /// The backup the clone starts from (for a point in time, the second-level backup's id).
    pub backup_id: String,
    pub point_in_time: Option<PointInTime>,
    pub price: Option<Price>,
}

/// A clone that was bought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub instance_id: String,
    /// `None` when the clone was found by its tag after the answer was lost.
    pub deal_id: Option<String>,
    pub name: String,
    pub backup_id: String,
    pub backup_start_time: Option<String>,
    pub point_in_time: Option<PointInTime>,
    /// Found by its delivery tag after CloneInstances' answer was lost.
    pub reconciled: bool,
}

/// What [`buy`] got: the clone's id, and how it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bought {
    pub instance_id: String,
    /// `None` when the answer was lost and the clone was found by its delivery tag.
    pub deal_id: Option<String>,
    pub reconciled: bool,
}

/// The source must exist, run, and live in a VPC (a clone without one would land in the retired
/// basic network); its security groups must be readable.
pub async fn read_source(
    state: &AppState,
    creds: &TencentCredentials,
    region: &Region,
    redis_id: &RedisId,
) -> Result<(InstanceDetail, Vec<String>), RestoreError> {
    let tencent = &state.tencent;
    let source = tencent
        .describe_instance_detail(creds, region, redis_id.as_str())
        .await?
        .ok_or(CheckFailure::InstanceNotExists)?;
    if source.status != STATUS_RUNNING {
        return Err(CheckFailure::InstanceStatusAbnormal(Some(source.status)).into());
    }
    if source.vpc_id.is_empty() || source.subnet_id.is_empty() {
        return Err(RestoreError::CloneSourceUnsupported(format!(
            "{redis_id} is not in a VPC subnet; a clone would land in the retired basic network"
        )));
    }
    let groups = tencent.instance_security_groups(creds, region, redis_id.as_str()).await?;
    if groups.is_empty() {
        return Err(RestoreError::CloneSourceUnsupported(format!(
            "no security group of {redis_id} could be read (DescribeInstanceSecurityGroup); CloneInstances needs them"
        )));
    }
    Ok((source, groups))
}

/// The second-level backup that covers `at`, or why there is none.
async fn point_in_time_backup(
    state: &AppState,
    creds: &TencentCredentials,
    region: &Region,
    source: &InstanceDetail,
    at: PointInTime,
) -> Result<String, RestoreError> {
    let unavailable = |why: String| RestoreError::PointInTimeUnavailable(why);
    if !source.second_level_backup() {
        return Err(unavailable(format!(
            "second-level backup is off for {} (BackupMode {:?}); turn it on (ModifyInstanceBackupMode) for future restores, or restore from a backup",
            source.id, source.backup_mode
        )));
    }
    let now = unix_now();
    if at.unix() > now {
        return Err(unavailable(format!("{} is in the future", at.to_rfc3339())));
    }
    if at.unix() < now - POINT_IN_TIME_WINDOW_SECS {
        return Err(unavailable(format!("{} is outside the 7-day second-level backup window", at.to_rfc3339())));
    }
    let info = match state.tencent.second_level_backup(creds, region, &source.id, at.unix()).await {
        Err(TencentError::Api { failure: Failure::Unsupported, message, .. }) => {
            return Err(unavailable(format!(
                "Tencent says {} does not support second-level backup ({message})",
                source.id
            )));
        }
        other => other?,
    };
    let rfc = |t: i64| PointInTime::from_unix(t).map_or_else(|| t.to_string(), PointInTime::to_rfc3339);
    if let Some(start) = info.start_timestamp
        && at.unix() < start
    {
        return Err(unavailable(format!("{} is before second-level backup began ({})", at.to_rfc3339(), rfc(start))));
    }
    if let Some((from, to)) = info.missing.iter().find(|(from, to)| (*from..=*to).contains(&at.unix())) {
        return Err(unavailable(format!(
            "{} falls inside a MissingTimestamps gap ({} to {})",
            at.to_rfc3339(),
            rfc(*from),
            rfc(*to)
        )));
    }
    Ok(info.backup_id)
}

/// Every check a clone restore needs, and the request it would send.
pub async fn plan(
    state: &AppState,
    creds: &TencentCredentials,
    target: &Target,
    delivery_id: &str,
    password: InstancePassword,
) -> Result<Plan, RestoreError> {
    let region = &target.region;
    let (source, groups) = read_source(state, creds, region, &target.redis_id).await?;
    let (from, backup, backup_id) = match target.point_in_time {
        Some(at) => {
            let id = point_in_time_backup(state, creds, region, &source, at).await?;
            (CloneFrom::PointInTime { backup_id: id.clone(), clone_time: at.tencent_clone_time() }, None, id)
        }
        None => {
            let backup = resolve_backup(state, creds, target, true).await?;
            let id = backup.id.to_string();
            (CloneFrom::Backup(id.clone()), Some(backup), id)
        }
    };
    if let InstancePassword::Password(pw) = &password
        && !password_follows_clone_rules(pw.expose())
    {
        return Err(RestoreError::Configuration(format!(
            "the password of {} does not follow Tencent's password rules for a clone (8-30 characters, at least two of lower case, upper case, digits and symbols, not starting with \"/\"); the clone would be refused",
            target.redis_id
        )));
    }
    let name = clone_name(&source.name, &source.id, unix_now());
    let tags = vec![delivery_tag(delivery_id), source_tag(&target.redis_id)];
    let request = twin_request(&source, groups, from, name, tags, state.config.clone_billing, password);
    Ok(Plan { source, request, backup, backup_id, point_in_time: target.point_in_time, price: None })
}

/// The instance tagged with this delivery, looked for a few times (bounded) because Tencent's
/// tag index may lag a purchase.
pub async fn find_by_tag(
    state: &AppState,
    creds: &TencentCredentials,
    region: &Region,
    tag: &Tag,
) -> Result<Option<InstanceDetail>, TencentError> {
    let mut last = Ok(None);
    for delay in RECONCILE_DELAYS {
        tokio::time::sleep(delay).await;
        last =
            state.tencent.describe_instances(creds, region, InstanceQuery::Tag(tag)).await.map(|mut found| found.pop());
        if matches!(last, Ok(Some(_))) {
            break;
        }
    }
    last
}

/// Buys the clone, exactly once: a failed purchase is never retried. The one re-send is when
/// Tencent refused the API keys themselves (the request was not authenticated or authorized, so
/// nothing can have been bought) and the keys have since changed in Secrets Manager. The caller
/// must have claimed the delivery first (`handler::once`, the job's own claim). When the answer is lost
/// after sending, the clone is looked for by its delivery tag; found, it is the clone; not found,
/// the outcome is unknown and the caller is told which tag to search for.
pub async fn buy(
    state: &AppState,
    creds: Arc<TencentCredentials>,
    region: &Region,
    request: CloneRequest,
    audit: &mut Audit,
) -> Result<Bought, RestoreError> {
    let source = RedisId::parse(&request.source_id).map_err(RestoreError::Configuration)?;
    let tag = request
        .tags
        .iter()
        .find(|t| t.key == DELIVERY_TAG)
        .cloned()
        .ok_or_else(|| RestoreError::Configuration("a clone request must carry its delivery tag".into()))?;
    let password = Arc::new(request.password.clone());
    let bought = with_fresh_secrets(state, &source, (creds.clone(), password), audit, |creds, _| {
        let request = request.clone();
        async move { state.tencent.clone_instances(&creds, region, &request).await }
    })
    .await;
    match bought {
        Ok(deal) => Ok(Bought { instance_id: deal.instance_id, deal_id: deal.deal_id, reconciled: false }),
        Err(err) if err.outcome_unknown() => {
            tracing::warn!(tag = %format!("{}={}", tag.key, tag.value), error = %err.message(), "CloneInstances outcome unknown; looking for the clone by its tag");
            match find_by_tag(state, &creds, region, &tag).await {
                Ok(Some(found)) => Ok(Bought { instance_id: found.id, deal_id: None, reconciled: true }),
                Ok(None) => Err(RestoreError::CloneOutcomeUnknown { tag: format!("{}={}", tag.key, tag.value) }),
                Err(e) => {
                    tracing::warn!(error = %e, "looking for the clone by its tag failed");
                    Err(RestoreError::CloneOutcomeUnknown { tag: format!("{}={}", tag.key, tag.value) })
                }
            }
        }
        Err(err) => Err(err),
    }
}

/// The clone as Tencent describes it now.
pub async fn describe_clone(
    state: &AppState,
    creds: &TencentCredentials,
    region: &Region,
    instance_id: &str,
) -> Result<Option<InstanceDetail>, TencentError> {
    state.tencent.describe_instance_detail(creds, region, instance_id).await
}

/// Isolated (-2) or being deleted (-3): the clone will never run.
pub fn clone_has_failed(instance: &InstanceDetail) -> bool {
    instance.status < 0
}

/// Polls the clone until it runs (`Status` 2) or has failed, `until` passes, or `stop_by` would
/// be crossed; `Finished` carries the clone as last described.
pub async fn wait_until_running(
    state: &AppState,
    region: &Region,
    instance_id: &str,
    until: Instant,
    stop_by: Option<Instant>,
    polls: u32,
) -> WaitEnd<InstanceDetail> {
    poll(state, until, stop_by, polls, |creds| async move {
        match describe_clone(state, &creds, region, instance_id).await {
            Ok(Some(i)) if i.status == STATUS_RUNNING || clone_has_failed(&i) => Ok(Some(i)),
            Ok(Some(_)) => Ok(None),
            // Tencent may list a new instance a moment after the purchase.
            Ok(None) => Err(format!("{instance_id} is not listed yet")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

/// A clone restore end to end (or, with `dry_run`, its plan with the price, buying nothing).
pub async fn execute(
    state: &AppState,
    target: &Target,
    delivery_id: &str,
    dry_run: bool,
    audit: &mut Audit,
) -> Result<Outcome, RestoreError> {
    let (creds, mut plan) = checked_plan(state, target, delivery_id, audit).await?;
    if dry_run {
        plan.price = quote(state, &creds, &target.region, &plan.source, state.config.clone_billing).await;
        return Ok(Outcome::CloneDryRunOk(Box::new(plan)));
    }
    Ok(Outcome::Cloning(purchase(state, creds, &target.region, plan, audit).await?))
}

/// API 3.0, the secrets, and every check of [`plan`]: what a clone would buy, and the keys to buy it.
pub async fn checked_plan(
    state: &AppState,
    target: &Target,
    delivery_id: &str,
    audit: &mut Audit,
) -> Result<(Arc<TencentCredentials>, Plan), RestoreError> {
    if state.tencent.version() != ApiVersion::V3 {
        return Err(RestoreError::CloneRequiresApi3);
    }
    let secrets = &state.secrets;
    let (creds, password) =
        tokio::join!(secrets.tencent_credentials(false), secrets.instance_password(&target.redis_id, false));
    let (creds, password) = (creds?, password?);
    let plan = plan(state, &creds, target, delivery_id, (*password).clone()).await?;
    if let Some(backup) = &plan.backup {
        audit.backup_id = Some(backup.id.clone());
    }
    Ok((creds, plan))
}

/// Tencent's price for a twin of `source`, or `None` (logged) when the inquiry does not answer:
/// a price is information, never a reason to fail by itself.
pub async fn quote(
    state: &AppState,
    creds: &TencentCredentials,
    region: &Region,
    source: &InstanceDetail,
    billing: Billing,
) -> Option<Price> {
    match state.tencent.inquiry_price(creds, region, source, billing).await {
        Ok(price) => price,
        Err(e) => {
            tracing::warn!(error = %e, "price inquiry failed; no price is known");
            None
        }
    }
}

/// Buys what `plan` describes (see [`buy`]) and says what was bought.
pub async fn purchase(
    state: &AppState,
    creds: Arc<TencentCredentials>,
    region: &Region,
    plan: Plan,
    audit: &mut Audit,
) -> Result<Started, RestoreError> {
    let name = plan.request.name.clone();
    let Bought { instance_id, deal_id, reconciled } = buy(state, creds, region, plan.request, audit).await?;
    audit.clone_instance_id = Some(instance_id.clone());
    Ok(Started {
        instance_id,
        deal_id,
        name,
        backup_id: plan.backup_id,
        backup_start_time: plan.backup.and_then(|b| b.start_time),
        point_in_time: plan.point_in_time,
        reconciled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_is_named_after_its_source_and_the_minute_within_tencents_limit() {
        // 2026-12-01 09:41 UTC
        assert_eq!(clone_name("orders-cache", "crs-orders62", 1_796_118_060), "orders-cache-restored-202612010941");
        assert_eq!(clone_name("", "crs-orders62", 1_796_118_060), "crs-orders62-restored-202612010941");
        let long = clone_name(&"x".repeat(100), "crs-a", 0);
        assert_eq!(long.chars().count(), 59);
        assert!(long.ends_with("-restored-197001010000"));
        assert_eq!(clone_name("cache (prod)", "crs-a", 0), "cache--prod--restored-197001010000");
    }

    #[test]
    fn the_delivery_tag_names_the_delivery() {
        let t = delivery_tag("msg_1");
        assert_eq!((t.key.as_str(), t.value.as_str()), ("crs-restore:delivery", "msg_1"));
    }
}
