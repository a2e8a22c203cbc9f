//! Posting to a Slack `response_url`, pinned to `https://hooks.slack.com/`.
//!
//! The URL arrives inside a verified Slack request, but it is still a URL we are told to POST
//! to: anything but Slack's hook host is refused, so a leaked signing secret cannot turn the
//! function into a request forwarder. `CALLBACK_ALLOW_LOOPBACK` (tests, local runs) also allows
//! plain `http` to a loopback IP literal.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Slack accepts this many posts per `response_url`...
pub const MAX_POSTS: u32 = 5;
/// ...within this long after the interaction that issued it.
pub const VALID_SECONDS: i64 = 30 * 60;

const SLACK_HOOK_HOST: &str = "hooks.slack.com";

/// A `response_url` that passed the pin. `Debug` hides the path: the URL is a capability to
/// post into the channel for half an hour.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResponseUrl(url::Url);

impl std::fmt::Debug for ResponseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ResponseUrl({}://{}/…)", self.0.scheme(), self.0.host_str().unwrap_or_default())
    }
}

/// Deserializing (our own job events) checks the shape; the loopback opt-in is checked again
/// before every post.
impl TryFrom<String> for ResponseUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s, true).map_err(str::to_owned)
    }
}

impl From<ResponseUrl> for String {
    fn from(u: ResponseUrl) -> String {
        u.0.into()
    }
}

impl ResponseUrl {
    pub fn parse(raw: &str, allow_loopback: bool) -> Result<Self, &'static str> {
        if raw.len() > 2048 {
            return Err("response_url is longer than 2048 characters");
        }
        let url = url::Url::parse(raw).map_err(|_| "response_url is not a URL")?;
        let me = Self(url);
        me.check(allow_loopback)?;
        Ok(me)
    }

    /// `https://hooks.slack.com/...` on the default port, or (opt-in) loopback.
    pub fn check(&self, allow_loopback: bool) -> Result<(), &'static str> {
        let url = &self.0;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("response_url must not carry credentials");
        }
        let slack = url.scheme() == "https"
            && url.host() == Some(url::Host::Domain(SLACK_HOOK_HOST))
            && url.port().is_none_or(|p| p == 443);
        let loopback = allow_loopback
            && matches!(url.scheme(), "http" | "https")
            && match url.host() {
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                _ => false,
            };
        if slack || loopback { Ok(()) } else { Err("response_url is not on https://hooks.slack.com/") }
    }
}

/// Posts `message` once, and once more after a transient failure if `deadline` allows.
/// Returns Slack's status, or why nothing was accepted.
pub async fn post(url: &ResponseUrl, message: &Value, allow_loopback: bool, deadline: Instant) -> Result<u16, String> {
    url.check(allow_loopback).map_err(str::to_owned)?;
    // A client per post: a handful of posts per restore, and no pool outliving its runtime.
    let client = crate::state::http_client().map_err(|_| "no HTTP client".to_owned())?;
    let body = serde_json::to_vec(message).map_err(|e| e.to_string())?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(100) {
            return Err("no time left to post".into());
        }
        let sent = client
            .post(url.0.clone())
            .timeout(left.min(Duration::from_secs(10)))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let retry = match sent {
            Ok(r) if r.status().is_success() => return Ok(r.status().as_u16()),
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                format!("HTTP {}", r.status().as_u16())
            }
            // 404 `expired_url` / `used_url` and the like: trying again cannot help.
            Ok(r) => return Err(format!("HTTP {}", r.status().as_u16())),
            Err(e) if e.is_timeout() => "timed out".to_owned(),
            Err(_) => "connection failed".to_owned(),
        };
        if attempt >= 2 {
            return Err(retry);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slacks_hook_host_over_https_is_accepted() {
        assert!(ResponseUrl::parse("https://hooks.slack.com/commands/T1/2/abc", false).is_ok());
        assert!(ResponseUrl::parse("https://HOOKS.slack.com:443/actions/T1/2/abc", false).is_ok());
        for bad in [
            "http://hooks.slack.com/commands/T1/2/abc",
            "https://hooks.slack.com.evil.example/x",
            "https://evilhooks.slack.com/x",
            "https://hooks.slack.com:8443/x",
            "https://user:pw@hooks.slack.com/x",
            "https://169.254.169.254/latest/meta-data",
            "http://127.0.0.1:8080/x",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(ResponseUrl::parse(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_loopback_opt_in_allows_loopback_ip_literals_only() {
        assert!(ResponseUrl::parse("http://127.0.0.1:8080/commands/x", true).is_ok());
        assert!(ResponseUrl::parse("http://[::1]:8080/x", true).is_ok());
        for bad in
            ["http://localhost:8080/x", "http://10.0.0.1/x", "http://[::ffff:10.0.0.1]/x", "http://example.com/x"]
        {
            assert!(ResponseUrl::parse(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_output_hides_the_capability_in_the_path() {
        let u = ResponseUrl::parse("https://hooks.slack.com/commands/T1/2/s3cr3tpath", false).expect("valid");
        assert!(!format!("{u:?}").contains("s3cr3tpath"));
    }
}
