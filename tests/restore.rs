//! The core restore path through the real Lambda handler, against the CRS sandbox and moto,
//! for both Tencent API generations.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use crs_restore::sandbox::{Fault, FaultKind};
use crs_restore::tencent::ApiVersion;
use serde_json::json;

for_both_apis! {
    async fn a_signed_request_starts_a_restore_and_returns_the_task_id(api: ApiVersion) {
        let h = Harness::new(api).await;
        let reply = h.invoke(signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS)).await;
        assert_eq!(reply.status, 202, "{:?}", reply.body);
        assert_eq!(reply.body["status"], "started");
        assert!(reply.body["taskId"].as_i64().is_some_and(|t| t >= 375074), "{:?}", reply.body);
        assert_eq!(reply.body["redisId"], REDIS_ID);
        assert_eq!(reply.body["backupId"], BACKUP_ID);
        assert_eq!(reply.body["region"], "ap-guangzhou");
        assert!(reply.body["deliveryId"].as_str().is_some_and(|d| d.starts_with("msg_it")));
        assert_eq!(h.sandbox.restores_started(REDIS_ID), 1);
    }

    async fn the_documented_fixture_body_restores_when_signed(api: ApiVersion) {
        let h = Harness::new(api).await;
        let body = fixture("function-url-restore.json")["body"].as_str().expect("body").to_owned();
        let reply = h.restore(&body).await;
        assert_eq!((reply.status, reply.body["region"].as_str()), (202, Some("ap-guangzhou")));
    }

    async fn a_base64_encoded_body_is_verified_on_its_decoded_bytes(api: ApiVersion) {
        use base64::Engine as _;
        let h = Harness::new(api).await;
        let body = restore_body(REDIS_ID, BACKUP_ID);
        let mut ev = fixture("function-url-restore-base64.json");
        let signed = signed_event(&body, KEY_RUNBOOKS);
        ev["headers"] = signed["headers"].clone();
        ev["body"] = base64::engine::general_purpose::STANDARD.encode(&body).into();
        assert_eq!(ev["isBase64Encoded"], true);
        let reply = h.invoke(ev).await;
        assert_eq!(reply.status, 202, "{:?}", reply.body);
    }

    async fn a_tampered_body_is_rejected_and_nothing_is_restored(api: ApiVersion) {
        let h = Harness::new(api).await;
        let mut ev = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
        ev["body"] = restore_body("crs-aaaaaaaa", BACKUP_ID).into();
        let reply = h.invoke(ev).await;
        assert_eq!((reply.status, reply.code()), (401, "InvalidSignature"));
        assert_eq!(h.restores(), 0);
    }

    async fn a_stale_or_future_timestamp_is_rejected_without_fetching_secrets(api: ApiVersion) {
        let h = Harness::new(api).await;
        let body = restore_body(REDIS_ID, BACKUP_ID);
        for ts in [now() - 301, now() + 301] {
            let reply = h.invoke(event_with(&body, KEY_RUNBOOKS, "msg_stale", ts)).await;
            assert_eq!((reply.status, reply.code()), (401, "StaleTimestamp"));
        }
        let reply = h.invoke(event_with(&body, KEY_RUNBOOKS, "msg_ms", now() * 1000)).await;
        assert_eq!((reply.status, reply.code()), (401, "StaleTimestamp"));
        assert_eq!(h.secrets_fetched(), 0);
        assert_eq!(h.restores(), 0);
    }

    async fn a_request_without_signature_headers_is_401(api: ApiVersion) {
        let h = Harness::new(api).await;
        let mut ev = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
        ev["headers"].as_object_mut().expect("headers").remove("webhook-signature");
        let reply = h.invoke(ev).await;
        assert_eq!((reply.status, reply.code()), (401, "MissingSignature"));
    }

    async fn rotated_keys_both_verify_until_the_old_one_is_removed(api: ApiVersion) {
        let h = Harness::builder(api).env("SECRETS_TTL_SECONDS", "0").build().await;
        let new_key = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
        let keys = json!({"keys": [
            {"id": "runbooks-2026", "secret": new_key, "allow": ["crs-*"]},
            {"id": "runbooks", "secret": KEY_RUNBOOKS, "allow": ["crs-*"]},
        ]});
        h.put_secret("signing-keys", &keys.to_string()).await;
        let body = |b| restore_body(REDIS_ID, b);
        assert_eq!(h.invoke(signed_event(&body(BACKUP_ID), new_key)).await.status, 202);
        // The instance is now locked by the first restore: the second still proves verification.
        assert_eq!(h.invoke(signed_event(&body(BACKUP_ID), KEY_RUNBOOKS)).await.code(), "InstanceLockedError");
        h.put_secret("signing-keys", &json!({"keys": [keys["keys"][0]]}).to_string()).await;
        let reply = h.invoke(signed_event(&body(BACKUP_ID), KEY_RUNBOOKS)).await;
        assert_eq!((reply.status, reply.code()), (401, "InvalidSignature"));
    }

    async fn a_key_may_only_restore_the_instances_its_allow_list_names(api: ApiVersion) {
        let h = Harness::new(api).await;
        let reply = h.invoke(signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_DRILLS)).await;
        assert_eq!((reply.status, reply.code()), (403, "InstanceNotAllowed"));
        assert_eq!(h.restores(), 0);
        // Authorization happens before the password or API keys are read.
        assert_eq!(h.secrets_fetched(), 1);
    }

    async fn invalid_payloads_name_the_field_and_restore_nothing(api: ApiVersion) {
        let h = Harness::new(api).await;
        let cases = [
            (r#"{"redisId": "crs-izbob1wh"}"#, "MissingField", "backupId"),
            (r#"{"redisId": "crs-IZBOB1WH", "backupId": "e824aecc-ef5e-11e6-a2c7-525400082493"}"#, "InvalidField", "redisId"),
            (r#"{"redisId": "crs-izbob1wh", "backupId": "nope"}"#, "InvalidField", "backupId"),
            (r#"{"redisId": "crs-izbob1wh", "backupId": "e824aecc-ef5e-11e6-a2c7-525400082493", "force": true}"#, "UnknownField", "force"),
            ("not json", "MalformedJson", "JSON"),
        ];
        for (body, code, mentions) in cases {
            let reply = h.restore(body).await;
            assert_eq!((reply.status, reply.code()), (400, code), "{body}");
            assert!(reply.body["error"]["message"].as_str().is_some_and(|m| m.contains(mentions)), "{:?}", reply.body);
            assert!(reply.body["deliveryId"].is_string());
        }
        assert_eq!(h.restores(), 0);
    }

    async fn without_a_default_region_the_request_must_name_one(api: ApiVersion) {
        let h = Harness::builder(api).env("TENCENT_REGION", "").build().await;
        let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!((reply.status, reply.code()), (400, "MissingField"));
        let with_region = json!({"redisId": REDIS_ID, "backupId": BACKUP_ID, "region": "ap-guangzhou"}).to_string();
        assert_eq!(h.restore(&with_region).await.status, 202);
    }

    async fn http_level_errors_have_their_statuses(api: ApiVersion) {
        let h = Harness::new(api).await;
        let body = restore_body(REDIS_ID, BACKUP_ID);
        let mut get = signed_event(&body, KEY_RUNBOOKS);
        get["requestContext"]["http"]["method"] = "GET".into();
        assert_eq!(h.invoke(get).await.status, 405);
        let mut form = signed_event(&body, KEY_RUNBOOKS);
        form["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
        assert_eq!(h.invoke(form).await.status, 415);
        let huge = format!(r#"{{"redisId":"{REDIS_ID}","pad":"{}"}}"#, "x".repeat(70_000));
        assert_eq!(h.invoke(signed_event(&huge, KEY_RUNBOOKS)).await.status, 413);
        let mut bad64 = signed_event(&body, KEY_RUNBOOKS);
        bad64["isBase64Encoded"] = true.into();
        bad64["body"] = "%%% not base64 %%%".into();
        let reply = h.invoke(bad64).await;
        assert_eq!((reply.status, reply.code()), (400, "InvalidBase64Body"));
        assert_eq!(h.restores(), 0);
    }

    async fn every_documented_tencent_error_maps_to_its_status(api: ApiVersion) {
        let h = Harness::new(api).await;
        let cases = [
            ("InstanceNotExists", 404, "InstanceNotExists"),
            ("BackupNotExists", 404, "BackupNotExists"),
            ("InstanceLockedError", 409, "InstanceLockedError"),
            ("BackupLockedError", 409, "BackupLockedError"),
            ("InstanceStatusAbnormal", 409, "InstanceStatusAbnormal"),
            ("BackupStatusAbnormal", 409, "BackupStatusAbnormal"),
            ("InvalidParameter", 422, "InvalidParameter"),
            ("AuthFailure", 502, "TencentAuthFailure"),
            ("SecretIdNotFound", 502, "TencentAuthFailure"),
            ("InternalError", 502, if api == ApiVersion::V2 { "InternalError" } else { "InternalError.InternalError" }),
            ("SomethingNew", 502, "SomethingNew"),
        ];
        for (name, status, code) in cases {
            h.sandbox.inject(Fault::error("RestoreInstance", name));
            let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
            assert_eq!((reply.status, reply.code()), (status, code), "{name}: {:?}", reply.body);
            assert!(!reply.body["error"]["tencentCode"].is_null(), "{name}");
        }
        assert_eq!(h.restores(), 0);
    }

    async fn real_instance_and_backup_states_produce_the_documented_errors(api: ApiVersion) {
        let h = Harness::new(api).await;
        h.put_secret("instances/crs-nothere1", "pw").await;
        let cases = [
            (restore_body("crs-nothere1", BACKUP_ID), 404, "InstanceNotExists"),
            (restore_body(REDIS_ID, "99999999-9999-4999-8999-999999999999"), 404, "BackupNotExists"),
            (restore_body(REDIS_ID, EXPIRED_BACKUP), 409, "BackupStatusAbnormal"),
            (restore_body(REDIS_ID, LOCKED_BACKUP), 409, "BackupLockedError"),
        ];
        for (body, status, code) in cases {
            let reply = h.restore(&body).await;
            assert_eq!((reply.status, reply.code()), (status, code), "{body}");
        }
        assert_eq!(h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await.status, 202);
        let again = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!((again.status, again.code()), (409, "InstanceLockedError"));
        h.sandbox.set_instance_status("crs-drill001", -2);
        h.put_secret("instances/crs-drill001", "drill-password-1").await;
        let isolated = h.restore(&restore_body("crs-drill001", "33333333-3333-4333-8333-333333333333")).await;
        assert_eq!((isolated.status, isolated.code()), (409, "InstanceStatusAbnormal"));
        assert_eq!(h.restores(), 1);
    }

    async fn a_rotated_password_is_refetched_once_and_the_restore_succeeds(api: ApiVersion) {
        let h = Harness::new(api).await;
        // Warm the cache with the old password through a request that fails before Tencent.
        h.sandbox.inject(Fault::error("RestoreInstance", "InstanceLockedError"));
        assert_eq!(h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await.status, 409);
        h.sandbox.set_password(REDIS_ID, Some("n3w-P@ssw0rd"));
        h.put_secret(&format!("instances/{REDIS_ID}"), r#"{"password": "n3w-P@ssw0rd"}"#).await;
        let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!(reply.status, 202, "{:?}", reply.body);
        assert_eq!(h.sandbox.calls("RestoreInstance"), 3);
        assert_eq!(h.restores(), 1);
    }

    async fn a_wrong_password_that_did_not_change_is_a_configuration_error_after_one_refetch(api: ApiVersion) {
        let h = Harness::new(api).await;
        h.put_secret(&format!("instances/{REDIS_ID}"), "wrong-password").await;
        let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!((reply.status, reply.code()), (502, "PasswordError"));
        assert!(reply.body["error"]["message"].as_str().is_some_and(|m| m.contains("configuration")));
        // One call, one refetch (same value), no second call.
        assert_eq!(h.sandbox.calls("RestoreInstance"), 1);
        assert_eq!(h.secrets_fetched(), 4);
    }

    async fn wrong_tencent_api_keys_are_reported_as_configuration_errors(api: ApiVersion) {
        let h = Harness::new(api).await;
        h.put_secret("tencent", &json!({"secretId": TENCENT_SECRET_ID, "secretKey": "not-the-key"}).to_string()).await;
        let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!((reply.status, reply.code()), (502, "TencentAuthFailure"));
        assert_eq!(h.sandbox.calls("RestoreInstance"), 1);
        assert_eq!(h.restores(), 0);
    }

    async fn rotated_tencent_api_keys_are_refetched_once(api: ApiVersion) {
        let h = Harness::new(api).await;
        // Warm the cache with keys Tencent refuses (the refetch finds the same ones: no retry).
        h.put_secret("tencent", &json!({"secretId": TENCENT_SECRET_ID, "secretKey": "old-key"}).to_string()).await;
        assert_eq!(h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await.status, 502);
        h.put_secret("tencent", &json!({"secretId": TENCENT_SECRET_ID, "secretKey": TENCENT_SECRET_KEY}).to_string()).await;
        let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!(reply.status, 202, "{:?}", reply.body);
        assert_eq!(h.restores(), 1);
    }

    async fn secrets_manager_down_is_503_and_nothing_is_restored(api: ApiVersion) {
        let h = Harness::builder(api).secrets_endpoint(closed_port_url()).build().await;
        let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!((reply.status, reply.code()), (503, "SecretsUnavailable"));
        assert_eq!(h.sandbox.calls("RestoreInstance"), 0);
    }

    async fn a_missing_secret_is_503_naming_the_secret(api: ApiVersion) {
        let h = Harness::new(api).await;
        h.put_secret("instances/crs-drill001", "drill-password-1").await;
        h.delete_secret(&format!("instances/{REDIS_ID}")).await;
        let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!((reply.status, reply.code()), (503, "SecretNotFound"));
        assert!(reply.body["error"]["message"].as_str().is_some_and(|m| m.contains(REDIS_ID)));
        let none = Harness::builder(api).without_secrets().build().await;
        assert_eq!(none.restore(&restore_body(REDIS_ID, BACKUP_ID)).await.code(), "SecretNotFound");
        assert_eq!(h.sandbox.calls("RestoreInstance") + none.sandbox.calls("RestoreInstance"), 0);
    }

    async fn a_malformed_secret_is_a_500_that_does_not_echo_its_value(api: ApiVersion) {
        let h = Harness::new(api).await;
        h.put_secret("tencent", r#"{"secretId": "AKID", "secretKey": ["hunter2-value"]}"#).await;
        let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!((reply.status, reply.code()), (500, "SecretMalformed"));
        assert!(!reply.body.to_string().contains("hunter2"));
    }

    async fn a_tencent_timeout_after_sending_is_504_and_never_retried(api: ApiVersion) {
        let h = Harness::builder(api).env("TENCENT_TIMEOUT_SECONDS", "1").build().await;
        h.sandbox.inject(Fault { action: Some("RestoreInstance".into()), kind: FaultKind::DelayResponse(Duration::from_secs(3)), times: 1 });
        // The task list cannot settle it either (reconciliation has its own tests in status.rs).
        h.sandbox.inject(Fault { action: Some("DescribeTaskList".into()), kind: FaultKind::HttpStatus(503), times: 1 });
        let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!((reply.status, reply.code()), (504, "TencentTimeout"));
        assert!(reply.body["error"]["message"].as_str().is_some_and(|m| m.contains("task list")));
        assert_eq!(h.sandbox.calls("RestoreInstance"), 1);
        assert_eq!(h.restores(), 1, "the restore did start: that is why the answer says to check the task list");
    }

    async fn tencent_unreachable_is_502_and_says_nothing_started(api: ApiVersion) {
        let endpoint = match api { ApiVersion::V2 => format!("{}/v2/index.php", closed_port_url()), ApiVersion::V3 => closed_port_url() };
        let h = Harness::builder(api).env("TENCENT_ENDPOINT", endpoint).build().await;
        let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!((reply.status, reply.code()), (502, "TencentUnreachable"));
    }

    async fn broken_tencent_answers_are_502(api: ApiVersion) {
        let h = Harness::new(api).await;
        for (kind, code) in [
            (FaultKind::HttpStatus(500), "TencentHttpError"),
            (FaultKind::Html, "TencentMalformedResponse"),
            (FaultKind::TruncatedJson, "TencentMalformedResponse"),
        ] {
            h.sandbox.inject(Fault { action: Some("RestoreInstance".into()), kind, times: 1 });
            let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
            assert_eq!((reply.status, reply.code()), (502, code));
        }
        assert_eq!(h.sandbox.calls("RestoreInstance"), 3);
    }

    async fn warm_invocations_within_the_ttl_fetch_no_secrets(api: ApiVersion) {
        let h = Harness::new(api).await;
        h.sandbox.inject(Fault { action: None, kind: FaultKind::Error { name: "InstanceLockedError".into() }, times: 5 });
        for _ in 0..5 {
            assert_eq!(h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await.status, 409);
        }
        // Signing keys, API keys, password: one fetch each, on the first invocation only.
        assert_eq!(h.secrets_fetched(), 3);
    }
}

#[tokio::test]
async fn a_password_free_instance_restores_under_api_3_and_is_a_configuration_error_under_api_2() {
    let body = restore_body("crs-pwfree01", "44444444-4444-4444-8444-444444444444");
    let v3 = Harness::new(ApiVersion::V3).await;
    v3.put_secret("instances/crs-pwfree01", r#"{"passwordFree": true}"#).await;
    assert_eq!(v3.restore(&body).await.status, 202);
    let v2 = Harness::new(ApiVersion::V2).await;
    v2.put_secret("instances/crs-pwfree01", r#"{"passwordFree": true}"#).await;
    let reply = v2.restore(&body).await;
    assert_eq!((reply.status, reply.code()), (500, "ConfigurationError"));
    assert_eq!(v2.sandbox.calls("RestoreInstance"), 0);
}

#[tokio::test]
async fn the_hmac_sha256_signature_method_is_accepted_by_the_sandbox() {
    let h = Harness::builder(ApiVersion::V2).env("TENCENT_SIGNATURE_METHOD", "HmacSHA256").build().await;
    assert_eq!(h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await.status, 202);
}

#[tokio::test]
async fn an_event_that_is_not_a_function_url_request_is_refused() {
    let h = Harness::new(ApiVersion::V2).await;
    let answer =
        crs_restore::handler::handle_event(&h.state, json!({"redisId": REDIS_ID, "backupId": BACKUP_ID})).await;
    assert_eq!(answer["error"]["code"], "UnrecognizedEvent");
    assert_eq!(h.restores(), 0);
}

#[tokio::test]
async fn temporary_credentials_send_their_token_under_api_3() {
    let h = Harness::builder(ApiVersion::V3)
        .sandbox(|s| s.credentials[0].token = Some("session-token-1".into()))
        .build()
        .await;
    let creds = |token: &str| {
        json!({"secretId": TENCENT_SECRET_ID, "secretKey": TENCENT_SECRET_KEY, "token": token}).to_string()
    };
    h.put_secret("tencent", &creds("wrong-token")).await;
    let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
    assert_eq!((reply.status, reply.code()), (502, "TencentAuthFailure"));
    assert_eq!(reply.body["error"]["tencentCode"], "AuthFailure.TokenFailure");
    // A refreshed token (temporary credentials rotate often) is picked up by the one re-read.
    h.put_secret("tencent", &creds("session-token-1")).await;
    assert_eq!(h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await.status, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_requests_share_one_fetch_of_each_secret() {
    let h = Harness::new(ApiVersion::V2).await;
    let redis = crs_restore::payload::RedisId::parse(REDIS_ID).expect("id");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (state, redis) = (Arc::clone(&h.state), redis.clone());
        tasks.spawn(async move {
            let keys = state.secrets.signing_keys().await.is_ok();
            let creds = state.secrets.tencent_credentials(false).await.is_ok();
            let password = state.secrets.instance_password(&redis, false).await.is_ok();
            keys && creds && password
        });
    }
    while let Some(ok) = tasks.join_next().await {
        assert!(ok.expect("task"));
    }
    assert_eq!(h.secrets_fetched(), 3, "one GetSecretValue per secret, however many asked at once");
    // A refresh still fetches: it is how a rotated password is picked up.
    assert!(h.state.secrets.instance_password(&redis, true).await.is_ok());
    assert_eq!(h.secrets_fetched(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callers_waiting_on_a_failed_fetch_share_its_failure_instead_of_fetching_again() {
    let h = Harness::new(ApiVersion::V2).await;
    h.delete_secret(&format!("instances/{REDIS_ID}")).await;
    let redis = crs_restore::payload::RedisId::parse(REDIS_ID).expect("id");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (state, redis) = (Arc::clone(&h.state), redis.clone());
        tasks.spawn(async move { state.secrets.instance_password(&redis, false).await.map(drop) });
    }
    let mut failures = 0;
    while let Some(outcome) = tasks.join_next().await {
        assert!(matches!(outcome.expect("task"), Err(crs_restore::secrets::SecretsError::NotFound { .. })));
        failures += 1;
    }
    assert_eq!(failures, 10);
    // Ten callers, but fewer fetches: those who were waiting while a fetch ran got its answer.
    assert!(h.secrets_fetched() < 10, "{} fetches", h.secrets_fetched());
    // A failure is not cached: the next request asks again.
    assert!(h.state.secrets.instance_password(&redis, false).await.is_err());
}
