//! Reading instances in detail (API 3.0): `DescribeInstances` by id, ids or tag, and
//! `DescribeInstanceSecurityGroup`. What a clone needs to be a twin of its source.

use serde_json::{Value, json};

use super::{TencentClient, TencentError, lenient_i64};
use crate::payload::Region;
use crate::secrets::TencentCredentials;

/// `InstanceSet[].Status`: 2 is running; 0 (to be initialised) and 1 (in a flow) come first.
pub const STATUS_RUNNING: i64 = 2;

/// A resource tag (`TagKey`/`TagValue`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// What the edition (`Type`) is and whether Tencent restores it in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edition(pub i64);

impl Edition {
    /// E.g. `"Redis 6.2 standard"`; unknown types say so with their number.
    pub fn label(self) -> String {
        let (version, arch) = match self.0 {
            2 => ("Redis 2.8", "standard"),
            5 => ("Redis 2.8", "standalone"),
            3 => ("CKV 3.2", "standard"),
            4 => ("CKV 3.2", "cluster"),
            6 => ("Redis 4.0", "standard"),
            7 => ("Redis 4.0", "cluster"),
            8 => ("Redis 5.0", "standard"),
            9 => ("Redis 5.0", "cluster"),
            15 => ("Redis 6.2", "standard"),
            16 => ("Redis 6.2", "cluster"),
            17 => ("Redis 7.0", "standard"),
            18 => ("Redis 7.0", "cluster"),
            other => return format!("Redis (Type {other})"),
        };
        format!("{version} {arch}")
    }

    /// Tencent's "Restoring Data" page: Memory Edition 2.8 and CKV restore in place; every other
    /// edition restores by cloning a new instance.
    pub fn restores_in_place(self) -> bool {
        matches!(self.0, 2..=5)
    }

    /// The restore modes this edition offers (in place only under API 3.0's wording of the
    /// docs; the caller decides about the API generation).
    pub fn supported_modes(self) -> &'static [&'static str] {
        if self.restores_in_place() { &["inPlace", "clone"] } else { &["clone"] }
    }
}

/// One `InstanceSet` entry, with the fields a clone copies.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceDetail {
    pub id: String,
    pub name: String,
    pub status: i64,
    pub edition: Edition,
    pub zone_id: i64,
    /// Empty for the retired basic network.
    pub vpc_id: String,
    pub subnet_id: String,
    /// The private address (`WanIp`, despite its name).
    pub vip: String,
    pub port: i64,
    pub project_id: i64,
    pub no_auth: bool,
    pub billing_mode: i64,
    /// `SecondLevelBackup` enables point in time.
    pub backup_mode: String,
    pub size_mb: i64,
    pub shard_num: i64,
    pub replicas_num: i64,
    pub product_version: String,
    pub tags: Vec<Tag>,
    /// `Createtime`: `YYYY-MM-DD HH:MM:SS`, Beijing time.
    pub created: String,
}

impl InstanceDetail {
    fn parse(v: &Value) -> Option<Self> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let number = |k: &str| v.get(k).and_then(lenient_i64);
        let tags = v
            .get("InstanceTags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some(Tag { key: t.get("TagKey")?.as_str()?.to_owned(), value: t.get("TagValue")?.as_str()?.to_owned() })
            })
            .collect();
        Some(Self {
            id: v.get("InstanceId")?.as_str()?.to_owned(),
            name: text("InstanceName"),
            status: number("Status")?,
            edition: Edition(number("Type").unwrap_or(0)),
            zone_id: number("ZoneId").unwrap_or(0),
            vpc_id: text("UniqVpcId"),
            subnet_id: text("UniqSubnetId"),
            vip: text("WanIp"),
            port: number("Port").unwrap_or(6379),
            project_id: number("ProjectId").unwrap_or(0),
            no_auth: v.get("NoAuth").and_then(Value::as_bool).unwrap_or(false),
            billing_mode: number("BillingMode").unwrap_or(0),
            backup_mode: text("BackupMode"),
            // `Size` is a float in models.py (MB).
            size_mb: v.get("Size").and_then(Value::as_f64).map_or(0, |s| s as i64),
            shard_num: number("RedisShardNum").unwrap_or(1),
            replicas_num: number("RedisReplicasNum").unwrap_or(1),
            product_version: text("ProductVersion"),
            tags,
            created: text("Createtime"),
        })
    }

    pub fn second_level_backup(&self) -> bool {
        self.backup_mode == "SecondLevelBackup"
    }

    /// When the instance was created, in unix seconds (`None` if Tencent's time does not parse).
    pub fn created_unix(&self) -> Option<i64> {
        crate::clock::beijing_unix(&self.created)
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
    }
}

/// Who to look for with DescribeInstances.
#[derive(Debug, Clone)]
pub enum InstanceQuery<'a> {
    Ids(&'a [String]),
    Tag(&'a Tag),
    /// Every instance carrying this tag key, whatever its value.
    TagKey(&'a str),
}

impl TencentClient {
    /// DescribeInstances (API 3.0) with one filter; every page up to a bound (1000 per page).
    pub async fn describe_instances(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        query: InstanceQuery<'_>,
    ) -> Result<Vec<InstanceDetail>, TencentError> {
        const PAGE: usize = 1000;
        let mut found = Vec::new();
        for page in 0..5 {
            let mut body = json!({"Limit": PAGE, "Offset": page * PAGE});
            match query {
                InstanceQuery::Ids(ids) => body["InstanceIds"] = json!(ids),
                InstanceQuery::Tag(tag) => {
                    body["InstanceTags"] = json!([{"TagKey": tag.key, "TagValue": tag.value}]);
                }
                InstanceQuery::TagKey(key) => body["TagKeys"] = json!([key]),
            }
            let data = self.call(creds, region, "DescribeInstances", &[], body).await?;
            let items = data.get("InstanceSet").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            found.extend(items.iter().filter_map(InstanceDetail::parse));
            let total = data.get("TotalCount").and_then(lenient_i64).and_then(|t| usize::try_from(t).ok()).unwrap_or(0);
            if items.len() < PAGE || found.len() >= total {
                break;
            }
        }
        // A filter Tencent ignored must not return someone else's instance as ours.
        found.retain(|i| match query {
            InstanceQuery::Ids(ids) => ids.contains(&i.id),
            InstanceQuery::Tag(tag) => i.tags.contains(tag),
            InstanceQuery::TagKey(key) => i.tag(key).is_some(),
        });
        Ok(found)
    }

    /// One instance in detail, `None` when it does not exist in the region.
    pub async fn describe_instance_detail(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        id: &str,
    ) -> Result<Option<InstanceDetail>, TencentError> {
        let ids = [id.to_owned()];
        Ok(self.describe_instances(creds, region, InstanceQuery::Ids(&ids)).await?.into_iter().next())
    }

    /// The security group ids of an instance (DescribeInstanceSecurityGroup).
    pub async fn instance_security_groups(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        id: &str,
    ) -> Result<Vec<String>, TencentError> {
        let body = json!({"InstanceIds": [id]});
        let data = self.call(creds, region, "DescribeInstanceSecurityGroup", &[], body).await?;
        Ok(data
            .get("InstanceSecurityGroupsDetail")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|d| d.get("InstanceId").and_then(Value::as_str) == Some(id))
            .flat_map(|d| d.get("SecurityGroupDetails").and_then(Value::as_array).cloned().unwrap_or_default())
            .filter_map(|g| g.get("SecurityGroupId").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editions_name_themselves_and_know_how_they_restore() {
        assert_eq!(Edition(15).label(), "Redis 6.2 standard");
        assert_eq!(Edition(7).label(), "Redis 4.0 cluster");
        assert_eq!(Edition(99).label(), "Redis (Type 99)");
        assert_eq!(Edition(2).supported_modes(), &["inPlace", "clone"]);
        assert_eq!(Edition(4).supported_modes(), &["inPlace", "clone"]);
        assert_eq!(Edition(17).supported_modes(), &["clone"]);
    }

    #[test]
    fn an_instance_set_entry_parses_with_tencents_types() {
        let v = json!({"InstanceId": "crs-7ponppu3", "InstanceName": "n", "Status": 2, "Type": 7, "ZoneId": 100002,
            "UniqVpcId": "vpc-1", "UniqSubnetId": "subnet-1", "WanIp": "10.66.153.160", "Port": 6379, "Size": 3072.0,
            "NoAuth": false, "BillingMode": 0, "BackupMode": "SecondLevelBackup",
            "InstanceTags": [{"TagKey": "aaa", "TagValue": "111"}]});
        let i = InstanceDetail::parse(&v).expect("parses");
        assert_eq!((i.zone_id, i.size_mb, i.vip.as_str()), (100002, 3072, "10.66.153.160"));
        assert!(i.second_level_backup());
        assert_eq!(i.tags, vec![Tag { key: "aaa".into(), value: "111".into() }]);
        assert!(InstanceDetail::parse(&json!({"InstanceName": "no id"})).is_none());
    }
}
