//! What a sandbox starts with: credentials, seeded instances and backups, timings.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A SecretId/SecretKey pair the sandbox accepts, with the session token when it stands for
/// temporary credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SandboxCredential {
    pub secret_id: String,
    pub secret_key: String,
    #[serde(default)]
    pub token: Option<String>,
}

impl std::fmt::Debug for SandboxCredential {
    // Even sandbox keys end up in logs people paste around; keep the habit of never printing them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxCredential")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"<redacted>")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedInstance {
    pub redis_id: String,
    #[serde(default)]
    pub name: String,
    pub region: String,
    /// `None` is a password-free instance (API 3.0 lets RestoreInstance omit `Password`).
    #[serde(default)]
    pub password: Option<String>,
    /// DescribeRedis codes: 2 running, 0 to be initialised, 1 in process, -2 isolated.
    #[serde(default = "running")]
    pub status: i64,
    #[serde(default)]
    pub backups: Vec<SeedBackup>,
    /// Edition, as `InstanceSet[].Type`: 2 Redis 2.8 standard, 5 2.8 standalone, 3/4 CKV, 6/7
    /// 4.0, 8/9 5.0, 15/16 6.2, 17/18 7.0 (standard/cluster). Only 2.8 and CKV restore in place.
    #[serde(default = "redis_28_standard", rename = "type")]
    pub type_id: i64,
    #[serde(default)]
    pub network: SeedNetwork,
    /// 0 pay-as-you-go, 1 prepaid.
    #[serde(default)]
    pub billing_mode: i64,
    /// Memory in MB (`Size`).
    #[serde(default = "one_gib")]
    pub size_mb: i64,
    /// `None`: `NormalLevelBackup` (no point in time).
    #[serde(default)]
    pub second_level_backup: Option<SecondLevelSeed>,
    #[serde(default)]
    pub tags: Vec<SeedTag>,
    /// Shards and replicas per shard (`RedisShardNum`, `RedisReplicasNum`).
    #[serde(default = "one")]
    pub shard_num: i64,
    #[serde(default = "one")]
    pub replicas_num: i64,
    /// When the instance was created (`Createtime`), in seconds before the sandbox started.
    #[serde(default = "thirty_days")]
    pub created_secs_ago: i64,
}

fn one() -> i64 {
    1
}

fn thirty_days() -> i64 {
    30 * 86_400
}

impl Default for SeedInstance {
    fn default() -> Self {
        Self {
            redis_id: String::new(),
            name: String::new(),
            region: "ap-guangzhou".to_owned(),
            password: None,
            status: running(),
            backups: Vec::new(),
            type_id: redis_28_standard(),
            network: SeedNetwork::default(),
            billing_mode: 0,
            size_mb: one_gib(),
            second_level_backup: None,
            tags: Vec::new(),
            shard_num: one(),
            replicas_num: one(),
            created_secs_ago: thirty_days(),
        }
    }
}

/// Where an instance lives: zone, VPC, subnet, security groups and its private address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SeedNetwork {
    pub zone_id: i64,
    /// Empty: the retired basic network.
    pub vpc_id: String,
    pub subnet_id: String,
    pub security_groups: Vec<String>,
    pub vip: String,
    pub port: i64,
    pub project_id: i64,
}

impl Default for SeedNetwork {
    fn default() -> Self {
        Self {
            zone_id: 100003,
            vpc_id: "vpc-sandbox1".to_owned(),
            subnet_id: "subnet-sandbox1".to_owned(),
            security_groups: vec!["sg-sandbox1".to_owned()],
            vip: "10.0.0.10".to_owned(),
            port: 6379,
            project_id: 0,
        }
    }
}

/// Second-level backup (`BackupMode: SecondLevelBackup`): since when, and the gaps Tencent
/// reports as `MissingTimestamps`. Times are seconds before the sandbox started, so a seed file
/// stays valid whenever it is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecondLevelSeed {
    pub started_secs_ago: i64,
    #[serde(default)]
    pub missing: Vec<SeedGap>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedGap {
    pub from_secs_ago: i64,
    pub to_secs_ago: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedTag {
    pub key: String,
    pub value: String,
}

fn redis_28_standard() -> i64 {
    2
}

fn one_gib() -> i64 {
    1024
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedBackup {
    pub backup_id: String,
    /// `YYYY-MM-DD HH:MM:SS`, Beijing time like the real API.
    pub start_time: String,
    /// 1 locked, 2 normal, -1 expired, 3 exporting, 4 exported.
    #[serde(default = "normal")]
    pub status: i64,
    /// 0 or 1.
    #[serde(default)]
    pub locked: i64,
    /// `manualBackupInstance` or `systemBackupInstance`.
    #[serde(default = "system_backup")]
    pub backup_type: String,
}

fn running() -> i64 {
    2
}

fn normal() -> i64 {
    2
}

fn system_backup() -> String {
    "systemBackupInstance".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    pub credentials: Vec<SandboxCredential>,
    pub instances: Vec<SeedInstance>,
    /// How long a restore task runs; the instance stays locked meanwhile.
    pub restore_duration: Duration,
    /// How long a clone takes from CloneInstances to `Status` 2 (0, then 1, then 2).
    pub clone_duration: Duration,
    /// Tencent documents five minutes for both API versions.
    pub timestamp_tolerance_secs: i64,
}

pub const DEMO_SECRET_ID: &str = "AKIDsandboxEXAMPLE0000000000000000000";
pub const DEMO_SECRET_KEY: &str = "sandbox-secret-key-EXAMPLE-000000";

/// The JSON seed file: like [`SandboxConfig`], with durations in milliseconds and the demo
/// credential when none is given, so a seed can list only the instances it cares about.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SeedFile {
    #[serde(default)]
    credentials: Option<Vec<SandboxCredential>>,
    instances: Vec<SeedInstance>,
    #[serde(default)]
    restore_duration_ms: Option<u64>,
    #[serde(default)]
    clone_duration_ms: Option<u64>,
    #[serde(default)]
    timestamp_tolerance_secs: Option<i64>,
}

impl SandboxConfig {
    /// The fixture behind `make run`: the instance and backups of Tencent's RestoreInstance
    /// example, a second instance for drills and a password-free one.
    pub fn demo() -> Self {
        let instance = |redis_id: &str, name: &str, password: Option<&str>, backups: Vec<SeedBackup>| SeedInstance {
            redis_id: redis_id.to_owned(),
            name: name.to_owned(),
            region: "ap-guangzhou".to_owned(),
            password: password.map(str::to_owned),
            status: 2,
            backups,
            ..SeedInstance::default()
        };
        let backup = |backup_id: &str, age: time::Duration, backup_type: &str| SeedBackup {
            backup_id: backup_id.to_owned(),
            start_time: beijing_time_ago(age),
            status: 2,
            locked: 0,
            backup_type: backup_type.to_owned(),
        };
        Self {
            credentials: vec![demo_credential()],
            instances: vec![
                instance(
                    "crs-izbob1wh",
                    "orders-cache",
                    Some("12D3E@!r5ed"),
                    vec![
                        backup("e824aecc-ef5e-11e6-a2c7-525400082493", time::Duration::days(2), "systemBackupInstance"),
                        backup("0f87ffc6-edef-11e6-b88e-525400394272", time::Duration::days(1), "systemBackupInstance"),
                        backup(
                            "19266626-eddb-11e6-890a-525400394272",
                            time::Duration::hours(3),
                            "manualBackupInstance",
                        ),
                    ],
                ),
                instance(
                    "crs-drill001",
                    "restore-drill",
                    Some("drill-password-1"),
                    vec![
                        backup("6a1b2c3d-0001-11ef-9a01-525400aa0001", time::Duration::days(1), "systemBackupInstance"),
                        backup(
                            "6a1b2c3d-0002-11ef-9a01-525400aa0002",
                            time::Duration::hours(6),
                            "manualBackupInstance",
                        ),
                    ],
                ),
                instance(
                    "crs-pwfree01",
                    "sessions-nopass",
                    None,
                    vec![backup(
                        "7b2c3d4e-0001-11ef-9b02-525400bb0001",
                        time::Duration::hours(12),
                        "systemBackupInstance",
                    )],
                ),
                // A Redis 6.2 instance as Tencent sells them today: restored by clone only, with
                // second-level backup for point-in-time restores.
                SeedInstance {
                    type_id: 15,
                    second_level_backup: Some(SecondLevelSeed { started_secs_ago: 3 * 86_400, missing: Vec::new() }),
                    network: SeedNetwork { vip: "10.0.0.62".to_owned(), ..SeedNetwork::default() },
                    tags: vec![SeedTag { key: "team".to_owned(), value: "orders".to_owned() }],
                    ..instance(
                        "crs-orders62",
                        "orders-cache-62",
                        Some("Orders-62-pass"),
                        vec![
                            backup("1795600001-1165734322-153731238", time::Duration::days(1), "systemBackupInstance"),
                            backup("1795600002-1165734322-153731238", time::Duration::hours(4), "systemBackupInstance"),
                        ],
                    )
                },
            ],
            restore_duration: Duration::from_secs(20),
            clone_duration: Duration::from_secs(20),
            timestamp_tolerance_secs: 300,
        }
    }

    /// Parses a seed file (camelCase JSON, see [`SeedFile`]) and checks it is usable.
    pub fn from_json(s: &str) -> Result<Self, String> {
        let seed: SeedFile = serde_json::from_str(s).map_err(|e| format!("invalid sandbox seed: {e}"))?;
        let config = Self {
            credentials: seed.credentials.unwrap_or_else(|| vec![demo_credential()]),
            instances: seed.instances,
            restore_duration: Duration::from_millis(seed.restore_duration_ms.unwrap_or(20_000)),
            clone_duration: Duration::from_millis(seed.clone_duration_ms.unwrap_or(20_000)),
            timestamp_tolerance_secs: seed.timestamp_tolerance_secs.unwrap_or(300),
        };
        config.validate()?;
        Ok(config)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.credentials.is_empty() {
            return Err("invalid sandbox seed: no credentials".to_owned());
        }
        if self.credentials.iter().any(|c| c.secret_id.is_empty() || c.secret_key.is_empty()) {
            return Err("invalid sandbox seed: empty secretId or secretKey".to_owned());
        }
        if self.timestamp_tolerance_secs <= 0 {
            return Err("invalid sandbox seed: timestampToleranceSecs must be positive".to_owned());
        }
        let mut ids = HashSet::new();
        for instance in &self.instances {
            if instance.redis_id.is_empty() || !ids.insert(instance.redis_id.as_str()) {
                return Err(format!("invalid sandbox seed: empty or duplicate redisId {:?}", instance.redis_id));
            }
            let mut backups = HashSet::new();
            if let Some(b) = instance.backups.iter().find(|b| !backups.insert(b.backup_id.as_str())) {
                return Err(format!(
                    "invalid sandbox seed: duplicate backupId {:?} in {}",
                    b.backup_id, instance.redis_id
                ));
            }
        }
        Ok(())
    }
}

fn demo_credential() -> SandboxCredential {
    SandboxCredential { secret_id: DEMO_SECRET_ID.to_owned(), secret_key: DEMO_SECRET_KEY.to_owned(), token: None }
}

/// Tencent writes times as Beijing wall-clock time without an offset.
pub(crate) fn beijing_time(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    at.to_offset(time::macros::offset!(+8)).format(format).unwrap_or_default()
}

fn beijing_time_ago(age: time::Duration) -> String {
    beijing_time(time::OffsetDateTime::now_utc() - age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_is_a_valid_config_with_the_documented_example_instance() {
        let demo = SandboxConfig::demo();
        assert_eq!(demo.validate(), Ok(()));
        let example = &demo.instances[0];
        assert_eq!(example.redis_id, "crs-izbob1wh");
        assert_eq!(example.password.as_deref(), Some("12D3E@!r5ed"));
        assert_eq!(example.backups[0].backup_id, "e824aecc-ef5e-11e6-a2c7-525400082493");
        assert_eq!(example.backups[0].start_time.len(), "2017-02-08 16:46:34".len());
        assert!(demo.instances.iter().any(|i| i.password.is_none()));
    }

    #[test]
    fn a_seed_file_needs_only_instances() {
        let config = SandboxConfig::from_json(
            r#"{"instances":[{"redisId":"crs-a","region":"ap-guangzhou",
                "backups":[{"backupId":"b1","startTime":"2024-01-01 00:00:00"}]}],
                "restoreDurationMs":1500}"#,
        )
        .expect("valid seed");
        assert_eq!(config.credentials[0].secret_id, DEMO_SECRET_ID);
        assert_eq!(config.restore_duration, Duration::from_millis(1500));
        assert_eq!(config.instances[0].status, 2);
        assert_eq!(config.instances[0].password, None);
        assert_eq!(config.instances[0].backups[0].status, 2);
    }

    #[test]
    fn a_seed_file_with_duplicate_instances_or_typos_is_refused() {
        let dup = r#"{"instances":[{"redisId":"crs-a","region":"r"},{"redisId":"crs-a","region":"r"}]}"#;
        assert!(SandboxConfig::from_json(dup).is_err());
        assert!(SandboxConfig::from_json(r#"{"instances":[],"restoreDuration":1}"#).is_err());
    }

    #[test]
    fn credentials_never_show_their_key_in_debug_output() {
        let shown = format!("{:?}", demo_credential());
        assert!(!shown.contains(DEMO_SECRET_KEY));
        assert!(shown.contains(DEMO_SECRET_ID));
    }
}
