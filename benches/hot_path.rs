//! The in-process hot path of a warm restore, piece by piece and whole (`cargo bench`).
//!
//! A warm restore does, besides its network calls: decode the Lambda event, classify it as a
//! Function URL request, verify the Standard Webhooks signature, parse and authorize the body,
//! sign and form-encode the Tencent request, and build the response. Budget: the whole path
//! (`hot_path/whole`) at most 25 µs (median). See BENCHMARKS.md.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use crs_restore::auth::{AllowList, SigningKeys};
use crs_restore::event::{HttpRequest, HttpResponse, Incoming};
use crs_restore::payload::{RedisId, RestoreRequest};
use crs_restore::secrets::{SecretString, TencentCredentials};
use crs_restore::signature::{self, SignedHeaders, WebhookSecret};
use crs_restore::tencent::sign::{SignatureMethod, Tc3Input, tc3_sign};
use crs_restore::tencent::v2;
use serde_json::{Value, json};

const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_KEY: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const TS: i64 = 1_795_674_600;
const ID: &str = "msg_2pQY8cWzXJ7yHk3fRm9sTq1vBn4";
const TENCENT_KEY: &[u8] = b"test-tencent-secret-key-0000000001";
const BODY: &str = r#"{"redisId": "crs-izbob1wh", "backupId": "e824aecc-ef5e-11e6-a2c7-525400082493", "region": "ap-guangzhou", "reason": "INC-1234 cache corrupted"}"#;

fn signing_keys(first: &str, second: &str) -> SigningKeys {
    let raw = json!({"keys": [
        {"id": "first", "secret": first, "allow": ["crs-*"]},
        {"id": "second", "secret": second, "allow": ["crs-drill*", "crs-*"]},
    ]});
    SigningKeys::from_secret("bench", &SecretString::new(raw.to_string())).expect("valid signing keys")
}

/// The checked-in Function URL fixture, signed, as the bytes Lambda's runtime API delivers.
fn event_bytes() -> Vec<u8> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/events/function-url-restore.json"))
        .expect("events/function-url-restore.json");
    let mut ev: Value = serde_json::from_str(&text).expect("fixture is JSON");
    let sig = signature::sign(&WebhookSecret::parse(KEY).expect("key"), ID, TS, BODY.as_bytes());
    ev["body"] = BODY.into();
    ev["headers"]["webhook-id"] = ID.into();
    ev["headers"]["webhook-timestamp"] = TS.to_string().into();
    ev["headers"]["webhook-signature"] = sig.into();
    serde_json::to_vec(&ev).expect("serializes")
}

/// The signed API 2.0 RestoreInstance form body, built by the client's own code.
fn v2_restore_body(creds: &TencentCredentials, password: &str) -> String {
    let params =
        [("redisId", "crs-izbob1wh"), ("password", password), ("backupId", "e824aecc-ef5e-11e6-a2c7-525400082493")];
    let common = ("RestoreInstance", "ap-guangzhou", TS, 2_718_281);
    v2::request_body(creds, SignatureMethod::HmacSha1, "cvm.api.qcloud.com", "/v2/index.php", common, &params)
}

fn tc3_restore(payload: &[u8]) -> String {
    let input = Tc3Input {
        http_method: "POST",
        query: "",
        content_type: "application/json; charset=utf-8",
        host: "redis.tencentcloudapi.com",
        payload,
        service: "redis",
        timestamp: TS,
    };
    tc3_sign(TENCENT_KEY, &input).authorization("AKIDtestEXAMPLE000000000000000000000", "redis")
}

fn started_response(delivery: &str) -> Vec<u8> {
    let body = json!({
        "status": "started", "taskId": 375_074, "redisId": "crs-izbob1wh",
        "backupId": "e824aecc-ef5e-11e6-a2c7-525400082493", "region": "ap-guangzhou", "deliveryId": delivery,
    });
    serde_json::to_vec(&HttpResponse::json(202, body).into_lambda()).expect("serializes")
}

fn headers(req: &HttpRequest) -> SignedHeaders<'_> {
    SignedHeaders {
        id: req.header("webhook-id"),
        timestamp: req.header("webhook-timestamp"),
        signature: req.header("webhook-signature"),
    }
}

/// Everything a warm restore does in process, in order.
fn whole(bytes: &[u8], keys: &SigningKeys, creds: &TencentCredentials) -> usize {
    let event: Value = serde_json::from_slice(bytes).expect("event JSON");
    let Incoming::Http(ev) = Incoming::classify(event) else { panic!("not a Function URL event") };
    let req = HttpRequest::from_event(ev, 64 * 1024).expect("body");
    let h = headers(&req);
    signature::precheck(h, TS).expect("precheck");
    let verified = signature::verify(&keys.keys, |k| &k.secret, h, &req.body, TS).expect("verifies");
    let request = RestoreRequest::parse(&req.body).expect("valid body");
    assert!(verified.key.allow.allows(&request.redis_id));
    let form = v2_restore_body(creds, "12D3E@!r5ed");
    form.len() + started_response(verified.id).len()
}

fn benches(c: &mut Criterion) {
    let bytes = event_bytes();
    let keys = signing_keys(KEY, OTHER_KEY);
    let rotated = signing_keys(OTHER_KEY, KEY);
    let creds = TencentCredentials {
        secret_id: "AKIDtestEXAMPLE000000000000000000000".into(),
        secret_key: SecretString::new(String::from_utf8_lossy(TENCENT_KEY)),
        token: None,
    };
    let event: Value = serde_json::from_slice(&bytes).expect("event");
    let Incoming::Http(ev) = Incoming::classify(event.clone()) else { panic!("not HTTP") };
    let req = HttpRequest::from_event(ev, 64 * 1024).expect("body");

    let mut g = c.benchmark_group("event");
    g.bench_function("decode_json", |b| b.iter(|| serde_json::from_slice::<Value>(black_box(&bytes)).expect("json")));
    g.bench_function("classify_and_decode_body", |b| {
        b.iter_batched(
            || event.clone(),
            |ev| match Incoming::classify(ev) {
                Incoming::Http(ev) => HttpRequest::from_event(ev, 64 * 1024).expect("body"),
                _ => panic!("not HTTP"),
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("signature");
    g.bench_function("verify_first_key", |b| {
        b.iter(|| signature::verify(&keys.keys, |k| &k.secret, headers(&req), black_box(&req.body), TS).is_ok())
    });
    g.bench_function("verify_second_key_rotation", |b| {
        b.iter(|| signature::verify(&rotated.keys, |k| &k.secret, headers(&req), black_box(&req.body), TS).is_ok())
    });
    g.bench_function("sign", |b| {
        let secret = WebhookSecret::parse(KEY).expect("key");
        b.iter(|| signature::sign(&secret, ID, TS, black_box(BODY.as_bytes())))
    });
    g.finish();

    let mut g = c.benchmark_group("payload");
    g.bench_function("parse", |b| b.iter(|| RestoreRequest::parse(black_box(BODY.as_bytes())).expect("valid")));
    let allow = AllowList::parse(["crs-drill*", "crs-abc00001", "crs-izbob1wh"]).expect("patterns");
    let id = RedisId::parse("crs-izbob1wh").expect("id");
    g.bench_function("authorize", |b| b.iter(|| allow.allows(black_box(&id))));
    g.bench_function("signing_keys_from_secret", |b| {
        let raw = SecretString::new(
            json!({"keys": [{"id": "a", "secret": KEY, "allow": ["crs-*"]}, {"id": "b", "secret": OTHER_KEY, "allow": ["crs-drill*"]}]})
                .to_string(),
        );
        b.iter(|| SigningKeys::from_secret("bench", black_box(&raw)).expect("valid"))
    });
    g.finish();

    let mut g = c.benchmark_group("tencent");
    g.bench_function("v2_sign_and_form_encode", |b| {
        b.iter(|| v2_restore_body(black_box(&creds), black_box("12D3E@!r5ed")))
    });
    let v3_payload = json!({"InstanceId": "crs-izbob1wh", "BackupId": "e824aecc-ef5e-11e6-a2c7-525400082493", "Password": "12D3E@!r5ed"})
        .to_string();
    g.bench_function("tc3_sign", |b| b.iter(|| tc3_restore(black_box(v3_payload.as_bytes()))));
    g.finish();

    let mut g = c.benchmark_group("response");
    g.bench_function("build_and_serialize", |b| b.iter(|| started_response(black_box(ID))));
    g.finish();

    let mut g = c.benchmark_group("hot_path");
    g.bench_function("whole", |b| b.iter(|| whole(black_box(&bytes), &keys, &creds)));
    g.finish();
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
