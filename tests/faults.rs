//! Faults in every dependency, through the real handler on loopback: Secrets Manager and
//! DynamoDB (a scriptable fake AWS endpoint), Tencent (the CRS sandbox's injected faults and a
//! hand-written misbehaving server) and callback receivers. For each: the documented status and
//! error code, one audit line, no panic, at most one RestoreInstance (counted at the server), and
//! no secret in any log line.
//!
//! With `CRS_FAULT_MATRIX=<file>` set, every scenario appends one JSON line (scenario, API,
//! status, code, RestoreInstance calls, audit outcome); `scripts/reliability-matrix.sh` renders
//! them into RELIABILITY.md. No moto needed.

mod common;
#[path = "common/fake_aws.rs"]
mod fake_aws;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::*;
use crs_restore::callback::{CallbackClient, RetryPolicy};
use crs_restore::config::Config;
use crs_restore::idempotency::Store;
use crs_restore::metrics::MetricsSink;
use crs_restore::sandbox::{self, Fault, FaultKind, Sandbox};
use crs_restore::state::{AppState, http_client, local_dynamodb_client, local_secrets_client};
use crs_restore::tencent::ApiVersion;
use fake_aws::{Answer, FakeAws};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Log capture: one global subscriber for the binary; lines are told apart by request or delivery id.

fn capture() -> &'static common::logs::LogCapture {
    common::logs::LogCapture::global()
}

fn log_lines() -> Vec<Value> {
    capture().text().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Every secret value the rigs hold, as it could appear in a log line.
fn assert_no_secret_in_logs() {
    let logs = capture().text();
    let whsec = |k: &str| k.trim_start_matches("whsec_").to_owned();
    for secret in [
        PASSWORD.to_owned(),
        "12D3E%40%21r5ed".to_owned(),
        TENCENT_SECRET_KEY.to_owned(),
        whsec(KEY_RUNBOOKS),
        whsec(KEY_DRILLS),
        whsec(CALLBACK_KEY),
        MALFORMED_MARKER.to_owned(),
    ] {
        let hit = logs.lines().find(|l| l.contains(secret.as_str()));
        assert!(hit.is_none(), "secret {secret:?} leaked in: {}", hit.unwrap_or_default());
    }
}

/// Planted inside malformed secrets: must never be echoed.
const MALFORMED_MARKER: &str = "m4lformed-s3cret-value";

// ---------------------------------------------------------------------------------------------
// The function, wired to fakes

struct Rig {
    api: ApiVersion,
    aws: FakeAws,
    sandbox: Sandbox,
    state: Arc<AppState>,
}

#[derive(Default)]
struct Setup {
    env: Vec<(&'static str, String)>,
    secrets_endpoint: Option<String>,
    dynamodb: Option<String>,
    callback_retry: Option<RetryPolicy>,
}

impl Setup {
    fn env(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        self.env.push((name, value.into()));
        self
    }
}

async fn rig(api: ApiVersion, setup: impl FnOnce(&mut Setup, &FakeAws, &Sandbox)) -> Rig {
    capture();
    let aws = FakeAws::start().await;
    aws.put_secret("keys", &default_signing_keys().to_string());
    aws.put_secret("tencent", &json!({"secretId": TENCENT_SECRET_ID, "secretKey": TENCENT_SECRET_KEY}).to_string());
    aws.put_secret(&format!("instances/{REDIS_ID}"), PASSWORD);
    let sandbox = sandbox::spawn(sandbox_config(), "127.0.0.1:0".parse().expect("addr")).await.expect("sandbox");
    let mut s = Setup::default();
    s.env("SIGNING_KEYS_SECRET_ID", "keys")
        .env("TENCENT_CREDENTIALS_SECRET_ID", "tencent")
        .env("INSTANCE_PASSWORD_SECRET_PREFIX", "instances/")
        .env("TENCENT_REGION", "ap-guangzhou")
        .env("TENCENT_API_VERSION", api.as_str())
        .env(
            "TENCENT_ENDPOINT",
            match api {
                ApiVersion::V2 => sandbox.endpoint_v2(),
                ApiVersion::V3 => sandbox.endpoint_v3(),
            },
        );
    setup(&mut s, &aws, &sandbox);
    // Later entries win, so a setup can override the defaults above.
    let env = s.env;
    let config = Config::from_lookup(|n| env.iter().rev().find(|(k, _)| *k == n).map(|(_, v)| v.clone()))
        .expect("valid configuration");
    let secrets = local_secrets_client(s.secrets_endpoint.as_deref().unwrap_or(&aws.url()));
    let mut state = AppState::new(config, secrets, http_client().expect("http")).expect("state");
    state = state.with_metrics(MetricsSink::Capture(Arc::default()));
    if let Some(endpoint) = s.dynamodb {
        let store = Store::dynamodb(local_dynamodb_client(&endpoint), "idem".into(), Duration::from_secs(86_400));
        state = state.with_idempotency(store);
    }
    if let Some(retry) = s.callback_retry {
        state.callback = CallbackClient::new(state.config.callback_policy.clone(), retry).expect("callback client");
    }
    Rig { api, aws, sandbox, state: Arc::new(state) }
}

/// One observed outcome: a row of the reliability matrix.
#[derive(Debug)]
struct Row {
    status: u16,
    code: String,
    body: Value,
    restore_calls: usize,
    audit: String,
    elapsed: Duration,
}

static REQUESTS: AtomicUsize = AtomicUsize::new(0);

impl Rig {
    /// Sends `event` through the handler, checks its audit line, and records the row.
    async fn attempt(&self, group: &str, scenario: &str, event: Value) -> Row {
        let row = self.send(scenario, event).await;
        record(group, scenario, Some(self.api), &row, "");
        row
    }

    /// [`Rig::attempt`] without recording a matrix row (the caller records a fuller one).
    async fn send(&self, scenario: &str, mut event: Value) -> Row {
        let request_id = format!("fault-{}-{}", std::process::id(), REQUESTS.fetch_add(1, Ordering::Relaxed));
        event["requestContext"]["requestId"] = request_id.clone().into();
        let started = Instant::now();
        let reply = to_reply(crs_restore::handler::handle_event(&self.state, event).await);
        let elapsed = started.elapsed();
        let audits: Vec<Value> = log_lines()
            .into_iter()
            .filter(|l| l["target"] == "crs_restore::audit" && l["request_id"] == request_id.as_str())
            .collect();
        assert_eq!(audits.len(), 1, "{scenario}: exactly one audit line, got {audits:?}");
        let audit = &audits[0];
        assert_eq!(audit["status"], reply.status, "{scenario}: audit status");
        assert_eq!(audit["error_code"].as_str().unwrap_or(""), reply.code(), "{scenario}: audit error code");
        let restore_calls = self.sandbox.calls("RestoreInstance");
        assert!(restore_calls <= 1, "{scenario}: {restore_calls} RestoreInstance calls");
        Row {
            status: reply.status,
            code: reply.code().to_owned(),
            body: reply.body.clone(),
            restore_calls,
            audit: audit["outcome"].as_str().unwrap_or_default().to_owned(),
            elapsed,
        }
    }

    async fn restore(&self, group: &str, scenario: &str) -> Row {
        self.attempt(group, scenario, signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS)).await
    }
}

/// Appends a row to `$CRS_FAULT_MATRIX` (JSON lines) when set.
fn record(group: &str, scenario: &str, api: Option<ApiVersion>, row: &Row, note: &str) {
    let Ok(path) = std::env::var("CRS_FAULT_MATRIX") else { return };
    let line = json!({
        "group": group,
        "scenario": scenario,
        "api": api.map_or("any", ApiVersion::as_str),
        "status": row.status,
        "code": row.code,
        "restoreCalls": row.restore_calls,
        "audit": row.audit,
        "note": note,
    });
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("matrix file");
    writeln!(file, "{line}").expect("matrix row");
}

fn expect(row: &Row, status: u16, code: &str, scenario: &str) {
    assert_eq!((row.status, row.code.as_str()), (status, code), "{scenario}: {:?}", row.body);
}

fn apis() -> [ApiVersion; 2] {
    [ApiVersion::V2, ApiVersion::V3]
}

// ---------------------------------------------------------------------------------------------
// Secrets Manager

#[tokio::test]
async fn secrets_manager_refusing_connections_is_503_and_nothing_is_restored() {
    let r = rig(ApiVersion::V3, |s, _, _| s.secrets_endpoint = Some(closed_port_url())).await;
    let row = r.restore("Secrets Manager", "connection refused").await;
    expect(&row, 503, "SecretsUnavailable", "refused");
    assert_eq!(row.restore_calls, 0);
    assert_no_secret_in_logs();
}

#[tokio::test]
async fn secrets_manager_slower_than_the_sdk_timeouts_is_503_within_the_operation_timeout() {
    let r = rig(ApiVersion::V3, |_, aws, _| aws.script("GetSecretValue", Answer::Sleep(Duration::from_secs(30)))).await;
    let row = r.restore("Secrets Manager", "no answer for 30 s (past the 3 s attempt / 8 s total timeouts)").await;
    expect(&row, 503, "SecretsUnavailable", "slow");
    assert!(row.elapsed < Duration::from_secs(10), "bounded by the 8 s operation timeout: {:?}", row.elapsed);
    assert_eq!(row.restore_calls, 0);
    assert_no_secret_in_logs();
}

#[tokio::test]
async fn secrets_manager_throttling_500_and_unreadable_answers_are_503_after_bounded_retries() {
    let cases = [
        ("ThrottlingException (HTTP 400)", Answer::throttling()),
        ("HTTP 500 InternalServiceError", Answer::aws_error(500, "InternalServiceError", "oops")),
        ("HTTP 503 with a plain-text body", Answer::status(503)),
        ("AccessDeniedException (IAM)", Answer::aws_error(400, "AccessDeniedException", "not authorized")),
        ("DecryptionFailure (KMS)", Answer::aws_error(400, "DecryptionFailure", "kms")),
        (
            "HTTP 200 with a body that is not JSON",
            Answer::Raw { status: 200, content_type: "application/x-amz-json-1.1", body: "<html>".into() },
        ),
    ];
    for (scenario, answer) in cases {
        let r = rig(ApiVersion::V3, |_, aws, _| aws.script("GetSecretValue", answer)).await;
        let row = r.restore("Secrets Manager", scenario).await;
        expect(&row, 503, "SecretsUnavailable", scenario);
        assert!(
            (1..=3).contains(&r.aws.calls("GetSecretValue")),
            "{scenario}: {} calls",
            r.aws.calls("GetSecretValue")
        );
        assert_eq!(row.restore_calls, 0);
    }
    assert_no_secret_in_logs();
}

#[tokio::test]
async fn a_missing_secret_is_503_secret_not_found_for_each_of_the_three() {
    for (secret, scenario) in [
        ("keys", "signing keys secret missing"),
        ("tencent", "Tencent API keys secret missing"),
        ("instances/crs-izbob1wh", "instance password secret missing"),
    ] {
        let r = rig(ApiVersion::V3, |_, aws, _| aws.delete_secret(secret)).await;
        let row = r.restore("Secrets Manager", scenario).await;
        expect(&row, 503, "SecretNotFound", scenario);
        assert!(
            row.body["error"]["message"].as_str().is_some_and(|m| m.contains(secret)),
            "{scenario}: names the secret"
        );
        assert_eq!(row.restore_calls, 0);
    }
    assert_no_secret_in_logs();
}

#[tokio::test]
async fn secrets_that_are_not_json_or_the_wrong_shape_are_500_secret_malformed_without_their_value() {
    let m = MALFORMED_MARKER;
    let cases: Vec<(&str, &str, String)> = vec![
        ("keys", "signing keys secret not JSON", format!("keys={m}")),
        ("keys", "signing keys secret of the wrong shape", json!({"keys": {"id": "a", "secret": m}}).to_string()),
        (
            "keys",
            "signing key too short",
            json!({"keys": [{"id": "a", "secret": "whsec_bTRsZm9y", "allow": ["*"]}]}).to_string(),
        ),
        (
            "keys",
            "signing key without an allow list",
            json!({"keys": [{"id": "a", "secret": KEY_RUNBOOKS}], "x": m}).to_string(),
        ),
        ("tencent", "Tencent API keys secret not JSON", format!("AKID:{m}")),
        ("tencent", "Tencent API keys of the wrong shape", json!({"secretId": "AKID", "secretKey": [m]}).to_string()),
        ("instances/crs-izbob1wh", "instance password of the wrong shape", json!({"pass": m}).to_string()),
    ];
    for (secret, scenario, value) in cases {
        let r = rig(ApiVersion::V3, |_, aws, _| aws.put_secret(secret, &value)).await;
        let row = r.restore("Secrets Manager", scenario).await;
        expect(&row, 500, "SecretMalformed", scenario);
        assert!(!row.body.to_string().contains(m), "{scenario}: the answer echoes the secret");
        assert_eq!(row.restore_calls, 0);
    }
    let r = rig(ApiVersion::V3, |_, aws, _| aws.put_binary_secret("tencent", m.as_bytes())).await;
    let row = r.restore("Secrets Manager", "secret stored as SecretBinary").await;
    expect(&row, 500, "SecretMalformed", "binary");
    assert_no_secret_in_logs();
}

// ---------------------------------------------------------------------------------------------
// Tencent

#[tokio::test]
async fn tencent_refusing_connections_is_502_and_nothing_was_sent() {
    for api in apis() {
        let endpoint = match api {
            ApiVersion::V2 => format!("{}/v2/index.php", closed_port_url()),
            ApiVersion::V3 => closed_port_url(),
        };
        let r = rig(api, |s, _, _| {
            s.env("TENCENT_ENDPOINT", endpoint);
        })
        .await;
        let row = r.restore("Tencent", "connection refused (the request was not sent)").await;
        expect(&row, 502, "TencentUnreachable", "refused");
        assert!(!row.body["error"]["message"].as_str().unwrap_or_default().contains("may have started"));
    }
    assert_no_secret_in_logs();
}

#[tokio::test]
async fn a_tencent_timeout_after_sending_is_reconciled_under_api_3_and_504_then_outcome_unknown_under_api_2() {
    for api in apis() {
        let r = rig(api, |s, _, _| {
            s.env("TENCENT_TIMEOUT_SECONDS", "1");
        })
        .await;
        r.sandbox.inject(Fault {
            action: Some("RestoreInstance".into()),
            kind: FaultKind::DelayResponse(Duration::from_secs(3)),
            times: 1,
        });
        let event = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
        let row = r.attempt("Tencent", "no answer within TENCENT_TIMEOUT_SECONDS after sending", event.clone()).await;
        assert_eq!((row.restore_calls, r.sandbox.total_restores_started()), (1, 1), "the restore did start");
        let again = r.attempt("Tencent", "the same delivery again after a timeout", event).await;
        if api == ApiVersion::V3 {
            // API 3.0's task list shows the one task started since the claim: it is the answer.
            expect(&row, 202, "", "timeout, reconciled");
            assert_eq!(row.body["reconciled"], true);
            expect(&again, 202, "", "duplicate of a reconciled delivery");
            assert_eq!((again.body["replayed"].as_bool(), &again.body["taskId"]), (Some(true), &row.body["taskId"]));
        } else {
            expect(&row, 504, "TencentTimeout", "timeout");
            expect(&again, 409, "OutcomeUnknown", "duplicate");
        }
        assert_eq!(again.restore_calls, 1, "never a second RestoreInstance");
    }
    assert_no_secret_in_logs();
}

#[tokio::test]
async fn a_connection_cut_after_sending_is_502_outcome_unknown_and_never_resent() {
    for api in apis() {
        let r = rig(api, |_, _, _| {}).await;
        r.sandbox.inject(Fault { action: Some("RestoreInstance".into()), kind: FaultKind::CloseConnection, times: 1 });
        let event = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
        let row = r.attempt("Tencent", "connection closed without an answer after sending", event.clone()).await;
        expect(&row, 502, "TencentConnectionLost", "cut");
        assert!(row.body["error"]["message"].as_str().unwrap_or_default().contains("may have started"));
        let again = r.attempt("Tencent", "the same delivery again after a cut connection", event).await;
        expect(&again, 409, "OutcomeUnknown", "duplicate");
        assert_eq!(again.restore_calls, 1);
    }
    assert_no_secret_in_logs();
}

#[tokio::test]
async fn broken_tencent_answers_are_502_and_restore_once_at_most() {
    for api in apis() {
        for (scenario, kind, code) in [
            ("HTTP 500", FaultKind::HttpStatus(500), "TencentHttpError"),
            ("HTTP 502 from a gateway", FaultKind::HttpStatus(502), "TencentHttpError"),
            ("HTTP 429", FaultKind::HttpStatus(429), "TencentHttpError"),
            ("HTML instead of JSON", FaultKind::Html, "TencentMalformedResponse"),
            ("truncated JSON", FaultKind::TruncatedJson, "TencentMalformedResponse"),
            ("unknown error code", FaultKind::Error { name: "SomethingNew".into() }, "SomethingNew"),
        ] {
            let r = rig(api, |_, _, _| {}).await;
            r.sandbox.inject(Fault { action: Some("RestoreInstance".into()), kind, times: 1 });
            let row = r.restore("Tencent", scenario).await;
            expect(&row, 502, code, scenario);
            assert_eq!(row.restore_calls, 1, "{scenario}");
        }
    }
    assert_no_secret_in_logs();
}

/// A status and public error code.
type Expected = (u16, &'static str);

/// Every error the sandbox knows (its table follows Tencent's documentation): the answer under
/// API 2.0, then under API 3.0.
const DOCUMENTED: &[(&str, Expected, Expected)] = &[
    ("InvalidParameter", (422, "InvalidParameter"), (422, "InvalidParameter")),
    ("InstanceNotExists", (404, "InstanceNotExists"), (404, "InstanceNotExists")),
    ("InstanceLockedError", (409, "InstanceLockedError"), (409, "InstanceLockedError")),
    ("InstanceStatusAbnormal", (409, "InstanceStatusAbnormal"), (409, "InstanceStatusAbnormal")),
    ("BackupStatusAbnormal", (409, "BackupStatusAbnormal"), (409, "BackupStatusAbnormal")),
    ("BackupLockedError", (409, "BackupLockedError"), (409, "BackupLockedError")),
    ("PasswordError", (502, "PasswordError"), (502, "PasswordError")),
    ("BackupNotExists", (404, "BackupNotExists"), (404, "BackupNotExists")),
    ("AuthFailure", (502, "TencentAuthFailure"), (502, "TencentAuthFailure")),
    ("SecretIdNotFound", (502, "TencentAuthFailure"), (502, "TencentAuthFailure")),
    ("SignatureExpire", (502, "TencentAuthFailure"), (502, "TencentAuthFailure")),
    ("InternalError", (502, "InternalError"), (502, "InternalError.InternalError")),
    ("MissingParameter", (422, "InvalidParameter"), (422, "InvalidParameter")),
    ("MalformedRequest", (422, "InvalidParameter"), (422, "InvalidParameter")),
    // API 2.0 answers these with the generic 4000, which reads as a parameter error.
    ("InvalidAction", (422, "InvalidParameter"), (502, "InvalidAction")),
    ("NoSuchVersion", (422, "InvalidParameter"), (502, "NoSuchVersion")),
    ("InvalidAuthorization", (502, "TencentAuthFailure"), (502, "TencentAuthFailure")),
    ("TokenFailure", (502, "TencentAuthFailure"), (502, "TencentAuthFailure")),
];

#[tokio::test]
async fn every_documented_tencent_error_gets_its_status_and_code_with_one_restore_call() {
    for api in apis() {
        for (name, v2, v3) in DOCUMENTED {
            let (status, code) = if api == ApiVersion::V2 { *v2 } else { *v3 };
            let r = rig(api, |_, _, _| {}).await;
            r.sandbox.inject(Fault::error("RestoreInstance", name));
            let row = r.restore("Tencent error codes", name).await;
            expect(&row, status, code, name);
            assert!(!row.body["error"]["tencentCode"].is_null(), "{name}: carries Tencent's code");
            // A rejected password or API key is re-read once; unchanged, it is not resent.
            assert_eq!((row.restore_calls, r.sandbox.total_restores_started()), (1, 0), "{name}");
        }
    }
    assert_no_secret_in_logs();
}

/// A Tencent stand-in that answers every request with one fixed body, and counts the
/// RestoreInstance requests among them (reads such as a task list lookup are not restores).
async fn fixed_tencent(body: &'static str) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, request: axum::body::Bytes| {
        let v3 = headers.get("x-tc-action").is_some_and(|a| a == "RestoreInstance");
        let v2 = String::from_utf8_lossy(&request).contains("Action=RestoreInstance");
        if v2 || v3 {
            seen.fetch_add(1, Ordering::Relaxed);
        }
        async move { ([("content-type", "application/json")], body) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

#[tokio::test]
async fn a_restore_that_tencent_accepted_without_a_task_id_is_never_sent_twice() {
    for (api, body) in [
        (ApiVersion::V2, r#"{"code":0,"message":"","codeDesc":"Success","data":{}}"#),
        (ApiVersion::V3, r#"{"Response":{"RequestId":"r-1"}}"#),
    ] {
        let (url, sent) = fixed_tencent(body).await;
        let endpoint = if api == ApiVersion::V2 { format!("{url}v2/index.php") } else { url };
        let r = rig(api, |s, _, _| {
            s.env("TENCENT_ENDPOINT", endpoint);
        })
        .await;
        let event = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
        let mut first = r.send("success without a task id", event.clone()).await;
        first.restore_calls = sent.load(Ordering::Relaxed);
        record("Tencent", "RestoreInstance answered success without a task id", Some(api), &first, "");
        expect(&first, 502, "TencentMalformedResponse", "no task id");
        assert!(first.body["error"]["message"].as_str().unwrap_or_default().contains("may have started"));
        let mut again = r.send("the same delivery again", event).await;
        again.restore_calls = sent.load(Ordering::Relaxed);
        record("Tencent", "the same delivery again after a success without a task id", Some(api), &again, "");
        expect(&again, 409, "OutcomeUnknown", "duplicate");
        assert_eq!(again.restore_calls, 1, "Tencent said the restore started: never send it again");
    }
    assert_no_secret_in_logs();
}

#[tokio::test]
async fn tencent_credentials_that_cannot_be_sent_are_a_configuration_error_not_an_unknown_outcome() {
    let r = rig(ApiVersion::V3, |_, aws, _| {
        aws.put_secret("tencent", &json!({"secretId": "AKID\nX", "secretKey": TENCENT_SECRET_KEY}).to_string());
    })
    .await;
    let event = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
    let row = r.attempt("Tencent", "secretId with a newline (not a valid header value)", event.clone()).await;
    assert_eq!(row.restore_calls, 0, "nothing reached Tencent");
    assert!(
        row.status == 500 || row.code == "TencentUnreachable",
        "not sent, so not 'may have started': {:?}",
        row.body
    );
    let again = r.attempt("Tencent", "the same delivery again", event).await;
    assert_ne!(again.code, "OutcomeUnknown");
}

// ---------------------------------------------------------------------------------------------
// DynamoDB (the idempotency store)

#[tokio::test]
async fn an_unreachable_slow_throttled_or_failing_idempotency_store_fails_closed_with_503() {
    let closed = rig(ApiVersion::V3, |s, _, _| s.dynamodb = Some(closed_port_url())).await;
    let row = closed.restore("DynamoDB", "connection refused").await;
    expect(&row, 503, "IdempotencyUnavailable", "refused");
    assert_eq!(row.restore_calls, 0);
    let cases = [
        (
            "ProvisionedThroughputExceededException",
            Answer::aws_error(
                400,
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "slow down",
            ),
        ),
        ("ThrottlingException", Answer::throttling()),
        (
            "HTTP 500 InternalServerError",
            Answer::aws_error(500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "oops"),
        ),
        (
            "ResourceNotFoundException (no table)",
            Answer::aws_error(400, "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "no table"),
        ),
        ("AccessDeniedException (IAM)", Answer::aws_error(400, "AccessDeniedException", "not authorized")),
    ];
    for (scenario, answer) in cases {
        let r = rig(ApiVersion::V3, |s, aws, _| {
            aws.script("PutItem", answer);
            s.dynamodb = Some(aws.url());
        })
        .await;
        let row = r.restore("DynamoDB", scenario).await;
        expect(&row, 503, "IdempotencyUnavailable", scenario);
        assert_eq!(row.restore_calls, 0, "{scenario}: fails closed");
    }
    // The claim met an existing record, which then cannot be read.
    let r = rig(ApiVersion::V3, |s, aws, _| {
        aws.script(
            "PutItem",
            Answer::aws_error(400, "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "exists"),
        );
        aws.script("GetItem", Answer::aws_error(500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "oops"));
        s.dynamodb = Some(aws.url());
    })
    .await;
    let row = r.restore("DynamoDB", "record exists but cannot be read").await;
    expect(&row, 503, "IdempotencyUnavailable", "read");
    assert_eq!(row.restore_calls, 0);
    assert_no_secret_in_logs();
}

#[tokio::test]
async fn a_slow_idempotency_store_is_503_within_the_operation_timeout() {
    let r = rig(ApiVersion::V3, |s, aws, _| {
        aws.script("PutItem", Answer::Sleep(Duration::from_secs(30)));
        s.dynamodb = Some(aws.url());
    })
    .await;
    let row = r.restore("DynamoDB", "no answer for 30 s (past the 3 s attempt / 8 s total timeouts)").await;
    expect(&row, 503, "IdempotencyUnavailable", "slow");
    assert!(row.elapsed < Duration::from_secs(10), "{:?}", row.elapsed);
    assert_eq!(row.restore_calls, 0);
}

#[tokio::test]
async fn a_store_that_fails_after_the_restore_still_answers_202_and_logs_it() {
    let r = rig(ApiVersion::V3, |s, aws, _| {
        aws.script(
            "UpdateItem",
            Answer::aws_error(500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "oops"),
        );
        s.dynamodb = Some(aws.url());
    })
    .await;
    let event = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
    let delivery = event["headers"]["webhook-id"].as_str().expect("id").to_owned();
    let row = r.attempt("DynamoDB", "recording the outcome fails after the restore started", event).await;
    expect(&row, 202, "", "recorded");
    assert_eq!((row.restore_calls, r.sandbox.total_restores_started()), (1, 1));
    let logged = log_lines()
        .into_iter()
        .any(|l| l["level"] == "ERROR" && l["key"].as_str().is_some_and(|k| k.ends_with(&delivery)));
    assert!(logged, "the failure to record is logged with the delivery's key");
    assert_no_secret_in_logs();
}

// ---------------------------------------------------------------------------------------------
// Callback receivers

/// Waits (bounded) for the asynchronous job's audit line of `delivery`.
async fn job_audit(delivery: &str) -> Value {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let found = log_lines()
            .into_iter()
            .find(|l| l["target"] == "crs_restore::audit" && l["phase"] == "job" && l["delivery_id"] == delivery);
        if let Some(line) = found {
            return line;
        }
        assert!(Instant::now() < end, "no job audit line for {delivery}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A receiver that answers nothing for `delay`, and counts requests.
async fn slow_receiver(delay: Duration) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let app = axum::Router::new().fallback(move || {
        seen.fetch_add(1, Ordering::Relaxed);
        async move {
            tokio::time::sleep(delay).await;
            "late"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hooks/restore", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

#[tokio::test]
async fn a_refused_slow_or_failing_callback_receiver_never_causes_a_second_restore() {
    let failing = Receiver::start(CALLBACK_KEY, &[500; 20]).await;
    let (slow_url, slow_hits) = slow_receiver(Duration::from_secs(5)).await;
    let cases = [
        ("receiver refuses connections", format!("{}/hooks/restore", closed_port_url())),
        ("receiver slower than the attempt timeout", slow_url),
        ("receiver always answers 500", failing.url()),
    ];
    for (scenario, url) in cases {
        let r = rig(ApiVersion::V3, |s, _, _| {
            s.env("CALLBACK_ALLOW_LOOPBACK", "true");
            s.callback_retry = Some(RetryPolicy {
                base: Duration::from_millis(10),
                max_attempts: 3,
                attempt_timeout: Duration::from_millis(300),
            });
        })
        .await;
        let body = json!({"redisId": REDIS_ID, "backupId": BACKUP_ID, "callbackUrl": url}).to_string();
        let event = signed_event(&body, KEY_RUNBOOKS);
        let delivery = event["headers"]["webhook-id"].as_str().expect("id").to_owned();
        let mut row = r.send(scenario, event).await;
        expect(&row, 202, "", scenario);
        let job = job_audit(&delivery).await;
        assert_eq!(job["outcome"], "started", "{scenario}: {job}");
        let callback = job["callback"].as_str().unwrap_or_default().to_owned();
        assert!(callback.contains("restore.started failed after 3 attempt(s)"), "{scenario}: {callback}");
        // The job may still be retrying its last attempt: give it time to do anything wrong.
        tokio::time::sleep(Duration::from_millis(400)).await;
        row.restore_calls = r.sandbox.calls("RestoreInstance");
        assert_eq!((row.restore_calls, r.sandbox.total_restores_started()), (1, 1), "{scenario}");
        row.audit = format!("accepted; job: {}", job["outcome"].as_str().unwrap_or_default());
        record("Callbacks", scenario, Some(ApiVersion::V3), &row, &callback);
    }
    assert_eq!(failing.received().len(), 3, "three attempts, then the delivery is given up");
    assert_eq!(slow_hits.load(Ordering::Relaxed), 3);
    assert_no_secret_in_logs();
}

// ---------------------------------------------------------------------------------------------
// The secret cache under concurrency.

#[tokio::test]
async fn a_refetch_after_a_rejection_never_takes_a_read_that_started_before_it_asked() {
    use crs_restore::payload::RedisId;
    use crs_restore::secrets::{InstancePassword, SecretIds, Secrets, SecretsClient};

    let aws = FakeAws::start().await;
    aws.put_secret("pw/crs-izbob1wh", "old-password");
    let ids = SecretIds {
        signing_keys: "keys".into(),
        tencent_credentials: "tencent".into(),
        instance_password_prefix: "pw/".into(),
    };
    let client = SecretsClient::new(local_secrets_client(&aws.url()));
    let secrets = Arc::new(Secrets::new(client.clone(), ids, Duration::from_secs(300)));
    let redis = RedisId::parse("crs-izbob1wh").expect("id");
    let password = |p: &InstancePassword| match p {
        InstancePassword::Password(s) => s.expose().to_owned(),
        InstancePassword::PasswordFree => "(password-free)".to_owned(),
    };

    // A slow first read is in flight with the old value when the password is rotated ...
    aws.script("GetSecretValue", Answer::Late(Duration::from_secs(1)));
    let slow = tokio::spawn({
        let (secrets, redis) = (Arc::clone(&secrets), redis.clone());
        async move { secrets.instance_password(&redis, false).await }
    });
    let arrived = Instant::now() + Duration::from_secs(5);
    while aws.calls("GetSecretValue") == 0 && Instant::now() < arrived {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await; // the fake reads the value as the call arrives
    aws.put_secret("pw/crs-izbob1wh", "new-password");
    aws.script("GetSecretValue", Answer::Late(Duration::ZERO));
    // ... and Tencent rejects the old one, so the caller asks for a fresh read.
    let refreshed = secrets.instance_password(&redis, true).await.expect("refetched");
    let first = slow.await.expect("task").expect("first read");

    assert_eq!(password(&first), "old-password");
    assert_eq!(password(&refreshed), "new-password", "the refetch read again instead of sharing the older read");
    assert_eq!(client.fetch_count(), 2);
}
