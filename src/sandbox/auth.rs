//! Pieces of request authentication both API versions share: credentials, the clock window,
//! the nonce replay cache and constant-time comparison.

use std::collections::{HashSet, VecDeque};

use super::config::SandboxCredential;
use super::errors::{ApiError, Code};

/// Enough for any test or local run; past it the oldest nonces are forgotten first, which only
/// weakens replay detection for requests older than the newest 100k.
const MAX_REMEMBERED_NONCES: usize = 100_000;

pub(crate) fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) fn credential<'a>(
    credentials: &'a [SandboxCredential],
    secret_id: &str,
) -> Result<&'a SandboxCredential, ApiError> {
    credentials
        .iter()
        .find(|c| c.secret_id == secret_id)
        .ok_or_else(|| ApiError::new(Code::SecretIdNotFound, format!("SecretId {secret_id} is unknown")))
}

pub(crate) fn check_timestamp(timestamp: i64, now: i64, tolerance_secs: i64) -> Result<(), ApiError> {
    if now.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
        return Err(ApiError::new(
            Code::SignatureExpire,
            format!("Timestamp {timestamp} is more than {tolerance_secs} s from server time {now}"),
        ));
    }
    Ok(())
}

/// A configured token must be presented; a token sent for a long-term key is as wrong as a
/// stale one, because it means the client mixed up two credentials.
pub(crate) fn check_token(credential: &SandboxCredential, presented: Option<&str>) -> Result<(), ApiError> {
    let presented = presented.filter(|t| !t.is_empty());
    let ok = match (credential.token.as_deref(), presented) {
        (Some(expected), Some(given)) => ct_eq(expected.as_bytes(), given.as_bytes()),
        (None, None) => true,
        _ => false,
    };
    if ok { Ok(()) } else { Err(ApiError::new(Code::TokenFailure, "the token does not belong to this SecretId")) }
}

/// Compares without an early exit so timing says nothing about where two secrets differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `(SecretId, Nonce)` pairs seen recently. An entry lives for twice the tolerance: a request is
/// only accepted while its Timestamp is within ±tolerance of now, so a replay arriving after its
/// entry expired fails the clock check instead.
#[derive(Debug, Default)]
pub(crate) struct NonceCache {
    seen: HashSet<(String, String)>,
    by_expiry: VecDeque<(i64, (String, String))>,
}

impl NonceCache {
    /// Records the pair; `false` when it was already seen (a replay).
    pub fn remember(&mut self, secret_id: &str, nonce: &str, now: i64, tolerance_secs: i64) -> bool {
        while let Some((expiry, _)) = self.by_expiry.front() {
            if *expiry > now && self.by_expiry.len() < MAX_REMEMBERED_NONCES {
                break;
            }
            if let Some((_, key)) = self.by_expiry.pop_front() {
                self.seen.remove(&key);
            }
        }
        let key = (secret_id.to_owned(), nonce.to_owned());
        if self.seen.contains(&key) {
            return false;
        }
        self.seen.insert(key.clone());
        self.by_expiry.push_back((now.saturating_add(tolerance_secs.saturating_mul(2)), key));
        true
    }

    pub fn contains(&self, secret_id: &str, nonce: &str) -> bool {
        self.seen.contains(&(secret_id.to_owned(), nonce.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_a_replay_until_twice_the_tolerance_has_passed() {
        let mut cache = NonceCache::default();
        assert!(cache.remember("id", "1", 1000, 300));
        assert!(!cache.remember("id", "1", 1200, 300));
        assert!(cache.remember("other-id", "1", 1200, 300));
        assert!(cache.remember("id", "1", 1601, 300));
    }

    #[test]
    fn constant_time_compare_agrees_with_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }

    #[test]
    fn the_clock_window_is_inclusive() {
        assert!(check_timestamp(700, 1000, 300).is_ok());
        assert!(check_timestamp(1300, 1000, 300).is_ok());
        assert!(check_timestamp(699, 1000, 300).is_err());
        assert!(check_timestamp(i64::MIN, 1000, 300).is_err());
    }
}
