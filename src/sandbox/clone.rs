//! Restore by clone, as Tencent sells it for Memory Edition 4.0 and later: CloneInstances buys a
//! new instance from a backup (or a second of second-level backup), which goes through its
//! statuses to running; plus what a caller reads before buying (security groups, second-level
//! coverage, the price).
//!
//! API 3.0 only, like the real actions. Purchase failures (payment, sold out, quota, allow list)
//! are injected as faults with Tencent's codes, e.g. `FailedOperation.PayFailed`.

use std::time::Instant;

use serde_json::{Map, Value, json};

use super::config::SeedTag;
use super::errors::{ApiError, Code};
use super::state::{Instance, State};
use crate::tencent::clone::password_follows_clone_rules;

/// Second-level backups are kept for 7 days (DescribeSecondLevelBackupInfo).
pub(crate) const SECOND_LEVEL_WINDOW_SECS: i64 = 7 * 86_400;

/// What CloneInstances asks for (the fields the sandbox checks; others are accepted as sent).
#[derive(Debug, Clone)]
pub(crate) struct CloneRequest<'a> {
    pub source: &'a str,
    pub goods_num: i64,
    pub zone_id: i64,
    pub billing_mode: i64,
    pub period: i64,
    pub security_groups: Vec<String>,
    pub backup_id: &'a str,
    pub no_auth: bool,
    pub vpc_id: Option<&'a str>,
    pub subnet_id: Option<&'a str>,
    pub name: Option<&'a str>,
    pub password: Option<&'a str>,
    pub port: Option<i64>,
    pub project_id: Option<i64>,
    pub tags: Vec<SeedTag>,
    /// `CloneTime`, `YYYY-MM-DD HH:MM:SS` Beijing time.
    pub clone_time: Option<&'a str>,
}

/// What CloneInstances answers.
pub(crate) struct Deal {
    pub deal_id: String,
    pub deal_name: String,
    pub instance_ids: Vec<String>,
}

const PREPAID_PERIODS: &[i64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 24, 36, 48, 60];

/// `InstanceName`: shorter than 60 characters of letters, digits, `-`, `_` or Chinese.
fn name_is_valid(name: &str) -> bool {
    name.chars().count() < 60
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || ('\u{4e00}'..='\u{9fff}').contains(&c))
}

fn random_instance_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let suffix: String = (0..8).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect();
    format!("crs-{suffix}")
}

/// Parses `YYYY-MM-DD HH:MM:SS` as Beijing time into unix seconds.
pub(crate) fn parse_beijing(text: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let at = time::PrimitiveDateTime::parse(text, &format).ok()?;
    Some(at.assume_offset(time::macros::offset!(+8)).unix_timestamp())
}

impl State {
    fn known_security_groups(&self) -> impl Iterator<Item = &String> {
        self.instances.iter().flat_map(|i| i.network.security_groups.iter())
    }

    /// Second-level coverage at `at` (unix seconds): `Ok` when a clone to that second is possible.
    fn covers(instance: &Instance, at: i64, now: i64) -> Result<(), String> {
        let Some((since, gaps)) = &instance.second_level else {
            return Err("second-level backup is off (BackupMode NormalLevelBackup)".into());
        };
        if at > now || at < now - SECOND_LEVEL_WINDOW_SECS || at < *since {
            return Err(format!("{at} is outside the second-level backup window"));
        }
        if gaps.iter().any(|(from, to)| (*from..=*to).contains(&at)) {
            return Err(format!("{at} falls in a MissingTimestamps gap"));
        }
        Ok(())
    }

    /// The CloneInstances rules, then the purchase: a new instance that becomes running after
    /// the configured clone duration. Nothing about the source changes.
    pub fn clone_instance(
        &mut self,
        req: &CloneRequest<'_>,
        region: Option<&str>,
        now: Instant,
    ) -> Result<Deal, ApiError> {
        let param = |detail: String| ApiError::new(Code::InvalidParameter, detail);
        if req.source.is_empty() {
            return Err(param("InstanceId is required".into()));
        }
        let source = self.instance(req.source, region)?.clone();
        let status = source.status_at(now);
        if status != 2 {
            return Err(ApiError::new(
                Code::InstanceStatusAbnormal,
                format!("instance {} has status {status}", req.source),
            ));
        }
        if !(1..=30).contains(&req.goods_num) {
            return Err(ApiError::named("LimitExceeded.InvalidParameterGoodsNumNotInRange"));
        }
        if req.zone_id <= 0 {
            return Err(param("ZoneId is required".into()));
        }
        match req.billing_mode {
            0 if req.period == 1 => {}
            1 if PREPAID_PERIODS.contains(&req.period) => {}
            0 | 1 => {
                return Err(param(format!(
                    "Period {} is not allowed for BillingMode {}",
                    req.period, req.billing_mode
                )));
            }
            other => return Err(param(format!("BillingMode {other} is neither 0 nor 1"))),
        }
        if req.security_groups.is_empty() {
            return Err(param("SecurityGroupIdList is required".into()));
        }
        if let Some(missing) = req.security_groups.iter().find(|sg| !self.known_security_groups().any(|k| k == *sg)) {
            return Err(ApiError::new(Code::SecurityGroupIdsNotExists, format!("no security group {missing}")));
        }
        if let Some(subnet) = req.subnet_id
            && !self
                .instances
                .iter()
                .any(|i| i.network.subnet_id == subnet && Some(i.network.vpc_id.as_str()) == req.vpc_id)
        {
            return Err(ApiError::new(Code::InvalidSubnetId, format!("no subnet {subnet} in VPC {:?}", req.vpc_id)));
        }
        if let Some(name) = req.name
            && !name_is_valid(name)
        {
            return Err(param(
                "InstanceName must be shorter than 60 letters, digits, '-', '_' or Chinese characters".into(),
            ));
        }
        if !req.no_auth {
            match req.password.filter(|p| !p.is_empty()) {
                None => return Err(ApiError::new(Code::PasswordEmpty, "")),
                Some(p) if !password_follows_clone_rules(p) => return Err(ApiError::new(Code::PasswordRuleError, "")),
                Some(_) => {}
            }
        }
        match req.clone_time {
            Some(text) => {
                let at = parse_beijing(text).ok_or_else(|| {
                    ApiError::new(Code::CheckNotPass, format!("CloneTime {text:?} is not YYYY-MM-DD HH:MM:SS"))
                })?;
                Self::covers(&source, at, super::auth::now_unix())
                    .map_err(|why| ApiError::new(Code::CheckNotPass, why))?;
            }
            None => {
                let backup = source.backups.iter().find(|b| b.backup_id == req.backup_id).ok_or_else(|| {
                    ApiError::new(
                        Code::BackupNotExists,
                        format!("instance {} has no backup {}", req.source, req.backup_id),
                    )
                })?;
                if backup.status != 2 || backup.locked == 1 {
                    return Err(ApiError::new(Code::BackupStatusAbnormal, format!("backup status {}", backup.status)));
                }
            }
        }

        let deal = self.next_deal;
        self.next_deal += 1;
        let mut ids = Vec::new();
        for _ in 0..req.goods_num {
            let id = std::iter::repeat_with(random_instance_id)
                .find(|id| self.instances.iter().all(|i| &i.redis_id != id))
                .unwrap_or_default();
            let mut network = source.network.clone();
            network.zone_id = req.zone_id;
            network.vpc_id = req.vpc_id.unwrap_or_default().to_owned();
            network.subnet_id = req.subnet_id.unwrap_or_default().to_owned();
            network.security_groups.clone_from(&req.security_groups);
            network.port = req.port.unwrap_or(6379);
            network.project_id = req.project_id.unwrap_or(0);
            network.vip = format!("10.0.1.{}", 10 + self.instances.len() % 240);
            let turns_out = self.next_clone.remove(&source.redis_id).unwrap_or_default();
            let (final_status, size_mb) = turns_out.apply(&source);
            self.instances.push(Instance {
                redis_id: id.clone(),
                name: req.name.map_or_else(|| id.clone(), str::to_owned),
                region: source.region.clone(),
                password: if req.no_auth { None } else { req.password.map(str::to_owned) },
                status: final_status,
                backups: Vec::new(),
                type_id: source.type_id,
                network,
                billing_mode: req.billing_mode,
                size_mb,
                second_level: None,
                tags: req.tags.clone(),
                creating: Some((now, self.clone_duration)),
                cloned_from: Some(source.redis_id.clone()),
                shard_num: source.shard_num,
                replicas_num: source.replicas_num,
                created_unix: super::auth::now_unix(),
                isolated_unix: None,
                locked_until: None,
                fail_next_task: false,
            });
            ids.push(id);
        }
        *self.clones_started.entry(source.redis_id.clone()).or_default() += 1;
        tracing::info!(source = %source.redis_id, clones = ?ids, deal, "clone purchased");
        Ok(Deal { deal_id: format!("{deal:08}"), deal_name: format!("2026120{deal:016}"), instance_ids: ids })
    }

    /// DescribeSecondLevelBackupInfo: the backup that covers `at`, with the gaps.
    pub fn second_level_info(
        &self,
        redis_id: &str,
        region: Option<&str>,
        at: i64,
    ) -> Result<Map<String, Value>, ApiError> {
        let instance = self.instance(redis_id, region)?;
        let Some((since, gaps)) = &instance.second_level else {
            return Err(ApiError::new(Code::UnSupportError, format!("second-level backup is off for {redis_id}")));
        };
        let mut fields = Map::new();
        // One id per instance and second; numeric groups like Tencent's backup ids.
        fields.insert("BackupId".into(), format!("{at}-{}-1", since.unsigned_abs()).into());
        fields.insert("BackupTimestamp".into(), at.into());
        let missing: Vec<Value> =
            gaps.iter().map(|(from, to)| json!({"StartTimeStamp": from, "EndTimeStamp": to})).collect();
        fields.insert("MissingTimestamps".into(), if missing.is_empty() { Value::Null } else { missing.into() });
        fields.insert("StartTimestamp".into(), (*since).into());
        Ok(fields)
    }

    /// DescribeInstanceSecurityGroup: instances the caller named that exist in the region.
    pub fn security_groups(&self, ids: &[String], region: Option<&str>) -> Vec<Value> {
        ids.iter()
            .filter_map(|id| self.instance(id, region).ok())
            .map(|i| {
                let details: Vec<Value> = i
                    .network
                    .security_groups
                    .iter()
                    .map(|sg| {
                        json!({
                            "ProjectId": i.network.project_id,
                            "CreateTime": "2026-01-01 00:00:00",
                            "SecurityGroupId": sg,
                            "SecurityGroupName": format!("{sg}-name"),
                            "SecurityGroupRemark": "",
                            "InboundRule": [],
                            "OutboundRule": [],
                        })
                    })
                    .collect();
                json!({"InstanceId": i.redis_id, "SecurityGroupDetails": details})
            })
            .collect()
    }
}

/// InquiryPriceCreateInstance in hundredths of the currency (`AmountUnit: "pent"`), as Tencent
/// answers: the sandbox's price list is 0.10 CNY per GB-hour of each node pay-as-you-go and
/// 60 CNY per GB-month prepaid.
pub(crate) fn price_in_hundredths(
    mem_mb: i64,
    shards: i64,
    replicas: i64,
    billing_mode: i64,
    period: i64,
    goods: i64,
) -> f64 {
    let gb_nodes = (mem_mb.max(0) as f64 / 1024.0) * shards.max(1) as f64 * (replicas.max(0) + 1) as f64;
    let unit = if billing_mode == 1 { 6000.0 * period.max(1) as f64 } else { 10.0 };
    gb_nodes * unit * goods.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_times_are_eight_hours_ahead_of_utc() {
        assert_eq!(parse_beijing("1970-01-01 08:00:00"), Some(0));
        assert_eq!(parse_beijing("2026-12-01T09:41:00"), None);
    }

    #[test]
    fn prices_are_in_hundredths_per_hour_or_per_month() {
        assert!((price_in_hundredths(1024, 1, 1, 0, 1, 1) - 20.0).abs() < f64::EPSILON);
        assert!((price_in_hundredths(2048, 1, 1, 1, 3, 1) - 72_000.0).abs() < f64::EPSILON);
    }
}
