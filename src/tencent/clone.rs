//! Buying a clone (API 3.0): `CloneInstances`, its price (`InquiryPriceCreateInstance`) and
//! second-level backup coverage for point-in-time clones (`DescribeSecondLevelBackupInfo`).

use serde_json::{Value, json};

use super::instances::Tag;
use super::{TencentClient, TencentError, lenient_i64};
use crate::payload::Region;
use crate::secrets::{InstancePassword, TencentCredentials};

pub use super::error::CLONE_ACTION;

/// How the clone is paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billing {
    /// Pay-as-you-go (`BillingMode` 0, `Period` 1).
    Postpaid,
    /// Prepaid (`BillingMode` 1) for this many months.
    Prepaid { months: u32 },
}

impl Billing {
    pub fn mode(self) -> i64 {
        match self {
            Self::Postpaid => 0,
            Self::Prepaid { .. } => 1,
        }
    }

    pub fn period(self) -> u32 {
        match self {
            Self::Postpaid => 1,
            Self::Prepaid { months } => months,
        }
    }

    /// `postpaid` / `prepaid`, as in `CLONE_BILLING_MODE`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Postpaid => "postpaid",
            Self::Prepaid { .. } => "prepaid",
        }
    }

    /// What one price quote covers.
    pub fn per(self) -> &'static str {
        match self {
            Self::Postpaid => "hour",
            Self::Prepaid { .. } => "month",
        }
    }
}

/// Which data the clone starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneFrom {
    Backup(String),
    /// Second-level backup: the id DescribeSecondLevelBackupInfo named for that second, and
    /// `CloneTime` in Tencent's `YYYY-MM-DD HH:MM:SS` Beijing-time form.
    PointInTime {
        backup_id: String,
        clone_time: String,
    },
}

/// A CloneInstances request. The password is held redacted and only written into the body
/// that is signed and sent.
#[derive(Debug, Clone)]
pub struct CloneRequest {
    pub source_id: String,
    pub zone_id: i64,
    pub billing: Billing,
    pub security_groups: Vec<String>,
    pub from: CloneFrom,
    pub vpc_id: String,
    pub subnet_id: String,
    pub name: String,
    pub password: InstancePassword,
    pub port: i64,
    pub project_id: i64,
    pub tags: Vec<Tag>,
}

impl CloneRequest {
    fn body(&self) -> Value {
        let backup_id = match &self.from {
            CloneFrom::Backup(id) | CloneFrom::PointInTime { backup_id: id, .. } => id,
        };
        let mut body = json!({
            "InstanceId": self.source_id,
            "GoodsNum": 1,
            "ZoneId": self.zone_id,
            "BillingMode": self.billing.mode(),
            "Period": self.billing.period(),
            "SecurityGroupIdList": self.security_groups,
            "BackupId": backup_id,
            "VpcId": self.vpc_id,
            "SubnetId": self.subnet_id,
            "InstanceName": self.name,
            "VPort": self.port,
            "ProjectId": self.project_id,
            "ResourceTags": self.tags.iter().map(|t| json!({"TagKey": t.key, "TagValue": t.value})).collect::<Vec<_>>(),
        });
        match &self.password {
            InstancePassword::Password(pw) => body["Password"] = pw.expose().into(),
            InstancePassword::PasswordFree => body["NoAuth"] = true.into(),
        }
        if let CloneFrom::PointInTime { clone_time, .. } = &self.from {
            body["CloneTime"] = clone_time.clone().into();
        }
        body
    }
}

/// What CloneInstances answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    pub deal_id: Option<String>,
    pub instance_id: String,
}

/// A price quote in the currency's main unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub amount: f64,
    pub currency: String,
}

/// DescribeSecondLevelBackupInfo's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondLevelInfo {
    pub backup_id: String,
    /// Unix seconds since when second-level backup runs.
    pub start_timestamp: Option<i64>,
    /// `[start, end]` unix seconds with no backup.
    pub missing: Vec<(i64, i64)>,
}

/// Tencent's password rule for clones of Redis 2.8/4.0/5.0 (CloneInstances `Password`; the docs
/// state no other rule for 6.2/7.0, so it is applied to them too): 8–30 characters, at least two
/// of lower case, upper case, digits and ``()`~!@#$%^&*-+=_|{}[]:;<>,.?/``, not starting with `/`.
pub fn password_follows_clone_rules(password: &str) -> bool {
    const SPECIAL: &str = "()`~!@#$%^&*-+=_|{}[]:;<>,.?/";
    let len = password.chars().count();
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| SPECIAL.contains(c)),
    ];
    let only_allowed = password.chars().all(|c| c.is_ascii_alphanumeric() || SPECIAL.contains(c));
    (8..=30).contains(&len) && classes.iter().filter(|c| **c).count() >= 2 && only_allowed && !password.starts_with('/')
}

/// Tencent quotes in hundredths (`AmountUnit` `pent`, 分) or millionths of a hundredth
/// (`microPent`, 微分). Any other unit is not understood: no price rather than a wrong one.
pub(crate) fn main_unit(raw: f64, unit: Option<&str>) -> Option<f64> {
    match unit {
        None | Some("pent") => Some(raw / 100.0),
        Some("microPent") => Some(raw / 100_000_000.0),
        Some(_) => None,
    }
}

impl TencentClient {
    /// Buys the clone. Never retried here: a second call is a second purchase.
    pub async fn clone_instances(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        request: &CloneRequest,
    ) -> Result<Deal, TencentError> {
        let data = self.call(creds, region, CLONE_ACTION, &[], request.body()).await?;
        let instance_id = data
            .get("InstanceIds")
            .and_then(Value::as_array)
            .and_then(|ids| ids.first())
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| TencentError::Malformed {
                action: CLONE_ACTION,
                detail: "no InstanceIds in the answer".into(),
            })?;
        let deal_id = data
            .get("DealId")
            .and_then(|d| d.as_str().map(str::to_owned).or_else(|| lenient_i64(d).map(|n| n.to_string())))
            .or_else(|| data.get("DealName").and_then(Value::as_str).map(str::to_owned));
        Ok(Deal { deal_id, instance_id })
    }

    /// What a clone like `source` would cost per billing period (InquiryPriceCreateInstance).
    pub async fn inquiry_price(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        source: &super::instances::InstanceDetail,
        billing: Billing,
    ) -> Result<Option<Price>, TencentError> {
        // For a cluster MemSize is per shard; Size is the total.
        let shards = source.shard_num.max(1);
        let mem = if source.edition.0 % 2 == 1 && source.edition.0 != 5 || source.edition.0 == 4 {
            source.size_mb / shards
        } else {
            source.size_mb
        };
        let mut body = json!({
            "TypeId": source.edition.0,
            "MemSize": mem,
            "GoodsNum": 1,
            // One period (an hour's rate pay-as-you-go, one month prepaid): the price is "per".
            "Period": 1,
            "BillingMode": billing.mode(),
            "ZoneId": source.zone_id,
            "RedisShardNum": shards,
            "RedisReplicasNum": source.replicas_num,
        });
        if !source.product_version.is_empty() {
            body["ProductVersion"] = source.product_version.clone().into();
        }
        let data = self.call(creds, region, "InquiryPriceCreateInstance", &[], body).await?;
        let raw = data
            .get("HighPrecisionPrice")
            .and_then(Value::as_f64)
            .or_else(|| data.get("Price").and_then(Value::as_f64));
        let unit = data.get("AmountUnit").and_then(Value::as_str);
        Ok(raw.and_then(|r| main_unit(r, unit)).map(|amount| Price {
            amount,
            currency: data.get("Currency").and_then(Value::as_str).unwrap_or("CNY").to_owned(),
        }))
    }

    /// Second-level backup information for one second (unix seconds).
    pub async fn second_level_backup(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        instance_id: &str,
        at: i64,
    ) -> Result<SecondLevelInfo, TencentError> {
        const ACTION: &str = "DescribeSecondLevelBackupInfo";
        let body = json!({"InstanceId": instance_id, "BackupTimestamp": at});
        let data = self.call(creds, region, ACTION, &[], body).await?;
        let backup_id = data
            .get("BackupId")
            .and_then(|b| b.as_str().map(str::to_owned).or_else(|| lenient_i64(b).map(|n| n.to_string())))
            .filter(|b| !b.is_empty())
            .ok_or_else(|| TencentError::Malformed { action: ACTION, detail: "no BackupId".into() })?;
        let missing = data
            .get("MissingTimestamps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|g| {
                Some((g.get("StartTimeStamp").and_then(lenient_i64)?, g.get("EndTimeStamp").and_then(lenient_i64)?))
            })
            .collect();
        Ok(SecondLevelInfo { backup_id, start_timestamp: data.get("StartTimestamp").and_then(lenient_i64), missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretString;

    fn request(password: InstancePassword, from: CloneFrom) -> CloneRequest {
        CloneRequest {
            source_id: "crs-orders62".into(),
            zone_id: 100003,
            billing: Billing::Postpaid,
            security_groups: vec!["sg-1".into()],
            from,
            vpc_id: "vpc-1".into(),
            subnet_id: "subnet-1".into(),
            name: "orders-restored-202612010941".into(),
            password,
            port: 6379,
            project_id: 0,
            tags: vec![Tag { key: "crs-restore:delivery".into(), value: "msg_1".into() }],
        }
    }

    #[test]
    fn a_clone_request_carries_the_twin_fields_and_the_point_in_time() {
        let body = request(
            InstancePassword::Password(SecretString::new("Orders-62-pass")),
            CloneFrom::PointInTime { backup_id: "1-2-3".into(), clone_time: "2026-12-01 09:41:00".into() },
        )
        .body();
        assert_eq!(body["GoodsNum"], 1);
        assert_eq!((body["BillingMode"].as_i64(), body["Period"].as_i64()), (Some(0), Some(1)));
        assert_eq!(body["VpcId"], "vpc-1");
        assert_eq!(body["CloneTime"], "2026-12-01 09:41:00");
        assert_eq!(body["ResourceTags"][0]["TagKey"], "crs-restore:delivery");
        assert!(body.get("NoAuth").is_none());
    }

    #[test]
    fn a_password_free_source_clones_with_no_auth_and_its_debug_form_hides_the_password() {
        let body = request(InstancePassword::PasswordFree, CloneFrom::Backup("9".into())).body();
        assert_eq!((body["NoAuth"].as_bool(), body.get("Password")), (Some(true), None));
        assert!(body.get("CloneTime").is_none());
        let shown = format!(
            "{:?}",
            request(InstancePassword::Password(SecretString::new("Orders-62-pass")), CloneFrom::Backup("9".into()))
        );
        assert!(!shown.contains("Orders-62-pass"), "{shown}");
    }

    #[test]
    fn the_password_rule_needs_two_classes_and_no_leading_slash() {
        assert!(password_follows_clone_rules("Orders-62-pass"));
        assert!(password_follows_clone_rules("12D3E@!r5ed"));
        assert!(!password_follows_clone_rules("short1A"));
        assert!(!password_follows_clone_rules("alllowercaseletters"));
        assert!(!password_follows_clone_rules("/Leading-slash1"));
        assert!(!password_follows_clone_rules(&"aA1".repeat(11)));
        assert!(!password_follows_clone_rules("spaces are Not1"));
    }

    #[test]
    fn prices_convert_from_hundredths_and_unknown_units_give_no_price() {
        assert_eq!(main_unit(1250.0, Some("pent")), Some(12.5));
        assert_eq!(main_unit(1250.0, None), Some(12.5));
        assert_eq!(main_unit(125_000_000.0, Some("microPent")), Some(1.25));
        assert_eq!(main_unit(1.0, Some("yuan?")), None);
    }
}
