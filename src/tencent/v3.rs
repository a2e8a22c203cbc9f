//! API 3.0 wire format: JSON POST with TC3-HMAC-SHA256 headers, `{"Response": {...}}` envelopes.

use serde_json::Value;

use super::error::{TencentCode, TencentError};
use super::sign::{Tc3Input, tc3_sign};
use crate::secrets::TencentCredentials;

/// The product version of the CRS API 3.0.
pub const VERSION: &str = "2018-04-12";
/// Sent and signed byte for byte: some libraries append `; charset=utf-8` behind our back.
pub const CONTENT_TYPE: &str = "application/json";

/// Headers of a signed API 3.0 request; `host` is the Host header actually sent.
pub(super) fn request_headers(
    creds: &TencentCredentials,
    host: &str,
    common: (&str, &str, i64),
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let (action, region, timestamp) = common;
    let sig = tc3_sign(
        creds.secret_key.expose().as_bytes(),
        &Tc3Input {
            http_method: "POST",
            query: "",
            content_type: CONTENT_TYPE,
            host,
            payload: body,
            service: "redis",
            timestamp,
        },
    );
    let mut headers = vec![
        ("authorization", sig.authorization(&creds.secret_id, "redis")),
        ("content-type", CONTENT_TYPE.to_owned()),
        ("x-tc-action", action.to_owned()),
        ("x-tc-timestamp", timestamp.to_string()),
        ("x-tc-version", VERSION.to_owned()),
        ("x-tc-region", region.to_owned()),
    ];
    if let Some(token) = &creds.token {
        headers.push(("x-tc-token", token.expose().to_owned()));
    }
    headers
}

/// Returns `Response` or the error inside it.
pub(super) fn parse_envelope(action: &'static str, body: &[u8]) -> Result<Value, TencentError> {
    let malformed = |detail: &str| TencentError::Malformed { action, detail: detail.to_owned() };
    let mut v: Value = serde_json::from_slice(body).map_err(|_| malformed("not JSON"))?;
    let response = v.get_mut("Response").map(Value::take).ok_or_else(|| malformed("no \"Response\" object"))?;
    if !response.is_object() {
        return Err(malformed("\"Response\" is not an object"));
    }
    let Some(error) = response.get("Error") else {
        return Ok(response);
    };
    let raw = error.get("Code").and_then(Value::as_str).ok_or_else(|| malformed("Error without a Code"))?;
    let message = error.get("Message").and_then(Value::as_str).unwrap_or_default().to_owned();
    let code = TencentCode::V3(raw.to_owned());
    let failure = code.classify();
    let name = failure.public_name().map_or_else(|| raw.to_owned(), str::to_owned);
    Err(TencentError::Api { action, failure, code, name, message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tencent::error::Failure;

    #[test]
    fn an_error_response_maps_to_the_same_class_as_api_2() {
        let body = br#"{"Response":{"Error":{"Code":"ResourceNotFound.InstanceNotExists","Message":"no such"},"RequestId":"r"}}"#;
        match parse_envelope("RestoreInstance", body) {
            Err(TencentError::Api { failure: Failure::InstanceNotExists, name, .. }) => {
                assert_eq!(name, "InstanceNotExists")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_code_keeps_tencents_name() {
        let body = br#"{"Response":{"Error":{"Code":"FailedOperation.SystemError","Message":"boom"},"RequestId":"r"}}"#;
        match parse_envelope("RestoreInstance", body) {
            Err(TencentError::Api { failure: Failure::Other, name, message, .. }) => {
                assert_eq!((name.as_str(), message.as_str()), ("FailedOperation.SystemError", "boom"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn responses_without_the_envelope_are_malformed() {
        for body in [&br#"{"TaskId":1}"#[..], br#"{"Response":[]}"#, b"<html>", br#"{"Response":{"Error":{}}}"#] {
            assert!(matches!(parse_envelope("X", body), Err(TencentError::Malformed { .. })), "{body:?}");
        }
    }
}
