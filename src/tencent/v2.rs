//! API 2.0 wire format: form-encoded POST to `/v2/index.php`, `{"code": 0, ...}` envelopes.

use serde_json::Value;

use super::error::{TencentCode, TencentError};
use super::lenient_i64;
use super::sign::{SignatureMethod, form_encode, v2_signature, v2_string_to_sign};
use crate::secrets::TencentCredentials;

/// Builds the signed form body. The password travels only here, never in the URL.
pub fn request_body(
    creds: &TencentCredentials,
    method: SignatureMethod,
    host: &str,
    path: &str,
    common: (&str, &str, i64, u32),
    params: &[(&str, &str)],
) -> String {
    let (action, region, timestamp, nonce) = common;
    let (ts, nonce) = (timestamp.to_string(), nonce.to_string());
    let mut all: Vec<(&str, &str)> = vec![
        ("Action", action),
        ("Region", region),
        ("Timestamp", &ts),
        ("Nonce", &nonce),
        ("SecretId", &creds.secret_id),
        ("SignatureMethod", method.as_str()),
    ];
    if let Some(token) = &creds.token {
        all.push(("Token", token.expose()));
    }
    all.extend_from_slice(params);
    let sts = v2_string_to_sign("POST", host, path, &all);
    let signature = v2_signature(creds.secret_key.expose().as_bytes(), method, &sts);
    all.push(("Signature", &signature));
    form_encode(&all)
}

/// Splits an API 2.0 answer into its payload or the error it carries. `code` may be a number
/// or a string, as Tencent is inconsistent about it.
pub(super) fn parse_envelope(action: &'static str, body: &[u8]) -> Result<Value, TencentError> {
    let malformed = |detail: &str| TencentError::Malformed { action, detail: detail.to_owned() };
    let v: Value = serde_json::from_slice(body).map_err(|_| malformed("not JSON"))?;
    let code = v.get("code").and_then(lenient_i64).ok_or_else(|| malformed("no numeric \"code\""))?;
    if code == 0 {
        return Ok(v);
    }
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let code = TencentCode::V2(code);
    let failure = code.classify();
    let desc = text("codeDesc");
    let name =
        failure.public_name().map(str::to_owned).unwrap_or(if desc.is_empty() { "TencentError".into() } else { desc });
    Err(TencentError::Api { action, failure, code, name, message: text("message") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tencent::error::Failure;

    #[test]
    fn a_success_envelope_with_code_as_string_is_accepted() {
        assert!(parse_envelope("X", br#"{"code":"0","data":{}}"#).is_ok());
    }

    #[test]
    fn an_error_envelope_carries_code_name_and_message() {
        let err = parse_envelope("RestoreInstance", br#"{"code":10712,"message":"wrong","codeDesc":"PasswordError"}"#);
        match err {
            Err(TencentError::Api { failure, code, name, message, .. }) => {
                assert_eq!(
                    (failure, code, name.as_str(), message.as_str()),
                    (Failure::PasswordError, TencentCode::V2(10712), "PasswordError", "wrong")
                );
            }
            other => panic!("{other:?}"),
        }
        match parse_envelope("X", br#"{"code":"5100","codeDesc":"ResourceOpFailed"}"#) {
            Err(TencentError::Api { failure: Failure::Other, name, .. }) => assert_eq!(name, "ResourceOpFailed"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn html_and_truncated_json_are_malformed() {
        for body in [&b"<html>oops</html>"[..], br#"{"code":0,"da"#, b"{}", br#"{"code":"zero"}"#] {
            assert!(matches!(parse_envelope("X", body), Err(TencentError::Malformed { .. })));
        }
    }
}
