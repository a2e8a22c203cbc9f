//! Callbacks, waiting for completion, "latest" and dry runs, through the real handler, against
//! the sandbox, moto and a loopback callback receiver, for both Tencent API generations.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::*;
use crs_restore::handler::handle_invocation;
use crs_restore::job::{ENVELOPE_KEY, Job};
use crs_restore::sandbox::SeedBackup;
use crs_restore::tencent::ApiVersion;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn body_with(extra: Value) -> String {
    let mut b = json!({"redisId": REDIS_ID, "backupId": BACKUP_ID, "reason": "callback test"});
    for (k, v) in extra.as_object().expect("object") {
        b[k] = v.clone();
    }
    b.to_string()
}

for_both_apis! {
    async fn a_callback_request_is_accepted_at_once_and_the_started_event_is_signed(api: ApiVersion) {
        let h = Harness::builder(api).for_callbacks().build().await;
        let rx = Receiver::start(CALLBACK_KEY, &[]).await;
        let reply = h.restore(&body_with(json!({"callbackUrl": rx.url()}))).await;
        assert_eq!(reply.status, 202, "{:?}", reply.body);
        assert_eq!(reply.body["status"], "accepted");
        let delivery = reply.body["deliveryId"].as_str().expect("deliveryId").to_owned();
        let got = rx.wait_for(1, WAIT).await;
        assert_eq!(got.len(), 1);
        assert!(got[0].verified, "signature verifies with an independent implementation");
        let ev = &got[0].event;
        assert_eq!(ev["type"], "restore.started");
        assert_eq!(ev["deliveryId"], delivery.as_str());
        assert_eq!(ev["redisId"], REDIS_ID);
        assert_eq!(ev["backupId"], BACKUP_ID);
        assert_eq!(ev["region"], "ap-guangzhou");
        assert!(ev["taskId"].as_i64().is_some() && ev["startedAt"].is_string());
        assert!(ev.get("error").is_none() && ev.get("finishedAt").is_none());
        assert_eq!(h.restores(), 1);
    }

    async fn a_receiver_failing_twice_gets_three_deliveries_with_one_webhook_id_and_one_restore(api: ApiVersion) {
        let h = Harness::builder(api).for_callbacks().build().await;
        let rx = Receiver::start(CALLBACK_KEY, &[503, 500]).await;
        assert_eq!(h.restore(&body_with(json!({"callbackUrl": rx.url()}))).await.status, 202);
        let got = rx.wait_for(3, WAIT).await;
        assert_eq!(got.iter().map(|r| r.answered).collect::<Vec<_>>(), [503, 500, 204]);
        assert!(got.iter().all(|r| r.webhook_id == got[0].webhook_id && r.verified));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(rx.received().len(), 3);
        assert_eq!(h.restores(), 1);
    }

    async fn a_receiver_that_always_fails_never_causes_a_second_restore(api: ApiVersion) {
        let h = Harness::builder(api).for_callbacks().build().await;
        let rx = Receiver::start(CALLBACK_KEY, &[500; 20]).await;
        assert_eq!(h.restore(&body_with(json!({"callbackUrl": rx.url()}))).await.status, 202);
        let got = rx.wait_for(6, WAIT).await;
        assert_eq!(got.len(), 6, "six attempts, then the delivery is given up");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(rx.received().len(), 6);
        assert_eq!(h.restores(), 1);
    }

    async fn a_client_error_from_the_receiver_is_not_retried(api: ApiVersion) {
        let h = Harness::builder(api).for_callbacks().build().await;
        let rx = Receiver::start(CALLBACK_KEY, &[410]).await;
        assert_eq!(h.restore(&body_with(json!({"callbackUrl": rx.url()}))).await.status, 202);
        rx.wait_for(1, WAIT).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(rx.received().len(), 1);
    }

    async fn waiting_reports_success_with_the_duration(api: ApiVersion) {
        let h = Harness::builder(api).for_callbacks().build().await;
        let rx = Receiver::start(CALLBACK_KEY, &[]).await;
        let body = body_with(json!({"callbackUrl": rx.url(), "waitForCompletion": true}));
        assert_eq!(h.restore(&body).await.status, 202);
        let got = rx.wait_for_kind("restore.succeeded", WAIT).await;
        let kinds: Vec<&str> = got.iter().filter_map(|r| r.event["type"].as_str()).collect();
        assert_eq!(kinds, ["restore.started", "restore.succeeded"]);
        let done = &got[1].event;
        assert!(done["durationSeconds"].as_u64().is_some() && done["finishedAt"].is_string());
        assert_eq!(done["taskId"], got[0].event["taskId"]);
        assert!(got[1].webhook_id != got[0].webhook_id);
        assert_eq!(h.restores(), 1);
    }

    async fn waiting_reports_a_failed_task(api: ApiVersion) {
        let h = Harness::builder(api).for_callbacks().build().await;
        h.sandbox.fail_next_task(REDIS_ID);
        let rx = Receiver::start(CALLBACK_KEY, &[]).await;
        let body = body_with(json!({"callbackUrl": rx.url(), "waitForCompletion": true}));
        assert_eq!(h.restore(&body).await.status, 202);
        let got = rx.wait_for_kind("restore.failed", WAIT).await;
        let failed = got.iter().find(|r| r.event["type"] == "restore.failed").expect("failed event");
        assert_eq!(failed.event["error"]["code"], "RestoreTaskFailed");
    }

    async fn waiting_past_the_timeout_reports_a_wait_timeout(api: ApiVersion) {
        let h = Harness::builder(api)
            .for_callbacks()
            .env("WAIT_TIMEOUT_SECONDS", "1")
            .sandbox(|s| s.restore_duration = Duration::from_secs(30))
            .build()
            .await;
        let rx = Receiver::start(CALLBACK_KEY, &[]).await;
        let body = body_with(json!({"callbackUrl": rx.url(), "waitForCompletion": true}));
        assert_eq!(h.restore(&body).await.status, 202);
        let got = rx.wait_for_kind("restore.failed", WAIT).await;
        let failed = got.iter().find(|r| r.event["type"] == "restore.failed").expect("failed event");
        assert_eq!(failed.event["error"]["code"], "WaitTimeout");
        assert!(failed.event["error"]["message"].as_str().is_some_and(|m| m.contains("task list")));
    }

    async fn waiting_without_a_callback_is_refused(api: ApiVersion) {
        let h = Harness::builder(api).for_callbacks().build().await;
        let reply = h.restore(&body_with(json!({"waitForCompletion": true}))).await;
        assert_eq!((reply.status, reply.code()), (400, "InvalidField"));
        assert!(reply.body["error"]["message"].as_str().is_some_and(|m| m.contains("waitForCompletion")));
        assert_eq!(h.restores(), 0);
    }

    async fn a_tencent_refusal_becomes_a_rejected_event(api: ApiVersion) {
        let h = Harness::builder(api).for_callbacks().build().await;
        let rx = Receiver::start(CALLBACK_KEY, &[]).await;
        let body = json!({"redisId": REDIS_ID, "backupId": EXPIRED_BACKUP, "callbackUrl": rx.url()}).to_string();
        assert_eq!(h.restore(&body).await.status, 202);
        let got = rx.wait_for(1, WAIT).await;
        assert_eq!(got[0].event["type"], "restore.rejected");
        assert_eq!(got[0].event["error"]["code"], "BackupStatusAbnormal");
        assert_eq!(h.restores(), 0);
    }

    async fn callback_urls_that_point_inside_are_refused_before_anything_starts(api: ApiVersion) {
        let h = Harness::new(api).await; // loopback opt-in off
        let rx = Receiver::start(CALLBACK_KEY, &[]).await;
        let port = rx.addr.port();
        for url in [
            format!("http://hooks.example.com:{port}/x"),
            format!("https://127.0.0.1:{port}/x"),
            format!("https://[::1]:{port}/x"),
            "https://10.0.0.1/x".to_owned(),
            "https://169.254.169.254/latest/meta-data".to_owned(),
            format!("https://[::ffff:127.0.0.1]:{port}/x"),
            format!("https://localhost:{port}/x"),
        ] {
            let reply = h.restore(&body_with(json!({"callbackUrl": url}))).await;
            assert_eq!((reply.status, reply.code()), (400, "CallbackUrlNotAllowed"), "{url}: {:?}", reply.body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(h.restores(), 0);
        assert!(rx.received().is_empty());
    }

    async fn callback_hosts_outside_the_allow_list_are_refused(api: ApiVersion) {
        let h = Harness::builder(api).env("CALLBACK_ALLOWED_HOSTS", "hooks.example.com").build().await;
        let reply = h.restore(&body_with(json!({"callbackUrl": "https://other.example.com/x"}))).await;
        assert_eq!((reply.status, reply.code()), (400, "CallbackUrlNotAllowed"));
    }

    async fn latest_restores_the_newest_usable_backup(api: ApiVersion) {
        let h = Harness::builder(api)
            .sandbox(|s| {
                let b = |id: &str, t: &str, status, locked| SeedBackup {
                    backup_id: id.into(), start_time: t.into(), status, locked, backup_type: "manualBackupInstance".into(),
                };
                s.instances[0].backups = vec![
                    b("aaaaaaaa-0000-4000-8000-000000000001", "2026-11-20 03:00:00", 2, 0),
                    b("aaaaaaaa-0000-4000-8000-000000000002", "2026-11-26 03:00:00", -1, 0),
                    b("aaaaaaaa-0000-4000-8000-000000000003", "2026-11-25 03:00:00", 2, 0),
                    b("aaaaaaaa-0000-4000-8000-000000000004", "2026-11-25 23:00:00", 1, 1),
                    b("aaaaaaaa-0000-4000-8000-000000000005", "2026-11-22 03:00:00", 2, 0),
                ];
            })
            .build()
            .await;
        let reply = h.restore(&json!({"redisId": REDIS_ID, "backupId": "latest"}).to_string()).await;
        assert_eq!(reply.status, 202, "{:?}", reply.body);
        assert_eq!(reply.body["backupId"], "aaaaaaaa-0000-4000-8000-000000000003");
        assert_eq!(reply.body["backupStartTime"], "2026-11-25 03:00:00");
        assert_eq!(h.restores(), 1);
    }

    async fn latest_without_a_usable_backup_is_404(api: ApiVersion) {
        let h = Harness::builder(api)
            .sandbox(|s| s.instances[0].backups.retain(|b| b.status != 2))
            .build()
            .await;
        let reply = h.restore(&json!({"redisId": REDIS_ID, "backupId": "latest"}).to_string()).await;
        assert_eq!((reply.status, reply.code()), (404, "BackupNotExists"));
        assert!(reply.body["error"]["message"].as_str().is_some_and(|m| m.contains("usable")));
        assert_eq!(h.sandbox.calls("RestoreInstance"), 0);
    }

    async fn latest_with_a_callback_reports_the_backup_it_chose(api: ApiVersion) {
        let h = Harness::builder(api).for_callbacks().build().await;
        let rx = Receiver::start(CALLBACK_KEY, &[]).await;
        let body = json!({"redisId": REDIS_ID, "backupId": "latest", "callbackUrl": rx.url()}).to_string();
        assert_eq!(h.restore(&body).await.status, 202);
        let got = rx.wait_for(1, WAIT).await;
        assert_eq!(got[0].event["backupId"], BACKUP_ID);
        assert!(got[0].event["backupStartTime"].is_string());
    }

    async fn a_dry_run_checks_everything_and_restores_nothing(api: ApiVersion) {
        let h = Harness::new(api).await;
        let reply = h.restore(&body_with(json!({"dryRun": true}))).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["status"], "dry-run-ok");
        assert_eq!(reply.body["backupId"], BACKUP_ID);
        assert!(reply.body["backupStartTime"].is_string() && reply.body["instanceName"].is_string());
        let latest = h.restore(&json!({"redisId": REDIS_ID, "backupId": "latest", "dryRun": true}).to_string()).await;
        assert_eq!((latest.status, latest.body["backupId"].as_str()), (200, Some(BACKUP_ID)));
        assert_eq!(h.sandbox.calls("RestoreInstance"), 0);
    }

    async fn a_dry_run_gets_the_same_error_a_real_restore_would(api: ApiVersion) {
        let h = Harness::new(api).await;
        h.put_secret("instances/crs-nothere1", "pw").await;
        h.put_secret("instances/crs-drill001", "drill-password-1").await;
        h.sandbox.set_instance_status("crs-drill001", -2);
        let dry = |redis: &str, backup: &str| json!({"redisId": redis, "backupId": backup, "dryRun": true}).to_string();
        let cases = [
            (dry("crs-nothere1", BACKUP_ID), 404, "InstanceNotExists"),
            (dry("crs-drill001", "33333333-3333-4333-8333-333333333333"), 409, "InstanceStatusAbnormal"),
            (dry(REDIS_ID, "99999999-9999-4999-8999-999999999999"), 404, "BackupNotExists"),
            (dry(REDIS_ID, EXPIRED_BACKUP), 409, "BackupStatusAbnormal"),
            (dry(REDIS_ID, LOCKED_BACKUP), 409, "BackupLockedError"),
            (dry("crs-pwfree01", "44444444-4444-4444-8444-444444444444"), 503, "SecretNotFound"),
        ];
        for (body, status, code) in cases {
            let reply = h.restore(&body).await;
            assert_eq!((reply.status, reply.code()), (status, code), "{body}: {:?}", reply.body);
        }
        h.put_secret("tencent", &json!({"secretId": TENCENT_SECRET_ID, "secretKey": "nope"}).to_string()).await;
        let fresh = Harness::new(api).await;
        fresh.put_secret("tencent", &json!({"secretId": TENCENT_SECRET_ID, "secretKey": "nope"}).to_string()).await;
        let reply = fresh.restore(&dry(REDIS_ID, BACKUP_ID)).await;
        assert_eq!((reply.status, reply.code()), (502, "TencentAuthFailure"));
        assert_eq!(h.sandbox.calls("RestoreInstance") + fresh.sandbox.calls("RestoreInstance"), 0);
    }

    async fn a_dry_run_with_a_callback_reports_success_as_a_dry_run(api: ApiVersion) {
        let h = Harness::builder(api).for_callbacks().build().await;
        let rx = Receiver::start(CALLBACK_KEY, &[]).await;
        assert_eq!(h.restore(&body_with(json!({"dryRun": true, "callbackUrl": rx.url()}))).await.status, 202);
        let got = rx.wait_for(1, WAIT).await;
        assert_eq!((got[0].event["type"].as_str(), got[0].event["dryRun"].as_bool()), (Some("restore.succeeded"), Some(true)));
        assert_eq!(h.sandbox.calls("RestoreInstance"), 0);
    }

    async fn a_watch_near_the_deadline_is_handed_to_a_fresh_invocation(api: ApiVersion) {
        let h = Harness::builder(api).for_callbacks().sandbox(|s| s.restore_duration = Duration::from_secs(3)).build().await;
        let rx = Receiver::start(CALLBACK_KEY, &[]).await;
        let job: Job = serde_json::from_value(json!({
            "deliveryId": "msg_handoff", "source": "webhook", "caller": "runbooks", "redisId": REDIS_ID,
            "backup": BACKUP_ID, "region": "ap-guangzhou", "callbackUrl": rx.url(), "wait": true
        }))
        .expect("job");
        // 61 s left and a 60 s hand-off margin: the first invocation starts the restore, polls
        // for about a second and hands the (3 s) watch on to a fresh invocation.
        let deadline = Instant::now() + Duration::from_secs(61);
        let report = handle_invocation(&h.state, json!({ ENVELOPE_KEY: job }), Some(deadline)).await;
        assert_eq!(report["outcome"], "handed-off", "{report}");
        let got = rx.wait_for_kind("restore.succeeded", WAIT).await;
        let kinds: Vec<&str> = got.iter().filter_map(|r| r.event["type"].as_str()).collect();
        assert_eq!(kinds, ["restore.started", "restore.succeeded"]);
        assert_eq!(h.restores(), 1);
    }
}

#[tokio::test]
async fn an_invalid_job_event_is_refused_and_restores_nothing() {
    let h = Harness::new(ApiVersion::V2).await;
    let answer = handle_invocation(
        &h.state,
        json!({ENVELOPE_KEY: {"deliveryId": "x", "redisId": "not-an-id", "backup": "latest"}}),
        None,
    )
    .await;
    assert_eq!(answer["error"]["code"], "InvalidJob");
    assert_eq!(h.restores(), 0);
}

#[tokio::test]
async fn a_job_envelope_inside_a_function_url_body_is_just_an_unsigned_request() {
    let h = Harness::new(ApiVersion::V2).await;
    let mut ev = fixture("function-url-restore.json");
    ev["body"] = json!({ENVELOPE_KEY: {"deliveryId": "x"}}).to_string().into();
    let reply = h.invoke(ev).await;
    assert_eq!(reply.status, 401);
    assert_eq!(h.restores(), 0);
}

/// The Lambda path: the front door's `Invoke` (captured by a loopback stand-in for the Lambda
/// API) carries a job that, fed back to the function, runs the restore.
#[tokio::test]
async fn on_lambda_the_job_travels_through_an_asynchronous_invoke_of_the_function_itself() {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Uri};
    use std::sync::Mutex;

    let captured: Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>> = Arc::default();
    let sink = Arc::clone(&captured);
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let sink = Arc::clone(&sink);
        async move {
            sink.lock().expect("lock").push((uri.path().to_owned(), headers, body));
            (axum::http::StatusCode::ACCEPTED, "")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let lambda_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let h = Harness::builder(ApiVersion::V2).for_callbacks().build().await;
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .endpoint_url(&lambda_url)
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "test"))
        .build();
    let invoker = crs_restore::invoke::Invoker::Lambda {
        client: aws_sdk_lambda::Client::from_conf(conf).into(),
        function_name: "crs-restore-test".into(),
    };
    let state = Arc::new(
        crs_restore::state::AppState::new(
            crs_restore::config::Config::from_lookup(|n| h.env.get(n).cloned()).expect("config"),
            crs_restore::state::local_secrets_client(&moto_endpoint()),
            crs_restore::state::http_client().expect("http"),
        )
        .expect("state")
        .with_invoker(invoker),
    );
    let rx = Receiver::start(CALLBACK_KEY, &[]).await;
    let answer = crs_restore::handler::handle_event(
        &state,
        signed_event(&body_with(json!({"callbackUrl": rx.url()})), KEY_RUNBOOKS),
    )
    .await;
    assert_eq!(answer["statusCode"], 202, "{answer}");
    assert_eq!(h.restores(), 0, "nothing runs until the asynchronous invocation arrives");

    let (path, headers, payload) = captured.lock().expect("lock").pop().expect("one Invoke call");
    assert_eq!(path, "/2015-03-31/functions/crs-restore-test/invocations");
    assert_eq!(headers.get("x-amz-invocation-type").and_then(|v| v.to_str().ok()), Some("Event"));
    let event: Value = serde_json::from_slice(&payload).expect("JSON payload");
    let report = handle_invocation(&state, event, Some(Instant::now() + Duration::from_secs(900))).await;
    assert_eq!(report["outcome"], "started", "{report}");
    let got = rx.wait_for(1, WAIT).await;
    assert_eq!(got[0].event["type"], "restore.started");
    assert_eq!(h.restores(), 1);
}
