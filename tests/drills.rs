//! Scheduled DR drills through the real handler with the real `events/drill-in-place.json` and
//! `events/drill.json` (a clone drill), against the sandbox and moto: in-place drills under both
//! Tencent API generations, clone drills under API 3.0 (the only one with CloneInstances).

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

/// The in-place fixture as one scheduled run of its own (the drill key is the schedule's name
/// and time, so each test's runs are told apart from the others' in the shared log capture).
fn drill_event(execution_id: &str, callback: Option<&str>) -> Value {
    let mut ev = fixture("drill-in-place.json");
    ev["drill"]["scheduleName"] = format!("sched-{execution_id}").into();
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

    async fn a_scheduler_retry_with_a_new_execution_id_restores_once_and_is_not_a_failed_drill(api: ApiVersion) {
        let h = drill_harness(api, "crs-drill*").await;
        // One scheduled run, two attempts: the same schedule and time, a new execution id.
        let attempt = |id: &str| {
            let mut ev = drill_event(id, None);
            ev["drill"]["scheduleName"] = "weekly-drill".into();
            ev
        };
        let first = handle_event(&h.state, attempt("attempt-1")).await;
        assert_eq!(first["outcome"], "succeeded", "{first}");
        // AWS gives every attempt a new execution id; the schedule and its time stay the same.
        let retry = handle_event(&h.state, attempt("attempt-2")).await;
        assert_eq!(retry["outcome"], "duplicate", "{retry}");
        assert_eq!(h.sandbox.restores_started("crs-drill001"), 1);
        let metrics = h.metric_records();
        assert_eq!(metrics.len(), 1, "the duplicate emits no metric: {metrics:?}");
        assert_eq!(metrics[0]["DrillFailed"], 0);
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
async fn every_drill_audit_line_is_unambiguous_json_that_names_its_instance() {
    let capture = common::logs::LogCapture::global();
    let h = drill_harness(ApiVersion::V3, "crs-drill*").await;
    assert_eq!(handle_event(&h.state, drill_event("audit-ok", None)).await["outcome"], "succeeded");
    let mut refused = drill_event("audit-refused", None);
    refused["drill"]["redisId"] = REDIS_ID.into();
    refused["drill"]["scheduledTime"] = "2026-11-30T04:00:00Z".into();
    assert_eq!(handle_event(&h.state, refused).await["errorCode"], "InstanceNotAllowed");
    let mut invalid = drill_event("audit-invalid", None);
    invalid["drill"]["force"] = true.into();
    assert_eq!(handle_event(&h.state, invalid).await["errorCode"], "InvalidDrill");

    let logs = capture.text();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["audit"] == true && v["source"] == "drill"))
        .collect();
    assert!(lines.len() >= 3, "{logs}");
    for line in &lines {
        assert_eq!(common::logs::duplicate_members(line), Vec::<String>::new(), "ambiguous: {line}");
        let v: Value = serde_json::from_str(line).expect("JSON");
        assert!(v["redis_id"].is_string(), "names no instance: {line}");
    }
    let named = |id: &str, code: &str| lines.iter().any(|l| l.contains(id) && l.contains(code));
    assert!(named(REDIS_ID, "InstanceNotAllowed") && named("crs-drill001", "InvalidDrill"), "{lines:?}");
}

#[test]
fn a_member_named_twice_is_found_at_any_depth() {
    assert_eq!(common::logs::duplicate_members(r#"{"a": 1, "b": {"c": [{"d": 1, "d": 2}]}, "a": 3}"#), ["d", "a"]);
    assert!(common::logs::duplicate_members(r#"{"a": [1, "x", null, true, 2.5], "b": {}}"#).is_empty());
}

#[test]
fn the_emf_checker_refuses_what_cloudwatch_would_not_extract() {
    let good = json!({"_aws": {"Timestamp": 1_764_000_000_000_i64, "CloudWatchMetrics": [{"Namespace": "N",
        "Dimensions": [["RedisId"]], "Metrics": [{"Name": "DrillFailed", "Unit": "Count"}]}]},
        "RedisId": "crs-drill001", "DrillFailed": 1});
    assert!(common::emf::violations(&good).is_empty());
    let mut bad = good.clone();
    bad["RedisId"] = 7.into();
    bad["DrillFailed"] = "1".into();
    bad["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = "Drills".into();
    bad["_aws"]["Timestamp"] = 1_764_000_000_i64.into();
    assert_eq!(common::emf::violations(&bad).len(), 4, "{:?}", common::emf::violations(&bad));
}

// --- Clone drills -------------------------------------------------------------------------------

/// A stack whose clone drills may read `CLONE_SOURCE` (a Redis 6.2 instance: production, as far as
/// the drill knows), with fast polls and a clone that takes 600 ms to come up.
async fn clone_harness(
    extra: &[(&'static str, &str)],
    seed: impl FnOnce(&mut crs_restore::sandbox::SandboxConfig),
) -> Harness {
    let mut b =
        Harness::builder(ApiVersion::V3).for_callbacks().env("DRILL_CLONE_SOURCES", "crs-redis62*").sandbox(seed);
    for (k, v) in extra {
        b = b.env(k, *v);
    }
    b.build().await
}

fn clone_drill(execution_id: &str, callback: Option<&str>) -> Value {
    let mut ev = fixture("drill.json");
    ev["drill"]["scheduleName"] = format!("sched-{execution_id}").into();
    ev["drill"]["redisId"] = CLONE_SOURCE.into();
    ev["drill"]["executionId"] = execution_id.into();
    ev["drill"]["callbackUrl"] = callback.unwrap_or("").into();
    ev
}

/// The drill's own record (the one with DrillSucceeded), and the orphan sweep's.
fn drill_metrics(h: &Harness) -> (Vec<Value>, Vec<Value>) {
    h.metric_records().into_iter().partition(|m| m.get("DrillSucceeded").is_some())
}

fn metric_names(record: &Value) -> Vec<String> {
    record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter_map(|m| m["Name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_clone_drill_proves_the_backup_on_a_throwaway_twin_reports_rto_and_rpo_and_destroys_it() {
    let h = clone_harness(&[], |_| {}).await;
    let rx = Receiver::start(CALLBACK_KEY, &[]).await;
    let drill_started = now();
    let report = handle_event(&h.state, clone_drill("clone-ok", Some(&rx.url()))).await;
    assert_eq!(report["outcome"], "succeeded", "{report}");
    assert_eq!(report["backupId"], CLONE_BACKUP);
    assert_eq!(report["cleanup"], "purged", "{report}");
    let clone_id = report["cloneInstanceId"].as_str().expect("a clone id").to_owned();

    // Production was only read; the clone was bought once and is gone.
    assert_eq!((h.sandbox.clones_started(CLONE_SOURCE), h.restores()), (1, 0));
    assert_eq!(h.sandbox.instance_status(CLONE_SOURCE), Some(2));
    assert_eq!(h.sandbox.instance_status(&clone_id), None, "the drill clone is destroyed and purged");
    assert_eq!((h.sandbox.calls("DestroyPostpaidInstance"), h.sandbox.calls("CleanUpInstance")), (1, 1));

    let (drills, sweeps) = drill_metrics(&h);
    assert_eq!((drills.len(), sweeps.len()), (1, 1), "{drills:?} {sweeps:?}");
    let m = &drills[0];
    assert_eq!(m["RedisId"], CLONE_SOURCE);
    assert_eq!(
        (m["DrillSucceeded"].as_u64(), m["DrillFailed"].as_u64(), m["DrillCleanupFailed"].as_u64()),
        (Some(1), Some(0), Some(0))
    );
    let rto = m["RestoreDurationSeconds"].as_u64().expect("RTO");
    assert!(rto <= 10, "the clone took 600 ms, not {rto} s");
    // The seeded backup started 2026-11-25 03:00:00 Beijing time.
    let expected_rpo = drill_started - crs_restore::clock::beijing_unix("2026-11-25 03:00:00").expect("time");
    let rpo = m["BackupAgeSeconds"].as_i64().expect("RPO");
    assert!((rpo - expected_rpo).abs() <= 5, "RPO {rpo} vs {expected_rpo}");
    for name in ["DrillSucceeded", "DrillFailed", "RestoreDurationSeconds", "BackupAgeSeconds", "DrillCleanupFailed"] {
        assert!(metric_names(m).iter().any(|n| n == name), "{name} missing: {m}");
    }
    assert_eq!(sweeps[0]["DrillOrphansDestroyed"], 0);

    let got = rx.wait_for_kind("restore.succeeded", Duration::from_secs(10)).await;
    let started = got.iter().find(|r| r.event["type"] == "restore.started").expect("started");
    assert_eq!(
        (started.event["cloneInstanceId"].as_str(), started.event["mode"].as_str()),
        (Some(clone_id.as_str()), Some("clone"))
    );
    let done = got.iter().find(|r| r.event["type"] == "restore.succeeded").expect("succeeded");
    assert!(done.verified && done.event["drill"] == true);
    assert_eq!(
        (done.event["clone"]["instanceId"].as_str(), done.event["cleanup"].as_str()),
        (Some(clone_id.as_str()), Some("purged"))
    );
}

#[tokio::test]
async fn a_drill_clone_is_pay_as_you_go_tagged_as_a_drill_and_named_for_one_and_stays_in_the_recycle_bin_without_purge()
{
    let h = clone_harness(
        &[("DRILL_PURGE", "false"), ("CLONE_BILLING_MODE", "prepaid"), ("CLONE_PERIOD_MONTHS", "12")],
        |_| {},
    )
    .await;
    let report = handle_event(&h.state, clone_drill("clone-nopurge", None)).await;
    assert_eq!(
        (report["outcome"].as_str(), report["cleanup"].as_str()),
        (Some("succeeded"), Some("destroyed")),
        "{report}"
    );
    let clone_id = report["cloneInstanceId"].as_str().expect("clone");
    assert_eq!(h.sandbox.instance_status(clone_id), Some(-2), "isolated in the recycle bin");
    assert_eq!(h.sandbox.calls("CleanUpInstance"), 0);
    let text = reqwest::get(format!("http://{}/_sandbox/state", h.sandbox.addr()))
        .await
        .expect("state")
        .text()
        .await
        .expect("body");
    let state: Value = serde_json::from_str(&text).expect("json");
    let clone = state["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .find(|i| i["redisId"] == clone_id)
        .expect("listed")
        .clone();
    assert_eq!(clone["billingMode"], 0, "drill clones are never prepaid, whatever CLONE_BILLING_MODE says");
    let tags = clone["tags"].as_array().expect("tags");
    let has = |k: &str, v: &str| tags.iter().any(|t| t["key"] == k && t["value"] == v);
    assert!(
        has("crs-restore:drill", "sched-clone-nopurge@2026-11-30T03:00:00Z") && has("crs-restore:source", CLONE_SOURCE),
        "{tags:?}"
    );
    assert!(clone["name"].as_str().is_some_and(|n| n.starts_with(&format!("{CLONE_SOURCE}-name-drill-"))), "{clone}");
}

#[tokio::test]
async fn a_clone_that_never_runs_fails_the_drill_and_is_still_removed() {
    let h = clone_harness(&[], |_| {}).await;
    h.sandbox.next_clone(CLONE_SOURCE, crs_restore::sandbox::NextClone::Fails);
    let report = handle_event(&h.state, clone_drill("clone-fails", None)).await;
    assert_eq!(
        (report["outcome"].as_str(), report["errorCode"].as_str()),
        (Some("failed"), Some("CloneFailed")),
        "{report}"
    );
    assert_eq!(report["cleanup"], "purged");
    assert_eq!(h.sandbox.instance_status(report["cloneInstanceId"].as_str().expect("clone")), None);
    let (drills, _) = drill_metrics(&h);
    assert_eq!((drills[0]["DrillFailed"].as_u64(), drills[0]["DrillCleanupFailed"].as_u64()), (Some(1), Some(0)));
}

#[tokio::test]
async fn a_clone_that_is_not_a_twin_of_its_source_fails_the_drill_and_is_destroyed_too() {
    let h = clone_harness(&[], |_| {}).await;
    h.sandbox.next_clone(CLONE_SOURCE, crs_restore::sandbox::NextClone::Differs);
    let report = handle_event(&h.state, clone_drill("clone-differs", None)).await;
    assert_eq!(
        (report["outcome"].as_str(), report["errorCode"].as_str()),
        (Some("failed"), Some("CloneNotTwin")),
        "{report}"
    );
    assert_eq!(report["cleanup"], "purged");
    assert_eq!(drill_metrics(&h).0[0]["DrillFailed"], 1);
}

#[tokio::test]
async fn a_clone_still_creating_when_the_wait_runs_out_is_destroyed() {
    let h = clone_harness(&[("WAIT_TIMEOUT_SECONDS", "1")], |s| s.clone_duration = Duration::from_secs(120)).await;
    let report = handle_event(&h.state, clone_drill("clone-slow", None)).await;
    assert_eq!(
        (report["outcome"].as_str(), report["errorCode"].as_str()),
        (Some("failed"), Some("WaitTimeout")),
        "{report}"
    );
    assert_eq!(report["cleanup"], "purged", "{report}");
    assert_eq!(h.sandbox.instance_status(report["cloneInstanceId"].as_str().expect("clone")), None);
    let (drills, _) = drill_metrics(&h);
    assert_eq!((drills[0]["DrillFailed"].as_u64(), drills[0]["DrillCleanupFailed"].as_u64()), (Some(1), Some(0)));
}

#[tokio::test]
async fn a_drill_handed_to_a_later_invocation_is_cleaned_up_and_measured_there() {
    let h = clone_harness(&[], |s| s.clone_duration = Duration::from_secs(3)).await;
    // 61 s before Lambda's deadline leaves one second before the 60 s hand-off margin.
    let deadline = std::time::Instant::now() + Duration::from_secs(61);
    let first =
        crs_restore::handler::handle_invocation(&h.state, clone_drill("clone-handoff", None), Some(deadline)).await;
    assert_eq!(first["outcome"], "handed-off", "{first}");
    assert!(drill_metrics(&h).0.is_empty(), "a hand-off ends nothing: no drill metric yet");
    let clone_id = first["cloneInstanceId"].as_str().expect("clone").to_owned();
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while drill_metrics(&h).0.is_empty() && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (drills, _) = drill_metrics(&h);
    assert_eq!(drills.len(), 1, "the continuation emits the drill's record");
    assert_eq!(
        (drills[0]["DrillSucceeded"].as_u64(), drills[0]["DrillCleanupFailed"].as_u64()),
        (Some(1), Some(0)),
        "{}",
        drills[0]
    );
    assert_eq!(drills[0]["cleanup"], "purged");
    assert_eq!(h.sandbox.instance_status(&clone_id), None);
    assert_eq!(h.sandbox.clones_started(CLONE_SOURCE), 1);
}

#[tokio::test]
async fn a_clone_that_cannot_be_destroyed_raises_the_clean_up_alarm_metric() {
    let h = clone_harness(&[], |_| {}).await;
    h.sandbox.inject(crs_restore::sandbox::Fault::error(
        "DestroyPostpaidInstance",
        "ResourceUnavailable.InstanceStatusError",
    ));
    let report = handle_event(&h.state, clone_drill("clone-leak", None)).await;
    assert_eq!(report["outcome"], "succeeded", "the backup came back; the leak is its own alarm: {report}");
    assert!(report["cleanup"].as_str().is_some_and(|c| c.starts_with("failed: DestroyPostpaidInstance")), "{report}");
    assert_eq!(h.sandbox.instance_status(report["cloneInstanceId"].as_str().expect("clone")), Some(2), "left running");
    let (drills, _) = drill_metrics(&h);
    assert_eq!(drills[0]["DrillCleanupFailed"], 1);
}

#[tokio::test]
async fn every_drill_first_destroys_old_drill_clones_and_only_those() {
    let seed_tag = |k: &str, v: &str| crs_restore::sandbox::SeedTag { key: k.into(), value: v.into() };
    let drill_tags = vec![seed_tag("crs-restore:drill", "old-run"), seed_tag("crs-restore:source", CLONE_SOURCE)];
    let h = clone_harness(&[], |s| {
        let like = |id: &str, created_secs_ago: i64, tags: Vec<crs_restore::sandbox::SeedTag>, billing_mode: i64| {
            crs_restore::sandbox::SeedInstance {
                redis_id: id.into(),
                name: id.into(),
                created_secs_ago,
                tags,
                billing_mode,
                ..crs_restore::sandbox::SeedInstance::default()
            }
        };
        s.instances.push(like("crs-orphan01", 3 * 3600, drill_tags.clone(), 0));
        s.instances.push(like("crs-young001", 600, drill_tags.clone(), 0));
        s.instances.push(like("crs-prepaid1", 3 * 3600, drill_tags.clone(), 1));
        s.instances.push(like("crs-notours1", 3 * 3600, vec![seed_tag("crs-restore:drill", "x")], 0));
    })
    .await;
    let report = handle_event(&h.state, clone_drill("clone-sweep", None)).await;
    assert_eq!(report["outcome"], "succeeded", "{report}");
    assert_eq!(h.sandbox.instance_status("crs-orphan01"), None, "the orphan is destroyed and purged");
    for kept in ["crs-young001", "crs-prepaid1", "crs-notours1"] {
        assert_eq!(h.sandbox.instance_status(kept), Some(2), "{kept} is not an orphan of ours");
    }
    let (_, sweeps) = drill_metrics(&h);
    assert_eq!(sweeps[0]["DrillOrphansDestroyed"], 1, "{sweeps:?}");
}

#[tokio::test]
async fn a_drill_whose_clone_would_cost_more_than_the_limit_buys_nothing_and_fails() {
    let h = clone_harness(&[("DRILL_MAX_HOURLY_PRICE", "0.05")], |_| {}).await;
    let report = handle_event(&h.state, clone_drill("clone-pricey", None)).await;
    assert_eq!(
        (report["outcome"].as_str(), report["errorCode"].as_str()),
        (Some("rejected"), Some("DrillPriceLimitExceeded")),
        "{report}"
    );
    assert_eq!(h.sandbox.clones_started(CLONE_SOURCE), 0);
    assert_eq!(drill_metrics(&h).0[0]["DrillFailed"], 1);
    let cheap = clone_harness(&[("DRILL_MAX_HOURLY_PRICE", "100")], |_| {}).await;
    assert_eq!(handle_event(&cheap.state, clone_drill("clone-cheap", None)).await["outcome"], "succeeded");
}

#[tokio::test]
async fn clone_drills_read_only_the_sources_they_are_given_and_need_api_3() {
    let h = clone_harness(&[], |_| {}).await;
    let mut other = clone_drill("clone-other", None);
    other["drill"]["redisId"] = REDIS_ID.into();
    let report = handle_event(&h.state, other).await;
    assert_eq!(
        (report["outcome"].as_str(), report["errorCode"].as_str()),
        (Some("rejected"), Some("InstanceNotAllowed"))
    );
    assert!(report["message"].as_str().is_some_and(|m| m.contains("DRILL_CLONE_SOURCES")), "{report}");
    assert_eq!(h.sandbox.clones_started(REDIS_ID), 0);
    assert_eq!(h.metric_records()[0]["DrillFailed"], 1, "a refused drill trips the alarm");

    let off = Harness::builder(ApiVersion::V3).build().await;
    let report = handle_event(&off.state, clone_drill("clone-off", None)).await;
    assert_eq!(report["errorCode"], "DrillsDisabled");

    let v2 = Harness::builder(ApiVersion::V2).env("DRILL_CLONE_SOURCES", "crs-*").build().await;
    let report = handle_event(&v2.state, clone_drill("clone-v2", None)).await;
    assert_eq!(report["errorCode"], "CloneRequiresApi3");
}

#[tokio::test]
async fn a_scheduler_retry_of_a_clone_drill_clones_once_and_is_not_a_failed_drill() {
    let h = clone_harness(&[], |_| {}).await;
    let attempt = |id: &str| {
        let mut ev = clone_drill(id, None);
        ev["drill"]["scheduleName"] = "weekly-clone-drill".into();
        ev
    };
    assert_eq!(handle_event(&h.state, attempt("attempt-1")).await["outcome"], "succeeded");
    let retry = handle_event(&h.state, attempt("attempt-2")).await;
    assert_eq!(retry["outcome"], "duplicate", "{retry}");
    assert_eq!(h.sandbox.clones_started(CLONE_SOURCE), 1);
    let (drills, _) = drill_metrics(&h);
    assert_eq!(drills.len(), 1, "the duplicate emits no drill record: {drills:?}");
    assert_eq!(drills[0]["DrillFailed"], 0);
}

#[tokio::test]
async fn a_clone_drill_leaves_one_audit_line_with_source_backup_age_clone_timings_clean_up_and_outcome() {
    let capture = common::logs::LogCapture::global();
    let h = clone_harness(&[], |_| {}).await;
    let report = handle_event(&h.state, clone_drill("clone-audit", None)).await;
    assert_eq!(report["outcome"], "succeeded", "{report}");
    let clone_id = report["cloneInstanceId"].as_str().expect("clone");
    let logs = capture.text();
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| l.contains(clone_id))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["audit"] == true && v["source"] == "drill" && v["phase"] == "job")
        .collect();
    assert_eq!(lines.len(), 1, "one audit line per drill: {lines:?}");
    let line = &lines[0];
    assert_eq!((line["redis_id"].as_str(), line["backup_id"].as_str()), (Some(CLONE_SOURCE), Some(CLONE_BACKUP)));
    assert_eq!((line["cleanup"].as_str(), line["outcome"].as_str()), (Some("purged"), Some("succeeded")));
    for field in
        ["backup_age_seconds", "duration_seconds", "clone_instance_id", "delivery_id", "started_at", "finished_at"]
    {
        assert!(!line[field].is_null(), "{field} missing: {line}");
    }
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
        .filter(|v| v["audit"] == true && v["delivery_id"] == "drill-sched-exec-audit-times@2026-11-30T03:00:00Z")
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
