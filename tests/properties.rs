//! Property-based tests (proptest) of every parser and verifier that sees untrusted or external
//! bytes: Standard Webhooks headers and bodies, the Function URL envelope, the restore payload,
//! the three secrets, callback URLs and addresses, and Tencent API 2.0 / 3.0 answers (through the
//! public `TencentClient` against a loopback server that answers arbitrary bytes).
//!
//! Each target runs `PROPTEST_CASES` cases (default 10,000; `make fuzz` raises it) and prints
//! `properties: <target>: <n> cases` (visible with `--nocapture`). No moto needed.

mod common;
#[path = "common/fake_aws.rs"]
mod fake_aws;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use common::{BACKUP_ID, KEY_DRILLS, KEY_RUNBOOKS, PASSWORD, REDIS_ID, TENCENT_SECRET_ID, TENCENT_SECRET_KEY};
use crs_restore::auth::SigningKeys;
use crs_restore::callback::{CallbackPolicy, CallbackUrl, ip_allowed};
use crs_restore::config::Config;
use crs_restore::error::RestoreError;
use crs_restore::event::{BodyError, FunctionUrlEvent, HttpRequest, Incoming};
use crs_restore::metrics::MetricsSink;
use crs_restore::payload::{BackupRef, PayloadError, Reason, RedisId, Region, RestoreRequest};
use crs_restore::sandbox::{self, Sandbox};
use crs_restore::secrets::{InstancePassword, SecretString, SecretsError, TencentCredentials};
use crs_restore::signature::{self, SignatureError, SignedHeaders, TOLERANCE_SECONDS, WebhookSecret};
use crs_restore::state::{AppState, http_client, local_secrets_client};
use crs_restore::tencent::sign::SignatureMethod;
use crs_restore::tencent::{ApiVersion, Endpoint, TencentClient, TencentCode, TencentConfig, TencentError};
use hmac::{KeyInit, Mac};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Runner

/// Cases per target: `PROPTEST_CASES`, default 10,000.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(10_000)
}

/// Runs `test` on `cases()` values of `strategy`, prints the count, and fails with the shrunk
/// counterexample.
fn check<S: Strategy>(target: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let config = ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(cases()) };
    let mut runner = TestRunner::new(config);
    let ran = AtomicUsize::new(0);
    let result = runner.run(&strategy, |v| {
        ran.fetch_add(1, Ordering::Relaxed);
        test(v)
    });
    println!("properties: {target}: {} cases", ran.load(Ordering::Relaxed));
    if let Err(e) = result {
        panic!("{target}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Shared strategies

fn key_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 16..64)
}

fn whsec(bytes: &[u8]) -> String {
    format!("whsec_{}", STANDARD.encode(bytes))
}

fn secret(bytes: &[u8]) -> WebhookSecret {
    WebhookSecret::parse(&whsec(bytes)).expect("16+ bytes make a valid key")
}

/// A valid `webhook-id`: 1-128 printable ASCII characters, no '.'.
fn webhook_id() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select((b'!'..=b'~').filter(|b| *b != b'.').collect::<Vec<u8>>()), 1..=128)
        .prop_map(|b| String::from_utf8(b).expect("ascii"))
}

fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..1024)
}

fn now_s() -> impl Strategy<Value = i64> {
    1_600_000_000i64..2_000_000_000
}

/// Arbitrary JSON, with the restore payload's field names over-represented as keys.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        prop_oneof![
            "\\PC{0,24}",
            Just(REDIS_ID.to_owned()),
            Just(BACKUP_ID.to_owned()),
            Just("latest".to_owned()),
            Just("ap-guangzhou".to_owned()),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

const FIELDS: [&str; 7] = ["redisId", "backupId", "region", "reason", "callbackUrl", "waitForCompletion", "dryRun"];

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![3 => prop::sample::select(FIELDS.to_vec()).prop_map(str::to_owned), 1 => "\\PC{0,10}"]
}

// ---------------------------------------------------------------------------------------------
// Standard Webhooks

fn verify_one(
    keys: &[WebhookSecret],
    id: &str,
    ts: &str,
    sig: &str,
    body: &[u8],
    now: i64,
) -> Result<usize, SignatureError> {
    let headers = SignedHeaders { id: Some(id), timestamp: Some(ts), signature: Some(sig) };
    signature::verify(keys, |k| k, headers, body, now)
        .map(|v| keys.iter().position(|k| std::ptr::eq(k, v.key)).expect("a key"))
}

#[test]
fn a_signature_made_with_any_configured_key_verifies_and_identifies_that_key() {
    let strategy = (
        prop::collection::vec(key_bytes(), 1..5),
        any::<prop::sample::Index>(),
        webhook_id(),
        body_bytes(),
        now_s(),
        -TOLERANCE_SECONDS..=TOLERANCE_SECONDS,
    );
    check("verify(sign(x))", strategy, |(raw_keys, pick, id, body, now, skew)| {
        let keys: Vec<WebhookSecret> = raw_keys.iter().map(|k| secret(k)).collect();
        let i = pick.index(keys.len());
        let ts = now + skew;
        let sig = signature::sign(&keys[i], &id, ts, &body);
        let found = verify_one(&keys, &id, &ts.to_string(), &sig, &body, now);
        // Two random keys are equal only if their bytes are: the first equal one verifies.
        let first_equal = raw_keys.iter().position(|k| *k == raw_keys[i]).expect("itself");
        prop_assert_eq!(found, Ok(first_equal));
        Ok(())
    });
}

#[test]
fn any_single_byte_change_to_a_signed_body_is_rejected() {
    let body = prop::collection::vec(any::<u8>(), 1..1024);
    let strategy = (key_bytes(), webhook_id(), body, any::<prop::sample::Index>(), 1u8..=255, now_s());
    check("single-byte body change", strategy, |(key, id, body, at, xor, now)| {
        let keys = [secret(&key)];
        let sig = signature::sign(&keys[0], &id, now, &body);
        let mut changed = body.clone();
        changed[at.index(body.len())] ^= xor;
        prop_assert_eq!(verify_one(&keys, &id, &now.to_string(), &sig, &changed, now), Err(SignatureError::NoMatch));
        // Dropping or adding a byte is a change too.
        let shorter = &body[..body.len() - 1];
        prop_assert_eq!(verify_one(&keys, &id, &now.to_string(), &sig, shorter, now), Err(SignatureError::NoMatch));
        let mut longer = body.clone();
        longer.push(xor);
        prop_assert_eq!(verify_one(&keys, &id, &now.to_string(), &sig, &longer, now), Err(SignatureError::NoMatch));
        Ok(())
    });
}

#[test]
fn a_signature_does_not_carry_over_to_another_id_or_timestamp() {
    let strategy = (key_bytes(), webhook_id(), webhook_id(), body_bytes(), now_s(), 1i64..=TOLERANCE_SECONDS);
    check("id/timestamp binding", strategy, |(key, id, other_id, body, now, delta)| {
        let keys = [secret(&key)];
        let sig = signature::sign(&keys[0], &id, now, &body);
        if other_id != id {
            prop_assert_eq!(
                verify_one(&keys, &other_id, &now.to_string(), &sig, &body, now),
                Err(SignatureError::NoMatch)
            );
        }
        // A timestamp moved within the tolerance is still a different signed content.
        let moved = (now - delta).to_string();
        prop_assert_eq!(verify_one(&keys, &id, &moved, &sig, &body, now), Err(SignatureError::NoMatch));
        // Leading zeros spell the same number but not the same signed bytes.
        prop_assert_eq!(verify_one(&keys, &id, &format!("0{now}"), &sig, &body, now), Err(SignatureError::NoMatch));
        Ok(())
    });
}

/// One entry of a `webhook-signature` header that is not a valid signature of the request.
fn decoy() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 32).prop_map(|b| format!("v1,{}", STANDARD.encode(b))),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| format!("v1,{}", STANDARD.encode(b))),
        prop::collection::vec(any::<u8>(), 64).prop_map(|b| format!("v1a,{}", STANDARD.encode(b))),
        "[a-z0-9]{1,3},[A-Za-z0-9+/=]{0,60}",
        "[ -~]{0,60}",
    ]
}

#[test]
fn a_request_not_signed_by_a_configured_key_is_never_accepted() {
    let strategy = (
        prop::collection::vec(key_bytes(), 1..4),
        key_bytes(),
        webhook_id(),
        body_bytes(),
        now_s(),
        prop::collection::vec(decoy(), 0..8),
    );
    check("unsigned never accepted", strategy, |(configured, attacker, id, body, now, decoys)| {
        if configured.contains(&attacker) {
            return Ok(());
        }
        let keys: Vec<WebhookSecret> = configured.iter().map(|k| secret(k)).collect();
        let mut entries = decoys;
        entries.push(signature::sign(&secret(&attacker), &id, now, &body));
        // The key material itself, pasted as a signature, is a classic mistake (webhooks.md §6.5).
        entries.push(format!("v1,{}", STANDARD.encode(&configured[0])));
        let header = entries.join(" ");
        prop_assert!(verify_one(&keys, &id, &now.to_string(), &header, &body, now).is_err());
        Ok(())
    });
}

#[test]
fn arbitrary_signature_headers_never_panic_and_are_never_accepted() {
    let header = || prop::option::of(prop_oneof!["\\PC{0,40}", "[ -~]{0,140}", "[0-9]{0,20}"]);
    let strategy = (key_bytes(), header(), header(), header(), body_bytes(), now_s());
    check("arbitrary headers", strategy, |(key, id, ts, sig, body, now)| {
        let keys = [secret(&key)];
        let headers = SignedHeaders { id: id.as_deref(), timestamp: ts.as_deref(), signature: sig.as_deref() };
        let verified = signature::verify(&keys, |k| k, headers, &body, now);
        prop_assert!(verified.is_err());
        // The cheap pre-check never accepts what verify refuses for header reasons.
        if let Err(e) = signature::precheck(headers, now) {
            prop_assert_eq!(verified.err(), Some(e));
        }
        Ok(())
    });
}

#[test]
fn a_valid_entry_among_decoys_is_accepted_exactly_when_present() {
    let strategy = (
        key_bytes(),
        webhook_id(),
        body_bytes(),
        now_s(),
        prop::collection::vec(decoy(), 0..12),
        any::<bool>(),
        any::<prop::sample::Index>(),
    );
    check("decoys", strategy, |(key, id, body, now, mut entries, include, at)| {
        let keys = [secret(&key)];
        if include {
            entries.insert(at.index(entries.len() + 1), signature::sign(&keys[0], &id, now, &body));
        }
        let header = entries.join(" ");
        let got = verify_one(&keys, &id, &now.to_string(), &header, &body, now);
        prop_assert_eq!(got.is_ok(), include, "header {:?}", header);
        Ok(())
    });
}

#[test]
fn timestamps_are_accepted_exactly_within_five_minutes_either_way() {
    let strategy = (key_bytes(), webhook_id(), now_s(), -2 * TOLERANCE_SECONDS..=2 * TOLERANCE_SECONDS);
    check("timestamp tolerance", strategy, |(key, id, now, skew)| {
        let keys = [secret(&key)];
        let ts = now + skew;
        let sig = signature::sign(&keys[0], &id, ts, b"{}");
        let got = verify_one(&keys, &id, &ts.to_string(), &sig, b"{}", now);
        let want = if skew < -TOLERANCE_SECONDS {
            Err(SignatureError::TimestampTooOld)
        } else if skew > TOLERANCE_SECONDS {
            Err(SignatureError::TimestampTooNew)
        } else {
            Ok(0)
        };
        prop_assert_eq!(got, want);
        // The same instant in milliseconds is always refused, as from the future.
        let ms = ts * 1000;
        let sig = signature::sign(&keys[0], &id, ms, b"{}");
        prop_assert_eq!(
            verify_one(&keys, &id, &ms.to_string(), &sig, b"{}", now),
            Err(SignatureError::TimestampTooNew)
        );
        Ok(())
    });
}

#[test]
fn webhook_secrets_round_trip_through_whsec_base64_and_sign_with_the_decoded_bytes() {
    let strategy = (prop::collection::vec(any::<u8>(), 0..72), any::<bool>(), webhook_id(), body_bytes());
    check("whsec round trip", strategy, |(bytes, padded, id, body)| {
        let b64 = if padded { STANDARD.encode(&bytes) } else { STANDARD_NO_PAD.encode(&bytes) };
        let parsed = WebhookSecret::parse(&format!("whsec_{b64}"));
        prop_assert_eq!(parsed.is_ok(), bytes.len() >= 16);
        if let Ok(key) = parsed {
            // An independent HMAC over `id.ts.body` with the decoded bytes as the key.
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&bytes).expect("any key length");
            mac.update(format!("{id}.1700000000.").as_bytes());
            mac.update(&body);
            let want = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
            prop_assert_eq!(signature::sign(&key, &id, 1_700_000_000, &body), want);
        }
        // Without the prefix it is never a key.
        prop_assert!(WebhookSecret::parse(&b64).is_err());
        Ok(())
    });
}

#[test]
fn arbitrary_key_strings_never_panic_and_only_whsec_values_parse() {
    check("whsec arbitrary", prop_oneof!["\\PC{0,80}", "whsec_[A-Za-z0-9+/=_-]{0,80}"], |raw| {
        if WebhookSecret::parse(&raw).is_ok() {
            prop_assert!(raw.starts_with("whsec_"));
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Function URL envelope

fn url_event(body: &str, b64: bool) -> FunctionUrlEvent {
    serde_json::from_value(json!({
        "headers": {"content-type": "application/json"},
        "body": body,
        "isBase64Encoded": b64,
        "requestContext": {"http": {"method": "POST"}},
    }))
    .expect("event")
}

#[test]
fn function_url_bodies_decode_to_the_sent_bytes_or_a_documented_error() {
    let strategy = (prop::collection::vec(any::<u8>(), 0..300), 0usize..300, "\\PC{0,300}", any::<bool>());
    check("envelope body", strategy, |(bytes, limit, text, b64)| {
        // Base64 of arbitrary bytes: exactly those bytes, or too large.
        let got = HttpRequest::from_event(url_event(&STANDARD.encode(&bytes), true), limit);
        match got {
            Ok(req) => prop_assert!(req.body == bytes && bytes.len() <= limit),
            Err(e) => prop_assert!(e == BodyError::TooLarge && bytes.len() > limit),
        }
        // Arbitrary text, either flag: never a panic; plain text is taken byte for byte.
        match HttpRequest::from_event(url_event(&text, b64), limit) {
            Ok(req) if b64 => prop_assert_eq!(Some(req.body), STANDARD.decode(&text).ok()),
            Ok(req) => prop_assert_eq!(req.body, text.as_bytes()),
            Err(BodyError::TooLarge) => prop_assert!(text.len() > limit),
            Err(BodyError::InvalidBase64) => prop_assert!(b64 && STANDARD.decode(&text).is_err()),
        }
        Ok(())
    });
}

#[test]
fn arbitrary_lambda_events_are_classified_without_panicking() {
    let with_context = json_value().prop_map(|mut v| {
        if let Value::Object(map) = &mut v {
            map.insert("requestContext".into(), json!({"http": {"method": "POST"}}));
        }
        v
    });
    check("event classify", prop_oneof![json_value(), with_context], |event| {
        let is_http = event.pointer("/requestContext/http/method").is_some();
        if let Incoming::Http(_) = Incoming::classify(event) {
            prop_assert!(is_http);
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Restore payload

fn redis_id_ok(s: &str) -> bool {
    let rest = s.strip_prefix("crs-");
    rest.is_some_and(|r| r.chars().count() == 8 && r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
}

/// Instance ids and near misses: look-alike letters, invisible characters, case, length.
fn redis_id_candidate() -> impl Strategy<Value = String> {
    let valid = "crs-[a-z0-9]{8}";
    let confusable =
        prop::sample::select(vec!['о', 'а', 'ѕ', 'с', 'ｃ', '\u{200b}', '\u{0301}', 'İ', 'ı', 'K', '\0', ' ', 'Ｓ']);
    prop_oneof![
        valid.prop_map(|s| s),
        (valid, any::<prop::sample::Index>(), confusable).prop_map(|(s, at, c)| {
            let mut chars: Vec<char> = s.chars().collect();
            let i = at.index(chars.len());
            chars[i] = c;
            chars.into_iter().collect()
        }),
        "[cCrRsS]{3}[-_][a-zA-Z0-9]{6,10}",
        "\\PC{0,16}",
    ]
}

#[test]
fn instance_ids_are_accepted_exactly_when_crs_and_eight_lowercase_alphanumerics() {
    check("RedisId", redis_id_candidate(), |raw| {
        let parsed = RedisId::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), redis_id_ok(&raw), "{:?}", raw);
        if let Ok(id) = parsed {
            prop_assert_eq!(id.as_str(), raw.as_str());
            let json = serde_json::to_string(&id).expect("serializes");
            prop_assert_eq!(serde_json::from_str::<RedisId>(&json).expect("round trip"), id);
        }
        Ok(())
    });
}

fn region_ok(s: &str) -> bool {
    (2..=32).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[test]
fn regions_backup_ids_and_reasons_parse_as_documented_and_round_trip() {
    let uuid = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
    let backup = prop_oneof![
        Just("latest".to_owned()),
        uuid,
        "[0-9]{6,30}(-[0-9]{1,12}){0,2}",
        "\\PC{0,40}",
        "[0-9a-f-]{30,40}"
    ];
    let region = prop_oneof!["[a-z]{2}(-[a-z0-9]{1,10}){0,2}", "[a-zA-Z0-9-]{0,34}", "\\PC{0,10}"];
    let reason = prop_oneof!["\\PC{0,520}", "[ -~\\n\\t\\x00\\x7f]{0,40}"];
    check("Region/BackupRef/Reason", (backup, region, reason), |(backup, region, reason)| {
        prop_assert_eq!(Region::parse(&region).is_ok(), region_ok(&region), "{:?}", region);
        if let Ok(b) = BackupRef::parse(&backup) {
            prop_assert_eq!(String::from(b.clone()), backup.clone());
            prop_assert_eq!(b == BackupRef::Latest, backup == "latest");
            prop_assert!(backup.len() <= 64 && backup.is_ascii());
        }
        let reason_ok = reason.chars().count() <= Reason::MAX_CHARS && !reason.chars().any(char::is_control);
        prop_assert_eq!(Reason::parse(&reason).map(|r| r.as_str().to_owned()).ok(), reason_ok.then_some(reason));
        Ok(())
    });
}

/// A valid request: its fields, as (name, JSON value) pairs, in a random order.
fn valid_request() -> impl Strategy<Value = Vec<(&'static str, Value)>> {
    let uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
    let backup = prop_oneof![Just("latest".to_owned()), uuid, "[0-9]{6,24}(-[0-9]{1,10}){0,2}"];
    (
        "crs-[a-z0-9]{8}",
        backup,
        prop::option::of("[a-z]{2}(-[a-z0-9]{1,8}){0,2}"),
        prop::option::of("[^\\p{Cc}]{0,60}"),
        prop::option::of("\\PC{0,40}"),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
    )
        .prop_flat_map(|(id, backup, region, reason, callback, wait, dry)| {
            let mut fields: Vec<(&'static str, Value)> = vec![("redisId", id.into()), ("backupId", backup.into())];
            let optional: [(&'static str, Option<Value>); 5] = [
                ("region", region.map(Value::from)),
                ("reason", reason.map(Value::from)),
                ("callbackUrl", callback.map(Value::from)),
                ("waitForCompletion", wait.map(Value::from)),
                ("dryRun", dry.map(Value::from)),
            ];
            fields.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
            Just(fields).prop_shuffle()
        })
}

/// Writes fields as a JSON object in the given order, with optional extra whitespace.
fn object(fields: &[(impl AsRef<str>, Value)], spaced: bool) -> String {
    let sep = if spaced { " ,\n\t" } else { "," };
    let inner: Vec<String> = fields
        .iter()
        .map(|(k, v)| {
            format!("{}:{}{}", serde_json::to_string(k.as_ref()).expect("key"), if spaced { " " } else { "" }, v)
        })
        .collect();
    format!("{{{}}}", inner.join(sep))
}

#[test]
fn a_valid_request_parses_back_to_exactly_its_fields_in_any_order() {
    check("RestoreRequest round trip", (valid_request(), any::<bool>()), |(fields, spaced)| {
        let body = object(&fields, spaced);
        let r = RestoreRequest::parse(body.as_bytes()).map_err(|e| TestCaseError::fail(format!("{body}: {e}")))?;
        let get = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        prop_assert_eq!(Some(Value::from(r.redis_id.as_str())), get("redisId"));
        prop_assert_eq!(Some(Value::from(String::from(r.backup.clone()))), get("backupId"));
        prop_assert_eq!(r.region.as_ref().map(|x| Value::from(x.as_str())), get("region"));
        prop_assert_eq!(r.reason.as_ref().map(|x| Value::from(x.as_str())), get("reason"));
        prop_assert_eq!(r.callback_url.clone().map(Value::from), get("callbackUrl"));
        prop_assert_eq!(r.wait_for_completion, get("waitForCompletion") == Some(Value::Bool(true)));
        prop_assert_eq!(r.dry_run, get("dryRun") == Some(Value::Bool(true)));
        Ok(())
    });
}

#[test]
fn a_duplicated_or_unknown_field_is_always_refused() {
    let strategy =
        (valid_request(), any::<prop::sample::Index>(), json_value(), "[a-zA-Z_]{1,80}", any::<prop::sample::Index>());
    check("duplicate/unknown field", strategy, |(fields, which, value, unknown, at)| {
        let mut fields: Vec<(String, Value)> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let mut dup = fields.clone();
        let name = dup[which.index(dup.len())].0.clone();
        dup.push((name.clone(), value.clone()));
        prop_assert_eq!(RestoreRequest::parse(object(&dup, false).as_bytes()), Err(PayloadError::DuplicateField(name)));
        if !FIELDS.contains(&unknown.as_str()) {
            fields.insert(at.index(fields.len() + 1), (unknown.clone(), value));
            let got = RestoreRequest::parse(object(&fields, false).as_bytes());
            prop_assert_eq!(got, Err(PayloadError::UnknownField(unknown.chars().take(64).collect())));
        }
        Ok(())
    });
}

#[test]
fn arbitrary_bodies_never_panic_the_parser_and_what_parses_is_valid() {
    let bytes = prop::collection::vec(any::<u8>(), 0..256);
    let json = json_value().prop_map(|v| v.to_string().into_bytes());
    let object = prop::collection::vec((json_key(), json_value()), 0..8).prop_map(|kv| object(&kv, false).into_bytes());
    check("RestoreRequest arbitrary", prop_oneof![bytes, json, object], |body| {
        if let Ok(r) = RestoreRequest::parse(&body) {
            prop_assert!(redis_id_ok(r.redis_id.as_str()));
            prop_assert!(r.region.as_ref().is_none_or(|x| region_ok(x.as_str())));
            // Whatever parsed has exactly one of each field it used: re-parsing as a map agrees.
            let v: serde_json::Map<String, Value> = serde_json::from_slice(&body).expect("parsed JSON is an object");
            prop_assert_eq!(v.get("redisId").and_then(Value::as_str), Some(r.redis_id.as_str()));
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Secrets

/// A distinctive secret value: long enough that finding it in a message is never chance.
fn secret_value() -> impl Strategy<Value = String> {
    "[A-Za-z0-9+/@!#%^&*]{16,40}"
}

#[test]
fn tencent_credentials_round_trip_and_errors_never_echo_the_key() {
    let shapes =
        prop::sample::select(vec!["ok", "ok-token", "number", "array", "empty", "missing", "not-json", "object"]);
    check(
        "TencentCredentials",
        ("AKID[A-Za-z0-9]{8,32}", secret_value(), secret_value(), shapes),
        |(id, key, token, shape)| {
            let raw = match shape {
                "ok" => json!({"secretId": id, "secretKey": key}).to_string(),
                "ok-token" => json!({"secretId": id, "secretKey": key, "token": token}).to_string(),
                "number" => format!(r#"{{"secretId": "{id}", "secretKey": 1, "token": "{key}"}}"#),
                "array" => json!({"secretId": id, "secretKey": [key]}).to_string(),
                "empty" => json!({"secretId": id, "secretKey": "", "token": key}).to_string(),
                "missing" => json!({"secretId": id, "secret": key}).to_string(),
                "not-json" => format!("secretId={id}&secretKey={key}"),
                _ => json!({"secretId": {"value": key}, "secretKey": key}).to_string(),
            };
            match TencentCredentials::from_secret("tc", &SecretString::new(raw)) {
                Ok(c) => {
                    prop_assert!(shape.starts_with("ok"));
                    prop_assert_eq!(&c.secret_id, &id);
                    prop_assert_eq!(c.secret_key.expose(), key.as_str());
                    prop_assert_eq!(
                        c.token.as_ref().map(|t| t.expose().to_owned()),
                        (shape == "ok-token").then_some(token)
                    );
                    let printed = format!("{c:?}");
                    prop_assert!(!printed.contains(&key), "Debug leaks the key");
                }
                Err(e) => {
                    prop_assert!(!shape.starts_with("ok"));
                    prop_assert!(matches!(e, SecretsError::Malformed { .. }), "{:?}", e);
                    prop_assert!(!e.to_string().contains(&key), "{}", e);
                }
            }
            Ok(())
        },
    );
}

#[test]
fn instance_passwords_are_the_bare_text_unless_a_json_object() {
    let raw = prop_oneof![
        "\\PC{0,40}",
        secret_value().prop_map(|p| json!({"password": p}).to_string()),
        Just(r#"{"passwordFree": true}"#.to_owned()),
        json_value().prop_map(|v| v.to_string()),
    ];
    check("InstancePassword", raw, |raw| {
        let got = InstancePassword::from_secret("pw", &SecretString::new(raw.clone()));
        match serde_json::from_str::<Value>(&raw) {
            Ok(Value::Object(map)) => match (&got, map.get("password"), map.get("passwordFree")) {
                (Ok(InstancePassword::Password(p)), Some(Value::String(want)), _) => prop_assert_eq!(p.expose(), want),
                (Ok(InstancePassword::PasswordFree), None, Some(Value::Bool(true))) => {}
                (Err(e), _, _) => {
                    if let Some(Value::String(p)) = map.get("password") {
                        prop_assert!(p.len() < 4 || !e.to_string().contains(p.as_str()), "{}", e);
                    }
                }
                other => return Err(TestCaseError::fail(format!("{raw}: {other:?}"))),
            },
            _ if raw.is_empty() => prop_assert!(got.is_err()),
            _ => prop_assert_eq!(got, Ok(InstancePassword::Password(SecretString::new(raw.clone())))),
        }
        Ok(())
    });
}

#[derive(Debug, Clone)]
struct KeySpec {
    id: String,
    bytes: Vec<u8>,
    allow: Vec<String>,
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![Just("*".to_owned()), "crs-[a-z0-9]{0,7}\\*", "crs-[a-z0-9]{8}", "[a-z0-9-]{1,6}\\*"]
}

fn key_spec() -> impl Strategy<Value = KeySpec> {
    ("[a-z0-9-]{1,20}", key_bytes(), prop::collection::vec(pattern(), 0..4)).prop_map(|(id, bytes, allow)| KeySpec {
        id,
        bytes,
        allow,
    })
}

fn allowed_by(patterns: &[String], id: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => id == p,
    })
}

#[test]
fn signing_keys_round_trip_and_each_key_verifies_and_authorizes_only_as_configured() {
    let strategy =
        (prop::collection::vec(key_spec(), 1..4), "crs-[a-z0-9]{8}", webhook_id(), body_bytes(), any::<bool>());
    check("SigningKeys", strategy, |(mut specs, redis_id, msg_id, body, with_callback)| {
        specs.dedup_by(|a, b| a.id == b.id || a.bytes == b.bytes);
        let mut doc = json!({"keys": specs.iter().map(|k| json!({"id": k.id, "secret": whsec(&k.bytes), "allow": k.allow})).collect::<Vec<_>>()});
        let callback = [7u8; 24];
        if with_callback {
            doc["callbackSecret"] = whsec(&callback).into();
        }
        let parsed = SigningKeys::from_secret("keys", &SecretString::new(doc.to_string()));
        let keys = match parsed {
            Ok(k) => k,
            // Duplicate ids survive dedup only when not adjacent: that is refused, as documented.
            Err(e) => {
                let mut ids: Vec<&str> = specs.iter().map(|k| k.id.as_str()).collect();
                ids.sort_unstable();
                let before = ids.len();
                ids.dedup();
                prop_assert!(ids.len() < before, "{}", e);
                for k in &specs {
                    prop_assert!(!e.to_string().contains(&STANDARD.encode(&k.bytes)));
                }
                return Ok(());
            }
        };
        prop_assert_eq!(keys.keys.len(), specs.len());
        prop_assert_eq!(keys.callback_secret.is_some(), with_callback);
        let id = RedisId::parse(&redis_id).expect("valid");
        for (i, spec) in specs.iter().enumerate() {
            prop_assert_eq!(&keys.keys[i].id, &spec.id);
            prop_assert_eq!(keys.keys[i].allow.allows(&id), allowed_by(&spec.allow, &redis_id));
            let sig = signature::sign(&secret(&spec.bytes), &msg_id, 1_700_000_000, &body);
            let headers = SignedHeaders { id: Some(&msg_id), timestamp: Some("1700000000"), signature: Some(&sig) };
            let v = signature::verify(&keys.keys, |k| &k.secret, headers, &body, 1_700_000_000);
            prop_assert_eq!(v.map(|v| v.key.id.clone()).ok(), Some(spec.id.clone()));
        }
        Ok(())
    });
}

#[test]
fn arbitrary_secret_text_never_panics_any_secret_parser() {
    let raw = prop_oneof![
        "\\PC{0,60}",
        json_value().prop_map(|v| v.to_string()),
        prop::collection::vec(
            (
                prop_oneof![
                    Just("keys"),
                    Just("secretId"),
                    Just("secretKey"),
                    Just("password"),
                    Just("callbackSecret")
                ],
                json_value()
            ),
            0..4
        )
        .prop_map(|kv| object(&kv, false)),
    ];
    check("secret parsers arbitrary", raw, |raw| {
        let s = SecretString::new(raw.clone());
        for err in [
            TencentCredentials::from_secret("a", &s).err(),
            InstancePassword::from_secret("b", &s).err(),
            SigningKeys::from_secret("c", &s).err(),
        ]
        .into_iter()
        .flatten()
        {
            prop_assert!(matches!(err, SecretsError::Malformed { .. }), "{:?}", err);
            prop_assert!(raw.len() < 16 || !err.to_string().contains(&raw), "{}", err);
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Callback URLs and addresses

fn in_net(ip: u32, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    ip & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// IPv4 ranges no callback may reach (RFC 6890 special-purpose, private, loopback, link-local).
const V4_BLOCKED: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
];

fn blocked_v4() -> impl Strategy<Value = Ipv4Addr> {
    (prop::sample::select(V4_BLOCKED.to_vec()), any::<u32>()).prop_map(|((net, bits), r)| {
        let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
        Ipv4Addr::from((u32::from(Ipv4Addr::from(net)) & mask) | (r & !mask))
    })
}

fn blocked_v6() -> impl Strategy<Value = Ipv6Addr> {
    let with_prefix = |prefix: u128, bits: u32| {
        any::<u128>().prop_map(move |r| {
            Ipv6Addr::from((prefix & (u128::MAX << (128 - bits))) | (r & !(u128::MAX << (128 - bits))))
        })
    };
    prop_oneof![
        with_prefix(0xfc00 << 112, 7),                   // unique local, incl. fd00:ec2::254 (IMDS)
        with_prefix(0xfe80 << 112, 10),                  // link-local
        with_prefix(0xff00 << 112, 8),                   // multicast
        with_prefix(0x2001_0db8 << 96, 32),              // documentation
        with_prefix(0x0064_ff9b << 96, 96),              // NAT64 of any IPv4 address
        with_prefix(0x2002 << 112, 16),                  // 6to4
        blocked_v4().prop_map(|v4| v4.to_ipv6_mapped()), // ::ffff:a.b.c.d
        Just(Ipv6Addr::LOCALHOST),
        Just(Ipv6Addr::UNSPECIFIED),
    ]
}

#[test]
fn no_address_in_a_non_public_range_is_ever_allowed() {
    check(
        "ip_allowed blocked",
        (prop_oneof![blocked_v4().prop_map(IpAddr::V4), blocked_v6().prop_map(IpAddr::V6)], any::<bool>()),
        |(ip, loopback)| {
            let canonical = ip.to_canonical();
            // The loopback opt-in (local development) opens loopback and nothing else.
            prop_assert_eq!(ip_allowed(ip, loopback), loopback && canonical.is_loopback(), "{}", ip);
            Ok(())
        },
    );
}

#[test]
fn public_addresses_are_allowed_and_ipv4_mapped_ipv6_is_judged_as_ipv4() {
    // 11.0.0.0-99.255.255.255 holds no special-purpose range.
    let public = (11u32 << 24..100u32 << 24).prop_map(Ipv4Addr::from);
    check("ip_allowed public", (public, any::<u32>()), |(ip, any_v4)| {
        prop_assert!(ip_allowed(IpAddr::V4(ip), false));
        let any_v4 = Ipv4Addr::from(any_v4);
        prop_assert_eq!(ip_allowed(IpAddr::V4(any_v4), false), ip_allowed(IpAddr::V6(any_v4.to_ipv6_mapped()), false));
        let blocked = V4_BLOCKED.iter().any(|(net, bits)| in_net(u32::from(any_v4), *net, *bits));
        prop_assert_eq!(ip_allowed(IpAddr::V4(any_v4), false), !blocked, "{}", any_v4);
        Ok(())
    });
}

#[test]
fn an_ipv4_host_is_judged_the_same_in_every_notation() {
    let policy = CallbackPolicy::default();
    check("callback IPv4 notations", prop_oneof![any::<u32>(), blocked_v4().prop_map(u32::from)], |n| {
        let ip = Ipv4Addr::from(n);
        let dotted = CallbackUrl::parse(&format!("https://{ip}/hook"), &policy).is_ok();
        prop_assert_eq!(dotted, ip_allowed(IpAddr::V4(ip), false));
        let [a, b, c, d] = ip.octets();
        for host in [
            n.to_string(),
            format!("0x{n:x}"),
            format!("0{n:o}"),
            format!("{a}.{}", u32::from(b) << 16 | u32::from(c) << 8 | u32::from(d)),
            format!("0x{a:x}.0{b:o}.{c}.0x{d:02X}"),
            format!("{ip}."),
            format!("[::ffff:{ip}]"),
        ] {
            let got = CallbackUrl::parse(&format!("https://{host}/hook"), &policy).is_ok();
            prop_assert_eq!(got, dotted, "{} vs {}", host, ip);
        }
        Ok(())
    });
}

fn url_candidate() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec!["https", "http", "HTTPS", "ftp", "file", "javascript", "gopher", ""]);
    let userinfo = prop::sample::select(vec!["", "u@", "u:p@", ":@", "@"]);
    let host = prop_oneof![
        any::<u32>().prop_map(|n| Ipv4Addr::from(n).to_string()),
        any::<u128>().prop_map(|n| format!("[{}]", Ipv6Addr::from(n))),
        blocked_v6().prop_map(|ip| format!("[{ip}]")),
        "[a-z0-9-]{1,10}(\\.[a-z0-9-]{1,10}){0,3}",
        "\\PC{0,12}",
    ];
    let port = prop::option::of(any::<u16>());
    let rest = "[/?#][ -~]{0,30}";
    prop_oneof![
        (scheme, userinfo, host, port, rest)
            .prop_map(|(s, u, h, p, r)| format!("{s}://{u}{h}{}{r}", p.map(|p| format!(":{p}")).unwrap_or_default())),
        "\\PC{0,60}",
    ]
}

#[test]
fn callback_urls_are_https_without_credentials_to_allowed_hosts_and_round_trip() {
    let policies = prop::sample::select(vec![
        CallbackPolicy::default(),
        CallbackPolicy {
            allowed_hosts: vec!["hooks.example.com".into(), "*.corp.example".into()],
            allow_loopback: false,
        },
        CallbackPolicy { allowed_hosts: vec![], allow_loopback: true },
    ]);
    check("CallbackUrl", (url_candidate(), policies), |(raw, policy)| {
        let Ok(url) = CallbackUrl::parse(&raw, &policy) else { return Ok(()) };
        let parsed = url::Url::parse(&url.to_string()).expect("what was accepted is a URL");
        prop_assert!(parsed.scheme() == "https" || (parsed.scheme() == "http" && policy.allow_loopback));
        prop_assert!(parsed.username().is_empty() && parsed.password().is_none());
        match parsed.host().expect("a host") {
            url::Host::Ipv4(ip) => {
                prop_assert!(policy.allowed_hosts.is_empty() && ip_allowed(IpAddr::V4(ip), policy.allow_loopback))
            }
            url::Host::Ipv6(ip) => {
                prop_assert!(policy.allowed_hosts.is_empty() && ip_allowed(IpAddr::V6(ip), policy.allow_loopback))
            }
            url::Host::Domain(d) => prop_assert!(
                policy.allowed_hosts.is_empty()
                    || d == "hooks.example.com"
                    || (d.ends_with(".corp.example") && d.len() > ".corp.example".len())
            ),
        }
        // Its string form parses to the same URL, and survives the job envelope's serde.
        let again = CallbackUrl::parse(&url.to_string(), &policy);
        prop_assert_eq!(again.as_ref(), Ok(&url));
        let json = serde_json::to_string(&url).expect("serializes");
        prop_assert_eq!(serde_json::from_str::<CallbackUrl>(&json).expect("deserializes"), url);
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Tencent answers, through the public client against a loopback server

/// Answers every request with the current canned bytes: an HTTP answer on a kept-alive
/// connection, or raw bytes after which the connection is closed.
struct Canned {
    url: String,
    answer: Arc<Mutex<(Vec<u8>, bool)>>,
    requests: Arc<AtomicUsize>,
}

impl Canned {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let answer: Arc<Mutex<(Vec<u8>, bool)>> = Arc::default();
        let requests: Arc<AtomicUsize> = Arc::default();
        let (shared, counter) = (Arc::clone(&answer), Arc::clone(&requests));
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(Self::serve(conn, Arc::clone(&shared), Arc::clone(&counter)));
            }
        });
        Self { url, answer, requests }
    }

    /// A Tencent client of `version` pointed at this server.
    fn client(&self, version: ApiVersion, signature_method: SignatureMethod) -> TencentClient {
        let endpoint = match version {
            ApiVersion::V2 => format!("{}v2/index.php", self.url),
            ApiVersion::V3 => self.url.clone(),
        };
        let config = TencentConfig {
            version,
            endpoint: Endpoint::parse(&endpoint).expect("endpoint"),
            signature_method,
            timeout: Duration::from_secs(5),
        };
        TencentClient::new(http_client().expect("client"), config)
    }

    async fn serve(mut conn: tokio::net::TcpStream, shared: Arc<Mutex<(Vec<u8>, bool)>>, requests: Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut pending = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            // Read one whole request first, so an answer never races the upload.
            let request_end = loop {
                if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if pending.len() >= end + 4 + len {
                        break end + 4 + len;
                    }
                }
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                }
            };
            pending.drain(..request_end);
            requests.fetch_add(1, Ordering::Relaxed);
            let (bytes, keep_alive) = shared.lock().expect("lock").clone();
            if conn.write_all(&bytes).await.is_err() || !keep_alive {
                let _ = conn.shutdown().await;
                return;
            }
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    fn set(&self, bytes: Vec<u8>, keep_alive: bool) {
        *self.answer.lock().expect("lock") = (bytes, keep_alive);
    }
}

fn http_answer(status: u16, body: &[u8]) -> Vec<u8> {
    let mut out =
        format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len())
            .into_bytes();
    out.extend_from_slice(body);
    out
}

/// What one scripted answer should produce, decided independently of the client's parser.
#[derive(Debug, Clone)]
enum Expect {
    Task(i64),
    Api(TencentCode),
    /// Not JSON, or JSON without the envelope: malformed on 200, the HTTP status otherwise.
    Unreadable,
    /// Raw bytes instead of an HTTP answer: any error, but never a started restore.
    AnyError,
}

/// An answer in `version`'s wire format, with what it must produce.
fn tencent_answer(version: ApiVersion) -> impl Strategy<Value = (u16, Vec<u8>, Expect)> {
    // 204, 205 and 304 carry no body by definition: a body there is a different framing error.
    // (Maps, not filters: a million cases would exhaust proptest's rejection budget.)
    let status = prop_oneof![
        4 => Just(200u16),
        1 => prop::sample::select(vec![400u16, 403, 404, 429, 500, 502, 503, 504]),
        1 => (200u16..600).prop_map(|s| if [204, 205, 304].contains(&s) { 500 } else { s }),
    ];
    let task = 0..=i64::MAX;
    let code_v2 = prop_oneof![
        prop::sample::select(vec![
            10701i64, 11213, 10707, 10710, 10702, 10711, 11201, 4000, 10712, 4100, 4104, 4105, 4500, 5100
        ]),
        any::<i64>().prop_map(|c| if c == 0 { 1 } else { c }),
    ];
    let code_v3 = prop_oneof![
        prop::sample::select(vec![
            "ResourceNotFound.InstanceNotExists",
            "InvalidParameterValue.BackupNotExists",
            "ResourceUnavailable.InstanceLockedError",
            "ResourceUnavailable.BackupLockedError",
            "ResourceUnavailable.InstanceStatusAbnormal",
            "ResourceUnavailable.BackupStatusAbnormal",
            "InvalidParameterValue.PasswordError",
            "AuthFailure.SignatureFailure",
            "UnauthorizedOperation.NoCAMAuthed",
            "InternalError.InternalError",
            "MissingParameter",
            "InvalidAction",
        ])
        .prop_map(str::to_owned),
        "[A-Za-z]{1,12}(\\.[A-Za-z]{1,12})?",
    ];
    let garbage = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        Just(b"<html><body>502 Bad Gateway</body></html>".to_vec()),
    ];
    let message = "\\PC{0,30}";
    let envelope = match version {
        ApiVersion::V2 => prop_oneof![
            (task.clone(), any::<bool>()).prop_map(|(t, as_text)| {
                let id = if as_text { json!(t.to_string()) } else { json!(t) };
                (
                    json!({"code": 0, "message": "", "codeDesc": "Success", "data": {"requestId": id}})
                        .to_string()
                        .into_bytes(),
                    Expect::Task(t),
                )
            }),
            (code_v2, message, any::<bool>()).prop_map(|(c, m, as_text)| {
                let code = if as_text { json!(c.to_string()) } else { json!(c) };
                (
                    json!({"code": code, "message": m, "codeDesc": "X"}).to_string().into_bytes(),
                    Expect::Api(TencentCode::V2(c)),
                )
            }),
        ]
        .boxed(),
        ApiVersion::V3 => prop_oneof![
            task.prop_map(|t| (
                json!({"Response": {"TaskId": t, "RequestId": "r"}}).to_string().into_bytes(),
                Expect::Task(t)
            )),
            (code_v3, message).prop_map(|(c, m)| {
                (
                    json!({"Response": {"Error": {"Code": c, "Message": m}, "RequestId": "r"}})
                        .to_string()
                        .into_bytes(),
                    Expect::Api(TencentCode::V3(c)),
                )
            }),
        ]
        .boxed(),
    };
    prop_oneof![
        3 => (status.clone(), envelope).prop_map(|(s, (body, e))| (s, body, e)),
        2 => (status, garbage).prop_map(move |(s, body)| {
            let readable = |b: &[u8]| match version {
                ApiVersion::V2 => serde_json::from_slice::<Value>(b).ok().and_then(|v| v.get("code").cloned()).is_some(),
                ApiVersion::V3 => serde_json::from_slice::<Value>(b).ok().is_some_and(|v| v.get("Response").is_some_and(Value::is_object)),
            };
            let expect = if readable(&body) { Expect::AnyError } else { Expect::Unreadable };
            (s, body, expect)
        }),
        1 => prop::collection::vec(any::<u8>(), 0..100).prop_map(|raw| (0, raw, Expect::AnyError)),
    ]
}

fn tencent_answers_map_to_results(version: ApiVersion, target: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let server = rt.block_on(Canned::start());
    let client = server.client(version, SignatureMethod::HmacSha1);
    let creds = TencentCredentials {
        secret_id: TENCENT_SECRET_ID.into(),
        secret_key: SecretString::new(TENCENT_SECRET_KEY),
        token: None,
    };
    let region = Region::parse("ap-guangzhou").expect("region");
    let redis = RedisId::parse(REDIS_ID).expect("id");
    let backup = crs_restore::payload::BackupId::parse(BACKUP_ID).expect("backup");
    let password = InstancePassword::Password(SecretString::new(PASSWORD));
    check(target, tencent_answer(version), |(status, body, expect)| {
        if status == 0 {
            server.set(body.clone(), false);
        } else {
            server.set(http_answer(status, &body), true);
        }
        let got = rt.block_on(client.restore_instance(&creds, &region, &redis, &backup, &password));
        match (&expect, &got) {
            (Expect::Task(t), Ok(id)) => prop_assert!(status == 200 && id == t),
            (Expect::Task(_), Err(TencentError::HttpStatus { status: s, .. })) => {
                prop_assert!(status != 200 && *s == status)
            }
            (Expect::Api(code), Err(TencentError::Api { code: c, failure, name, .. })) => {
                prop_assert_eq!(c, code);
                prop_assert_eq!(*failure, code.classify());
                prop_assert!(!name.is_empty());
            }
            (Expect::Unreadable, Err(TencentError::Malformed { .. })) => prop_assert_eq!(status, 200),
            (Expect::Unreadable, Err(TencentError::HttpStatus { status: s, .. })) => {
                prop_assert!(status != 200 && *s == status)
            }
            (Expect::AnyError, Err(_)) => {}
            // A readable success envelope whose task id is missing or odd.
            (Expect::AnyError, Ok(_)) => prop_assert!(status == 200),
            _ => return Err(TestCaseError::fail(format!("status {status}, expected {expect:?}, got {got:?}"))),
        }
        // Whatever happened maps to a documented public answer.
        if let Err(e) = got {
            let e = RestoreError::from(e);
            prop_assert!([404, 409, 422, 500, 502, 504].contains(&e.status()), "{:?}", e);
            prop_assert!(!e.code().is_empty());
        }
        Ok(())
    });
}

#[test]
fn tencent_api_2_answers_map_to_a_task_or_a_documented_error() {
    tencent_answers_map_to_results(ApiVersion::V2, "Tencent API 2.0 answers");
}

#[test]
fn tencent_api_3_answers_map_to_a_task_or_a_documented_error() {
    tencent_answers_map_to_results(ApiVersion::V3, "Tencent API 3.0 answers");
}

/// Credentials as a secret might hold them: usually plain, sometimes with whitespace, control
/// or non-ASCII characters that cannot travel in an HTTP header.
fn odd_text() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z0-9]{4,20}", "[A-Za-z0-9]{2,8}[\\n\\r\\t\\x00\\x7f é中]{1,2}[A-Za-z0-9]{0,8}", "\\PC{1,12}"]
}

#[test]
fn a_request_that_was_never_sent_is_never_reported_as_outcome_unknown() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let server = rt.block_on(Canned::start());
    let task = json!({"code": 0, "data": {"requestId": 7}, "Response": {"TaskId": 7, "RequestId": "r"}});
    server.set(http_answer(200, task.to_string().as_bytes()), true);
    let clients: Vec<TencentClient> =
        [ApiVersion::V2, ApiVersion::V3].into_iter().map(|v| server.client(v, SignatureMethod::HmacSha256)).collect();
    let region = Region::parse("ap-guangzhou").expect("region");
    let redis = RedisId::parse(REDIS_ID).expect("id");
    let backup = crs_restore::payload::BackupId::parse(BACKUP_ID).expect("backup");
    let strategy = (any::<bool>(), odd_text(), odd_text(), prop::option::of(odd_text()), odd_text());
    check("unsent is not outcome-unknown", strategy, |(v3, id, key, token, password)| {
        let raw = json!({"secretId": id, "secretKey": key, "token": token}).to_string();
        let Ok(creds) = TencentCredentials::from_secret("tc", &SecretString::new(raw)) else { return Ok(()) };
        let Ok(password) = InstancePassword::from_secret("pw", &SecretString::new(password)) else { return Ok(()) };
        let before = server.requests();
        let got = rt.block_on(clients[usize::from(v3)].restore_instance(&creds, &region, &redis, &backup, &password));
        let sent = server.requests() > before;
        if let Err(e) = &got {
            prop_assert!(
                sent || !e.outcome_unknown(),
                "nothing was sent, yet {:?} says the restore may have started",
                e
            );
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// The real handler: nothing but the exact signed request is ever acted on

struct Function {
    rt: tokio::runtime::Runtime,
    state: Arc<AppState>,
    sandbox: Sandbox,
    /// Metric records, dropped after each case (a million cases would otherwise pile up).
    metrics: Arc<Mutex<Vec<Value>>>,
}

fn function() -> Function {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let metrics: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (state, sandbox) = rt.block_on(async {
        let aws = fake_aws::FakeAws::start().await;
        aws.put_secret("keys", &common::default_signing_keys().to_string());
        aws.put_secret("tencent", &json!({"secretId": TENCENT_SECRET_ID, "secretKey": TENCENT_SECRET_KEY}).to_string());
        aws.put_secret(&format!("instances/{REDIS_ID}"), PASSWORD);
        let sandbox =
            sandbox::spawn(common::sandbox_config(), "127.0.0.1:0".parse().expect("addr")).await.expect("sandbox");
        let env = [
            ("SIGNING_KEYS_SECRET_ID", "keys".to_owned()),
            ("TENCENT_CREDENTIALS_SECRET_ID", "tencent".to_owned()),
            ("INSTANCE_PASSWORD_SECRET_PREFIX", "instances/".to_owned()),
            ("TENCENT_REGION", "ap-guangzhou".to_owned()),
            ("TENCENT_API_VERSION", "3".to_owned()),
            ("TENCENT_ENDPOINT", sandbox.endpoint_v3()),
        ];
        let config =
            Config::from_lookup(|n| env.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone())).expect("config");
        let state =
            AppState::new(config, local_secrets_client(&aws.url()), http_client().expect("http")).expect("state");
        let state = state.with_metrics(MetricsSink::Capture(Arc::clone(&metrics)));
        (Arc::new(state), sandbox)
    });
    Function { rt, state, sandbox, metrics }
}

/// One change an attacker could make to a signed request.
#[derive(Debug, Clone)]
enum Tamper {
    BodyByte(prop::sample::Index, u8),
    Body(Vec<u8>),
    Id(String),
    Timestamp(i64),
    /// Replaces the signature with one by a key that is not configured.
    ForeignKey(Vec<u8>),
    /// Re-signs with the drills key, whose allow list does not name the instance.
    OtherCallerKey,
    DropHeader(&'static str),
    Header(&'static str, String),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, x)| Tamper::BodyByte(i, x)),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(Tamper::Body),
        webhook_id().prop_map(Tamper::Id),
        (1i64..290, any::<bool>()).prop_map(|(d, past)| Tamper::Timestamp(if past { -d } else { d })),
        key_bytes().prop_map(Tamper::ForeignKey),
        Just(Tamper::OtherCallerKey),
        prop::sample::select(vec!["webhook-id", "webhook-timestamp", "webhook-signature", "content-type"])
            .prop_map(Tamper::DropHeader),
        (
            prop::sample::select(vec!["webhook-signature", "webhook-id", "webhook-timestamp", "content-type"]),
            "[ -~]{0,80}"
        )
            .prop_map(|(h, v)| Tamper::Header(h, v)),
    ]
}

#[test]
fn no_tampered_or_foreign_request_ever_reaches_tencent() {
    let f = function();
    let base = common::restore_body(REDIS_ID, BACKUP_ID);
    check("handler tamper", (tamper(), any::<bool>()), |(change, b64)| {
        let calls_before = f.sandbox.calls("RestoreInstance");
        let now = common::now();
        let mut body = base.clone().into_bytes();
        let (mut id, mut ts) = ("msg_prop".to_owned(), now);
        let mut sig = signature::sign(&WebhookSecret::parse(KEY_RUNBOOKS).expect("key"), &id, ts, &body);
        let mut headers = json!({"content-type": "application/json"});
        match &change {
            Tamper::BodyByte(i, x) => {
                let i = i.index(body.len());
                body[i] ^= x;
            }
            Tamper::Body(b) => body.clone_from(b),
            Tamper::Id(new) => id.clone_from(new),
            Tamper::Timestamp(d) => ts += d,
            Tamper::ForeignKey(k) => sig = signature::sign(&secret(k), &id, ts, &body),
            Tamper::OtherCallerKey => {
                sig = signature::sign(&WebhookSecret::parse(KEY_DRILLS).expect("key"), &id, ts, &body)
            }
            Tamper::DropHeader(_) | Tamper::Header(..) => {}
        }
        headers["webhook-id"] = id.into();
        headers["webhook-timestamp"] = ts.to_string().into();
        headers["webhook-signature"] = sig.into();
        match &change {
            Tamper::DropHeader(h) => {
                headers.as_object_mut().expect("object").remove(*h);
            }
            Tamper::Header(h, v) => headers[*h] = v.clone().into(),
            _ => {}
        }
        let (body_text, b64) = match String::from_utf8(body.clone()) {
            Ok(text) if !b64 => (text, false),
            _ => (STANDARD.encode(&body), true),
        };
        let event = json!({
            "headers": headers,
            "body": body_text,
            "isBase64Encoded": b64,
            "requestContext": {"http": {"method": "POST", "sourceIp": "203.0.113.7"}, "requestId": "prop"},
        });
        let reply = common::to_reply(f.rt.block_on(crs_restore::handler::handle_event(&f.state, event)));
        f.metrics.lock().expect("metrics").clear();
        let unchanged = matches!(&change, Tamper::Body(b) if *b == base.as_bytes())
            || matches!(&change, Tamper::Id(new) if new == "msg_prop")
            || matches!(&change, Tamper::Header("content-type", v) if v.split(';').next().is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json")));
        if !unchanged {
            prop_assert!(
                matches!(
                    (reply.status, reply.code()),
                    (401, _) | (403, "InstanceNotAllowed") | (415, "UnsupportedMediaType")
                ),
                "{:?} -> {:?}",
                change,
                reply
            );
        }
        if !unchanged {
            prop_assert_eq!(f.sandbox.calls("RestoreInstance"), calls_before);
        }
        Ok(())
    });
    assert!(f.sandbox.total_restores_started() <= 1);
}

// ---------------------------------------------------------------------------------------------
// Slack: v0 signatures, confirmation tokens, slash command text

fn slack_secret() -> impl Strategy<Value = String> {
    "[a-f0-9]{32}"
}

#[test]
fn slack_verify_accepts_what_sign_produced_within_the_window() {
    use crs_restore::secrets::SecretString;
    use crs_restore::slack::verify::{SlackHeaders, sign, verify};
    check("slack verify(sign)", (slack_secret(), body_bytes(), now_s(), -300i64..=300), |(key, body, now, skew)| {
        let secret = SecretString::new(key);
        let ts = (now + skew).to_string();
        let sig = sign(&secret, &ts, &body);
        let headers = SlackHeaders { timestamp: Some(&ts), signature: Some(&sig) };
        prop_assert_eq!(verify(&secret, headers, &body, now), Ok(()));
        Ok(())
    });
}

#[test]
fn slack_verify_rejects_any_single_byte_change_to_a_signed_body() {
    use crs_restore::secrets::SecretString;
    use crs_restore::slack::verify::{SlackHeaders, sign, verify};
    let strategy =
        (slack_secret(), prop::collection::vec(any::<u8>(), 1..512), any::<prop::sample::Index>(), 1u8..=255);
    check("slack single-byte change", strategy, |(key, body, at, delta)| {
        let secret = SecretString::new(key);
        let ts = "1700000000";
        let sig = sign(&secret, ts, &body);
        let mut changed = body.clone();
        let i = at.index(changed.len());
        changed[i] = changed[i].wrapping_add(delta);
        let headers = SlackHeaders { timestamp: Some(ts), signature: Some(&sig) };
        prop_assert!(verify(&secret, headers, &changed, 1_700_000_000).is_err());
        Ok(())
    });
}

#[test]
fn slack_headers_not_made_with_the_secret_never_verify_and_never_panic() {
    use crs_restore::secrets::SecretString;
    use crs_restore::slack::verify::{SlackHeaders, verify};
    let strategy = (slack_secret(), "\\PC{0,24}", "\\PC{0,80}", body_bytes(), now_s());
    check("slack arbitrary headers", strategy, |(key, ts, sig, body, now)| {
        let headers = SlackHeaders { timestamp: Some(&ts), signature: Some(&sig) };
        prop_assert!(verify(&SecretString::new(key), headers, &body, now).is_err());
        Ok(())
    });
}

#[test]
fn slack_confirmation_tokens_open_as_sealed_and_any_edit_is_refused() {
    use crs_restore::payload::{BackupId, RedisId, Region};
    use crs_restore::secrets::SecretString;
    use crs_restore::slack::token::{ConfirmToken, new_nonce};
    let strategy = (slack_secret(), "U[A-Z0-9]{8}", "\\PC{0,40}", any::<prop::sample::Index>(), any::<u8>(), now_s());
    check("slack token seal/open", strategy, |(key, user, reason, at, replacement, now)| {
        let secret = SecretString::new(key);
        let token = ConfirmToken {
            nonce: new_nonce(),
            team_id: "T0001".into(),
            user_id: user,
            redis_id: RedisId::parse(REDIS_ID).expect("valid"),
            backup_id: BackupId::parse(BACKUP_ID).expect("valid"),
            region: Region::parse("ap-guangzhou").expect("valid"),
            backup_time: None,
            reason: Some(reason.chars().filter(|c| !c.is_control()).collect()),
            expires_at: now + 300,
            mode: crs_restore::payload::RestoreMode::InPlace,
        };
        let sealed = token.seal(&secret).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let opened = ConfirmToken::open(&sealed, &secret, now).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&opened.token, &token);
        // Any one-character edit of the button value (other than a no-op) is refused.
        let mut bytes = sealed.clone().into_bytes();
        let i = at.index(bytes.len());
        let new = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."[usize::from(replacement) % 65];
        if bytes[i] != new {
            bytes[i] = new;
            let edited = String::from_utf8(bytes).expect("ascii");
            prop_assert!(ConfirmToken::open(&edited, &secret, now).is_err(), "edited token opened: {edited}");
        }
        prop_assert!(ConfirmToken::open(&sealed, &secret, now + 301).is_err(), "expired token opened");
        Ok(())
    });
}

#[test]
fn slack_command_text_never_panics_and_round_trips_valid_commands() {
    use crs_restore::payload::BackupRef;
    use crs_restore::slack::command::{Command, parse};
    check("slack command parse (arbitrary)", "\\PC{0,120}", |text| {
        let _ = parse(&text);
        Ok(())
    });
    let strategy = ("[a-z0-9]{8}", prop::bool::ANY, "[a-z]{1,10}( [a-z]{1,10}){0,4}");
    check("slack command parse (round trip)", strategy, |(suffix, latest, reason)| {
        let redis = format!("crs-{suffix}");
        let backup = if latest { "latest" } else { BACKUP_ID };
        match parse(&format!("  {redis}  {backup} ap-guangzhou {reason} ")) {
            Ok(Command::Restore(cmd)) => {
                prop_assert_eq!(cmd.redis_id.as_str(), redis.as_str());
                prop_assert_eq!(cmd.backup == BackupRef::Latest, latest);
                prop_assert_eq!(cmd.region.as_ref().map(|r| r.as_str()), Some("ap-guangzhou"));
                prop_assert_eq!(cmd.reason.as_deref(), Some(reason.as_str()));
            }
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
        Ok(())
    });
}
