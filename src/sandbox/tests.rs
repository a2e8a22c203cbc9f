//! The sandbox over real loopback HTTP, with requests signed by hand through `tencent::sign`.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::tencent::sign::{SignatureMethod, Tc3Input, form_encode, tc3_sign, v2_signature, v2_string_to_sign};

const ID: &str = "AKIDsandboxTEST";
const KEY: &str = "sandbox-test-key";
const TEMP_ID: &str = "AKIDsandboxTEMP";
const TEMP_KEY: &str = "sandbox-temp-key";
const TOKEN: &str = "session-token-1";
const PASSWORD: &str = "12D3E@!r5ed +&=";

fn backup(backup_id: &str, status: i64, locked: i64) -> SeedBackup {
    SeedBackup {
        backup_id: backup_id.to_owned(),
        start_time: "2024-05-01 03:00:00".to_owned(),
        status,
        locked,
        backup_type: "systemBackupInstance".to_owned(),
    }
}

fn instance(
    redis_id: &str,
    region: &str,
    password: Option<&str>,
    status: i64,
    backups: Vec<SeedBackup>,
) -> SeedInstance {
    SeedInstance {
        redis_id: redis_id.to_owned(),
        name: format!("{redis_id}-name"),
        region: region.to_owned(),
        password: password.map(str::to_owned),
        status,
        backups,
        ..SeedInstance::default()
    }
}

fn config(restore_duration: Duration) -> SandboxConfig {
    let credential = |secret_id: &str, secret_key: &str, token: Option<&str>| SandboxCredential {
        secret_id: secret_id.to_owned(),
        secret_key: secret_key.to_owned(),
        token: token.map(str::to_owned),
    };
    SandboxConfig {
        credentials: vec![credential(ID, KEY, None), credential(TEMP_ID, TEMP_KEY, Some(TOKEN))],
        instances: vec![
            instance(
                "crs-main",
                "ap-guangzhou",
                Some(PASSWORD),
                2,
                vec![
                    backup("b-ok", 2, 0),
                    backup("b-expired", -1, 0),
                    backup("b-locked", 2, 1),
                    backup("b-busy", 1, 0),
                ],
            ),
            instance("crs-other", "ap-guangzhou", Some("other"), 2, vec![backup("b-other", 2, 0)]),
            instance("crs-shanghai", "ap-shanghai", Some("p"), 2, vec![backup("b-sh", 2, 0)]),
            instance("crs-isolated", "ap-guangzhou", Some("p"), -2, vec![backup("b-iso", 2, 0)]),
            instance("crs-nopass", "ap-guangzhou", None, 2, vec![backup("b-np", 2, 0)]),
            SeedInstance {
                type_id: 15,
                second_level_backup: Some(SecondLevelSeed {
                    started_secs_ago: 86_400,
                    missing: vec![SeedGap { from_secs_ago: 7200, to_secs_ago: 3600 }],
                }),
                ..instance("crs-redis62", "ap-shanghai", Some("Redis-62-pass"), 2, vec![backup("b-62", 2, 0)])
            },
        ],
        restore_duration,
        clone_duration: std::time::Duration::from_millis(600),
        timestamp_tolerance_secs: 300,
    }
}

async fn start() -> Sandbox {
    start_with(Duration::from_millis(300)).await
}

async fn start_with(restore_duration: Duration) -> Sandbox {
    let addr = "127.0.0.1:0".parse().expect("loopback address");
    spawn(config(restore_duration), addr).await.expect("sandbox starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

fn now() -> i64 {
    auth::now_unix()
}

fn nonce() -> String {
    (u64::from(rand::random::<u32>()) + 1).to_string()
}

/// A v2 request before signing: the common parameters plus the action's own.
fn v2_params(action: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = vec![
        ("Action".into(), action.into()),
        ("Region".into(), "ap-guangzhou".into()),
        ("SecretId".into(), ID.into()),
        ("Timestamp".into(), now().to_string()),
        ("Nonce".into(), nonce()),
    ];
    params.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    params
}

fn set(params: &mut [(String, String)], name: &str, value: &str) {
    if let Some(slot) = params.iter_mut().find(|(k, _)| k == name) {
        slot.1 = value.to_owned();
    }
}

fn v2_sign(params: &mut Vec<(String, String)>, http_method: &str, key: &str) {
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let method = SignatureMethod::from_request_param(
        params.iter().find(|(k, _)| k == "SignatureMethod").map(|(_, v)| v.as_str()),
    );
    let sts = v2_string_to_sign(http_method, "127.0.0.1", "/v2/index.php", &pairs);
    let signature = v2_signature(key.as_bytes(), method, &sts);
    params.push(("Signature".into(), signature));
}

fn encode(params: &[(String, String)]) -> String {
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    form_encode(&pairs)
}

/// The body of a JSON answer, which must say exactly `application/json` (Tencent's SDKs ignore
/// `Response.Error` under anything else, e.g. with a `; charset=utf-8` suffix).
async fn json_answer(response: reqwest::Response) -> Value {
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = response.text().await.expect("body");
    assert_eq!(content_type.as_deref(), Some("application/json"), "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn v2_post_raw(sb: &Sandbox, url: &str, params: &[(String, String)]) -> Value {
    let response = client()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(params))
        .send()
        .await
        .expect("sent");
    let _ = sb;
    json_answer(response).await
}

async fn v2_post(sb: &Sandbox, params: &[(String, String)]) -> Value {
    v2_post_raw(sb, &sb.endpoint_v2(), params).await
}

async fn v2(sb: &Sandbox, action: &str, extra: &[(&str, &str)]) -> Value {
    let mut params = v2_params(action, extra);
    v2_sign(&mut params, "POST", KEY);
    v2_post(sb, &params).await
}

async fn v2_restore(sb: &Sandbox, redis_id: &str, password: &str, backup_id: &str) -> Value {
    let extra = [("redisId", redis_id), ("password", password), ("backupId", backup_id)];
    v2(sb, "RestoreInstance", &extra).await
}

/// `code` arrives as a number or, on DescribeRedis, as a string.
fn code(v: &Value) -> i64 {
    match &v["code"] {
        Value::Number(n) => n.as_i64().unwrap_or(-1),
        Value::String(s) => s.parse().unwrap_or(-1),
        other => panic!("no code in {other}"),
    }
}

struct V3Request<'a> {
    action: &'a str,
    body: String,
    secret_id: &'a str,
    key: &'a str,
    token: Option<&'a str>,
    timestamp: i64,
    signed_content_type: &'a str,
    sent_content_type: &'a str,
    version: &'a str,
    region: &'a str,
}

impl<'a> V3Request<'a> {
    fn new(action: &'a str, body: Value) -> Self {
        Self {
            action,
            body: body.to_string(),
            secret_id: ID,
            key: KEY,
            token: None,
            timestamp: now(),
            signed_content_type: "application/json",
            sent_content_type: "application/json",
            version: "2018-04-12",
            region: "ap-guangzhou",
        }
    }

    fn authorization(&self, host: &str) -> String {
        let signature = tc3_sign(
            self.key.as_bytes(),
            &Tc3Input {
                http_method: "POST",
                query: "",
                content_type: self.signed_content_type,
                host,
                payload: self.body.as_bytes(),
                service: "redis",
                timestamp: self.timestamp,
            },
        );
        signature.authorization(self.secret_id, "redis")
    }

    async fn send_with_authorization(&self, sb: &Sandbox, authorization: &str) -> Value {
        let mut request = client()
            .post(sb.endpoint_v3())
            .header("content-type", self.sent_content_type)
            .header("authorization", authorization)
            .header("x-tc-action", self.action)
            .header("x-tc-timestamp", self.timestamp.to_string())
            .header("x-tc-version", self.version)
            .header("x-tc-region", self.region)
            .body(self.body.clone());
        if let Some(token) = self.token {
            request = request.header("x-tc-token", token);
        }
        let value = json_answer(request.send().await.expect("sent")).await;
        assert!(value["Response"]["RequestId"].is_string(), "{value}");
        value["Response"].clone()
    }

    async fn send(&self, sb: &Sandbox) -> Value {
        let authorization = self.authorization(&sb.addr().to_string());
        self.send_with_authorization(sb, &authorization).await
    }
}

async fn v3(sb: &Sandbox, action: &str, body: Value) -> Value {
    V3Request::new(action, body).send(sb).await
}

async fn v3_in(sb: &Sandbox, region: &'static str, action: &str, body: Value) -> Value {
    let mut request = V3Request::new(action, body);
    request.region = region;
    request.send(sb).await
}

fn v3_error(response: &Value) -> &str {
    response["Error"]["Code"].as_str().unwrap_or("<no error>")
}

#[tokio::test]
async fn a_signed_v2_restore_starts_a_task_and_locks_the_instance() {
    let sb = start().await;
    let first = v2_restore(&sb, "crs-main", PASSWORD, "b-ok").await;
    assert_eq!(first, json!({"code": 0, "message": "", "codeDesc": "Success", "data": {"requestId": 375074}}));
    let second = v2_restore(&sb, "crs-main", PASSWORD, "b-ok").await;
    assert_eq!((code(&second), second["codeDesc"].as_str()), (10707, Some("InstanceLockedError")));
    assert_eq!(sb.restores_started("crs-main"), 1);
    assert_eq!(sb.total_restores_started(), 1);
    assert_eq!(sb.calls("RestoreInstance"), 2);
}

#[tokio::test]
async fn a_v2_request_with_a_wrong_signature_answers_4100() {
    let sb = start().await;
    let mut params = v2_params("DescribeRedis", &[]);
    v2_sign(&mut params, "POST", "not-the-key");
    assert_eq!(code(&v2_post(&sb, &params).await), 4100);
    // Signed as GET but sent as POST: the method is part of the string to sign.
    let mut params = v2_params("DescribeRedis", &[]);
    v2_sign(&mut params, "GET", KEY);
    assert_eq!(code(&v2_post(&sb, &params).await), 4100);
    assert_eq!(sb.calls("DescribeRedis"), 2);
    // The answer explains the mismatch without echoing the signed password.
    let mut params =
        v2_params("RestoreInstance", &[("redisId", "crs-main"), ("password", PASSWORD), ("backupId", "b-ok")]);
    v2_sign(&mut params, "POST", "not-the-key");
    let answer = v2_post(&sb, &params).await;
    assert_eq!(code(&answer), 4100);
    assert!(!answer.to_string().contains("12D3E"), "{answer}");
    assert_eq!(sb.total_restores_started(), 0);
}

#[tokio::test]
async fn a_v2_request_with_a_stale_timestamp_answers_4500() {
    let sb = start().await;
    let mut params = v2_params("DescribeRedis", &[]);
    set(&mut params, "Timestamp", &(now() - 301).to_string());
    v2_sign(&mut params, "POST", KEY);
    assert_eq!(code(&v2_post(&sb, &params).await), 4500);
}

#[tokio::test]
async fn a_reused_v2_nonce_answers_4500() {
    let sb = start().await;
    let mut params = v2_params("RestoreInstance", &[("redisId", "crs-nopass"), ("backupId", "b-np")]);
    v2_sign(&mut params, "POST", KEY);
    assert_eq!(code(&v2_post(&sb, &params).await), 0);
    let replay = v2_post(&sb, &params).await;
    assert_eq!((code(&replay), replay["codeDesc"].as_str()), (4500, Some("SignatureExpire")));
    assert_eq!(sb.restores_started("crs-nopass"), 1);
}

#[tokio::test]
async fn a_password_in_the_v2_query_string_is_refused_with_4000() {
    let sb = start().await;
    let mut params =
        v2_params("RestoreInstance", &[("redisId", "crs-main"), ("password", PASSWORD), ("backupId", "b-ok")]);
    v2_sign(&mut params, "POST", KEY);
    let url = format!("{}?password=x", sb.endpoint_v2());
    let answer = v2_post_raw(&sb, &url, &params).await;
    assert_eq!(code(&answer), 4000);
    assert!(answer["message"].as_str().unwrap_or_default().contains("URL"), "{answer}");
    assert_eq!(sb.total_restores_started(), 0);
}

#[tokio::test]
async fn v2_common_parameter_and_credential_errors_use_their_codes() {
    let sb = start().await;
    let mut params = v2_params("DescribeRedis", &[]);
    params.retain(|(k, _)| k != "Nonce");
    v2_sign(&mut params, "POST", KEY);
    assert_eq!(code(&v2_post(&sb, &params).await), 4000);

    let mut params = v2_params("DescribeRedis", &[]);
    set(&mut params, "SecretId", "AKIDunknown");
    v2_sign(&mut params, "POST", KEY);
    assert_eq!(code(&v2_post(&sb, &params).await), 4104);

    let unknown = v2(&sb, "DeleteInstance", &[]).await;
    assert_eq!(code(&unknown), 4000);
}

#[tokio::test]
async fn hmac_sha256_get_requests_are_verified_and_describe_redis_sends_string_codes() {
    let sb = start().await;
    let mut params = v2_params(
        "DescribeRedis",
        &[("SignatureMethod", "HmacSHA256"), ("redisId", "crs-main"), ("limit", "10"), ("offset", "0")],
    );
    v2_sign(&mut params, "GET", KEY);
    let url = format!("{}?{}", sb.endpoint_v2(), encode(&params));
    let text = client().get(url).send().await.expect("sent").text().await.expect("body");
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(answer["code"], json!("0"), "{answer}");
    assert_eq!(answer["totalCount"], json!(1));
    let redis = &answer["data"]["redisSet"][0];
    assert_eq!((redis["redisId"].as_str(), redis["status"].as_str()), (Some("crs-main"), Some("2")));
    assert_eq!(redis["regionId"], json!(1));
}

#[tokio::test]
async fn restore_with_a_wrong_password_answers_10712() {
    let sb = start().await;
    let answer = v2_restore(&sb, "crs-main", "wrong", "b-ok").await;
    assert_eq!((code(&answer), answer["codeDesc"].as_str()), (10712, Some("PasswordError")));
    assert_eq!(sb.total_restores_started(), 0);
}

#[tokio::test]
async fn each_restore_precondition_answers_its_documented_code() {
    let sb = start().await;
    sb.set_instance_status("crs-other", 1);
    let cases: [(&str, &str, &str, i64); 11] = [
        ("crs-main", PASSWORD, "", 11201),
        ("crs-nothere", PASSWORD, "b-ok", 10701),
        ("crs-shanghai", "p", "b-sh", 10701),
        ("crs-isolated", "p", "b-iso", 10702),
        ("crs-other", "other", "b-other", 10702),
        ("crs-main", "", "b-ok", 10712),
        ("crs-main", PASSWORD, "b-nothere", 11213),
        ("crs-main", PASSWORD, "b-other", 11213),
        ("crs-main", PASSWORD, "b-expired", 10711),
        ("crs-main", PASSWORD, "b-locked", 10710),
        ("crs-main", PASSWORD, "b-busy", 10710),
    ];
    for (redis_id, password, backup_id, expected) in cases {
        let mut extra = vec![("redisId", redis_id), ("backupId", backup_id)];
        if !password.is_empty() {
            extra.push(("password", password));
        }
        let answer = v2(&sb, "RestoreInstance", &extra).await;
        assert_eq!(code(&answer), expected, "{redis_id} {backup_id}: {answer}");
    }
    assert_eq!(sb.total_restores_started(), 0);
}

#[tokio::test]
async fn a_fault_is_consumed_once_and_only_by_its_action() {
    let sb = start().await;
    sb.inject(Fault::error("DescribeTaskInfo", "InternalError"));
    sb.inject(Fault::error("RestoreInstance", "InternalError"));
    let faulted = v2_restore(&sb, "crs-main", PASSWORD, "b-ok").await;
    assert_eq!((code(&faulted), faulted["codeDesc"].as_str()), (5100, Some("InternalError")));
    assert_eq!(sb.total_restores_started(), 0);
    let real = v2_restore(&sb, "crs-main", PASSWORD, "b-ok").await;
    assert_eq!(code(&real), 0);
    let task = v2(&sb, "DescribeTaskInfo", &[("requestId", "375074")]).await;
    assert_eq!(code(&task), 5100);
    let task = v2(&sb, "DescribeTaskInfo", &[("requestId", "375074")]).await;
    assert_eq!(code(&task), 0);
}

#[tokio::test]
async fn an_unknown_fault_name_answers_99999_in_v2_and_the_name_in_v3() {
    let sb = start().await;
    sb.inject(Fault { action: None, kind: FaultKind::Error { name: "RequestLimitExceeded".into() }, times: 2 });
    let answer = v2(&sb, "DescribeRedis", &[]).await;
    assert_eq!((code(&answer), answer["codeDesc"].as_str()), (99999, Some("RequestLimitExceeded")));
    let answer = v3(&sb, "DescribeInstances", json!({})).await;
    assert_eq!(v3_error(&answer), "RequestLimitExceeded");
    let answer = v3(&sb, "DescribeInstances", json!({})).await;
    assert!(answer.get("Error").is_none(), "{answer}");
}

#[tokio::test]
async fn a_delayed_response_still_starts_the_restore() {
    let sb = start().await;
    sb.inject(Fault {
        action: Some("RestoreInstance".into()),
        kind: FaultKind::DelayResponse(Duration::from_millis(800)),
        times: 1,
    });
    let mut params =
        v2_params("RestoreInstance", &[("redisId", "crs-main"), ("password", PASSWORD), ("backupId", "b-ok")]);
    v2_sign(&mut params, "POST", KEY);
    let outcome = client()
        .post(sb.endpoint_v2())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&params))
        .timeout(Duration::from_millis(150))
        .send()
        .await;
    assert!(outcome.is_err_and(|e| e.is_timeout()));
    assert_eq!(sb.restores_started("crs-main"), 1);
}

#[tokio::test]
async fn transport_faults_answer_with_a_status_an_html_page_half_a_json_or_nothing() {
    let sb = start().await;
    for kind in [FaultKind::HttpStatus(503), FaultKind::Html, FaultKind::TruncatedJson, FaultKind::CloseConnection] {
        sb.inject(Fault { action: Some("DescribeInstances".into()), kind, times: 1 });
    }
    let send = || async {
        let request = V3Request::new("DescribeInstances", json!({}));
        let authorization = request.authorization(&sb.addr().to_string());
        client()
            .post(sb.endpoint_v3())
            .header("content-type", "application/json")
            .header("authorization", authorization)
            .header("x-tc-action", "DescribeInstances")
            .header("x-tc-timestamp", request.timestamp.to_string())
            .header("x-tc-version", "2018-04-12")
            .body(request.body)
            .send()
            .await
    };
    let status = send().await.expect("answered");
    assert_eq!(status.status().as_u16(), 503);
    let html = send().await.expect("answered");
    assert_eq!(html.status().as_u16(), 200);
    assert!(html.text().await.expect("body").starts_with("<html>"));
    let half = send().await.expect("answered").text().await.expect("body");
    assert!(half.starts_with("{\"Response\"") && serde_json::from_str::<Value>(&half).is_err(), "{half}");
    assert!(send().await.is_err(), "the connection should close without an answer");
    let normal = send().await.expect("answered").text().await.expect("body");
    assert!(normal.contains("InstanceSet"), "{normal}");
    assert_eq!(sb.calls("DescribeInstances"), 5);
}

#[tokio::test]
async fn a_signed_v3_restore_succeeds_with_an_integer_task_id() {
    let sb = start().await;
    let body = json!({"InstanceId": "crs-main", "BackupId": "b-ok", "Password": PASSWORD});
    let answer = v3(&sb, "RestoreInstance", body.clone()).await;
    assert_eq!(answer["TaskId"], json!(375074), "{answer}");
    let again = v3(&sb, "RestoreInstance", body).await;
    assert_eq!(v3_error(&again), "ResourceUnavailable.InstanceLockedError");
    let wrong =
        v3(&sb, "RestoreInstance", json!({"InstanceId": "crs-other", "BackupId": "b-other", "Password": "nope"})).await;
    assert_eq!(v3_error(&wrong), "InvalidParameterValue.PasswordError");
}

#[tokio::test]
async fn a_password_free_instance_restores_without_a_password_over_v3() {
    let sb = start().await;
    let answer = v3(&sb, "RestoreInstance", json!({"InstanceId": "crs-nopass", "BackupId": "b-np"})).await;
    assert!(answer["TaskId"].is_u64(), "{answer}");
    let missing = v3(&sb, "RestoreInstance", json!({"InstanceId": "crs-other", "BackupId": "b-other"})).await;
    assert_eq!(v3_error(&missing), "InvalidParameterValue.PasswordError");
}

#[tokio::test]
async fn a_v3_request_with_a_wrong_signature_answers_signature_failure() {
    let sb = start().await;
    let mut request = V3Request::new("DescribeInstances", json!({}));
    request.key = "not-the-key";
    assert_eq!(v3_error(&request.send(&sb).await), "AuthFailure.SignatureFailure");
    // Signed for a body other than the one sent.
    let request = V3Request::new("DescribeInstances", json!({}));
    let authorization = request.authorization(&sb.addr().to_string());
    let tampered = V3Request { body: json!({"Limit": 1}).to_string(), ..request };
    let answer = tampered.send_with_authorization(&sb, &authorization).await;
    assert_eq!(v3_error(&answer), "AuthFailure.SignatureFailure");
}

#[tokio::test]
async fn a_v3_signature_covers_the_content_type_exactly_as_sent() {
    let sb = start().await;
    let mut request = V3Request::new("DescribeInstances", json!({}));
    request.sent_content_type = "application/json; charset=utf-8";
    assert_eq!(v3_error(&request.send(&sb).await), "AuthFailure.SignatureFailure");
    request.signed_content_type = "application/json; charset=utf-8";
    assert!(request.send(&sb).await.get("Error").is_none());
}

#[tokio::test]
async fn a_v3_token_must_match_the_temporary_credential() {
    let sb = start().await;
    let mut request = V3Request::new("DescribeInstances", json!({}));
    request.secret_id = TEMP_ID;
    request.key = TEMP_KEY;
    request.token = Some("stale-token");
    assert_eq!(v3_error(&request.send(&sb).await), "AuthFailure.TokenFailure");
    request.token = None;
    assert_eq!(v3_error(&request.send(&sb).await), "AuthFailure.TokenFailure");
    request.token = Some(TOKEN);
    assert!(request.send(&sb).await.get("Error").is_none());
}

#[tokio::test]
async fn v3_authentication_failures_use_their_documented_codes() {
    let sb = start().await;
    let request = V3Request::new("DescribeInstances", json!({}));
    let malformed = request.send_with_authorization(&sb, "TC3-HMAC-SHA256 Signature=abc").await;
    assert_eq!(v3_error(&malformed), "AuthFailure.InvalidAuthorization");

    let mut request = V3Request::new("DescribeInstances", json!({}));
    request.secret_id = "AKIDunknown";
    assert_eq!(v3_error(&request.send(&sb).await), "AuthFailure.SecretIdNotFound");

    let mut request = V3Request::new("DescribeInstances", json!({}));
    request.timestamp = now() - 600;
    assert_eq!(v3_error(&request.send(&sb).await), "AuthFailure.SignatureExpire");

    let mut request = V3Request::new("DescribeInstances", json!({}));
    request.version = "2017-03-12";
    assert_eq!(v3_error(&request.send(&sb).await), "NoSuchVersion");

    let unknown = v3(&sb, "DeleteInstance", json!({})).await;
    assert_eq!(v3_error(&unknown), "InvalidAction");
}

#[tokio::test]
async fn task_status_progresses_from_preparing_to_succeed_or_failed() {
    // Phases are time-based: poll for each one with generous bounds instead of fixed sleeps, so
    // a loaded machine slows the test down but cannot make it fail.
    let sb = start_with(Duration::from_millis(3000)).await;
    let task = v2_restore(&sb, "crs-main", PASSWORD, "b-ok").await["data"]["requestId"].to_string();
    sb.fail_next_task("crs-nopass");
    let failing = v3(&sb, "RestoreInstance", json!({"InstanceId": "crs-nopass", "BackupId": "b-np"})).await;
    let failing_id = failing["TaskId"].clone();

    let v2_status = || async { v2(&sb, "DescribeTaskInfo", &[("requestId", &task)]).await["data"]["status"].as_i64() };
    let first = v2_status().await;
    assert!(matches!(first, Some(0 | 1)), "a new task is preparing or running: {first:?}");
    let mut seen = vec![first];
    for _ in 0..200 {
        let s = v2_status().await;
        if seen.last() != Some(&s) {
            seen.push(s);
        }
        if s == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen.last(), Some(&Some(2)), "the task ends succeeded: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "phases only move forward: {seen:?}");
    assert!(seen.contains(&Some(1)), "the task is running at some point: {seen:?}");

    let mut failed = Value::Null;
    for _ in 0..200 {
        failed = v3(&sb, "DescribeTaskInfo", json!({"TaskId": failing_id})).await;
        if failed["Status"] == json!("failed") {
            break;
        }
        assert!(matches!(failed["Status"].as_str(), Some("preparing" | "running")), "{failed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failed["Status"], json!("failed"), "{failed}");
    assert_eq!(failed["InstanceId"], json!("crs-nopass"));
    assert!(!failed["TaskMessage"].as_str().unwrap_or_default().is_empty());

    let unknown = v2(&sb, "DescribeTaskInfo", &[("requestId", "1")]).await;
    assert_eq!(code(&unknown), 11201);
    // The lock ends with the task: a new restore may start.
    assert_eq!(code(&v2_restore(&sb, "crs-main", PASSWORD, "b-ok").await), 0);
}

#[tokio::test]
async fn backup_and_instance_lists_paginate_in_both_versions() {
    let sb = start().await;
    let page = v2(&sb, "GetRedisBackupList", &[("redisId", "crs-main"), ("limit", "2"), ("offset", "2")]).await;
    assert_eq!(code(&page), 0);
    assert_eq!(page["totalCount"], json!(4));
    let ids: Vec<&str> = page["data"]["redisBackupSet"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["backupId"].as_str())
        .collect();
    assert_eq!(ids, ["b-locked", "b-busy"]);
    assert_eq!(page["data"]["redisBackupSet"][0]["locked"], json!(1));

    let page = v3(&sb, "DescribeInstanceBackups", json!({"InstanceId": "crs-main", "Limit": 3, "Offset": 3})).await;
    assert_eq!(page["TotalCount"], json!(4));
    assert_eq!(page["BackupSet"][0]["BackupId"], json!("b-busy"));
    assert_eq!(page["BackupSet"][0]["BackupType"], json!("1"));

    let instances = v3(&sb, "DescribeInstances", json!({"Limit": 2, "Offset": 0})).await;
    assert_eq!(instances["TotalCount"], json!(4), "ap-guangzhou only: {instances}");
    assert_eq!(instances["InstanceSet"].as_array().map(Vec::len), Some(2));
    assert_eq!(instances["InstanceSet"][0]["Status"], json!(2));

    // Each action's own documented maximum: 1000 instances, 100 backups.
    let most = v3(&sb, "DescribeInstances", json!({"Limit": 1000})).await;
    assert_eq!(most["TotalCount"], json!(4), "{most}");
    let too_big = v3(&sb, "DescribeInstances", json!({"Limit": 1001})).await;
    assert_eq!(v3_error(&too_big), "InvalidParameter.InvalidParameter");
    let most = v3(&sb, "DescribeInstanceBackups", json!({"InstanceId": "crs-main", "Limit": 100})).await;
    assert_eq!(most["TotalCount"], json!(4), "{most}");
    let too_big = v3(&sb, "DescribeInstanceBackups", json!({"InstanceId": "crs-main", "Limit": 101})).await;
    assert_eq!(v3_error(&too_big), "InvalidParameter.InvalidParameter");
}

#[tokio::test]
async fn the_control_plane_hides_passwords_and_steers_the_sandbox() {
    let sb = start().await;
    let base = format!("http://{}", sb.addr());
    let state = client().get(format!("{base}/_sandbox/state")).send().await.expect("sent").text().await.expect("body");
    assert!(state.contains("crs-main") && !state.contains(PASSWORD) && !state.contains("\"other\""));

    let fault = json!({"action": "RestoreInstance", "kind": {"error": "BackupLockedError"}, "times": 1});
    let queued = client().post(format!("{base}/_sandbox/faults")).body(fault.to_string()).send().await.expect("sent");
    assert_eq!(queued.status().as_u16(), 200);
    assert_eq!(code(&v2_restore(&sb, "crs-main", PASSWORD, "b-ok").await), 10710);

    let bad =
        client().post(format!("{base}/_sandbox/faults")).body(r#"{"kind": "explode"}"#).send().await.expect("sent");
    assert_eq!(bad.status().as_u16(), 400);

    let changed = client()
        .post(format!("{base}/_sandbox/instances/crs-main/password"))
        .body(r#"{"password": "rotated"}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(changed.status().as_u16(), 200);
    assert_eq!(code(&v2_restore(&sb, "crs-main", PASSWORD, "b-ok").await), 10712);
    assert_eq!(code(&v2_restore(&sb, "crs-main", "rotated", "b-ok").await), 0);

    sb.set_password("crs-other", None);
    let answer = v3(&sb, "RestoreInstance", json!({"InstanceId": "crs-other", "BackupId": "b-other"})).await;
    assert!(answer["TaskId"].is_u64(), "{answer}");
}

#[tokio::test]
async fn a_shut_down_sandbox_stops_accepting_connections() {
    let sb = start().await;
    sb.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(client().get(format!("http://{}/_sandbox/state", sb.addr())).send().await.is_err());
}

fn clone_body(extra: Value) -> Value {
    let mut body = json!({
        "InstanceId": "crs-redis62", "GoodsNum": 1, "ZoneId": 100003, "BillingMode": 0, "Period": 1,
        "SecurityGroupIdList": ["sg-sandbox1"], "BackupId": "b-62", "VpcId": "vpc-sandbox1",
        "SubnetId": "subnet-sandbox1", "InstanceName": "redis62-restored-202612010941", "Password": "Clone-pass-1",
        "ResourceTags": [{"TagKey": "crs-restore:delivery", "TagValue": "msg_1"}],
    });
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    body
}

#[tokio::test]
async fn an_edition_after_2_8_is_refused_in_place_as_a_backup_spec_error() {
    let sb = start().await;
    let refused = v3_in(
        &sb,
        "ap-shanghai",
        "RestoreInstance",
        json!({"InstanceId": "crs-redis62", "BackupId": "b-62", "Password": "Redis-62-pass"}),
    )
    .await;
    assert_eq!(v3_error(&refused), "ResourceUnavailable.BackupSpecError");
    assert_eq!(sb.restores_started("crs-redis62"), 0);
}

#[tokio::test]
async fn a_clone_is_a_new_tagged_instance_that_becomes_running_and_leaves_the_source_alone() {
    let sb = start().await;
    let deal = v3_in(&sb, "ap-shanghai", "CloneInstances", clone_body(json!({}))).await;
    assert_eq!(v3_error(&deal), "<no error>", "{deal}");
    let id = deal["InstanceIds"][0].as_str().expect("a new instance id").to_owned();
    assert!(deal["DealId"].is_string() && id.starts_with("crs-") && id.len() == 12, "{deal}");
    assert_eq!(sb.clones_started("crs-redis62"), 1);

    let by_tag = json!({"InstanceTags": [{"TagKey": "crs-restore:delivery", "TagValue": "msg_1"}]});
    let found = v3_in(&sb, "ap-shanghai", "DescribeInstances", by_tag).await;
    assert_eq!(found["TotalCount"], json!(1), "{found}");
    let clone = &found["InstanceSet"][0];
    assert_eq!((clone["InstanceId"].as_str(), clone["Status"].as_i64()), (Some(id.as_str()), Some(0)));
    assert_eq!((clone["Type"].as_i64(), clone["UniqSubnetId"].as_str()), (Some(15), Some("subnet-sandbox1")));
    assert_eq!(clone["InstanceName"], "redis62-restored-202612010941");
    let none = v3_in(&sb, "ap-shanghai", "DescribeInstances", json!({"TagKeys": ["no-such-key"]})).await;
    assert_eq!(none["TotalCount"], json!(0));

    tokio::time::sleep(Duration::from_millis(700)).await;
    let by_ids = v3_in(&sb, "ap-shanghai", "DescribeInstances", json!({"InstanceIds": [id, "crs-redis62"]})).await;
    assert_eq!(by_ids["TotalCount"], json!(2));
    assert!(by_ids["InstanceSet"].as_array().expect("set").iter().all(|i| i["Status"] == json!(2)));
    let source = v3_in(&sb, "ap-shanghai", "DescribeInstances", json!({"InstanceId": "crs-redis62"})).await;
    assert_eq!(source["InstanceSet"][0]["InstanceTags"], json!([]), "the source is untouched");
}

#[tokio::test]
async fn a_clone_is_refused_for_what_tencent_checks_and_buys_nothing() {
    let sb = start().await;
    let cases = [
        (json!({"Password": "short"}), "InvalidParameterValue.PasswordRuleError"),
        (json!({"Password": null}), "InvalidParameterValue.PasswordEmpty"),
        (json!({"SecurityGroupIdList": ["sg-nope"]}), "InvalidParameterValue.SecurityGroupIdsNotExists"),
        (json!({"SubnetId": "subnet-nope"}), "InvalidParameterValue.InvalidSubnetId"),
        (json!({"BackupId": "b-nope"}), "InvalidParameterValue.BackupNotExists"),
        (json!({"BillingMode": 0, "Period": 3}), "InvalidParameter.InvalidParameter"),
        (json!({"CloneTime": "2026-12-01T09:41:00Z"}), "InvalidParameterValue.CheckNotPass"),
    ];
    for (extra, code) in cases {
        let answer = v3_in(&sb, "ap-shanghai", "CloneInstances", clone_body(extra.clone())).await;
        assert_eq!(v3_error(&answer), code, "{extra}");
    }
    sb.inject(Fault::error("CloneInstances", "FailedOperation.PayFailed"));
    let unpaid = v3_in(&sb, "ap-shanghai", "CloneInstances", clone_body(json!({}))).await;
    assert_eq!(v3_error(&unpaid), "FailedOperation.PayFailed");
    assert_eq!(sb.clones_started("crs-redis62"), 0);
    assert!(sb.clones_of("crs-redis62").is_empty());
}

#[tokio::test]
async fn second_level_backup_reports_its_start_and_gaps_and_clones_to_a_covered_second() {
    let sb = start().await;
    let at = now() - 1800;
    let info = v3_in(
        &sb,
        "ap-shanghai",
        "DescribeSecondLevelBackupInfo",
        json!({"InstanceId": "crs-redis62", "BackupTimestamp": at}),
    )
    .await;
    assert!(info["BackupId"].is_string(), "{info}");
    assert_eq!(info["MissingTimestamps"].as_array().map(Vec::len), Some(1));
    assert!(info["StartTimestamp"].as_i64().is_some_and(|s| s < at));
    let off = v3(&sb, "DescribeSecondLevelBackupInfo", json!({"InstanceId": "crs-main", "BackupTimestamp": at})).await;
    assert_eq!(v3_error(&off), "FailedOperation.UnSupportError");

    let beijing = |t: i64| config::beijing_time(time::OffsetDateTime::from_unix_timestamp(t).expect("time"));
    let covered = clone_body(json!({"BackupId": info["BackupId"], "CloneTime": beijing(at)}));
    assert_eq!(v3_error(&v3_in(&sb, "ap-shanghai", "CloneInstances", covered).await), "<no error>");
    let in_gap = clone_body(json!({"BackupId": info["BackupId"], "CloneTime": beijing(now() - 5400)}));
    assert_eq!(
        v3_error(&v3_in(&sb, "ap-shanghai", "CloneInstances", in_gap).await),
        "InvalidParameterValue.CheckNotPass"
    );
}

#[tokio::test]
async fn the_price_is_quoted_in_hundredths_and_security_groups_are_listed_per_instance() {
    let sb = start().await;
    let price = v3(
        &sb,
        "InquiryPriceCreateInstance",
        json!({"TypeId": 15, "MemSize": 1024, "GoodsNum": 1, "Period": 1, "BillingMode": 0, "ZoneId": 100003}),
    )
    .await;
    assert_eq!((price["AmountUnit"].as_str(), price["Currency"].as_str()), (Some("pent"), Some("CNY")));
    assert_eq!(price["HighPrecisionPrice"].as_f64(), Some(20.0));
    let bad = v3(&sb, "InquiryPriceCreateInstance", json!({"TypeId": 15, "MemSize": 1000})).await;
    assert_eq!(v3_error(&bad), "InvalidParameterValue.SpecNotExist");
    let groups = v3(&sb, "DescribeInstanceSecurityGroup", json!({"InstanceIds": ["crs-main"]})).await;
    let detail = &groups["InstanceSecurityGroupsDetail"][0];
    assert_eq!(detail["InstanceId"], "crs-main");
    assert_eq!(detail["SecurityGroupDetails"][0]["SecurityGroupId"], "sg-sandbox1");
}
