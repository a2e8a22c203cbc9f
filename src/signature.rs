//! Standard Webhooks v1 (HMAC-SHA256) signing and verification on raw body bytes.
//!
//! Verification runs before anything is parsed: the signed content is `{id}.{timestamp}.{body}`
//! built byte by byte, so a body that is not UTF-8 or not JSON is still verified (and then
//! rejected by the parser, never the other way round).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secrets::SecretBytes;

/// Accepted clock difference between the sender and us, both ways (the libraries' default).
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Shortest decoded key accepted: a lenient base64 decoder can turn a mangled `whsec_` value
/// into a one-byte key, which must fail loudly at configuration time instead.
const MIN_KEY_BYTES: usize = 16;

/// Longest `webhook-id` accepted; it ends up in logs, responses and idempotency keys.
const MAX_ID_LEN: usize = 128;

/// A decoded `whsec_` key.
#[derive(Clone, Debug)]
pub struct WebhookSecret(SecretBytes);

impl WebhookSecret {
    /// Parses `whsec_<base64>` (padding optional, as the Python reference library allows).
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let b64 = value.strip_prefix("whsec_").ok_or("must start with whsec_")?;
        let bytes = STANDARD
            .decode(b64)
            .or_else(|_| STANDARD_NO_PAD.decode(b64))
            .map_err(|_| "is not valid base64 after whsec_")?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err("decodes to fewer than 16 bytes");
        }
        Ok(Self(SecretBytes::new(bytes)))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.expose()).unwrap_or_else(|_| unreachable!())
    }
}

/// The three Standard Webhooks headers, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Why a request was not accepted as signed. Every variant is a 401; the message says which
/// rule failed without revealing anything about the keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("webhook-id must be 1-128 printable ASCII characters without '.' or spaces")]
    InvalidId,
    #[error("webhook-timestamp must be an integer number of unix seconds")]
    InvalidTimestamp,
    #[error("webhook-timestamp is more than 5 minutes in the past")]
    TimestampTooOld,
    #[error("webhook-timestamp is more than 5 minutes in the future (it must be unix seconds, not milliseconds)")]
    TimestampTooNew,
    #[error("no webhook-signature entry matches the body for any active key")]
    NoMatch,
}

impl SignatureError {
    /// Stable machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "MissingSignature",
            Self::InvalidId | Self::InvalidTimestamp => "MalformedSignatureHeaders",
            Self::TimestampTooOld | Self::TimestampTooNew => "StaleTimestamp",
            Self::NoMatch => "InvalidSignature",
        }
    }
}

/// A request whose signature checked out: its delivery id and which key signed it.
#[derive(Debug, Clone, Copy)]
pub struct Verified<'a, K> {
    pub id: &'a str,
    pub timestamp: i64,
    pub key: &'a K,
}

/// Verifies `headers` over `body` against every active key (rotation: any key, any `v1` entry).
///
/// `secret_of` maps a configured key to its secret, so the caller's key type (with its id and
/// allow list) comes back on success and identifies the caller.
pub fn verify<'a, K>(
    keys: &'a [K],
    secret_of: impl Fn(&K) -> &WebhookSecret,
    headers: SignedHeaders<'a>,
    body: &[u8],
    now: i64,
) -> Result<Verified<'a, K>, SignatureError> {
    let (id, ts_raw, timestamp, sig_header) = check_headers(headers, now)?;
    // Decode the candidate signatures once; unknown versions (v1a, v2) are skipped, not errors.
    let candidates: Vec<Vec<u8>> = sig_header
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| STANDARD.decode(sig).ok())
        .take(16)
        .collect();
    if candidates.is_empty() {
        return Err(SignatureError::NoMatch);
    }
    for key in keys {
        let mut mac = secret_of(key).mac();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(ts_raw.as_bytes());
        mac.update(b".");
        mac.update(body);
        // verify_slice is constant time over the full tag.
        if candidates.iter().any(|c| mac.clone().verify_slice(c).is_ok()) {
            return Ok(Verified { id, timestamp, key });
        }
    }
    Err(SignatureError::NoMatch)
}

/// Everything that can be checked without a key: presence, id shape, timestamp and its age.
/// Lets the caller refuse hopeless requests before fetching any secret.
pub fn precheck(headers: SignedHeaders<'_>, now: i64) -> Result<(), SignatureError> {
    check_headers(headers, now).map(drop)
}

fn check_headers(headers: SignedHeaders<'_>, now: i64) -> Result<(&str, &str, i64, &str), SignatureError> {
    let id = headers.id.ok_or(SignatureError::MissingHeader("webhook-id"))?;
    let ts_raw = headers.timestamp.ok_or(SignatureError::MissingHeader("webhook-timestamp"))?;
    let sig_header = headers.signature.ok_or(SignatureError::MissingHeader("webhook-signature"))?;
    if !valid_id(id) {
        return Err(SignatureError::InvalidId);
    }
    let timestamp = parse_timestamp(ts_raw)?;
    if now - timestamp > TOLERANCE_SECONDS {
        return Err(SignatureError::TimestampTooOld);
    }
    if timestamp - now > TOLERANCE_SECONDS {
        return Err(SignatureError::TimestampTooNew);
    }
    Ok((id, ts_raw, timestamp, sig_header))
}

/// Signs `body` as Standard Webhooks v1: returns the `webhook-signature` value `v1,<base64>`.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = secret.mac();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic() && b != b'.')
}

fn parse_timestamp(raw: &str) -> Result<i64, SignatureError> {
    // Digits only: no sign, no spaces, no fractions. Milliseconds parse, then fail as "future"
    // with a message that names the likely mistake.
    if raw.is_empty() || raw.len() > 18 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::InvalidTimestamp);
    }
    raw.parse().map_err(|_| SignatureError::InvalidTimestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> WebhookSecret {
        WebhookSecret::parse(s).expect("valid test key")
    }

    fn check(secret: &str, id: &str, ts: i64, body: &str, sig: &str, now: i64) -> Result<(), SignatureError> {
        let keys = [key(secret)];
        let headers = SignedHeaders { id: Some(id), timestamp: Some(&ts.to_string()), signature: Some(sig) };
        verify(&keys, |k| k, headers, body.as_bytes(), now).map(|_| ())
    }

    const SW1_KEY: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SW1_BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
    const SW1_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    const SW2_KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW2_BODY: &str = r#"{"test": 2432232314}"#;

    #[test]
    fn sw1_signs_and_verifies_as_the_reference_library() {
        assert_eq!(sign(&key(SW1_KEY), "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, SW1_BODY.as_bytes()), SW1_SIG);
        assert_eq!(
            check(SW1_KEY, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, SW1_BODY, SW1_SIG, 1649367553),
            Ok(())
        );
    }

    #[test]
    fn sw2_verifies_and_its_negative_twin_is_rejected() {
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let bad = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
        assert_eq!(sign(&key(SW2_KEY), id, 1614265330, SW2_BODY.as_bytes()), good);
        assert_eq!(check(SW2_KEY, id, 1614265330, SW2_BODY, good, 1614265330), Ok(()));
        assert_eq!(check(SW2_KEY, id, 1614265330, SW2_BODY, bad, 1614265330), Err(SignatureError::NoMatch));
    }

    #[test]
    fn a_valid_signature_among_decoys_and_other_versions_is_accepted() {
        let header = format!(
            "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw== v2,abc {SW1_SIG}"
        );
        assert_eq!(
            check(SW1_KEY, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, SW1_BODY, &header, 1649367553),
            Ok(())
        );
    }

    #[test]
    fn only_the_first_16_v1_signatures_of_a_header_are_checked() {
        let decoys = vec!["v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ="; 15].join(" ");
        let id = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
        let sixteenth = format!("{decoys} {SW1_SIG}");
        assert_eq!(check(SW1_KEY, id, 1649367553, SW1_BODY, &sixteenth, 1649367553), Ok(()));
        let seventeenth = format!("{decoys} v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q= {SW1_SIG}");
        assert_eq!(check(SW1_KEY, id, 1649367553, SW1_BODY, &seventeenth, 1649367553), Err(SignatureError::NoMatch));
    }

    #[test]
    fn only_decoys_are_rejected() {
        let header = "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=";
        let r = check(SW1_KEY, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, SW1_BODY, header, 1649367553);
        assert_eq!(r, Err(SignatureError::NoMatch));
    }

    #[test]
    fn the_second_of_two_rotated_keys_identifies_the_caller() {
        let keys = [key(SW2_KEY), key(SW1_KEY)];
        let headers = SignedHeaders {
            id: Some("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"),
            timestamp: Some("1649367553"),
            signature: Some(SW1_SIG),
        };
        let v = verify(&keys, |k| k, headers, SW1_BODY.as_bytes(), 1649367553).expect("verifies");
        assert!(std::ptr::eq(v.key, &keys[1]));
    }

    #[test]
    fn timestamps_at_the_tolerance_edges_pass_and_one_second_beyond_fails() {
        let k = key(SW1_KEY);
        let id = "msg_edge";
        for (ts, now, ok) in [(1000, 1300, true), (1000, 1301, false), (1300, 1000, true), (1301, 1000, false)] {
            let sig = sign(&k, id, ts, b"{}");
            let r = check(SW1_KEY, id, ts, "{}", &sig, now);
            assert_eq!(r.is_ok(), ok, "ts={ts} now={now}: {r:?}");
        }
    }

    #[test]
    fn a_timestamp_in_milliseconds_is_called_out_as_future() {
        let sig = sign(&key(SW1_KEY), "msg_ms", 1649367553000, b"{}");
        let r = check(SW1_KEY, "msg_ms", 1649367553000, "{}", &sig, 1649367553);
        assert_eq!(r, Err(SignatureError::TimestampTooNew));
    }

    #[test]
    fn malformed_headers_are_rejected_before_any_hmac() {
        let keys = [key(SW1_KEY)];
        let h = |id, ts, sig| SignedHeaders { id, timestamp: ts, signature: sig };
        let run = |hd| verify(&keys, |k| k, hd, b"{}", 1000).map(|_| ());
        assert_eq!(run(h(None, Some("1000"), Some("v1,x"))), Err(SignatureError::MissingHeader("webhook-id")));
        assert_eq!(run(h(Some("a"), None, Some("v1,x"))), Err(SignatureError::MissingHeader("webhook-timestamp")));
        assert_eq!(run(h(Some("a"), Some("1000"), None)), Err(SignatureError::MissingHeader("webhook-signature")));
        assert_eq!(run(h(Some("a.b"), Some("1000"), Some("v1,x"))), Err(SignatureError::InvalidId));
        assert_eq!(run(h(Some("a b"), Some("1000"), Some("v1,x"))), Err(SignatureError::InvalidId));
        assert_eq!(run(h(Some("a"), Some("-1000"), Some("v1,x"))), Err(SignatureError::InvalidTimestamp));
        assert_eq!(run(h(Some("a"), Some("1000.5"), Some("v1,x"))), Err(SignatureError::InvalidTimestamp));
        assert_eq!(run(h(Some("a"), Some("1000"), Some("garbage"))), Err(SignatureError::NoMatch));
    }

    #[test]
    fn keys_that_are_not_whsec_base64_or_too_short_are_refused() {
        assert!(WebhookSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("whsec_eHl6").is_err());
        assert!(WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        // Unpadded base64 is accepted, as the Python reference library does.
        assert!(WebhookSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_ok());
    }
}
