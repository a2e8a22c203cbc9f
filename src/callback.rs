//! Callbacks: user-supplied callback URLs checked against SSRF rules, and signed Standard
//! Webhooks deliveries with bounded retries.
//!
//! A callback URL is checked twice: when the request arrives (so a bad one is refused with 400
//! before any restore starts) and at connect time by the client's DNS resolver, which drops
//! every address that is not allowed, so a name that re-resolves to an internal address
//! (DNS rebinding) still cannot be reached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::unix_now;
use crate::signature::{self, WebhookSecret};

/// Where callbacks may go.
#[derive(Debug, Clone, Default)]
pub struct CallbackPolicy {
    /// `CALLBACK_ALLOWED_HOSTS`: exact hosts or `*.suffix`; empty allows any public host.
    pub allowed_hosts: Vec<String>,
    /// `CALLBACK_ALLOW_LOOPBACK`: local development only. Allows `http` and loopback addresses.
    pub allow_loopback: bool,
}

impl CallbackPolicy {
    pub fn parse_hosts(raw: &str) -> Result<Vec<String>, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| {
                let bare = h.strip_prefix("*.").unwrap_or(h);
                let ok = !bare.is_empty()
                    && bare
                        .split('.')
                        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
                if ok { Ok(h.to_ascii_lowercase()) } else { Err(format!("{h:?} is not a host name or *.domain")) }
            })
            .collect()
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts.is_empty()
            || self.allowed_hosts.iter().any(|p| match p.strip_prefix("*.") {
                Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
                None => host == p,
            })
    }
}

/// Why a callback URL is refused (400, before any restore).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("callbackUrl {0}")]
pub struct CallbackUrlError(String);

/// A callback URL that passed the syntax, scheme, host-list and address checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallbackUrl(reqwest::Url);

impl TryFrom<String> for CallbackUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        reqwest::Url::parse(&s).map(Self).map_err(|e| e.to_string())
    }
}

impl From<CallbackUrl> for String {
    fn from(u: CallbackUrl) -> String {
        u.0.into()
    }
}

impl std::fmt::Display for CallbackUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl CallbackUrl {
    /// Syntax, scheme, credentials, host list, and IP literals. Names are resolved by
    /// [`CallbackUrl::check_resolution`].
    pub fn parse(raw: &str, policy: &CallbackPolicy) -> Result<Self, CallbackUrlError> {
        let err = |m: &str| CallbackUrlError(m.to_owned());
        if raw.len() > 2048 {
            return Err(err("is longer than 2048 characters"));
        }
        let url = reqwest::Url::parse(raw).map_err(|_| err("is not a valid URL"))?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_loopback => {}
            _ => return Err(err("must use https")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err("must not contain credentials"));
        }
        let host = url.host().ok_or_else(|| err("has no host"))?;
        match host {
            url::Host::Ipv4(ip) => check_ip(IpAddr::V4(ip), policy)?,
            url::Host::Ipv6(ip) => check_ip(IpAddr::V6(ip), policy)?,
            url::Host::Domain(name) => {
                if !policy.host_allowed(&name.to_ascii_lowercase()) {
                    return Err(err("host is not in CALLBACK_ALLOWED_HOSTS"));
                }
            }
        }
        if matches!(host, url::Host::Ipv4(_) | url::Host::Ipv6(_)) && !policy.allowed_hosts.is_empty() {
            return Err(err("host is not in CALLBACK_ALLOWED_HOSTS"));
        }
        Ok(Self(url))
    }

    /// Resolves the host now and refuses it if any address is not allowed (all of them must
    /// be public: a name with one internal address is a rebinding tool).
    pub async fn check_resolution(&self, policy: &CallbackPolicy) -> Result<(), CallbackUrlError> {
        let Some(url::Host::Domain(name)) = self.0.host() else {
            return Ok(()); // IP literals were checked by parse
        };
        let port = self.0.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| CallbackUrlError("host does not resolve".into()))?
            .collect();
        if addrs.is_empty() {
            return Err(CallbackUrlError("host does not resolve".into()));
        }
        addrs.iter().try_for_each(|a| check_ip(a.ip(), policy))
    }

    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }
}

fn check_ip(ip: IpAddr, policy: &CallbackPolicy) -> Result<(), CallbackUrlError> {
    if ip_allowed(ip, policy.allow_loopback) {
        Ok(())
    } else {
        Err(CallbackUrlError(format!("resolves to a non-public address ({})", ip.to_canonical())))
    }
}

/// Public unicast only. IPv4-mapped IPv6 is unwrapped first so `::ffff:127.0.0.1` is loopback.
pub fn ip_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    let ip = ip.to_canonical();
    if ip.is_loopback() {
        return allow_loopback;
    }
    match ip {
        IpAddr::V4(v4) => v4_public(v4),
        IpAddr::V6(v6) => v6_public(v6),
    }
}

fn v4_public(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    let in_net = |net: [u8; 4], bits: u32| {
        let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
        (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
    };
    !(ip.is_private()
        || ip.is_link_local() // 169.254.0.0/16, incl. the 169.254.169.254 metadata service
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || o[0] == 0
        || in_net([100, 64, 0, 0], 10) // shared address space / CGNAT
        || in_net([192, 0, 0, 0], 24) // IETF protocol assignments
        || in_net([198, 18, 0, 0], 15) // benchmarking
        || in_net([240, 0, 0, 0], 4)) // reserved
}

fn v6_public(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64: embeds an IPv4 address
        || s[0] == 0x2002 // 6to4: embeds an IPv4 address
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard
        || s[..6].iter().all(|&x| x == 0)) // IPv4-compatible ::a.b.c.d
}

/// The resolver of the callback client: drops disallowed addresses at connect time.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| ip_allowed(a.ip(), allow_loopback))
                .collect();
            if addrs.is_empty() {
                return Err("no public address for the callback host".into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// One callback event; `None` fields are left out ("present when known").
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CallbackEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub delivery_id: String,
    pub redis_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_start_time: Option<String>,
    pub region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
    /// `inPlace` or `clone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point_in_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone_instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<String>,
    /// The running clone: `{"instanceId", "name", "vip", "port"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone: Option<serde_json::Value>,
    /// Drill clones: how the clean-up went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<String>,
}

impl CallbackEvent {
    /// Stable across retries and re-invocations: derived from the delivery and the event type.
    pub fn webhook_id(&self) -> String {
        let digest = Sha256::digest(format!("{}:{}", self.delivery_id, self.kind).as_bytes());
        format!("evt_{}", &hex::encode(digest)[..32])
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub attempts: u32,
    /// `Ok(status)` for a 2xx; `Err(reason)` for the final failure.
    pub result: Result<u16, String>,
}

/// Retry schedule: exponential from `base`, with jitter, honouring `Retry-After`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max_attempts: u32,
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base: Duration::from_secs(1), max_attempts: 6, attempt_timeout: Duration::from_secs(15) }
    }
}

/// Sends callback events. One pooled client, SSRF-guarded, no redirects.
#[derive(Debug, Clone)]
pub struct CallbackClient {
    http: reqwest::Client,
    pub policy: CallbackPolicy,
    retry: RetryPolicy,
}

impl CallbackClient {
    pub fn new(policy: CallbackPolicy, retry: RetryPolicy) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_loopback: policy.allow_loopback }))
            .tls_backend_preconfigured(crate::tls::client_config())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("crs-restore/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, policy, retry })
    }

    /// Delivers `event`, retrying transient failures until `deadline` (the invocation's end,
    /// less a margin) or the attempt limit. Never panics, never errors: the report says how it went.
    pub async fn deliver(
        &self,
        url: &CallbackUrl,
        secret: &WebhookSecret,
        event: &CallbackEvent,
        deadline: Option<Instant>,
    ) -> DeliveryReport {
        let body = serde_json::to_vec(event).unwrap_or_default();
        let id = event.webhook_id();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let ts = unix_now();
            let sig = signature::sign(secret, &id, ts, &body);
            let sent = self
                .http
                .post(url.0.clone())
                .timeout(self.retry.attempt_timeout)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sig)
                .body(body.clone())
                .send()
                .await;
            let (retryable, reason, retry_after) = match sent {
                Ok(r) if r.status().is_success() => {
                    return DeliveryReport { attempts, result: Ok(r.status().as_u16()) };
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(60)));
                    (status == 429 || status >= 500, format!("HTTP {status}"), retry_after)
                }
                Err(e) if e.is_timeout() => (true, "timed out".to_owned(), None),
                Err(e) if e.is_connect() => (true, "connection failed".to_owned(), None),
                Err(_) => (true, "connection broke".to_owned(), None),
            };
            if !retryable || attempts >= self.retry.max_attempts {
                return DeliveryReport { attempts, result: Err(reason) };
            }
            let backoff = self.retry.base.saturating_mul(1 << (attempts - 1).min(16));
            // Full jitter on the upper half: spreads retries without shrinking them to nothing.
            let jittered = backoff.mul_f64(0.5 + rand::random::<f64>() * 0.5);
            let delay = retry_after.map_or(jittered, |ra| ra.max(jittered));
            if deadline.is_some_and(|d| Instant::now() + delay + self.retry.attempt_timeout > d) {
                return DeliveryReport { attempts, result: Err(format!("{reason}; no time left to retry")) };
            }
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CallbackPolicy {
        CallbackPolicy::default()
    }

    #[test]
    fn only_public_unicast_addresses_are_allowed() {
        for bad in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            let ip: IpAddr = bad.parse().expect(bad);
            assert!(!ip_allowed(ip, false), "{bad} must be refused");
        }
        for good in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:93.184.216.34"] {
            assert!(ip_allowed(good.parse().expect(good), false), "{good} must be allowed");
        }
    }

    #[test]
    fn the_loopback_opt_in_allows_loopback_but_never_private_ranges() {
        assert!(ip_allowed("127.0.0.1".parse().expect("ip"), true));
        assert!(ip_allowed("::1".parse().expect("ip"), true));
        assert!(!ip_allowed("10.0.0.1".parse().expect("ip"), true));
        assert!(!ip_allowed("169.254.169.254".parse().expect("ip"), true));
    }

    #[test]
    fn callback_urls_must_be_https_without_credentials() {
        let p = policy();
        assert!(CallbackUrl::parse("https://hooks.example.com/restore", &p).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://x/",
            "https://u:p@hooks.example.com/",
            "not a url",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://10.0.0.1/",
            "https://169.254.169.254/latest",
            "https://[::ffff:127.0.0.1]/",
        ] {
            assert!(CallbackUrl::parse(bad, &p).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_allowed_hosts_list_accepts_exact_hosts_and_subdomain_wildcards() {
        let p = CallbackPolicy {
            allowed_hosts: CallbackPolicy::parse_hosts("hooks.example.com, *.corp.example").expect("valid"),
            allow_loopback: false,
        };
        assert!(CallbackUrl::parse("https://hooks.example.com/x", &p).is_ok());
        assert!(CallbackUrl::parse("https://a.corp.example/x", &p).is_ok());
        assert!(CallbackUrl::parse("https://corp.example/x", &p).is_err());
        assert!(CallbackUrl::parse("https://evilhooks.example.com/x", &p).is_err());
        assert!(CallbackUrl::parse("https://93.184.216.34/x", &p).is_err());
        assert!(CallbackPolicy::parse_hosts("a..b").is_err());
    }

    #[test]
    fn webhook_ids_are_stable_per_delivery_and_type() {
        let mut e = CallbackEvent {
            kind: "restore.started".into(),
            delivery_id: "msg_1".into(),
            redis_id: "crs-izbob1wh".into(),
            backup_id: None,
            backup_start_time: None,
            region: "ap-guangzhou".into(),
            task_id: None,
            started_at: None,
            finished_at: None,
            duration_seconds: None,
            dry_run: None,
            drill: None,
            error: None,
            ..CallbackEvent::default()
        };
        let a = e.webhook_id();
        assert_eq!(a, e.clone().webhook_id());
        e.kind = "restore.succeeded".into();
        assert_ne!(a, e.webhook_id());
        assert!(!a.contains('.'));
        let json = serde_json::to_value(&e).expect("serializes");
        assert!(json.get("taskId").is_none() && json["type"] == "restore.succeeded");
    }
}
