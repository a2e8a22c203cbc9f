//! Runs a mix of the suite's traffic with every log line captured (our crate at TRACE, the AWS
//! SDK and HTTP stack at DEBUG) and checks that no secret value appears anywhere, and that every
//! request leaves exactly one audit line.

mod common;

use common::*;
use crs_restore::sandbox::Fault;
use crs_restore::tencent::ApiVersion;
use serde_json::{Value, json};

#[tokio::test]
async fn no_secret_value_appears_in_any_log_line_and_every_request_is_audited_once() {
    let capture = common::logs::LogCapture::global();

    let mut requests = 0;
    for api in [ApiVersion::V2, ApiVersion::V3] {
        let h = Harness::new(api).await;
        // Success, then the instance is locked.
        assert_eq!(h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await.status, 202);
        assert_eq!(h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await.status, 409);
        // Tampered, forbidden, invalid.
        let mut ev = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
        ev["body"] = restore_body(REDIS_ID, EXPIRED_BACKUP).into();
        assert_eq!(h.invoke(ev).await.status, 401);
        assert_eq!(h.invoke(signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_DRILLS)).await.status, 403);
        assert_eq!(h.restore("{").await.status, 400);
        // Password rotation: the old one is rejected, the new one re-read and used.
        h.sandbox.set_password(REDIS_ID, Some("n3w-P@ssw0rd!"));
        h.put_secret(&format!("instances/{REDIS_ID}"), r#"{"password": "n3w-P@ssw0rd!"}"#).await;
        h.sandbox.inject(Fault::error("RestoreInstance", "PasswordError"));
        assert_eq!(h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await.status, 409);
        // Wrong API keys, then a malformed credentials secret.
        h.put_secret("tencent", &json!({"secretId": TENCENT_SECRET_ID, "secretKey": "wr0ng-k3y-value"}).to_string())
            .await;
        let h2 = Harness::new(api).await;
        h2.put_secret("tencent", &json!({"secretId": TENCENT_SECRET_ID, "secretKey": "wr0ng-k3y-value"}).to_string())
            .await;
        assert_eq!(h2.restore(&restore_body(REDIS_ID, BACKUP_ID)).await.status, 502);
        h2.put_secret("tencent", r#"{"secretId": "A", "secretKey": ["m4lformed-s3cret"]}"#).await;
        let h3 = Harness::new(api).await;
        h3.put_secret("tencent", r#"{"secretId": "A", "secretKey": ["m4lformed-s3cret"]}"#).await;
        assert_eq!(h3.restore(&restore_body(REDIS_ID, BACKUP_ID)).await.status, 500);
        requests += 8;
    }
    // The clone paths (API 3.0): a purchase, a dry run with its price, a failed purchase, an answer
    // lost after the clone was created (reconciled by tag), a password the clone rules refuse.
    {
        let h = Harness::builder(ApiVersion::V3).env("TENCENT_TIMEOUT_SECONDS", "1").build().await;
        let clone = |extra: Value| {
            let mut b = json!({"redisId": CLONE_SOURCE, "backupId": CLONE_BACKUP, "mode": "clone"});
            b.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
            signed_event(&b.to_string(), KEY_CLONERS)
        };
        assert_eq!(h.invoke(clone(json!({}))).await.status, 202);
        assert_eq!(h.invoke(clone(json!({"dryRun": true}))).await.status, 200);
        h.sandbox.inject(Fault::error("CloneInstances", "FailedOperation.PayFailed"));
        assert_eq!(h.invoke(clone(json!({}))).await.status, 402);
        h.sandbox.inject(Fault {
            action: Some("CloneInstances".into()),
            kind: crs_restore::sandbox::FaultKind::DelayResponse(std::time::Duration::from_secs(2)),
            times: 1,
        });
        assert_eq!(h.invoke(clone(json!({}))).await.status, 202);
        let h = Harness::builder(ApiVersion::V3).build().await;
        h.put_secret(&format!("instances/{CLONE_SOURCE}"), r#"{"password": "weaksecretpassword"}"#).await;
        assert_eq!(h.invoke(clone(json!({"dryRun": true}))).await.status, 500);
        requests += 5;
    }

    let logs = capture.text();
    assert!(logs.lines().count() > requests, "logging was captured");
    let whsec_body = |k: &str| k.trim_start_matches("whsec_").to_owned();
    let secrets = [
        PASSWORD.to_owned(),
        "12D3E%40%21r5ed".to_owned(),
        "n3w-P@ssw0rd!".to_owned(),
        "n3w-P%40ssw0rd%21".to_owned(),
        TENCENT_SECRET_KEY.to_owned(),
        "wr0ng-k3y-value".to_owned(),
        "m4lformed-s3cret".to_owned(),
        whsec_body(KEY_RUNBOOKS),
        whsec_body(KEY_DRILLS),
        whsec_body(KEY_CLONERS),
        CLONE_PASSWORD.to_owned(),
        "Clone-Source-62%21".to_owned(),
        "weaksecretpassword".to_owned(),
    ];
    for secret in &secrets {
        let hit = logs.lines().find(|l| l.contains(secret.as_str()));
        assert!(hit.is_none(), "secret {secret:?} leaked in: {}", hit.unwrap_or_default());
    }

    let audits: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["audit"] == true && v["target"] == "crs_restore::audit")
        .collect();
    assert_eq!(audits.len(), requests, "one audit line per request");
    let started: Vec<&Value> = audits.iter().filter(|a| a["outcome"] == "started").collect();
    assert_eq!(started.len(), 2);
    for a in &started {
        for field in ["delivery_id", "key_id", "redis_id", "backup_id", "region", "reason", "task_id", "latency_ms"] {
            assert!(!a[field].is_null(), "audit line lacks {field}: {a}");
        }
    }
    assert!(audits.iter().any(|a| a["error_code"] == "InstanceNotAllowed" && a["key_id"] == "drills"));
    assert!(audits.iter().any(|a| a["refetched"] == "instance-password"));
}
