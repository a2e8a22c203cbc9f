//! Tencent Cloud CRS client: one struct for both API generations, chosen by configuration.
//!
//! Operations are written once against [`TencentClient::call`], which signs and sends in the
//! configured generation's wire format and turns every answer into data or a [`TencentError`].
//! Action families live in their own modules: restore and tasks here, `instances` (reading
//! instances in detail, security groups), `clone` (CloneInstances, price, second-level backup) and
//! `lifecycle` (destroying what the function bought), the last three API 3.0 only.

pub mod clone;
pub mod error;
pub mod instances;
mod lifecycle;
pub mod sign;
pub mod tasks;
// Public only so that `benches/hot_path.rs` measures the real request builder.
#[doc(hidden)]
pub mod v2;
mod v3;

use std::time::Duration;

use serde_json::{Value, json};

pub use self::error::{Failure, TencentCode, TencentError};
use self::sign::SignatureMethod;
pub use self::tasks::{ListedTask, TaskDetail, TaskKind, TaskList};
use crate::clock::unix_now;
use crate::payload::{BackupId, RedisId, Region};
use crate::secrets::{InstancePassword, TencentCredentials};

/// Which Tencent Cloud API generation to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `redis.api.qcloud.com/v2/index.php`, HmacSHA1/HmacSHA256 (being retired by Tencent).
    V2,
    /// `redis.tencentcloudapi.com`, TC3-HMAC-SHA256, Version 2018-04-12.
    V3,
}

impl ApiVersion {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "2" => Some(Self::V2),
            "3" => Some(Self::V3),
            _ => None,
        }
    }

    pub fn default_endpoint(self) -> &'static str {
        match self {
            Self::V2 => "https://redis.api.qcloud.com/v2/index.php",
            Self::V3 => "https://redis.tencentcloudapi.com/",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2 => "2",
            Self::V3 => "3",
        }
    }
}

/// A parsed endpoint with the two host forms the signers need.
#[derive(Debug, Clone)]
pub struct Endpoint {
    url: reqwest::Url,
    /// `host[:port]` exactly as the Host header is sent (what TC3 signs).
    host_header: String,
    /// Host without port (what API 2.0 signs).
    host: String,
}

impl Endpoint {
    pub fn url_str(&self) -> &str {
        self.url.as_str()
    }

    /// HTTPS only, except plain HTTP to a loopback address (the local sandbox): the instance
    /// password travels in the request body.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
        let host = url.host_str().ok_or_else(|| format!("{raw:?} has no host"))?.to_owned();
        let loopback = host == "localhost"
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(format!("{raw:?} must use https (plain http is only allowed to a loopback address)"));
            }
        }
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
            return Err(format!("{raw:?} must not carry credentials or a query string"));
        }
        let host_header = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        Ok(Self { url, host_header, host })
    }
}

/// Settings of the Tencent client.
#[derive(Debug, Clone)]
pub struct TencentConfig {
    pub version: ApiVersion,
    pub endpoint: Endpoint,
    pub signature_method: SignatureMethod,
    /// Whole-request timeout once connected.
    pub timeout: Duration,
}

/// A RestoreInstance task id (`data.requestId` in API 2.0, `TaskId` in 3.0).
pub type TaskId = i64;

/// Where a restore task is. Both generations' encodings map here, case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// A value neither documentation lists: treated as still running until the wait times out.
    Unknown,
}

impl TaskStatus {
    /// API 2.0 `data.status`: 0 to run, 1 running, 2 succeeded, 3 failed, -1 error.
    pub fn from_v2(code: i64) -> Self {
        match code {
            0 => Self::Pending,
            1 => Self::Running,
            2 => Self::Succeeded,
            3 | -1 => Self::Failed,
            _ => Self::Unknown,
        }
    }

    /// API 3.0 `Status`: preparing, running, succeed, failed, error (any case).
    pub fn from_v3(status: &str) -> Self {
        match status.trim().to_ascii_lowercase().as_str() {
            "preparing" => Self::Pending,
            "running" => Self::Running,
            "succeed" | "succeeded" | "success" => Self::Succeeded,
            "failed" | "error" => Self::Failed,
            _ => Self::Unknown,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// One backup as listed by Tencent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub id: String,
    /// `YYYY-MM-DD HH:MM:SS` as Tencent reports it.
    pub start_time: String,
    pub status: i64,
    pub locked: bool,
}

impl Backup {
    fn parse(v: &Value, version: ApiVersion) -> Option<Self> {
        let (id, start, status, locked) = match version {
            ApiVersion::V2 => ("backupId", "startTime", "status", "locked"),
            ApiVersion::V3 => ("BackupId", "StartTime", "Status", "Locked"),
        };
        Some(Self {
            id: v
                .get(id)
                .and_then(|i| i.as_str().map(str::to_owned).or_else(|| lenient_i64(i).map(|n| n.to_string())))?,
            start_time: v.get(start).and_then(Value::as_str).unwrap_or_default().to_owned(),
            status: v.get(status).and_then(lenient_i64)?,
            locked: v.get(locked).and_then(lenient_i64).is_some_and(|l| l != 0),
        })
    }

    /// Restorable: status 2 ("normal") and not locked by another task.
    pub fn is_usable(&self) -> bool {
        self.status == 2 && !self.locked
    }
}

/// What DescribeRedis / DescribeInstances says about an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    pub name: String,
    /// 2 = running; anything else cannot be restored now.
    pub status: Option<i64>,
}

/// Cap on an answer's size: Tencent's are tiny; anything bigger is not Tencent.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The CRS client. Cheap to share; holds one connection pool.
#[derive(Debug, Clone)]
pub struct TencentClient {
    http: reqwest::Client,
    config: TencentConfig,
}

impl TencentClient {
    pub fn new(http: reqwest::Client, config: TencentConfig) -> Self {
        Self { http, config }
    }

    pub fn version(&self) -> ApiVersion {
        self.config.version
    }

    /// Starts a restore. Never retried here: once sent, only Tencent knows whether it began.
    pub async fn restore_instance(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        redis_id: &RedisId,
        backup_id: &BackupId,
        password: &InstancePassword,
    ) -> Result<TaskId, TencentError> {
        const ACTION: &str = "RestoreInstance";
        let data = match (self.config.version, password) {
            (ApiVersion::V2, InstancePassword::PasswordFree) => {
                return Err(TencentError::Config(format!(
                    "instance {redis_id} is configured as password-free, which only TENCENT_API_VERSION=3 supports"
                )));
            }
            (ApiVersion::V2, InstancePassword::Password(pw)) => {
                let params =
                    [("redisId", redis_id.as_str()), ("password", pw.expose()), ("backupId", backup_id.as_str())];
                self.call(creds, region, ACTION, &params, Value::Null).await?
            }
            (ApiVersion::V3, password) => {
                let mut body = json!({"InstanceId": redis_id.as_str(), "BackupId": backup_id.as_str()});
                if let InstancePassword::Password(pw) = password {
                    body["Password"] = pw.expose().into();
                }
                self.call(creds, region, ACTION, &[], body).await?
            }
        };
        let task = match self.config.version {
            ApiVersion::V2 => data.pointer("/data/requestId"),
            ApiVersion::V3 => data.get("TaskId"),
        };
        task.and_then(lenient_i64)
            .ok_or_else(|| TencentError::Malformed { action: ACTION, detail: "no task id in the answer".into() })
    }

    /// Reads a restore task's status (DescribeTaskInfo; see `tasks::task_detail` for the rest of
    /// its answer). Read-only: safe to retry.
    pub async fn describe_task(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        task_id: TaskId,
    ) -> Result<TaskStatus, TencentError> {
        Ok(self.task_detail(creds, region, task_id).await?.status)
    }

    /// All backups of an instance (GetRedisBackupList / DescribeInstanceBackups), every page.
    pub async fn list_backups(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        redis_id: &RedisId,
    ) -> Result<Vec<Backup>, TencentError> {
        const PAGE: usize = 100;
        let action = match self.config.version {
            ApiVersion::V2 => "GetRedisBackupList",
            ApiVersion::V3 => "DescribeInstanceBackups",
        };
        let mut backups = Vec::new();
        // Backups are kept for 7 days, so a handful of pages at most; the cap stops a runaway.
        for page in 0..20 {
            let (limit, offset) = (PAGE.to_string(), (page * PAGE).to_string());
            let body = json!({"InstanceId": redis_id.as_str(), "Limit": PAGE, "Offset": page * PAGE});
            let params = [("redisId", redis_id.as_str()), ("limit", limit.as_str()), ("offset", offset.as_str())];
            let data = self.call(creds, region, action, &params, body).await?;
            let (items, total) = match self.config.version {
                ApiVersion::V2 => (data.pointer("/data/redisBackupSet"), data.get("totalCount")),
                ApiVersion::V3 => (data.get("BackupSet"), data.get("TotalCount")),
            };
            let items = items.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let parsed: Vec<Backup> = items.iter().filter_map(|b| Backup::parse(b, self.config.version)).collect();
            let count = items.len();
            backups.extend(parsed);
            let total = total.and_then(lenient_i64).and_then(|t| usize::try_from(t).ok()).unwrap_or(0);
            if count < PAGE || backups.len() >= total {
                break;
            }
        }
        Ok(backups)
    }

    /// One instance's name and status (DescribeRedis / DescribeInstances), `None` if unknown.
    pub async fn describe_instance(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        redis_id: &RedisId,
    ) -> Result<Option<InstanceInfo>, TencentError> {
        let action = match self.config.version {
            ApiVersion::V2 => "DescribeRedis",
            ApiVersion::V3 => "DescribeInstances",
        };
        let params = [("redisId", redis_id.as_str()), ("limit", "10"), ("offset", "0")];
        let body = json!({"InstanceId": redis_id.as_str(), "Limit": 10, "Offset": 0});
        let data = self.call(creds, region, action, &params, body).await?;
        let (items, id_key, name_key, status_key) = match self.config.version {
            ApiVersion::V2 => (data.pointer("/data/redisSet"), "redisId", "redisName", "status"),
            ApiVersion::V3 => (data.get("InstanceSet"), "InstanceId", "InstanceName", "Status"),
        };
        let found = items
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|i| i.get(id_key).and_then(Value::as_str) == Some(redis_id.as_str()));
        Ok(found.map(|i| InstanceInfo {
            name: i.get(name_key).and_then(Value::as_str).unwrap_or_default().to_owned(),
            status: i.get(status_key).and_then(lenient_i64),
        }))
    }

    /// Signs and sends one action; returns the answer's payload (the whole v2 object or the v3
    /// `Response`). `v2_params` are used under API 2.0, `v3_body` under 3.0.
    async fn call(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        action: &'static str,
        v2_params: &[(&str, &str)],
        v3_body: Value,
    ) -> Result<Value, TencentError> {
        let timestamp = unix_now();
        let ep = &self.config.endpoint;
        let request = match self.config.version {
            ApiVersion::V2 => {
                let nonce = rand::random_range(1..u32::MAX);
                let body = v2::request_body(
                    creds,
                    self.config.signature_method,
                    &ep.host,
                    ep.url.path(),
                    (action, region.as_str(), timestamp, nonce),
                    v2_params,
                );
                self.http.post(ep.url.clone()).header("content-type", "application/x-www-form-urlencoded").body(body)
            }
            ApiVersion::V3 => {
                let body = serde_json::to_vec(&v3_body).unwrap_or_default();
                let headers = v3::request_headers(creds, &ep.host_header, (action, region.as_str(), timestamp), &body);
                headers.into_iter().fold(self.http.post(ep.url.clone()), |r, (k, v)| r.header(k, v)).body(body)
            }
        };
        let timeout = self.config.timeout;
        let mut response = request.timeout(timeout).send().await.map_err(|e| transport(action, &e, timeout))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(action, &e, timeout))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(TencentError::Malformed { action, detail: "answer larger than 1 MiB".into() });
            }
            body.extend_from_slice(&chunk);
        }
        let parsed = match self.config.version {
            ApiVersion::V2 => v2::parse_envelope(action, &body),
            ApiVersion::V3 => v3::parse_envelope(action, &body),
        };
        match parsed {
            Ok(_) if status != 200 => Err(TencentError::HttpStatus { action, status }),
            Err(TencentError::Malformed { .. }) if status != 200 => Err(TencentError::HttpStatus { action, status }),
            other => other,
        }
    }
}

fn transport(action: &'static str, e: &reqwest::Error, timeout: Duration) -> TencentError {
    if e.is_builder() {
        // The request could not even be built (e.g. a credential that is not a valid header
        // value): nothing was sent, and the fix is in the configuration.
        TencentError::Config(format!("the {action} request could not be built from the configured credentials"))
    } else if e.is_connect() {
        // Covers refused connections, DNS, TLS and connect timeouts: nothing was sent.
        TencentError::Unreachable { action, detail: "connection failed".into() }
    } else if e.is_timeout() {
        TencentError::Timeout { action, seconds: timeout.as_secs() }
    } else {
        TencentError::Interrupted { action }
    }
}

/// Tencent is inconsistent about ids and codes: accept a JSON number or a numeric string.
pub(crate) fn lenient_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https_unless_on_loopback() {
        assert!(Endpoint::parse("https://redis.api.qcloud.com/v2/index.php").is_ok());
        assert!(Endpoint::parse("http://127.0.0.1:9001/v2/index.php").is_ok());
        assert!(Endpoint::parse("http://[::1]:9001/").is_ok());
        assert!(Endpoint::parse("http://redis.api.qcloud.com/v2/index.php").is_err());
        assert!(Endpoint::parse("https://u:p@redis.api.qcloud.com/").is_err());
        assert!(Endpoint::parse("ftp://127.0.0.1/").is_err());
    }

    #[test]
    fn the_signed_host_forms_follow_the_url() {
        let ep = Endpoint::parse("http://127.0.0.1:9001/v2/index.php").expect("valid");
        assert_eq!(
            (ep.host.as_str(), ep.host_header.as_str(), ep.url.path()),
            ("127.0.0.1", "127.0.0.1:9001", "/v2/index.php")
        );
        let ep = Endpoint::parse("https://redis.tencentcloudapi.com").expect("valid");
        assert_eq!((ep.host_header.as_str(), ep.url.path()), ("redis.tencentcloudapi.com", "/"));
    }

    #[test]
    fn ids_are_read_from_numbers_and_numeric_strings() {
        assert_eq!(lenient_i64(&json!(375074)), Some(375074));
        assert_eq!(lenient_i64(&json!("6954227")), Some(6954227));
        assert_eq!(lenient_i64(&json!("x")), None);
        assert_eq!(lenient_i64(&json!(1.5)), None);
    }
}
