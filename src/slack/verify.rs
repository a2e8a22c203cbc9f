//! Slack request signing (v0): `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}` under the
//! app's signing secret, checked on the raw bytes before anything is parsed.
//!
//! The body is hashed exactly as it arrived (still form-encoded: `%2F` must not be decoded first),
//! and the comparison is constant time over the whole tag.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secrets::SecretString;

/// Accepted clock difference, both ways: what Slack's own SDKs allow.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// The two signing headers, as received.
#[derive(Debug, Clone, Copy)]
pub struct SlackHeaders<'a> {
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Why a request was not accepted as coming from Slack. Every variant is a 401; messages name
/// the rule, never anything about the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackSignatureError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("x-slack-request-timestamp must be an integer number of unix seconds")]
    InvalidTimestamp,
    #[error("x-slack-request-timestamp is more than 5 minutes away from the current time")]
    Stale,
    #[error("x-slack-signature must be \"v0=\" followed by 64 hex digits")]
    Malformed,
    #[error("x-slack-signature does not match the body for the configured signing secret")]
    NoMatch,
}

impl SlackSignatureError {
    /// The same public codes as the Standard Webhooks path, so callers see one vocabulary.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "MissingSignature",
            Self::InvalidTimestamp | Self::Malformed => "MalformedSignatureHeaders",
            Self::Stale => "StaleTimestamp",
            Self::NoMatch => "InvalidSignature",
        }
    }
}

/// Headers that passed every check that needs no secret.
#[derive(Debug, Clone, Copy)]
pub struct Checked<'a> {
    timestamp: &'a str,
    tag: [u8; 32],
}

/// Presence, shape and age of the headers: lets the caller refuse a hopeless request before
/// fetching any secret.
pub fn precheck(headers: SlackHeaders<'_>, now: i64) -> Result<Checked<'_>, SlackSignatureError> {
    let timestamp = headers.timestamp.ok_or(SlackSignatureError::MissingHeader("x-slack-request-timestamp"))?;
    let signature = headers.signature.ok_or(SlackSignatureError::MissingHeader("x-slack-signature"))?;
    // Digits only: no sign, no spaces, no fractions; 18 digits cannot overflow an i64.
    if timestamp.is_empty() || timestamp.len() > 18 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SlackSignatureError::InvalidTimestamp);
    }
    let ts: i64 = timestamp.parse().map_err(|_| SlackSignatureError::InvalidTimestamp)?;
    if (now - ts).abs() > TOLERANCE_SECONDS {
        return Err(SlackSignatureError::Stale);
    }
    let hex_tag = signature.strip_prefix("v0=").ok_or(SlackSignatureError::Malformed)?;
    let mut tag = [0u8; 32];
    hex::decode_to_slice(hex_tag, &mut tag).map_err(|_| SlackSignatureError::Malformed)?;
    Ok(Checked { timestamp, tag })
}

/// Verifies `headers` over the raw `body` with the app's signing secret at time `now`.
pub fn verify(
    secret: &SecretString,
    headers: SlackHeaders<'_>,
    body: &[u8],
    now: i64,
) -> Result<(), SlackSignatureError> {
    let checked = precheck(headers, now)?;
    let mac = mac(secret, checked.timestamp, body).ok_or(SlackSignatureError::NoMatch)?;
    // verify_slice compares the full tag in constant time.
    mac.verify_slice(&checked.tag).map_err(|_| SlackSignatureError::NoMatch)
}

/// The `x-slack-signature` value Slack would send (tests and local tooling).
pub fn sign(secret: &SecretString, timestamp: &str, body: &[u8]) -> String {
    mac(secret, timestamp, body).map_or_else(String::new, |m| format!("v0={}", hex::encode(m.finalize().into_bytes())))
}

/// The signing secret is used as its raw UTF-8 bytes, as Slack does (no decoding).
fn mac(secret: &SecretString, timestamp: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes()).ok()?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    // SLACK-1, from Slack's "Verifying requests" walkthrough as reproduced in python-slack-sdk.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn check(body: &str, ts: &str, sig: &str, now: i64) -> Result<(), SlackSignatureError> {
        let headers = SlackHeaders { timestamp: Some(ts), signature: Some(sig) };
        verify(&SecretString::new(SECRET), headers, body.as_bytes(), now)
    }

    #[test]
    fn slack_1_signs_and_verifies_at_its_own_time() {
        assert_eq!(sign(&SecretString::new(SECRET), TS, BODY.as_bytes()), SIG);
        assert_eq!(check(BODY, TS, SIG, 1531420618), Ok(()));
    }

    #[test]
    fn slack_1_with_six_dashes_appended_to_the_body_fails() {
        assert_eq!(check(&format!("{BODY}------"), TS, SIG, 1531420618), Err(SlackSignatureError::NoMatch));
    }

    #[test]
    fn slack_1_checked_against_the_real_clock_is_stale() {
        let now = crate::clock::unix_now();
        assert_eq!(check(BODY, TS, SIG, now), Err(SlackSignatureError::Stale));
    }

    #[test]
    fn the_five_minute_window_holds_both_ways_and_one_second_beyond_fails() {
        let base = 1531420618;
        assert_eq!(check(BODY, TS, SIG, base + 300), Ok(()));
        assert_eq!(check(BODY, TS, SIG, base - 300), Ok(()));
        assert_eq!(check(BODY, TS, SIG, base + 301), Err(SlackSignatureError::Stale));
        assert_eq!(check(BODY, TS, SIG, base - 301), Err(SlackSignatureError::Stale));
    }

    #[test]
    fn a_url_decoded_body_or_another_secret_does_not_verify() {
        let decoded = BODY.replace("%2F", "/").replace("%3A", ":");
        assert_eq!(check(&decoded, TS, SIG, 1531420618), Err(SlackSignatureError::NoMatch));
        let headers = SlackHeaders { timestamp: Some(TS), signature: Some(SIG) };
        let other = SecretString::new("8f742231b10e8888abcd99yyyzzz85a6");
        assert_eq!(verify(&other, headers, BODY.as_bytes(), 1531420618), Err(SlackSignatureError::NoMatch));
    }

    #[test]
    fn malformed_headers_are_refused_before_any_hmac() {
        let run = |ts: Option<&str>, sig: Option<&str>| {
            verify(&SecretString::new(SECRET), SlackHeaders { timestamp: ts, signature: sig }, b"", 1531420618)
        };
        assert_eq!(run(None, Some(SIG)), Err(SlackSignatureError::MissingHeader("x-slack-request-timestamp")));
        assert_eq!(run(Some(TS), None), Err(SlackSignatureError::MissingHeader("x-slack-signature")));
        for ts in ["", "-1531420618", "1531420618.5", " 1531420618", "1531420618000000000000"] {
            assert_eq!(run(Some(ts), Some(SIG)), Err(SlackSignatureError::InvalidTimestamp), "{ts:?}");
        }
        let upper = SIG.to_ascii_uppercase();
        for sig in ["a2114d57", "v1=a2114d57", "v0=zz", "v0=", upper.as_str(), &SIG[..SIG.len() - 1]] {
            let r = run(Some(TS), Some(sig));
            assert!(matches!(r, Err(SlackSignatureError::Malformed)), "{sig:?}: {r:?}");
        }
    }
}
