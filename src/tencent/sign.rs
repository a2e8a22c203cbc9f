//! Pure request signers for Tencent Cloud API 2.0 (HmacSHA1/HmacSHA256) and 3.0 (TC3-HMAC-SHA256).
//!
//! Both are plain functions of their inputs so that the official vectors in
//! `shared/reference/tencent-api.md` pin them down exactly; the HTTP client and the CRS
//! sandbox (which verifies what we send) share them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The `SignatureMethod` common parameter of API 2.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMethod {
    HmacSha1,
    HmacSha256,
}

impl SignatureMethod {
    /// The value sent on the wire (and signed).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha1 => "HmacSHA1",
            Self::HmacSha256 => "HmacSHA256",
        }
    }

    /// Parses the configuration value; Tencent's own spelling is the only one accepted so a
    /// typo fails at start-up instead of silently falling back to SHA1 as the server would.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "HmacSHA1" => Some(Self::HmacSha1),
            "HmacSHA256" => Some(Self::HmacSha256),
            _ => None,
        }
    }

    /// How the server picks the algorithm: HmacSHA256 only when asked for exactly, else SHA1.
    pub fn from_request_param(value: Option<&str>) -> Self {
        if value == Some("HmacSHA256") { Self::HmacSha256 } else { Self::HmacSha1 }
    }
}

/// API 2.0 string to sign: `METHOD + host + path + "?" + k=v&...`, parameters sorted by
/// name (byte order), raw values, `_` in names replaced by `.` after sorting, and the
/// `Signature` parameter itself excluded.
pub fn v2_string_to_sign(http_method: &str, host: &str, path: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params.iter().filter(|(k, _)| *k != "Signature").collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = String::with_capacity(64 + params.iter().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>());
    out.push_str(&http_method.to_ascii_uppercase());
    out.push_str(host);
    out.push_str(path);
    out.push('?');
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.extend(k.chars().map(|c| if c == '_' { '.' } else { c }));
        out.push('=');
        out.push_str(v);
    }
    out
}

/// API 2.0 signature: standard, padded Base64 of the HMAC of the string to sign.
pub fn v2_signature(secret_key: &[u8], method: SignatureMethod, string_to_sign: &str) -> String {
    let digest = match method {
        SignatureMethod::HmacSha1 => hmac_bytes::<Hmac<Sha1>>(secret_key, string_to_sign.as_bytes()),
        SignatureMethod::HmacSha256 => hmac_bytes::<Hmac<Sha256>>(secret_key, string_to_sign.as_bytes()),
    };
    STANDARD.encode(digest)
}

/// Constant-time check of an API 2.0 signature (used by the sandbox, which plays Tencent).
pub fn v2_verify(secret_key: &[u8], method: SignatureMethod, string_to_sign: &str, signature_b64: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature_b64) else {
        return false;
    };
    match method {
        SignatureMethod::HmacSha1 => verify_mac::<Hmac<Sha1>>(secret_key, string_to_sign.as_bytes(), &given),
        SignatureMethod::HmacSha256 => verify_mac::<Hmac<Sha256>>(secret_key, string_to_sign.as_bytes(), &given),
    }
}

/// Characters left as they are when form-encoding: RFC 3986 unreserved. Everything else is
/// `%XX` (upper case), which the server decodes before verifying.
const FORM_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `application/x-www-form-urlencoded` body for API 2.0 POSTs (RFC 3986 percent-encoding).
pub fn form_encode(params: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.extend(utf8_percent_encode(k, FORM_VALUE));
        out.push('=');
        out.extend(utf8_percent_encode(v, FORM_VALUE));
    }
    out
}

/// Inputs of a TC3-HMAC-SHA256 signature (API 3.0).
#[derive(Debug, Clone, Copy)]
pub struct Tc3Input<'a> {
    pub http_method: &'a str,
    /// Canonical query string: empty for POST.
    pub query: &'a str,
    pub content_type: &'a str,
    pub host: &'a str,
    pub payload: &'a [u8],
    /// Service name in the credential scope, e.g. `redis`.
    pub service: &'a str,
    pub timestamp: i64,
}

/// Every intermediate of a TC3 signature, so tests can pin each step to the official vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Signature {
    pub canonical_request: String,
    pub string_to_sign: String,
    pub date: String,
    pub signature: String,
}

impl Tc3Signature {
    /// The `Authorization` header value.
    pub fn authorization(&self, secret_id: &str, service: &str) -> String {
        format!(
            "TC3-HMAC-SHA256 Credential={secret_id}/{}/{service}/tc3_request, SignedHeaders=content-type;host, Signature={}",
            self.date, self.signature
        )
    }
}

/// TC3-HMAC-SHA256 as documented: canonical request, credential scope
/// `{date}/{service}/tc3_request`, string to sign and the derived key chain.
pub fn tc3_sign(secret_key: &[u8], input: &Tc3Input<'_>) -> Tc3Signature {
    let canonical_request = format!(
        "{}\n/\n{}\ncontent-type:{}\nhost:{}\n\ncontent-type;host\n{}",
        input.http_method.to_ascii_uppercase(),
        input.query,
        input.content_type.trim(),
        input.host.trim(),
        hex::encode(Sha256::digest(input.payload)),
    );
    let date = utc_date(input.timestamp);
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{}\n{date}/{}/tc3_request\n{}",
        input.timestamp,
        input.service,
        hex::encode(Sha256::digest(canonical_request.as_bytes())),
    );
    let mut key = Vec::with_capacity(3 + secret_key.len());
    key.extend_from_slice(b"TC3");
    key.extend_from_slice(secret_key);
    let secret_date = hmac_bytes::<Hmac<Sha256>>(&key, date.as_bytes());
    let secret_service = hmac_bytes::<Hmac<Sha256>>(&secret_date, input.service.as_bytes());
    let secret_signing = hmac_bytes::<Hmac<Sha256>>(&secret_service, b"tc3_request");
    let signature = hex::encode(hmac_bytes::<Hmac<Sha256>>(&secret_signing, string_to_sign.as_bytes()));
    Tc3Signature { canonical_request, string_to_sign, date, signature }
}

/// `YYYY-MM-DD` of a unix timestamp in UTC (TC3 requires UTC, never local time).
fn utc_date(timestamp: i64) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp(timestamp).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (y, m, d) = (dt.year(), u8::from(dt.month()), dt.day());
    format!("{y:04}-{m:02}-{d:02}")
}

fn hmac_bytes<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <M as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn verify_mac<M: Mac + KeyInit>(key: &[u8], msg: &[u8], tag: &[u8]) -> bool {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return false;
    };
    mac.update(msg);
    mac.verify_slice(tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2_KEY: &[u8] = b"Gu5t9xGARNpq86cd98joQYCN3Cozk1qA";
    const V2_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA";

    fn v2_a_params(method: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![
            ("Action", "DescribeInstances"),
            ("InstanceIds.0", "ins-09dx96dg"),
            ("Nonce", "11886"),
            ("Region", "ap-guangzhou"),
            ("SecretId", V2_ID),
            ("SignatureMethod", method),
            ("Timestamp", "1465185768"),
        ]
    }

    #[test]
    fn v2_a_hmac_sha256_matches_the_official_vector() {
        let sts = v2_string_to_sign("GET", "cvm.api.qcloud.com", "/v2/index.php", &v2_a_params("HmacSHA256"));
        assert_eq!(
            sts,
            "GETcvm.api.qcloud.com/v2/index.php?Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Nonce=11886&Region=ap-guangzhou&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA&SignatureMethod=HmacSHA256&Timestamp=1465185768"
        );
        let sig = v2_signature(V2_KEY, SignatureMethod::HmacSha256, &sts);
        assert_eq!(sig, "0EEm/HtGRr/VJXTAD9tYMth1Bzm3lLHz5RCDv1GdM8s=");
        assert_eq!(form_encode(&[("Signature", &sig)]), "Signature=0EEm%2FHtGRr%2FVJXTAD9tYMth1Bzm3lLHz5RCDv1GdM8s%3D");
        assert!(v2_verify(V2_KEY, SignatureMethod::HmacSha256, &sts, &sig));
    }

    #[test]
    fn v2_b_hmac_sha1_matches_the_official_vector() {
        let sts = v2_string_to_sign("GET", "cvm.api.qcloud.com", "/v2/index.php", &v2_a_params("HmacSHA1"));
        assert_eq!(v2_signature(V2_KEY, SignatureMethod::HmacSha1, &sts), "nPVnY6njQmwQ8ciqbPl5Qe+Oru4=");
    }

    #[test]
    fn v2_c_without_signature_method_parameter_matches_the_official_vector() {
        let params = [
            ("Action", "DescribeInstances"),
            ("Nonce", "345122"),
            ("Region", "gz"),
            ("SecretId", V2_ID),
            ("Timestamp", "1408704141"),
        ];
        let sts = v2_string_to_sign("GET", "cvm.api.qcloud.com", "/v2/index.php", &params);
        assert_eq!(
            sts,
            "GETcvm.api.qcloud.com/v2/index.php?Action=DescribeInstances&Nonce=345122&Region=gz&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA&Timestamp=1408704141"
        );
        assert_eq!(v2_signature(V2_KEY, SignatureMethod::HmacSha1, &sts), "HgIYOPcx5lN6gz8JsCFBNAWp2oQ=");
    }

    fn v2_d(http_method: &str, method: SignatureMethod) -> String {
        let params = [
            ("SecretId", "secretIdFoo"),
            ("Region", "ap-guangzhou"),
            ("Nonce", "1290303896666895346"),
            ("Timestamp", "1512393162"),
            ("Action", "DescribeInstances"),
            ("Version", "2017-03-12"),
            ("SignatureMethod", method.as_str()),
        ];
        let sts = v2_string_to_sign(http_method, "cvm.api.qcloud.com", "/v2/index.php", &params);
        v2_signature(b"secretKeyBar", method, &sts)
    }

    #[test]
    fn v2_d_sdk_vectors_cover_post_get_and_lower_case_methods() {
        assert_eq!(v2_d("POST", SignatureMethod::HmacSha1), "p3n+pxBqF5JGZtDSxoVn5tGngf0=");
        assert_eq!(v2_d("post", SignatureMethod::HmacSha1), "p3n+pxBqF5JGZtDSxoVn5tGngf0=");
        assert_eq!(v2_d("GET", SignatureMethod::HmacSha1), "5HAq1BOKNLEE2/uauWnp6Zv9Z3c=");
        assert_eq!(v2_d("POST", SignatureMethod::HmacSha256), "B2T37FRSP6Fk0/q/cdfrTE0p3zX5ooB/2BPWZUFpsj4=");
    }

    #[test]
    fn v2_string_to_sign_sorts_by_byte_order_and_dots_underscored_names() {
        let sts =
            v2_string_to_sign("POST", "h", "/p", &[("redisId", "a"), ("Placement_Zone", "CN_GZ"), ("Action", "X")]);
        assert_eq!(sts, "POSTh/p?Action=X&Placement.Zone=CN_GZ&redisId=a");
    }

    #[test]
    fn v2_password_is_signed_raw_and_sent_percent_encoded() {
        let sts = v2_string_to_sign("POST", "h", "/p", &[("password", "12D3E@!r5ed")]);
        assert!(sts.ends_with("password=12D3E@!r5ed"));
        assert_eq!(form_encode(&[("password", "12D3E@!r5ed a+b")]), "password=12D3E%40%21r5ed%20a%2Bb");
    }

    #[test]
    fn v2_verify_rejects_a_changed_signature() {
        assert!(!v2_verify(V2_KEY, SignatureMethod::HmacSha1, "x", "nPVnY6njQmwQ8ciqbPl5Qe+Oru4="));
        assert!(!v2_verify(V2_KEY, SignatureMethod::HmacSha1, "x", "not base64!"));
    }

    #[test]
    fn signature_method_parsing_is_strict_but_server_side_defaults_to_sha1() {
        assert_eq!(SignatureMethod::parse("HmacSHA256"), Some(SignatureMethod::HmacSha256));
        assert_eq!(SignatureMethod::parse("hmacsha256"), None);
        assert_eq!(SignatureMethod::from_request_param(Some("hmacsha256")), SignatureMethod::HmacSha1);
        assert_eq!(SignatureMethod::from_request_param(None), SignatureMethod::HmacSha1);
    }

    const TC3_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
    const TC3_KEY: &[u8] = b"Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

    #[test]
    fn tc3_a_post_json_matches_every_step_of_the_official_vector() {
        let payload = br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let sig = tc3_sign(
            TC3_KEY,
            &Tc3Input {
                http_method: "POST",
                query: "",
                content_type: "application/json; charset=utf-8",
                host: "cvm.tencentcloudapi.com",
                payload,
                service: "cvm",
                timestamp: 1551113065,
            },
        );
        assert_eq!(
            sig.canonical_request,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            sig.string_to_sign,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(sig.signature, "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
        assert_eq!(
            sig.authorization(TC3_ID, "cvm"),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn tc3_b_get_with_query_matches_the_official_vector() {
        let sig = tc3_sign(
            TC3_KEY,
            &Tc3Input {
                http_method: "GET",
                query: "Limit=10&Offset=0",
                content_type: "application/x-www-form-urlencoded",
                host: "cvm.tencentcloudapi.com",
                payload: b"",
                service: "cvm",
                timestamp: 1539084154,
            },
        );
        assert_eq!(
            hex::encode(Sha256::digest(sig.canonical_request.as_bytes())),
            "91c9c192c14460df6c1ffc69e34e6c5e90708de2a6d282cccf957dbf1aa7f3a7"
        );
        assert_eq!(sig.signature, "5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474");
    }
}
