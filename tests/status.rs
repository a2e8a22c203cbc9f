//! Status and tasks queries, and outcome reconciliation, through the real handler against the
//! sandbox and moto, for both Tencent API generations.

mod common;

use std::time::Duration;

use common::receiver::Receiver;
use common::*;
use crs_restore::sandbox::{Fault, FaultKind, SandboxTaskKind};
use crs_restore::tencent::ApiVersion;
use serde_json::{Value, json};

fn status_body(delivery_id: &str) -> String {
    json!({"query": "status", "deliveryId": delivery_id}).to_string()
}

/// Signs a query with `key` and a fresh webhook-id.
async fn query(h: &Harness, body: &str, key: &str) -> Reply {
    h.invoke(signed_event(body, key)).await
}

async fn status(h: &Harness, delivery_id: &str) -> Reply {
    query(h, &status_body(delivery_id), KEY_RUNBOOKS).await
}

/// Sends a restore with a known delivery id.
async fn restore_as(h: &Harness, id: &str, body: &str) -> Reply {
    h.invoke(event_with(body, KEY_RUNBOOKS, id, now())).await
}

/// Polls the status until its phase is not `running` (or gives up after `limit`).
async fn settled(h: &Harness, id: &str, limit: Duration) -> Reply {
    let until = std::time::Instant::now() + limit;
    loop {
        let r = status(h, id).await;
        if r.body["phase"] != "running" || std::time::Instant::now() > until {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn fast(api: ApiVersion) -> Harness {
    Harness::builder(api).for_callbacks().build().await
}

/// A harness whose RestoreInstance answers arrive after the function gave up on them.
async fn lossy(api: ApiVersion) -> Harness {
    let h = Harness::builder(api).for_callbacks().env("TENCENT_TIMEOUT_SECONDS", "1").build().await;
    h.sandbox.inject(Fault {
        action: Some("RestoreInstance".into()),
        kind: FaultKind::DelayResponse(Duration::from_millis(1500)),
        times: 1,
    });
    h
}

for_both_apis! {
    async fn a_restore_is_running_then_succeeded_with_its_times(api: ApiVersion) {
        // Long enough that the first query sees it running even on a loaded machine.
        let h = Harness::builder(api).for_callbacks().sandbox(|s| s.restore_duration = Duration::from_millis(1500)).build().await;
        let started = restore_as(&h, "msg_status_ok", &restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!(started.status, 202, "{:?}", started.body);
        let first = status(&h, "msg_status_ok").await;
        assert_eq!(first.status, 200, "{:?}", first.body);
        assert_eq!(first.body["phase"], "running", "{:?}", first.body);
        assert_eq!(first.body["taskId"], started.body["taskId"]);
        assert_eq!((first.body["redisId"].as_str(), first.body["mode"].as_str()), (Some(REDIS_ID), Some("inPlace")));
        assert_eq!(first.body["region"], "ap-guangzhou");
        assert!(first.body["startedAt"].is_string() && first.body.get("finishedAt").is_none(), "{:?}", first.body);
        let done = settled(&h, "msg_status_ok", Duration::from_secs(5)).await;
        assert_eq!(done.body["phase"], "succeeded", "{:?}", done.body);
        assert!(done.body["finishedAt"].is_string() && done.body["durationSeconds"].is_u64(), "{:?}", done.body);
        assert_eq!(done.body.get("error"), None);
        match api {
            ApiVersion::V3 => {
                assert_eq!(done.body["tencentStatus"], "succeed");
                assert_eq!(done.body["progress"], 100, "API 3.0's task list gives the progress");
            }
            ApiVersion::V2 => {
                assert_eq!(done.body["tencentStatus"], "2");
                assert_eq!(done.body.get("progress"), None, "API 2.0 has no progress to give");
            }
        }
        assert_eq!(h.restores(), 1, "a status query never restores");
    }

    async fn a_failed_task_is_failed_with_restore_task_failed(api: ApiVersion) {
        let h = fast(api).await;
        h.sandbox.fail_next_task(REDIS_ID);
        assert_eq!(restore_as(&h, "msg_status_fail", &restore_body(REDIS_ID, BACKUP_ID)).await.status, 202);
        let done = settled(&h, "msg_status_fail", Duration::from_secs(5)).await;
        assert_eq!(done.body["phase"], "failed", "{:?}", done.body);
        assert_eq!(done.body["error"]["code"], "RestoreTaskFailed");
    }

    async fn a_refused_restore_is_failed_with_its_error_and_a_dry_run_succeeded(api: ApiVersion) {
        let h = fast(api).await;
        assert_eq!(restore_as(&h, "msg_status_locked", &restore_body(REDIS_ID, LOCKED_BACKUP)).await.status, 409);
        let r = status(&h, "msg_status_locked").await;
        assert_eq!((r.body["phase"].as_str(), r.body["error"]["code"].as_str()), (Some("failed"), Some("BackupLockedError")));
        let dry = json!({"redisId": REDIS_ID, "backupId": "latest", "dryRun": true}).to_string();
        assert_eq!(restore_as(&h, "msg_status_dry", &dry).await.status, 200);
        let r = status(&h, "msg_status_dry").await;
        assert_eq!((r.body["phase"].as_str(), r.body["dryRun"].as_bool()), (Some("succeeded"), Some(true)));
    }

    async fn another_keys_delivery_and_an_unknown_one_are_both_not_found(api: ApiVersion) {
        let h = fast(api).await;
        assert_eq!(restore_as(&h, "msg_status_mine", &restore_body(REDIS_ID, BACKUP_ID)).await.status, 202);
        let theirs = query(&h, &status_body("msg_status_mine"), KEY_DRILLS).await;
        let nobody = status(&h, "msg_status_never_sent").await;
        assert_eq!((theirs.status, theirs.code()), (404, "DeliveryNotFound"));
        assert_eq!((nobody.status, nobody.body["error"].clone()), (404, theirs.body["error"].clone()), "no oracle");
    }

    async fn garbage_queries_are_400_and_never_restore(api: ApiVersion) {
        let h = fast(api).await;
        for (body, code) in [
            (r#"{"query":"restore","redisId":"crs-izbob1wh"}"#, "InvalidField"),
            (r#"{"query":"status"}"#, "MissingField"),
            (r#"{"query":"status","deliveryId":"a b"}"#, "InvalidField"),
            (r#"{"query":"status","deliveryId":"m","backupId":"latest"}"#, "UnknownField"),
            (r#"{"query":"tasks"}"#, "MissingField"),
            (r#"{"query":"tasks","redisId":"crs-izbob1wh","redisId":"crs-drill001"}"#, "DuplicateField"),
            (r#"{"query":null}"#, "MissingField"),
            // A restore body with a query field is a query, never a restore.
            (r#"{"query":"tasks","redisId":"crs-izbob1wh","backupId":"latest"}"#, "UnknownField"),
        ] {
            let r = query(&h, body, KEY_RUNBOOKS).await;
            assert_eq!((r.status, r.code()), (400, code), "{body}: {:?}", r.body);
        }
        assert_eq!(h.restores(), 0);
    }

    async fn a_query_is_never_claimed_so_its_webhook_id_can_be_reused(api: ApiVersion) {
        let h = fast(api).await;
        let restore = event_with(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS, "msg_reuse", now());
        assert_eq!(h.invoke(restore.clone()).await.status, 202);
        // Two different queries under the restore's own webhook-id: both answered, nothing claimed.
        for body in [status_body("msg_reuse"), json!({"query": "tasks", "redisId": REDIS_ID}).to_string()] {
            let r = h.invoke(event_with(&body, KEY_RUNBOOKS, "msg_reuse", now())).await;
            assert_eq!(r.status, 200, "{body}: {:?}", r.body);
            assert_eq!(r.body.get("replayed"), None);
        }
        let replay = h.invoke(restore).await;
        assert_eq!((replay.status, replay.body["replayed"].as_bool()), (202, Some(true)), "the restore still replays");
        assert_eq!(h.restores(), 1);
    }

    async fn the_tasks_query_lists_restores_and_backups_for_an_allowed_key_only(api: ApiVersion) {
        let h = fast(api).await;
        h.sandbox.add_task(REDIS_ID, SandboxTaskKind::Backup, Duration::from_secs(3600), Duration::from_secs(60), false);
        h.sandbox.add_task(REDIS_ID, SandboxTaskKind::Clone, Duration::from_secs(7200), Duration::from_secs(60), false);
        // Older than Tencent keeps: never listed.
        h.sandbox.add_task(REDIS_ID, SandboxTaskKind::Restore, Duration::from_secs(31 * 86_400), Duration::from_secs(60), false);
        let started = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!(started.status, 202);
        let r = query(&h, &json!({"query": "tasks", "redisId": REDIS_ID}).to_string(), KEY_RUNBOOKS).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["restoreRunning"], true);
        let tasks = r.body["tasks"].as_array().cloned().unwrap_or_default();
        let kinds: Vec<&str> = tasks.iter().filter_map(|t| t["type"].as_str()).collect();
        match api {
            ApiVersion::V3 => {
                assert_eq!(kinds, ["restore", "backup", "clone"], "{:?}", r.body);
                assert_eq!(tasks[0]["taskId"], started.body["taskId"]);
                assert_eq!(tasks[1]["result"], "succeeded");
                assert!(tasks[1]["endTime"].is_string() && tasks[1]["progress"] == 100, "{:?}", tasks[1]);
                assert_eq!(r.body.get("unavailable"), None);
            }
            ApiVersion::V2 => {
                assert_eq!(kinds, ["restore", "backup"], "API 2.0 lists no clone tasks: {:?}", r.body);
                assert_eq!(tasks[0].get("taskId"), None);
                assert!(r.body["unavailable"].as_array().is_some_and(|u| u.contains(&json!("taskId"))));
            }
        }
        let refused = query(&h, &json!({"query": "tasks", "redisId": REDIS_ID}).to_string(), KEY_DRILLS).await;
        assert_eq!((refused.status, refused.code()), (403, "InstanceNotAllowed"));
    }

    async fn a_callback_delivery_is_accepted_then_followed_to_its_end(api: ApiVersion) {
        let h = fast(api).await;
        let rx = Receiver::start(CALLBACK_KEY, &[]).await;
        let body = json!({"redisId": REDIS_ID, "backupId": BACKUP_ID, "callbackUrl": rx.url(), "waitForCompletion": true});
        assert_eq!(restore_as(&h, "msg_status_cb", &body.to_string()).await.status, 202);
        rx.wait_for_kind("restore.succeeded", Duration::from_secs(10)).await;
        let r = status(&h, "msg_status_cb").await;
        assert_eq!(r.body["phase"], "succeeded", "{:?}", r.body);
        assert!(r.body["taskId"].is_i64() && r.body["finishedAt"].is_string(), "{:?}", r.body);
    }

    async fn a_lost_answer_is_reconciled_from_the_task_list_where_the_api_allows(api: ApiVersion) {
        let h = lossy(api).await;
        let body = restore_body(REDIS_ID, BACKUP_ID);
        let first = restore_as(&h, "msg_lost_one", &body).await;
        assert_eq!(h.restores(), 1, "the restore did start");
        match api {
            ApiVersion::V3 => {
                assert_eq!(first.status, 202, "{:?}", first.body);
                assert_eq!((first.body["status"].as_str(), first.body["reconciled"].as_bool()), (Some("started"), Some(true)));
                assert!(first.body["taskId"].is_i64());
                let replay = restore_as(&h, "msg_lost_one", &body).await;
                assert_eq!((replay.status, replay.body["taskId"].clone()), (202, first.body["taskId"].clone()));
                assert_eq!(replay.body["replayed"], true);
                let done = settled(&h, "msg_lost_one", Duration::from_secs(5)).await;
                assert_eq!((done.body["phase"].as_str(), done.body["reconciled"].as_bool()), (Some("succeeded"), Some(true)));
            }
            ApiVersion::V2 => {
                assert_eq!((first.status, first.code()), (504, "TencentTimeout"));
                let message = first.body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("API 2.0 cannot reconcile"), "{message}");
                assert_eq!(first.body.get("candidates"), None);
                let s = status(&h, "msg_lost_one").await;
                assert_eq!((s.body["phase"].as_str(), s.body["error"]["code"].as_str()), (Some("unknown"), Some("OutcomeUnknown")));
                let replay = restore_as(&h, "msg_lost_one", &body).await;
                assert_eq!((replay.status, replay.code()), (409, "OutcomeUnknown"));
            }
        }
        assert_eq!(h.sandbox.calls("RestoreInstance"), 1, "never a second RestoreInstance");
    }
}

/// Clone restores record `mode: "clone"` and the clone's id; the phase is the clone's status.
mod clone_mode {
    use super::*;
    use crs_restore::idempotency::Key;
    use crs_restore::payload::{RedisId, Region};
    use crs_restore::query::record::{DeliveryRecord, Stage};

    #[tokio::test]
    async fn a_clone_restore_is_running_until_the_clone_runs_then_succeeded() {
        let h = fast(ApiVersion::V3).await;
        let body = json!({"redisId": CLONE_SOURCE, "backupId": CLONE_BACKUP, "mode": "clone"}).to_string();
        let bought = h.invoke(event_with(&body, KEY_CLONERS, "msg_clone_real", now())).await;
        assert_eq!((bought.status, bought.body["status"].as_str()), (202, Some("cloning")), "{:?}", bought.body);
        let asked = status_body("msg_clone_real");
        let ask = || query(&h, &asked, KEY_CLONERS);
        let first = ask().await;
        assert_eq!(
            (first.body["phase"].as_str(), first.body["mode"].as_str()),
            (Some("running"), Some("clone")),
            "{:?}",
            first.body
        );
        assert_eq!(first.body["cloneInstanceId"], bought.body["cloneInstanceId"]);
        let until = std::time::Instant::now() + Duration::from_secs(10);
        let mut last = first;
        while last.body["phase"] == "running" && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            last = ask().await;
        }
        assert_eq!(
            (last.body["phase"].as_str(), last.body["tencentStatus"].as_str()),
            (Some("succeeded"), Some("2")),
            "{:?}",
            last.body
        );
        assert!(last.body["finishedAt"].is_string(), "{:?}", last.body);
        let theirs = status(&h, "msg_clone_real").await;
        assert_eq!(theirs.code(), "DeliveryNotFound", "another key's clone is not found");
    }

    for_both_apis! {
        async fn a_clone_delivery_is_running_until_its_clone_instance_runs(api: ApiVersion) {
            let h = fast(api).await;
            let redis = RedisId::parse(REDIS_ID).expect("id");
            let region = Region::parse("ap-guangzhou").expect("region");
            let mut record = DeliveryRecord::new("webhook", "msg_clone", "runbooks", &redis, &region, BACKUP_ID);
            record.mode = "clone".into();
            record.clone_instance_id = Some("crs-drill001".into());
            record.stage = Stage::Started;
            record.started_at_ms = Some(record.claimed_at_ms);
            let key = Key::new("webhook", "msg_clone", b"a clone request");
            let at = now() * 1000;
            h.state.idempotency.claim_with_document(&key, at + 60_000, at, Some(&record.to_document())).await.expect("claim");
            // The clone is being made (DescribeInstances status 1).
            h.sandbox.set_instance_status("crs-drill001", 1);
            let r = status(&h, "msg_clone").await;
            assert_eq!((r.body["phase"].as_str(), r.body["mode"].as_str()), (Some("running"), Some("clone")), "{:?}", r.body);
            assert_eq!((r.body["cloneInstanceId"].as_str(), r.body["tencentStatus"].as_str()), (Some("crs-drill001"), Some("1")));
            assert_eq!(r.body.get("finishedAt"), None);
            h.sandbox.set_instance_status("crs-drill001", 2);
            let r = status(&h, "msg_clone").await;
            assert_eq!(r.body["phase"], "succeeded", "{:?}", r.body);
            assert!(r.body["finishedAt"].is_string() && r.body["durationSeconds"].is_u64(), "{:?}", r.body);
            let again = status(&h, "msg_clone").await;
            assert_eq!(again.body["finishedAt"], r.body["finishedAt"], "the end is recorded once");
        }
    }
}

mod dynamodb {
    use super::*;

    #[tokio::test]
    async fn records_ride_on_the_claims_in_dynamodb_for_sync_and_callback_deliveries() {
        let h = Harness::builder(ApiVersion::V3).for_callbacks().with_dynamodb().build().await;
        assert_eq!(restore_as(&h, "msg_ddb_sync", &restore_body(REDIS_ID, BACKUP_ID)).await.status, 202);
        let done = settled(&h, "msg_ddb_sync", Duration::from_secs(5)).await;
        assert_eq!((done.body["phase"].as_str(), done.body["progress"].as_u64()), (Some("succeeded"), Some(100)));
        let rx = Receiver::start(CALLBACK_KEY, &[]).await;
        let body =
            json!({"redisId": REDIS_ID, "backupId": BACKUP_ID, "callbackUrl": rx.url(), "waitForCompletion": true});
        assert_eq!(restore_as(&h, "msg_ddb_cb", &body.to_string()).await.status, 202);
        rx.wait_for_kind("restore.succeeded", Duration::from_secs(10)).await;
        let r = status(&h, "msg_ddb_cb").await;
        assert_eq!(r.body["phase"], "succeeded", "{:?}", r.body);
        // One item per delivery (the claim, carrying the record), plus the job's own claim.
        let (client, table) = h.table.clone().expect("a table");
        let items = client.scan().table_name(&table).send().await.expect("scan").items.unwrap_or_default();
        let ids: Vec<String> = items.iter().filter_map(|i| i.get("id").and_then(|v| v.as_s().ok()).cloned()).collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert!(items.iter().filter(|i| i.contains_key("document")).count() == 2, "{ids:?}");
    }
}

mod v3_reconciliation {
    use super::*;

    #[tokio::test]
    async fn no_matching_task_stays_unknown_with_no_candidates() {
        let h = fast(ApiVersion::V3).await;
        h.sandbox.inject(Fault { action: Some("RestoreInstance".into()), kind: FaultKind::CloseConnection, times: 1 });
        let body = restore_body(REDIS_ID, BACKUP_ID);
        let first = restore_as(&h, "msg_lost_none", &body).await;
        assert_eq!((first.status, first.code()), (502, "TencentConnectionLost"));
        assert_eq!(first.body["candidates"], json!([]));
        let replay = restore_as(&h, "msg_lost_none", &body).await;
        assert_eq!(
            (replay.status, replay.code(), replay.body["candidates"].clone()),
            (409, "OutcomeUnknown", json!([]))
        );
        let s = status(&h, "msg_lost_none").await;
        assert_eq!((s.body["phase"].as_str(), s.body["candidates"].clone()), (Some("unknown"), json!([])));
        assert_eq!(h.restores(), 0);
    }

    #[tokio::test]
    async fn several_matching_tasks_stay_unknown_and_list_every_candidate() {
        let h = lossy(ApiVersion::V3).await;
        // Someone else started a restore of the same instance (e.g. in the console) just now.
        let other = h
            .sandbox
            .add_task(REDIS_ID, SandboxTaskKind::Restore, Duration::ZERO, Duration::from_millis(400), false)
            .expect("instance exists");
        let body = restore_body(REDIS_ID, BACKUP_ID);
        let first = restore_as(&h, "msg_lost_many", &body).await;
        assert_eq!((first.status, first.code()), (504, "TencentTimeout"), "{:?}", first.body);
        let candidates: Vec<i64> = serde_json::from_value(first.body["candidates"].clone()).expect("candidates");
        assert_eq!(candidates.len(), 2, "{candidates:?}");
        assert!(candidates.contains(&i64::try_from(other).expect("id")));
        let s = status(&h, "msg_lost_many").await;
        assert_eq!(
            (s.body["phase"].as_str(), s.body["candidates"].as_array().map(Vec::len)),
            (Some("unknown"), Some(2))
        );
        // A task that started before the claim, or a backup, is never a candidate.
        let older = lossy(ApiVersion::V3).await;
        older.sandbox.add_task(REDIS_ID, SandboxTaskKind::Restore, Duration::from_secs(60), Duration::ZERO, false);
        older.sandbox.add_task(REDIS_ID, SandboxTaskKind::Backup, Duration::ZERO, Duration::ZERO, false);
        let one = restore_as(&older, "msg_lost_older", &body).await;
        assert_eq!((one.status, one.body["reconciled"].as_bool()), (202, Some(true)), "{:?}", one.body);
    }

    #[tokio::test]
    async fn a_callback_job_whose_answer_was_lost_follows_the_reconciled_task_to_its_end() {
        let h = lossy(ApiVersion::V3).await;
        let rx = Receiver::start(CALLBACK_KEY, &[]).await;
        let body =
            json!({"redisId": REDIS_ID, "backupId": "latest", "callbackUrl": rx.url(), "waitForCompletion": true});
        assert_eq!(restore_as(&h, "msg_lost_job", &body.to_string()).await.status, 202);
        let events = rx.wait_for_kind("restore.succeeded", Duration::from_secs(10)).await;
        let kinds: Vec<&str> = events.iter().filter_map(|e| e.event["type"].as_str()).collect();
        assert_eq!(kinds, ["restore.started", "restore.succeeded"], "{events:?}");
        assert!(events[0].event["taskId"].is_i64());
        let s = status(&h, "msg_lost_job").await;
        assert_eq!((s.body["phase"].as_str(), s.body["reconciled"].as_bool()), (Some("succeeded"), Some(true)));
        assert_eq!(
            (s.body["taskId"].clone(), h.sandbox.calls("RestoreInstance")),
            (events[0].event["taskId"].clone(), 1)
        );
    }

    #[tokio::test]
    async fn a_status_query_reconciles_a_delivery_whose_task_list_was_unreadable() {
        let h = lossy(ApiVersion::V3).await;
        h.sandbox.inject(Fault { action: Some("DescribeTaskList".into()), kind: FaultKind::HttpStatus(503), times: 1 });
        let first = restore_as(&h, "msg_lost_later", &restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!((first.status, first.code()), (504, "TencentTimeout"));
        assert!(first.body["error"]["message"].as_str().unwrap_or_default().contains("could not be read"));
        let s: Value = status(&h, "msg_lost_later").await.body;
        assert!(s["reconciled"] == true && s["taskId"].is_i64(), "{s:?}");
        let replay = restore_as(&h, "msg_lost_later", &restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!((replay.status, replay.body["taskId"].clone()), (202, s["taskId"].clone()), "{:?}", replay.body);
    }
}
