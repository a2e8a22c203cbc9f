//! Restore by clone through the real handler, against the sandbox (API 3.0), moto and a loopback
//! callback receiver: the twin, point in time, waits and callbacks, refusals, every purchase
//! failure, unknown outcomes reconciled by tag, replays and concurrent duplicates.

mod common;

use std::time::Duration;

use common::receiver::Receiver;
use common::*;
use crs_restore::sandbox::{Fault, FaultKind};
use crs_restore::tencent::ApiVersion;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn clone_body(extra: Value) -> String {
    let mut b =
        json!({"redisId": CLONE_SOURCE, "backupId": CLONE_BACKUP, "mode": "clone", "reason": "INC-7 clone test"});
    for (k, v) in extra.as_object().expect("object") {
        b[k] = v.clone();
    }
    b.to_string()
}

async fn clone_reply(h: &Harness, extra: Value) -> Reply {
    h.invoke(signed_event(&clone_body(extra), KEY_CLONERS)).await
}

/// The sandbox's view of one instance (control plane), e.g. to compare a clone with its source.
async fn sandbox_instance(h: &Harness, id: &str) -> Value {
    let url = format!("http://{}/_sandbox/state", h.sandbox.addr());
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let text = client.get(url).send().await.expect("state").text().await.expect("body");
    let state: Value = serde_json::from_str(&text).expect("json");
    state["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .find(|i| i["redisId"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// An RFC 3339 timestamp `secs_ago` seconds back, in +08:00 as users send it.
fn rfc3339_ago(secs_ago: i64) -> String {
    let at =
        time::OffsetDateTime::from_unix_timestamp(now() - secs_ago).expect("time").to_offset(time::macros::offset!(+8));
    at.format(&time::format_description::well_known::Rfc3339).expect("formats")
}

#[tokio::test]
async fn a_clone_restore_answers_cloning_and_buys_one_twin_tagged_with_its_delivery() {
    let h = Harness::new(ApiVersion::V3).await;
    let reply = clone_reply(&h, json!({})).await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let b = &reply.body;
    assert_eq!((b["status"].as_str(), b["mode"].as_str()), (Some("cloning"), Some("clone")));
    assert_eq!((b["redisId"].as_str(), b["backupId"].as_str()), (Some(CLONE_SOURCE), Some(CLONE_BACKUP)));
    assert_eq!(b["region"], "ap-guangzhou");
    assert!(b["dealId"].is_string(), "{b}");
    let delivery = b["deliveryId"].as_str().expect("deliveryId");
    let clone_id = b["cloneInstanceId"].as_str().expect("cloneInstanceId");
    assert_eq!(h.sandbox.clones_of(CLONE_SOURCE), [clone_id]);
    assert_eq!(h.sandbox.calls("CloneInstances"), 1);
    assert_eq!(h.restores(), 0, "RestoreInstance is never called for a clone");

    let (clone, source) = (sandbox_instance(&h, clone_id).await, sandbox_instance(&h, CLONE_SOURCE).await);
    assert_eq!(clone["network"]["zoneId"], source["network"]["zoneId"]);
    assert_eq!(clone["network"]["vpcId"], source["network"]["vpcId"]);
    assert_eq!(clone["network"]["subnetId"], source["network"]["subnetId"]);
    assert_eq!(clone["network"]["securityGroups"], source["network"]["securityGroups"]);
    assert_eq!(clone["network"]["port"], source["network"]["port"]);
    assert_eq!(clone["type"], source["type"]);
    assert_eq!(clone["billingMode"], 0, "pay-as-you-go by default");
    assert!(
        clone["name"].as_str().is_some_and(|n| n.starts_with(&format!("{CLONE_SOURCE}-name-restored-"))),
        "{clone}"
    );
    let tags = clone["tags"].as_array().expect("tags");
    assert!(tags.contains(&json!({"key": "crs-restore:delivery", "value": delivery})), "{tags:?}");
    assert!(tags.contains(&json!({"key": "crs-restore:source", "value": CLONE_SOURCE})), "{tags:?}");
    assert_eq!(source["tags"], json!([]), "the source is never touched");
    assert_eq!(source["status"], 2);
}

#[tokio::test]
async fn a_clone_with_a_callback_reports_started_then_succeeded_with_the_clones_address() {
    let h = Harness::builder(ApiVersion::V3).for_callbacks().build().await;
    let rx = Receiver::start(CALLBACK_KEY, &[]).await;
    let reply = clone_reply(&h, json!({"callbackUrl": rx.url(), "waitForCompletion": true})).await;
    assert_eq!((reply.status, reply.body["status"].as_str()), (202, Some("accepted")), "{:?}", reply.body);
    let got = rx.wait_for(2, WAIT).await;
    assert!(got.iter().all(|r| r.verified));
    let (started, done) = (&got[0].event, &got[1].event);
    assert_eq!((started["type"].as_str(), started["mode"].as_str()), (Some("restore.started"), Some("clone")));
    let clone_id = started["cloneInstanceId"].as_str().expect("cloneInstanceId");
    assert!(started.get("taskId").is_none(), "{started}");
    assert_eq!(done["type"], "restore.succeeded", "{done}");
    assert_eq!(done["clone"]["instanceId"], clone_id);
    assert!(done["clone"]["name"].as_str().is_some_and(|n| n.contains("-restored-")));
    assert!(done["clone"]["vip"].as_str().is_some_and(|v| v.starts_with("10.")));
    assert_eq!(done["clone"]["port"], 6379);
    assert!(done["durationSeconds"].as_u64().is_some());
    assert_eq!(h.sandbox.clones_started(CLONE_SOURCE), 1);
}

#[tokio::test]
async fn a_clone_that_is_not_running_when_the_wait_runs_out_is_reported_failed_and_kept() {
    let h = Harness::builder(ApiVersion::V3)
        .for_callbacks()
        .env("WAIT_TIMEOUT_SECONDS", "1")
        .sandbox(|s| s.clone_duration = Duration::from_secs(30))
        .build()
        .await;
    let rx = Receiver::start(CALLBACK_KEY, &[]).await;
    assert_eq!(clone_reply(&h, json!({"callbackUrl": rx.url(), "waitForCompletion": true})).await.status, 202);
    let got = rx.wait_for(2, WAIT).await;
    let failed = &got[1].event;
    assert_eq!(
        (failed["type"].as_str(), failed["error"]["code"].as_str()),
        (Some("restore.failed"), Some("WaitTimeout"))
    );
    assert!(failed["error"]["message"].as_str().is_some_and(|m| m.contains("billed")), "{failed}");
    assert_eq!(h.sandbox.clones_of(CLONE_SOURCE).len(), 1, "nothing is deleted");
}

#[tokio::test]
async fn a_point_in_time_clone_sends_tencents_clone_time_and_reports_the_second() {
    let h = Harness::new(ApiVersion::V3).await;
    let at = rfc3339_ago(1800);
    let body = json!({"redisId": CLONE_SOURCE, "mode": "clone", "pointInTime": at}).to_string();
    let reply = h.invoke(signed_event(&body, KEY_CLONERS)).await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    assert!(reply.body["pointInTime"].as_str().is_some_and(|p| p.ends_with('Z')));
    assert!(reply.body["backupId"].is_string());
    assert_eq!(h.sandbox.clones_started(CLONE_SOURCE), 1);
}

#[tokio::test]
async fn a_point_in_time_that_second_level_backup_does_not_cover_is_refused_with_the_reason() {
    let h = Harness::new(ApiVersion::V3).await;
    let cases = [
        (CLONE_SOURCE, rfc3339_ago(5400), "MissingTimestamps"),
        (CLONE_SOURCE, rfc3339_ago(8 * 86_400), "7-day"),
        (CLONE_SOURCE, rfc3339_ago(-3600), "future"),
        (REDIS_ID, rfc3339_ago(60), "second-level backup is off"),
    ];
    for (redis_id, at, why) in cases {
        let body = json!({"redisId": redis_id, "mode": "clone", "pointInTime": at}).to_string();
        let reply = h.invoke(signed_event(&body, KEY_CLONERS)).await;
        assert_eq!((reply.status, reply.code()), (409, "PointInTimeUnavailable"), "{at}: {:?}", reply.body);
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{message}");
    }
    assert_eq!(h.sandbox.calls("CloneInstances"), 0);
}

#[tokio::test]
async fn an_in_place_restore_of_a_6_2_instance_is_refused_with_a_hint_to_clone() {
    let h = Harness::new(ApiVersion::V3).await;
    let reply = h.restore(&restore_body(CLONE_SOURCE, CLONE_BACKUP)).await;
    assert_eq!((reply.status, reply.code()), (409, "InPlaceRestoreUnsupported"), "{:?}", reply.body);
    assert_eq!(reply.body["error"]["tencentCode"], "ResourceUnavailable.BackupSpecError");
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Redis 6.2 standard") && message.contains("\"mode\": \"clone\""), "{message}");
    assert_eq!(h.restores(), 0);
}

#[tokio::test]
async fn a_clone_under_api_2_is_refused_before_anything_is_claimed_or_sent() {
    let h = Harness::new(ApiVersion::V2).await;
    let reply = clone_reply(&h, json!({})).await;
    assert_eq!((reply.status, reply.code()), (422, "CloneRequiresApi3"), "{:?}", reply.body);
    assert_eq!(h.sandbox.calls("CloneInstances"), 0);
}

#[tokio::test]
async fn a_key_without_clone_permission_gets_403_and_buys_nothing() {
    let h = Harness::new(ApiVersion::V3).await;
    let reply = h.invoke(signed_event(&clone_body(json!({})), KEY_RUNBOOKS)).await;
    assert_eq!((reply.status, reply.code()), (403, "CloneNotAllowed"), "{:?}", reply.body);
    assert!(reply.body["error"]["message"].as_str().is_some_and(|m| m.contains("\"clone\": true")));
    assert_eq!(h.sandbox.calls("CloneInstances"), 0);
}

#[tokio::test]
async fn each_purchase_failure_has_its_answer_and_is_never_retried() {
    let h = Harness::builder(ApiVersion::V3).with_dynamodb().build().await;
    let cases = [
        ("FailedOperation.PayFailed", 402, "ClonePaymentFailed"),
        ("ResourceUnavailable.SaleOut", 409, "CloneCapacityUnavailable"),
        ("ResourceInsufficient", 409, "CloneCapacityUnavailable"),
        ("LimitExceeded.ReachTheAmountLimit", 409, "CloneQuotaExceeded"),
        ("UnauthorizedOperation.UserNotInWhiteList", 403, "CloneNotPermitted"),
    ];
    for (n, (tencent, status, code)) in cases.into_iter().enumerate() {
        h.sandbox.inject(Fault::error("CloneInstances", tencent));
        let ev = signed_event(&clone_body(json!({})), KEY_CLONERS);
        let reply = h.invoke(ev.clone()).await;
        assert_eq!((reply.status, reply.code()), (status, code), "{tencent}: {:?}", reply.body);
        assert_eq!(reply.body["error"]["tencentCode"], tencent);
        assert!(reply.body["error"]["message"].as_str().is_some_and(|m| m.contains(tencent)));
        let again = h.invoke(ev).await;
        assert_eq!(
            (again.status, again.body["replayed"].as_bool()),
            (status, Some(true)),
            "a replay is the same answer"
        );
        assert_eq!(h.sandbox.calls("CloneInstances"), n + 1, "one purchase attempt per delivery");
    }
    assert!(h.sandbox.clones_of(CLONE_SOURCE).is_empty());
}

#[tokio::test]
async fn a_lost_answer_is_reconciled_by_the_delivery_tag_and_the_replay_reports_the_same_clone() {
    let h = Harness::builder(ApiVersion::V3).with_dynamodb().env("TENCENT_TIMEOUT_SECONDS", "1").build().await;
    h.sandbox.inject(Fault {
        action: Some("CloneInstances".into()),
        kind: FaultKind::DelayResponse(Duration::from_secs(3)),
        times: 1,
    });
    let ev = signed_event(&clone_body(json!({})), KEY_CLONERS);
    let reply = h.invoke(ev.clone()).await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    assert_eq!((reply.body["status"].as_str(), reply.body["reconciled"].as_bool()), (Some("cloning"), Some(true)));
    let clones = h.sandbox.clones_of(CLONE_SOURCE);
    assert_eq!(clones.len(), 1);
    assert_eq!(reply.body["cloneInstanceId"], clones[0].as_str());
    assert!(reply.body["dealId"].is_null(), "the deal id was in the lost answer");
    let again = h.invoke(ev).await;
    assert_eq!((again.status, again.body["replayed"].as_bool()), (202, Some(true)));
    assert_eq!(again.body["cloneInstanceId"], clones[0].as_str());
    assert_eq!(h.sandbox.calls("CloneInstances"), 1);
}

#[tokio::test]
async fn a_lost_answer_with_no_tagged_instance_is_an_unknown_outcome_naming_the_tag() {
    let h = Harness::builder(ApiVersion::V3).with_dynamodb().build().await;
    h.sandbox.inject(Fault { action: Some("CloneInstances".into()), kind: FaultKind::CloseConnection, times: 1 });
    let ev = signed_event(&clone_body(json!({})), KEY_CLONERS);
    let delivery = ev["headers"]["webhook-id"].as_str().expect("id").to_owned();
    let reply = h.invoke(ev.clone()).await;
    assert_eq!((reply.status, reply.code()), (409, "OutcomeUnknown"), "{:?}", reply.body);
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("crs-restore:delivery={delivery}")), "{message}");
    assert!(h.sandbox.calls("DescribeInstances") >= 2, "the tag was looked up more than once");
    let again = h.invoke(ev).await;
    assert_eq!((again.status, again.code()), (409, "OutcomeUnknown"));
    assert!(
        again.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("crs-restore:delivery={delivery}")))
    );
    assert_eq!(h.sandbox.calls("CloneInstances"), 1, "never bought twice");
}

#[tokio::test]
async fn a_replayed_clone_delivery_reports_the_recorded_clone_and_buys_nothing() {
    let h = Harness::new(ApiVersion::V3).await;
    let ev = signed_event(&clone_body(json!({})), KEY_CLONERS);
    let first = h.invoke(ev.clone()).await;
    let again = h.invoke(ev).await;
    assert_eq!((first.status, again.status, again.body["replayed"].as_bool()), (202, 202, Some(true)));
    assert_eq!(again.body["cloneInstanceId"], first.body["cloneInstanceId"]);
    assert_eq!(h.sandbox.calls("CloneInstances"), 1);
}

#[tokio::test]
async fn twenty_concurrent_duplicate_clone_deliveries_buy_exactly_one_instance() {
    let h = Harness::builder(ApiVersion::V3).with_dynamodb().build().await;
    let ev = signed_event(&clone_body(json!({})), KEY_CLONERS);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (state, ev) = (std::sync::Arc::clone(&h.state), ev.clone());
        set.spawn(async move { crs_restore::handler::handle_event(&state, ev).await });
    }
    let replies: Vec<Reply> = set.join_all().await.into_iter().map(to_reply).collect();
    let bought = replies.iter().filter(|r| r.status == 202 && r.body["replayed"].is_null()).count();
    let others = replies
        .iter()
        .filter(|r| (r.status == 409 && r.code() == "DuplicateInProgress") || r.body["replayed"] == true)
        .count();
    assert_eq!(
        (bought, others),
        (1, 19),
        "{:?}",
        replies.iter().map(|r| (r.status, r.code().to_owned())).collect::<Vec<_>>()
    );
    assert_eq!(h.sandbox.calls("CloneInstances"), 1);
    assert_eq!(h.sandbox.clones_of(CLONE_SOURCE).len(), 1);
}

#[tokio::test]
async fn a_clone_dry_run_reports_the_edition_the_plan_and_the_price_and_buys_nothing() {
    let h = Harness::new(ApiVersion::V3).await;
    let reply = clone_reply(&h, json!({"dryRun": true})).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let b = &reply.body;
    assert_eq!((b["status"].as_str(), b["mode"].as_str()), (Some("dry-run-ok"), Some("clone")));
    assert_eq!(b["edition"], "Redis 6.2 standard");
    assert_eq!(b["supportedModes"], json!(["clone"]));
    assert_eq!(b["clone"]["zoneId"], 100003);
    assert_eq!(
        (b["clone"]["vpcId"].as_str(), b["clone"]["subnetId"].as_str()),
        (Some("vpc-sandbox1"), Some("subnet-sandbox1"))
    );
    assert_eq!(b["clone"]["billingMode"], "postpaid");
    assert!(b["clone"]["name"].as_str().is_some_and(|n| n.contains("-restored-") && n.chars().count() < 60));
    // The sandbox quotes 20 hundredths (0.20 CNY) per hour for 1 GB with one replica.
    assert_eq!(b["price"], json!({"amount": 0.2, "currency": "CNY", "per": "hour"}));
    assert_eq!(h.sandbox.calls("CloneInstances"), 0);
    assert_eq!(h.sandbox.calls("InquiryPriceCreateInstance"), 1);

    let in_place = h.restore(&json!({"redisId": REDIS_ID, "backupId": BACKUP_ID, "dryRun": true}).to_string()).await;
    assert_eq!(in_place.body["edition"], "Redis 2.8 standard", "{:?}", in_place.body);
    assert_eq!(in_place.body["supportedModes"], json!(["inPlace", "clone"]));
}

#[tokio::test]
async fn a_prepaid_clone_dry_run_quotes_per_month() {
    let h = Harness::builder(ApiVersion::V3)
        .env("CLONE_BILLING_MODE", "prepaid")
        .env("CLONE_PERIOD_MONTHS", "3")
        .build()
        .await;
    let reply = clone_reply(&h, json!({"dryRun": true})).await;
    assert_eq!(reply.body["clone"]["billingMode"], "prepaid", "{:?}", reply.body);
    assert_eq!(reply.body["price"]["per"], "month");
    assert_eq!(reply.body["price"]["amount"], json!(120.0), "a month of the 3 bought");
}

#[tokio::test]
async fn a_clone_dry_run_refuses_a_password_the_clone_would_be_refused_with() {
    let h = Harness::new(ApiVersion::V3).await;
    h.put_secret(&format!("instances/{CLONE_SOURCE}"), "weakpassword").await;
    let reply = clone_reply(&h, json!({"dryRun": true})).await;
    assert_eq!((reply.status, reply.code()), (500, "ConfigurationError"), "{:?}", reply.body);
    assert!(!reply.body.to_string().contains("weakpassword"), "the password never appears in the answer");
}

#[tokio::test]
async fn a_clone_watch_near_the_deadline_is_handed_on_and_the_fresh_invocation_reports_the_clone() {
    use crs_restore::handler::handle_invocation;
    use crs_restore::job::{ENVELOPE_KEY, Job};
    let h = Harness::builder(ApiVersion::V3)
        .for_callbacks()
        .sandbox(|s| s.clone_duration = Duration::from_secs(3))
        .build()
        .await;
    let rx = Receiver::start(CALLBACK_KEY, &[]).await;
    let job: Job = serde_json::from_value(json!({
        "deliveryId": "msg_clone_handoff", "source": "webhook", "caller": "cloners", "redisId": CLONE_SOURCE,
        "backup": CLONE_BACKUP, "region": "ap-guangzhou", "mode": "clone", "callbackUrl": rx.url(), "wait": true
    }))
    .expect("job");
    // 61 s left and a 60 s hand-off margin: the first invocation buys the clone, polls about a
    // second and hands the watch of the (3 s) clone on.
    let deadline = std::time::Instant::now() + Duration::from_secs(61);
    let report = handle_invocation(&h.state, json!({ ENVELOPE_KEY: job }), Some(deadline)).await;
    assert_eq!(report["outcome"], "handed-off", "{report}");
    let got = rx.wait_for_kind("restore.succeeded", WAIT).await;
    let kinds: Vec<&str> = got.iter().filter_map(|r| r.event["type"].as_str()).collect();
    assert_eq!(kinds, ["restore.started", "restore.succeeded"]);
    assert_eq!(got[1].event["clone"]["instanceId"], got[0].event["cloneInstanceId"]);
    assert_eq!(h.sandbox.calls("CloneInstances"), 1, "the fresh invocation only watches");
}

#[tokio::test]
async fn a_failed_purchase_in_a_callback_job_is_reported_as_restore_failed_with_tencents_code() {
    let h = Harness::builder(ApiVersion::V3).for_callbacks().build().await;
    let rx = Receiver::start(CALLBACK_KEY, &[]).await;
    h.sandbox.inject(Fault::error("CloneInstances", "ResourceUnavailable.SaleOut"));
    assert_eq!(clone_reply(&h, json!({"callbackUrl": rx.url(), "waitForCompletion": true})).await.status, 202);
    let got = rx.wait_for(1, WAIT).await;
    let ev = &got[0].event;
    assert_eq!(
        (ev["type"].as_str(), ev["error"]["code"].as_str()),
        (Some("restore.failed"), Some("CloneCapacityUnavailable"))
    );
    assert_eq!(ev["error"]["tencentCode"], "ResourceUnavailable.SaleOut");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.sandbox.calls("CloneInstances"), 1);
}
