//! Confirmation tokens: the value of the prompt's Confirm and Cancel buttons.
//!
//! Slack hands a button's value back to us unchanged, so the value itself must say what was
//! shown and prove we wrote it: `base64url(JSON claims) "." base64url(HMAC-SHA256 tag)`. The tag
//! key is derived from the Slack signing secret with a domain label, so a token can never be
//! mistaken for (or used to forge) a Slack request signature, and rotating the signing secret
//! invalidates every outstanding prompt.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::payload::{BackupId, RedisId, Region, RestoreMode};
use crate::secrets::SecretString;

/// How long a prompt can be confirmed.
pub const TTL_SECONDS: i64 = 5 * 60;

/// Block Kit caps a button value at 2000 characters; anything longer is not ours.
pub const MAX_TOKEN_LEN: usize = 2000;

/// Domain separation: the token key is HMAC(signing secret, this label).
const KEY_LABEL: &[u8] = b"crs-restore confirm-token v1";

/// What a confirmation token binds. Short field names keep the button value small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmToken {
    /// Unique per prompt: the idempotency key of its confirmation (`slack#<nonce>`).
    #[serde(rename = "n")]
    pub nonce: String,
    #[serde(rename = "t")]
    pub team_id: String,
    /// The user who asked; only they may confirm.
    #[serde(rename = "u")]
    pub user_id: String,
    #[serde(rename = "r")]
    pub redis_id: RedisId,
    /// The backup the prompt showed (`latest` already resolved).
    #[serde(rename = "b")]
    pub backup_id: BackupId,
    #[serde(rename = "g")]
    pub region: Region,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub backup_time: Option<String>,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unix seconds after which the token is refused.
    #[serde(rename = "e")]
    pub expires_at: i64,
    /// Left out for in place, so tokens of that mode are as before.
    #[serde(rename = "o", default, skip_serializing_if = "is_in_place")]
    pub mode: RestoreMode,
}

fn is_in_place(mode: &RestoreMode) -> bool {
    *mode == RestoreMode::InPlace
}

/// Why a button value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the confirmation token is not in the expected format")]
    Malformed,
    #[error("the confirmation token was not issued by this function or was changed")]
    Forged,
    #[error("the confirmation token has expired")]
    Expired,
}

/// A token whose tag checked out, with the exact claim bytes it carried (the idempotency
/// payload of its confirmation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub token: ConfirmToken,
    pub claims: Vec<u8>,
}

/// A fresh, unpredictable nonce: 128 random bits, hex.
pub fn new_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

impl ConfirmToken {
    /// The button value for this token.
    pub fn seal(&self, secret: &SecretString) -> Result<String, TokenError> {
        let claims = serde_json::to_vec(self).map_err(|_| TokenError::Malformed)?;
        let body = URL_SAFE_NO_PAD.encode(claims);
        let mut mac = token_mac(secret).ok_or(TokenError::Malformed)?;
        mac.update(body.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Ok(format!("{body}.{tag}"))
    }

    /// Checks the tag (constant time) before reading anything, then the expiry at `now`.
    /// Team and user are the caller's to compare: it knows who clicked.
    pub fn open(value: &str, secret: &SecretString, now: i64) -> Result<Opened, TokenError> {
        if value.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = value.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        let mut mac = token_mac(secret).ok_or(TokenError::Malformed)?;
        mac.update(body.as_bytes());
        mac.verify_slice(&tag).map_err(|_| TokenError::Forged)?;
        // Only bytes we signed reach the parser.
        let claims = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed)?;
        let token: ConfirmToken = serde_json::from_slice(&claims).map_err(|_| TokenError::Malformed)?;
        if now > token.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(Opened { token, claims })
    }
}

fn token_mac(secret: &SecretString) -> Option<Hmac<Sha256>> {
    let mut kdf = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes()).ok()?;
    kdf.update(KEY_LABEL);
    let key = kdf.finalize().into_bytes();
    <Hmac<Sha256> as KeyInit>::new_from_slice(&key).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_674_600;

    fn secret() -> SecretString {
        SecretString::new("8f742231b10e8888abcd99yyyzzz85a5")
    }

    fn token() -> ConfirmToken {
        ConfirmToken {
            nonce: "0123456789abcdef0123456789abcdef".into(),
            team_id: "T0001ABCD".into(),
            user_id: "U0123ALICE".into(),
            redis_id: RedisId::parse("crs-izbob1wh").expect("id"),
            backup_id: BackupId::parse("e824aecc-ef5e-11e6-a2c7-525400082493").expect("id"),
            region: Region::parse("ap-guangzhou").expect("region"),
            backup_time: Some("2026-11-25 03:00:00".into()),
            reason: Some("INC-1234 \"cache\" corrupted <ok>".into()),
            expires_at: NOW + TTL_SECONDS,
            mode: crate::payload::RestoreMode::InPlace,
        }
    }

    /// Re-encodes the claims of `value` after `edit`, keeping the original tag.
    fn edited(value: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let (body, tag) = value.split_once('.').expect("two parts");
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).expect("b64")).expect("json");
        edit(&mut claims);
        format!("{}.{tag}", URL_SAFE_NO_PAD.encode(claims.to_string()))
    }

    #[test]
    fn a_sealed_token_opens_to_the_same_claims_until_it_expires() {
        let value = token().seal(&secret()).expect("seals");
        assert!(value.len() < MAX_TOKEN_LEN && !value.contains(['+', '/', '=']));
        let opened = ConfirmToken::open(&value, &secret(), NOW).expect("opens");
        assert_eq!(opened.token, token());
        assert_eq!(ConfirmToken::open(&value, &secret(), NOW + TTL_SECONDS).map(|o| o.token), Ok(token()));
        assert_eq!(ConfirmToken::open(&value, &secret(), NOW + TTL_SECONDS + 1), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_sealed_with_another_secret_or_a_forged_tag_is_refused() {
        let other = token().seal(&SecretString::new("another-signing-secret-0000000000")).expect("seals");
        assert_eq!(ConfirmToken::open(&other, &secret(), NOW), Err(TokenError::Forged));
        let value = token().seal(&secret()).expect("seals");
        let (body, _) = value.split_once('.').expect("two parts");
        let forged = format!("{body}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert_eq!(ConfirmToken::open(&forged, &secret(), NOW), Err(TokenError::Forged));
    }

    #[test]
    fn editing_any_bound_field_breaks_the_tag() {
        let value = token().seal(&secret()).expect("seals");
        let edits: [(&str, serde_json::Value); 7] = [
            ("r", "crs-aaaaaaaa".into()),
            ("b", "11111111-1111-4111-8111-111111111111".into()),
            ("g", "ap-shanghai".into()),
            ("u", "U0456BOB".into()),
            ("t", "T0002OTHER".into()),
            ("e", (NOW + 86_400).into()),
            ("n", "ffffffffffffffffffffffffffffffff".into()),
        ];
        for (field, new) in edits {
            let changed = edited(&value, |c| c[field] = new);
            assert_eq!(ConfirmToken::open(&changed, &secret(), NOW), Err(TokenError::Forged), "{field}");
        }
    }

    #[test]
    fn an_expired_token_is_refused_even_though_its_tag_is_good() {
        let mut t = token();
        t.expires_at = NOW - 1;
        let value = t.seal(&secret()).expect("seals");
        assert_eq!(ConfirmToken::open(&value, &secret(), NOW), Err(TokenError::Expired));
    }

    #[test]
    fn garbage_values_are_malformed_not_panics() {
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        for value in ["", ".", "abc", "abc.", ".abc", "a.b.c", "!!!.???", long.as_str(), "é.é"] {
            let r = ConfirmToken::open(value, &secret(), NOW);
            assert!(matches!(r, Err(TokenError::Malformed | TokenError::Forged)), "{value:?}: {r:?}");
        }
    }

    #[test]
    fn well_signed_claims_that_do_not_validate_are_malformed() {
        // Signed by us but with an invalid instance id: the parser still refuses it.
        let body = URL_SAFE_NO_PAD
            .encode(r#"{"n":"x","t":"T1","u":"U1","r":"crs-../../x","b":"latest","g":"ap-guangzhou","e":1}"#);
        let mut mac = token_mac(&secret()).expect("mac");
        mac.update(body.as_bytes());
        let value = format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        assert_eq!(ConfirmToken::open(&value, &secret(), NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn nonces_are_fresh_128_bit_hex() {
        let (a, b) = (new_nonce(), new_nonce());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
