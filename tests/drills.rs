//! Scheduled DR drills through the real handler with the real `events/drill.json`, against the
//! sandbox and moto, for both Tencent API generations.

mod common;

use std::time::Duration;

use common::receiver::Receiver;
use common::*;
use crs_restore::handler::handle_event;
use crs_restore::tencent::ApiVersion;
use serde_json::{Value, json};

async fn drill_harness(api: ApiVersion, allowed: &str) -> Harness {
    let h = Harness::builder(api).for_callbacks().env("DRILL_ALLOWED_INSTANCES", allowed).build().await;
    h.put_secret("instances/crs-drill001", r#"{"password": "drill-password-1"}"#).await;
    h
}

fn drill_event(execution_id: &str, callback: Option<&str>) -> Value {
    let mut ev = fixture("drill.json");
    ev["drill"]["executionId"] = execution_id.into();
    ev["drill"]["callbackUrl"] = callback.unwrap_or("").into();
    ev
}

for_both_apis! {
    async fn a_drill_restores_the_latest_backup_waits_and_reports_success(api: ApiVersion) {
        let h = drill_harness(api, "crs-drill*").await;
        let rx = Receiver::start(CALLBACK_KEY, &[]).await;
        let report = handle_event(&h.state, drill_event("exec-1", Some(&rx.url()))).await;
        assert_eq!(report["outcome"], "succeeded", "{report}");
        assert_eq!(report["backupId"], "33333333-3333-4333-8333-333333333333");
        assert!(report["taskId"].as_i64().is_some() && report["durationSeconds"].as_u64().is_some());
        assert!(report["backupAgeSeconds"].as_i64().is_some() && report["startedAt"].is_string() && report["finishedAt"].is_string());
        assert_eq!(h.sandbox.restores_started("crs-drill001"), 1);

        let metrics = h.metric_records();
        assert_eq!(metrics.len(), 1);
        let m = &metrics[0];
        assert_eq!((m["DrillSucceeded"].as_u64(), m["DrillFailed"].as_u64()), (Some(1), Some(0)));
        assert_eq!(m["RedisId"], "crs-drill001");
        assert!(m["RestoreDurationSeconds"].as_u64().is_some());
        assert_eq!(m["_aws"]["CloudWatchMetrics"][0]["Namespace"], "CrsRestore");

        let got = rx.wait_for_kind("restore.succeeded", Duration::from_secs(10)).await;
        let kinds: Vec<&str> = got.iter().filter_map(|r| r.event["type"].as_str()).collect();
        assert_eq!(kinds, ["restore.started", "restore.succeeded"]);
        assert!(got.iter().all(|r| r.verified && r.event["drill"] == true));
    }

    async fn a_failed_drill_emits_the_failure_metric(api: ApiVersion) {
        let h = drill_harness(api, "crs-drill*").await;
        h.sandbox.fail_next_task("crs-drill001");
        let report = handle_event(&h.state, drill_event("exec-2", None)).await;
        assert_eq!((report["outcome"].as_str(), report["errorCode"].as_str()), (Some("failed"), Some("RestoreTaskFailed")));
        let m = &h.metric_records()[0];
        assert_eq!((m["DrillSucceeded"].as_u64(), m["DrillFailed"].as_u64()), (Some(0), Some(1)));
    }

    async fn drills_are_refused_when_disabled_and_never_touch_other_instances(api: ApiVersion) {
        let disabled = drill_harness(api, "").await;
        let report = handle_event(&disabled.state, drill_event("exec-3", None)).await;
        assert_eq!((report["outcome"].as_str(), report["errorCode"].as_str()), (Some("rejected"), Some("DrillsDisabled")));
        assert_eq!(disabled.metric_records()[0]["DrillFailed"], 1, "a refused drill must trip the alarm");

        let h = drill_harness(api, "crs-drill*").await;
        let mut prod = drill_event("exec-4", None);
        prod["drill"]["redisId"] = REDIS_ID.into();
        let report = handle_event(&h.state, prod).await;
        assert_eq!(report["errorCode"], "InstanceNotAllowed");
        assert_eq!(disabled.restores() + h.restores(), 0);
    }

    async fn a_redelivered_drill_execution_restores_only_once(api: ApiVersion) {
        let h = drill_harness(api, "crs-drill*").await;
        let first = handle_event(&h.state, drill_event("exec-5", None)).await;
        assert_eq!(first["outcome"], "succeeded", "{first}");
        let second = handle_event(&h.state, drill_event("exec-5", None)).await;
        assert_eq!(second["outcome"], "duplicate", "{second}");
        assert_eq!(h.sandbox.restores_started("crs-drill001"), 1);
        assert_eq!(h.metric_records().len(), 1, "the duplicate emits no metric");
    }

    async fn a_drill_with_no_usable_backup_fails_without_restoring(api: ApiVersion) {
        let h = Harness::builder(api)
            .for_callbacks()
            .env("DRILL_ALLOWED_INSTANCES", "crs-drill001")
            .sandbox(|s| s.instances[1].backups.iter_mut().for_each(|b| b.status = -1))
            .build()
            .await;
        h.put_secret("instances/crs-drill001", "drill-password-1").await;
        let report = handle_event(&h.state, drill_event("exec-6", None)).await;
        assert_eq!((report["outcome"].as_str(), report["errorCode"].as_str()), (Some("rejected"), Some("BackupNotExists")));
        assert_eq!(h.metric_records()[0]["DrillFailed"], 1);
        assert_eq!(h.restores(), 0);
    }
}

#[tokio::test]
async fn a_drill_event_can_never_arrive_through_the_function_url() {
    let h = drill_harness(ApiVersion::V2, "crs-drill*").await;
    let body = json!({"drill": fixture("drill.json")["drill"]}).to_string();
    // Even correctly signed, a drill-shaped body is a restore request with unknown fields.
    let reply = h.restore(&body).await;
    assert_eq!((reply.status, reply.code()), (400, "UnknownField"));
    assert_eq!(h.restores(), 0);
}

#[tokio::test]
async fn the_continuation_fixture_is_a_valid_job_envelope() {
    let ev = fixture("async-continuation.json");
    let job: crs_restore::job::Job =
        serde_json::from_value(ev[crs_restore::job::ENVELOPE_KEY].clone()).expect("the fixture validates");
    assert!(job.watch.is_some());
}

#[tokio::test]
async fn a_successful_drills_audit_line_carries_backup_age_task_start_end_and_recovery_time() {
    let capture = common::logs::LogCapture::global();
    let h = drill_harness(ApiVersion::V3, "crs-drill*").await;
    let report = handle_event(&h.state, drill_event("exec-audit-times", None)).await;
    assert_eq!(report["outcome"], "succeeded", "{report}");

    let audits: Vec<Value> = capture
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["audit"] == true && v["delivery_id"] == "drill-exec-audit-times")
        .collect();
    assert_eq!(audits.len(), 1, "{audits:?}");
    let line = &audits[0];
    assert_eq!((line["source"].as_str(), line["outcome"].as_str()), (Some("drill"), Some("succeeded")), "{line}");
    assert_eq!(line["backup_id"], "33333333-3333-4333-8333-333333333333", "{line}");
    for field in ["backup_age_seconds", "task_id", "duration_seconds"] {
        assert!(line[field].is_number(), "the audit line lacks {field}: {line}");
    }
    // The same instants the report and the callback events carry.
    assert_eq!(line["started_at"], report["startedAt"], "{line}");
    assert_eq!(line["finished_at"], report["finishedAt"], "{line}");
    let parse = |v: &Value| {
        let text = v.as_str().unwrap_or_else(|| panic!("an RFC 3339 time: {line}"));
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).expect("RFC 3339")
    };
    assert!(parse(&line["started_at"]) <= parse(&line["finished_at"]), "{line}");
}
