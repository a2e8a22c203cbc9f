//! Slack-shaped Function URL events: the checked-in fixtures with a new form body, base64
//! encoded as Function URLs deliver it and signed with an independent Slack v0 implementation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use serde_json::Value;

use super::{SLACK_SIGNING_SECRET, fixture};

/// Puts `form` into a Slack fixture as Function URLs deliver it (base64) and signs it as Slack
/// does: `v0=` + hex HMAC-SHA256 of `v0:{ts}:{body}`.
pub fn signed(fixture_name: &str, form: &str, timestamp: i64) -> Value {
    let mut ev = fixture(fixture_name);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SLACK_SIGNING_SECRET.as_bytes()).expect("key");
    mac.update(format!("v0:{timestamp}:{form}").as_bytes());
    ev["headers"]["x-slack-signature"] = format!("v0={}", hex::encode(mac.finalize().into_bytes())).into();
    ev["headers"]["x-slack-request-timestamp"] = timestamp.to_string().into();
    ev["headers"]["content-length"] = form.len().to_string().into();
    ev["body"] = STANDARD.encode(form).into();
    assert_eq!(ev["isBase64Encoded"], true);
    ev
}

/// The form fields of a fixture's (base64) body.
pub fn fixture_form(fixture_name: &str) -> Vec<(String, String)> {
    let body = STANDARD.decode(fixture(fixture_name)["body"].as_str().expect("body")).expect("base64 body");
    form_urlencoded::parse(&body).into_owned().collect()
}

pub fn encode(form: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish()
}
