//! Configuration from environment variables, read once at start-up and validated completely.

use std::time::Duration;

use crate::auth::AllowList;
use crate::callback::{CallbackPolicy, RetryPolicy};
use crate::payload::Region;
use crate::restore::PollPolicy;
use crate::secrets::SecretIds;
use crate::tencent::clone::Billing;
use crate::tencent::sign::SignatureMethod;
use crate::tencent::{ApiVersion, Endpoint, TencentConfig};

pub const DEFAULT_PASSWORD_PREFIX: &str = "crs-restore/instances/";

/// Everything the function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub secret_ids: SecretIds,
    /// Region used when a request names none (`TENCENT_REGION`).
    pub default_region: Option<Region>,
    pub tencent: TencentConfig,
    pub secrets_ttl: Duration,
    pub callback_policy: CallbackPolicy,
    pub callback_retry: RetryPolicy,
    /// `WAIT_TIMEOUT_SECONDS`: how long `waitForCompletion` follows a task.
    pub wait_timeout: Duration,
    pub poll: PollPolicy,
    /// `IDEMPOTENCY_TABLE`: the DynamoDB table; `None` uses an in-memory store (local runs).
    pub idempotency_table: Option<String>,
    /// `IDEMPOTENCY_TTL_SECONDS`: how long a delivery id is remembered.
    pub idempotency_ttl: Duration,
    /// `DRILL_ALLOWED_INSTANCES`: instance patterns in-place drills may overwrite; empty disables them.
    pub drill_allowed: AllowList,
    /// `DRILL_CLONE_SOURCES`: instance patterns clone drills may clone from; empty disables them.
    pub drill_clone_sources: AllowList,
    /// `DRILL_MAX_AGE_MINUTES`: a drill clone older than this is an orphan to destroy.
    pub drill_max_age: Duration,
    /// `DRILL_PURGE`: also remove destroyed drill clones from the recycle bin (CleanUpInstance).
    pub drill_purge: bool,
    /// `DRILL_MAX_HOURLY_PRICE`: the most a drill clone may cost per hour, in Tencent's currency.
    pub drill_max_hourly_price: Option<f64>,
    /// `METRICS_NAMESPACE`: CloudWatch namespace of the drill metrics.
    pub metrics_namespace: String,
    /// `CLONE_BILLING_MODE` (+ `CLONE_PERIOD_MONTHS`): how clones are paid for.
    pub clone_billing: Billing,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let invalid = |name: &'static str, reason: String| ConfigError::Invalid { name, reason };
        let seconds = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| match get(name) {
            None => Ok(Duration::from_secs(default)),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .map(Duration::from_secs)
                .ok_or_else(|| invalid(name, format!("must be a whole number of seconds in {range:?}"))),
        };
        let millis = |name: &'static str, default: u64| match get(name) {
            None => Ok(Duration::from_millis(default)),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=600_000).contains(n))
                .map(Duration::from_millis)
                .ok_or_else(|| invalid(name, "must be a whole number of milliseconds in 1..=600000".into())),
        };
        let flag_or = |name: &'static str, default: bool| match get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" || v == "1" => Ok(true),
            Some(v) if v == "false" || v == "0" => Ok(false),
            Some(_) => Err(invalid(name, "must be true or false".into())),
        };

        let flag = |name: &'static str| flag_or(name, false);
        let patterns = |name: &'static str| {
            AllowList::parse(get(name).unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()))
                .map_err(|e| invalid(name, e))
        };
        let drill_max_hourly_price = get("DRILL_MAX_HOURLY_PRICE")
            .map(|v| {
                v.trim().parse::<f64>().ok().filter(|p| p.is_finite() && *p >= 0.0).ok_or_else(|| {
                    invalid("DRILL_MAX_HOURLY_PRICE", "must be an amount such as 2.5 (the currency's main unit)".into())
                })
            })
            .transpose()?;

        // API 2.0 is offline on Tencent's public cloud since 2023-01-01: 3 is the default.
        let version = match get("TENCENT_API_VERSION") {
            None => ApiVersion::V3,
            Some(v) => {
                ApiVersion::parse(v.trim()).ok_or_else(|| invalid("TENCENT_API_VERSION", "must be 2 or 3".into()))?
            }
        };
        let endpoint_raw = get("TENCENT_ENDPOINT").unwrap_or_else(|| version.default_endpoint().to_owned());
        let endpoint = Endpoint::parse(endpoint_raw.trim()).map_err(|e| invalid("TENCENT_ENDPOINT", e))?;
        let signature_method = match get("TENCENT_SIGNATURE_METHOD") {
            None => SignatureMethod::HmacSha1,
            Some(v) => SignatureMethod::parse(v.trim())
                .ok_or_else(|| invalid("TENCENT_SIGNATURE_METHOD", "must be HmacSHA1 or HmacSHA256".into()))?,
        };
        let clone_billing = clone_billing(get("CLONE_BILLING_MODE"), get("CLONE_PERIOD_MONTHS"))?;
        let default_region = get("TENCENT_REGION")
            .map(|r| Region::parse(r.trim()).map_err(|e| invalid("TENCENT_REGION", e)))
            .transpose()?;

        Ok(Self {
            secret_ids: SecretIds {
                signing_keys: required("SIGNING_KEYS_SECRET_ID")?,
                tencent_credentials: required("TENCENT_CREDENTIALS_SECRET_ID")?,
                instance_password_prefix: get("INSTANCE_PASSWORD_SECRET_PREFIX")
                    .unwrap_or_else(|| DEFAULT_PASSWORD_PREFIX.to_owned()),
            },
            default_region,
            tencent: TencentConfig {
                version,
                endpoint,
                signature_method,
                timeout: seconds("TENCENT_TIMEOUT_SECONDS", 10, 1..=60)?,
            },
            secrets_ttl: seconds("SECRETS_TTL_SECONDS", 300, 0..=86_400)?,
            callback_policy: CallbackPolicy {
                allowed_hosts: CallbackPolicy::parse_hosts(&get("CALLBACK_ALLOWED_HOSTS").unwrap_or_default())
                    .map_err(|e| invalid("CALLBACK_ALLOWED_HOSTS", e))?,
                allow_loopback: flag("CALLBACK_ALLOW_LOOPBACK")?,
            },
            callback_retry: RetryPolicy { base: millis("CALLBACK_RETRY_BASE_MS", 1000)?, ..RetryPolicy::default() },
            wait_timeout: seconds("WAIT_TIMEOUT_SECONDS", 840, 1..=86_400)?,
            poll: PollPolicy {
                initial: millis("WAIT_POLL_INITIAL_MS", 5_000)?,
                max: millis("WAIT_POLL_MAX_MS", 30_000)?,
            },
            idempotency_table: get("IDEMPOTENCY_TABLE").map(|t| t.trim().to_owned()),
            // Longer than the signature tolerance, or a replay inside the window would be new.
            idempotency_ttl: seconds("IDEMPOTENCY_TTL_SECONDS", 86_400, 600..=31_536_000)?,
            drill_allowed: patterns("DRILL_ALLOWED_INSTANCES")?,
            drill_clone_sources: patterns("DRILL_CLONE_SOURCES")?,
            drill_max_age: Duration::from_secs(
                seconds("DRILL_MAX_AGE_MINUTES", 120, 15..=10_080).map(|m| m.as_secs() * 60).map_err(|_| {
                    invalid("DRILL_MAX_AGE_MINUTES", "must be a whole number of minutes in 15..=10080".into())
                })?,
            ),
            drill_purge: flag_or("DRILL_PURGE", true)?,
            drill_max_hourly_price,
            metrics_namespace: get("METRICS_NAMESPACE")
                .map_or_else(|| "CrsRestore".to_owned(), |n| n.trim().to_owned()),
            clone_billing,
        })
    }
}

/// Months Tencent sells prepaid instances for (CloneInstances `Period`).
const PREPAID_MONTHS: &[u32] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 24, 36, 48, 60];

fn clone_billing(mode: Option<String>, months: Option<String>) -> Result<Billing, ConfigError> {
    let months = months
        .map(|m| {
            m.trim().parse::<u32>().ok().filter(|m| PREPAID_MONTHS.contains(m)).ok_or_else(|| ConfigError::Invalid {
                name: "CLONE_PERIOD_MONTHS",
                reason: format!("must be one of {PREPAID_MONTHS:?}"),
            })
        })
        .transpose()?;
    match mode.as_deref().map(str::trim) {
        None | Some("postpaid") => match months {
            None | Some(1) => Ok(Billing::Postpaid),
            Some(_) => Err(ConfigError::Invalid {
                name: "CLONE_PERIOD_MONTHS",
                reason: "only applies to CLONE_BILLING_MODE=prepaid (pay-as-you-go is billed by the hour)".into(),
            }),
        },
        Some("prepaid") => Ok(Billing::Prepaid { months: months.unwrap_or(1) }),
        Some(_) => {
            Err(ConfigError::Invalid { name: "CLONE_BILLING_MODE", reason: "must be postpaid or prepaid".into() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let base = [("SIGNING_KEYS_SECRET_ID", "keys"), ("TENCENT_CREDENTIALS_SECRET_ID", "tc")];
        Config::from_lookup(|name| {
            pairs.iter().chain(base.iter()).find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_match_the_documented_contract() {
        let c = config(&[]).expect("valid");
        assert_eq!(c.tencent.version, ApiVersion::V3);
        assert_eq!(c.tencent.endpoint.url_str(), "https://redis.tencentcloudapi.com/");
        assert_eq!(c.clone_billing, Billing::Postpaid);
        assert_eq!(c.tencent.signature_method, SignatureMethod::HmacSha1);
        assert_eq!(c.secret_ids.instance_password_prefix, "crs-restore/instances/");
        assert_eq!(c.secrets_ttl, Duration::from_secs(300));
        assert_eq!(c.default_region, None);
        assert_eq!(c.wait_timeout, Duration::from_secs(840));
        assert_eq!((c.poll.initial, c.poll.max), (Duration::from_secs(5), Duration::from_secs(30)));
        assert!(!c.callback_policy.allow_loopback && c.callback_policy.allowed_hosts.is_empty());
        assert!(c.drill_clone_sources.is_empty() && c.drill_purge && c.drill_max_hourly_price.is_none());
        assert_eq!(c.drill_max_age, Duration::from_secs(120 * 60));
    }

    #[test]
    fn drill_settings_are_validated() {
        let c = config(&[
            ("DRILL_CLONE_SOURCES", "crs-prod*, crs-abcd1234"),
            ("DRILL_PURGE", "false"),
            ("DRILL_MAX_HOURLY_PRICE", "2.5"),
            ("DRILL_MAX_AGE_MINUTES", "30"),
        ])
        .expect("valid");
        assert!(!c.drill_purge);
        assert_eq!((c.drill_max_hourly_price, c.drill_max_age), (Some(2.5), Duration::from_secs(1800)));
        for (name, bad) in [
            ("DRILL_MAX_HOURLY_PRICE", "-1"),
            ("DRILL_MAX_HOURLY_PRICE", "cheap"),
            ("DRILL_MAX_AGE_MINUTES", "5"),
            ("DRILL_PURGE", "maybe"),
        ] {
            assert!(
                matches!(config(&[(name, bad)]), Err(ConfigError::Invalid { name: n, .. }) if n == name),
                "{name}={bad}"
            );
        }
    }

    #[test]
    fn api_2_stays_selectable_and_prepaid_clones_take_their_months() {
        let c = config(&[("TENCENT_API_VERSION", "2")]).expect("valid");
        assert_eq!(c.tencent.version, ApiVersion::V2);
        assert_eq!(c.tencent.endpoint.url_str(), "https://redis.api.qcloud.com/v2/index.php");
        let c = config(&[("CLONE_BILLING_MODE", "prepaid"), ("CLONE_PERIOD_MONTHS", "12")]).expect("valid");
        assert_eq!(c.clone_billing, Billing::Prepaid { months: 12 });
        let c = config(&[("CLONE_BILLING_MODE", "prepaid")]).expect("valid");
        assert_eq!(c.clone_billing, Billing::Prepaid { months: 1 });
    }

    #[test]
    fn every_invalid_setting_is_named() {
        let name_of = |pairs: &[(&str, &str)]| match config(pairs) {
            Err(ConfigError::Invalid { name, .. }) => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(name_of(&[("TENCENT_API_VERSION", "4")]), "TENCENT_API_VERSION");
        assert_eq!(name_of(&[("TENCENT_SIGNATURE_METHOD", "sha1")]), "TENCENT_SIGNATURE_METHOD");
        assert_eq!(name_of(&[("TENCENT_ENDPOINT", "http://example.com/")]), "TENCENT_ENDPOINT");
        assert_eq!(name_of(&[("TENCENT_REGION", "Guangzhou")]), "TENCENT_REGION");
        assert_eq!(name_of(&[("SECRETS_TTL_SECONDS", "-1")]), "SECRETS_TTL_SECONDS");
        assert_eq!(name_of(&[("CALLBACK_ALLOW_LOOPBACK", "yes")]), "CALLBACK_ALLOW_LOOPBACK");
        assert_eq!(name_of(&[("CALLBACK_ALLOWED_HOSTS", "a..b")]), "CALLBACK_ALLOWED_HOSTS");
        assert_eq!(name_of(&[("WAIT_TIMEOUT_SECONDS", "0")]), "WAIT_TIMEOUT_SECONDS");
        assert_eq!(name_of(&[("IDEMPOTENCY_TTL_SECONDS", "300")]), "IDEMPOTENCY_TTL_SECONDS");
        assert_eq!(name_of(&[("DRILL_ALLOWED_INSTANCES", "*-drill")]), "DRILL_ALLOWED_INSTANCES");
        assert_eq!(name_of(&[("CLONE_BILLING_MODE", "monthly")]), "CLONE_BILLING_MODE");
        assert_eq!(name_of(&[("CLONE_BILLING_MODE", "prepaid"), ("CLONE_PERIOD_MONTHS", "13")]), "CLONE_PERIOD_MONTHS");
        assert_eq!(name_of(&[("CLONE_PERIOD_MONTHS", "3")]), "CLONE_PERIOD_MONTHS");
        let missing = Config::from_lookup(|_| None).expect_err("missing");
        assert_eq!(missing, ConfigError::Missing("SIGNING_KEYS_SECRET_ID"));
    }
}
