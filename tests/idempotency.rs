//! Exactly one restore per delivery, with moto's DynamoDB as the idempotency store, through the
//! real handler, for both Tencent API generations.

mod common;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use crs_restore::sandbox::{Fault, FaultKind};
use crs_restore::tencent::ApiVersion;
use serde_json::json;

for_both_apis! {
    async fn a_replayed_delivery_gets_the_same_answer_and_restores_nothing(api: ApiVersion) {
        let h = Harness::builder(api).with_dynamodb().build().await;
        let ev = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
        let first = h.invoke(ev.clone()).await;
        assert_eq!(first.status, 202, "{:?}", first.body);
        let again = h.invoke(ev).await;
        assert_eq!(again.status, 202);
        assert_eq!(again.body["replayed"], true);
        let mut without_flag = again.body.clone();
        without_flag.as_object_mut().expect("object").remove("replayed");
        assert_eq!(without_flag, first.body);
        assert_eq!(h.sandbox.calls("RestoreInstance"), 1);
    }

    async fn fifty_concurrent_identical_deliveries_restore_exactly_once(api: ApiVersion) {
        let h = Harness::builder(api).with_dynamodb().build().await;
        let ev = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (state, ev) = (std::sync::Arc::clone(&h.state), ev.clone());
            set.spawn(async move { crs_restore::handler::handle_event(&state, ev).await });
        }
        let replies: Vec<Reply> = set.join_all().await.into_iter().map(to_reply).collect();
        let started = replies.iter().filter(|r| r.status == 202 && r.body["replayed"].is_null()).count();
        let others_ok = replies
            .iter()
            .filter(|r| (r.status == 409 && r.code() == "DuplicateInProgress") || r.body["replayed"] == true)
            .count();
        assert_eq!(started, 1);
        assert_eq!(others_ok, 49, "{:?}", replies.iter().map(|r| (r.status, r.code().to_owned())).collect::<Vec<_>>());
        assert_eq!(h.sandbox.calls("RestoreInstance"), 1);
    }

    async fn the_same_delivery_id_with_another_payload_is_refused(api: ApiVersion) {
        let h = Harness::builder(api).with_dynamodb().build().await;
        let body = restore_body(REDIS_ID, BACKUP_ID);
        assert_eq!(h.invoke(event_with(&body, KEY_RUNBOOKS, "msg_reuse", now())).await.status, 202);
        let other = restore_body(REDIS_ID, EXPIRED_BACKUP);
        let reply = h.invoke(event_with(&other, KEY_RUNBOOKS, "msg_reuse", now())).await;
        assert_eq!((reply.status, reply.code()), (422, "IdempotencyKeyReuse"));
        assert_eq!(h.sandbox.calls("RestoreInstance"), 1);
    }

    async fn a_claim_whose_holder_died_is_taken_over_but_a_live_one_is_not(api: ApiVersion) {
        let h = Harness::builder(api).with_dynamodb().build().await;
        let (client, table) = h.table.clone().expect("table");
        let body = restore_body(REDIS_ID, BACKUP_ID);
        let hash = crs_restore::idempotency::Key::new("webhook", "x", body.as_bytes()).payload_hash;
        let put = |id: &str, expiry_ms: i64| {
            client
                .put_item()
                .table_name(&table)
                .item("id", AttributeValue::S(format!("webhook#{id}")))
                .item("status", AttributeValue::S("IN_PROGRESS".into()))
                .item("payload_hash", AttributeValue::S(hash.clone()))
                .item("in_progress_expiry", AttributeValue::N(expiry_ms.to_string()))
                .item("expiration", AttributeValue::N((now() + 86_400).to_string()))
                .send()
        };
        put("msg_live", (now() + 600) * 1000).await.expect("put live");
        put("msg_dead", (now() - 10) * 1000).await.expect("put dead");
        let live = h.invoke(event_with(&body, KEY_RUNBOOKS, "msg_live", now())).await;
        assert_eq!((live.status, live.code()), (409, "DuplicateInProgress"));
        let dead = h.invoke(event_with(&body, KEY_RUNBOOKS, "msg_dead", now())).await;
        assert_eq!(dead.status, 202, "{:?}", dead.body);
        assert_eq!(h.sandbox.calls("RestoreInstance"), 1);
    }

    async fn a_timeout_after_sending_is_reconciled_or_makes_duplicates_check_the_task_list(api: ApiVersion) {
        let h = Harness::builder(api).with_dynamodb().env("TENCENT_TIMEOUT_SECONDS", "1").build().await;
        h.sandbox.inject(Fault {
            action: Some("RestoreInstance".into()),
            kind: FaultKind::DelayResponse(Duration::from_secs(3)),
            times: 1,
        });
        let ev = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
        let first = h.invoke(ev.clone()).await;
        let again = h.invoke(ev).await;
        if api == ApiVersion::V3 {
            // Reconciled from the task list, and recorded in DynamoDB: the duplicate replays it.
            assert_eq!((first.status, first.body["reconciled"].as_bool()), (202, Some(true)), "{:?}", first.body);
            assert_eq!((again.status, &again.body["taskId"]), (202, &first.body["taskId"]), "{:?}", again.body);
            assert_eq!(again.body["replayed"], true);
        } else {
            assert_eq!(first.code(), "TencentTimeout");
            assert_eq!((again.status, again.code()), (409, "OutcomeUnknown"));
            assert!(again.body["error"]["message"].as_str().is_some_and(|m| m.contains("task list")));
        }
        assert_eq!(h.sandbox.calls("RestoreInstance"), 1);
    }

    async fn an_unavailable_idempotency_store_fails_closed(api: ApiVersion) {
        let h = Harness::builder(api).with_dynamodb_at(closed_port_url()).build().await;
        let reply = h.restore(&restore_body(REDIS_ID, BACKUP_ID)).await;
        assert_eq!((reply.status, reply.code()), (503, "IdempotencyUnavailable"));
        assert_eq!(h.sandbox.calls("RestoreInstance"), 0);
    }

    async fn a_refused_delivery_replays_its_refusal_and_a_transient_failure_can_be_retried(api: ApiVersion) {
        let h = Harness::builder(api).with_dynamodb().env("SECRETS_TTL_SECONDS", "0").build().await;
        h.sandbox.inject(Fault::error("RestoreInstance", "InstanceLockedError"));
        let ev = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
        assert_eq!(h.invoke(ev.clone()).await.code(), "InstanceLockedError");
        let again = h.invoke(ev).await;
        assert_eq!((again.status, again.code(), again.body["replayed"].as_bool()), (409, "InstanceLockedError", Some(true)));
        assert_eq!(h.sandbox.calls("RestoreInstance"), 1);

        // Nothing was sent (the password secret is missing): the claim is released, and the same
        // delivery succeeds once the secret exists.
        h.delete_secret(&format!("instances/{REDIS_ID}")).await;
        let ev = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
        assert_eq!(h.invoke(ev.clone()).await.code(), "SecretNotFound");
        h.put_secret(&format!("instances/{REDIS_ID}"), PASSWORD).await;
        assert_eq!(h.invoke(ev).await.status, 202, "a 5xx before sending released the key");
    }

    async fn an_unreadable_answer_to_a_restore_is_an_unknown_outcome_never_a_second_restore(api: ApiVersion) {
        let h = Harness::builder(api).with_dynamodb().build().await;
        for kind in [FaultKind::HttpStatus(500), FaultKind::TruncatedJson] {
            h.sandbox.inject(Fault { action: Some("RestoreInstance".into()), kind, times: 1 });
            let ev = signed_event(&restore_body(REDIS_ID, BACKUP_ID), KEY_RUNBOOKS);
            let first = h.invoke(ev.clone()).await;
            assert_eq!(first.status, 502);
            assert!(first.body["error"]["message"].as_str().is_some_and(|m| m.contains("task list")), "{:?}", first.body);
            let again = h.invoke(ev).await;
            assert_eq!((again.status, again.code()), (409, "OutcomeUnknown"));
        }
        assert_eq!(h.sandbox.calls("RestoreInstance"), 2);
    }

    async fn records_carry_the_documented_ttl_attribute(api: ApiVersion) {
        let h = Harness::builder(api).with_dynamodb().build().await;
        let body = restore_body(REDIS_ID, BACKUP_ID);
        assert_eq!(h.invoke(event_with(&body, KEY_RUNBOOKS, "msg_ttl", now())).await.status, 202);
        let (client, table) = h.table.clone().expect("table");
        let item = client
            .get_item()
            .table_name(&table)
            .key("id", AttributeValue::S("webhook#msg_ttl".into()))
            .send()
            .await
            .expect("get")
            .item
            .expect("record exists");
        let n = |k: &str| item[k].as_n().expect("number").parse::<i64>().expect("int");
        let s = |k: &str| item[k].as_s().expect("string").clone();
        assert!((n("expiration") - (now() + 86_400)).abs() <= 5, "expiration = now + IDEMPOTENCY_TTL_SECONDS");
        assert_eq!(s("status"), "COMPLETED");
        assert_eq!(s("payload_hash").len(), 64);
        let stored: serde_json::Value = serde_json::from_str(&s("response_data")).expect("stored answer");
        assert_eq!(stored["status"], 202);
        assert!(n("in_progress_expiry") > now() * 1000);
    }

    async fn a_callback_delivery_replays_accepted_and_its_job_runs_once(api: ApiVersion) {
        let h = Harness::builder(api).with_dynamodb().for_callbacks().build().await;
        let rx = common::receiver::Receiver::start(CALLBACK_KEY, &[]).await;
        let body = json!({"redisId": REDIS_ID, "backupId": BACKUP_ID, "callbackUrl": rx.url()}).to_string();
        let ev = signed_event(&body, KEY_RUNBOOKS);
        assert_eq!(h.invoke(ev.clone()).await.body["status"], "accepted");
        let again = h.invoke(ev).await;
        assert_eq!((again.body["status"].as_str(), again.body["replayed"].as_bool()), (Some("accepted"), Some(true)));
        rx.wait_for(1, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(rx.received().len(), 1);
        assert_eq!(h.sandbox.calls("RestoreInstance"), 1);
    }
}
