//! Exactly one restore per delivery: a claim-before-acting idempotency store (DynamoDB, or
//! memory for local runs) modelled on Powertools' Idempotency utility.
//!
//! The first delivery of a key claims it with a conditional write before anything irreversible
//! happens; duplicates then see the claim (409), the recorded answer (replayed), or a record
//! that the outcome is unknown (409, check the task list). The store fails closed: if it cannot
//! be read or written, nothing is restored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::aws::SdkClient;

/// Where a record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    /// RestoreInstance was sent but no answer came back: only the task list knows.
    OutcomeUnknown,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::OutcomeUnknown => "OUTCOME_UNKNOWN",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "IN_PROGRESS" => Some(Self::InProgress),
            "COMPLETED" => Some(Self::Completed),
            "OUTCOME_UNKNOWN" => Some(Self::OutcomeUnknown),
            _ => None,
        }
    }
}

/// An answer recorded for replay.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Value,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This delivery owns the key: go ahead.
    Claimed,
    /// Another delivery of the same key is running.
    InProgress,
    /// Already done: replay this answer.
    Completed(StoredResponse),
    /// The same key arrived with a different payload.
    KeyReuse,
    /// An earlier delivery sent RestoreInstance and never learnt the result.
    OutcomeUnknown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the idempotency store is unavailable: {0}")]
pub struct StoreError(pub String);

/// A claim's identity: source and delivery id, plus the hash of what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub id: String,
    pub payload_hash: String,
}

impl Key {
    /// The key of an existing claim, for recording its outcome later (the payload is not
    /// needed to settle a claim, only to take one).
    pub fn settle_only(source: &str, delivery_id: &str) -> Self {
        Self { id: format!("{source}#{delivery_id}"), payload_hash: String::new() }
    }

    /// `source` is `webhook`, `slack`, `drill` or `job`; `payload` the bytes that must match.
    pub fn new(source: &str, delivery_id: &str, payload: &[u8]) -> Self {
        Self { id: format!("{source}#{delivery_id}"), payload_hash: hex::encode(Sha256::digest(payload)) }
    }
}

#[derive(Debug, Clone)]
struct Record {
    status: Status,
    payload_hash: String,
    response: Option<StoredResponse>,
    in_progress_expiry_ms: i64,
    /// When the record is forgotten (the TTL), unix ms.
    expires_at_ms: i64,
    /// What status queries read about the delivery (see [`Store::get_document`]).
    document: Option<Value>,
}

impl Record {
    fn decide(&self, key: &Key) -> Claim {
        if self.payload_hash != key.payload_hash {
            return Claim::KeyReuse;
        }
        match (self.status, &self.response) {
            (Status::Completed, Some(r)) => Claim::Completed(r.clone()),
            (Status::OutcomeUnknown, _) => Claim::OutcomeUnknown,
            _ => Claim::InProgress,
        }
    }
}

/// The store: DynamoDB in production, memory when `IDEMPOTENCY_TABLE` is not set.
#[derive(Debug)]
pub struct Store(Backend);

#[derive(Debug)]
enum Backend {
    Dynamo { client: SdkClient<aws_sdk_dynamodb::Client>, table: String, ttl: Duration },
    Memory { records: Mutex<HashMap<String, Record>>, ttl: Duration },
}

impl Store {
    pub fn memory(ttl: Duration) -> Self {
        Self(Backend::Memory { records: Mutex::default(), ttl })
    }

    pub fn dynamodb(client: impl Into<SdkClient<aws_sdk_dynamodb::Client>>, table: String, ttl: Duration) -> Self {
        Self(Backend::Dynamo { client: client.into(), table, ttl })
    }

    /// Claims `key` until `in_progress_until_ms` (the holder's deadline, unix ms).
    pub async fn claim(&self, key: &Key, in_progress_until_ms: i64, now_ms: i64) -> Result<Claim, StoreError> {
        self.claim_with_document(key, in_progress_until_ms, now_ms, None).await
    }

    /// [`Store::claim`], storing `document` with the claim in the same write when it succeeds.
    pub async fn claim_with_document(
        &self,
        key: &Key,
        in_progress_until_ms: i64,
        now_ms: i64,
        document: Option<&Value>,
    ) -> Result<Claim, StoreError> {
        match &self.0 {
            Backend::Memory { records, ttl, .. } => {
                let mut records = records.lock().unwrap_or_else(|p| p.into_inner());
                records.retain(|_, r| r.expires_at_ms > now_ms);
                if let Some(existing) = records.get(&key.id) {
                    let holder_died = existing.status == Status::InProgress && existing.in_progress_expiry_ms < now_ms;
                    if !holder_died {
                        return Ok(existing.decide(key));
                    }
                }
                let record = Record {
                    status: Status::InProgress,
                    payload_hash: key.payload_hash.clone(),
                    response: None,
                    in_progress_expiry_ms: in_progress_until_ms,
                    expires_at_ms: now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
                    document: document.cloned(),
                };
                records.insert(key.id.clone(), record);
                Ok(Claim::Claimed)
            }
            Backend::Dynamo { client, table, ttl } => {
                let expiration = now_ms / 1000 + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
                let mut put = client
                    .get()
                    .await
                    .put_item()
                    .table_name(table)
                    .item("id", AttributeValue::S(key.id.clone()))
                    .item("status", AttributeValue::S(Status::InProgress.as_str().into()))
                    .item("payload_hash", AttributeValue::S(key.payload_hash.clone()))
                    .item("in_progress_expiry", AttributeValue::N(in_progress_until_ms.to_string()))
                    .item("expiration", AttributeValue::N(expiration.to_string()))
                    // A new key, or one whose holder died (its in-progress expiry passed), or one
                    // whose TTL passed but DynamoDB has not deleted yet (TTL deletion is lazy).
                    .condition_expression(
                        "attribute_not_exists(id) OR (#s = :in_progress AND in_progress_expiry < :now_ms) OR expiration < :now_s",
                    )
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":in_progress", AttributeValue::S(Status::InProgress.as_str().into()))
                    .expression_attribute_values(":now_ms", AttributeValue::N(now_ms.to_string()))
                    .expression_attribute_values(":now_s", AttributeValue::N((now_ms / 1000).to_string()));
                if let Some(doc) = document {
                    put = put.item("document", AttributeValue::S(doc.to_string()));
                }
                let put = put.send().await;
                match put {
                    Ok(_) => Ok(Claim::Claimed),
                    Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                        let existing = self.read(key).await?;
                        Ok(existing.map_or(Claim::InProgress, |r| r.decide(key)))
                    }
                    Err(e) => Err(dynamo_error(&e)),
                }
            }
        }
    }

    /// Records the final answer for replay.
    pub async fn complete(&self, key: &Key, response: &StoredResponse) -> Result<(), StoreError> {
        self.finish(key, Status::Completed, Some(response), None).await
    }

    /// [`Store::complete`], replacing the claim's document in the same write when one is given.
    pub async fn complete_with_document(
        &self,
        key: &Key,
        response: &StoredResponse,
        document: Option<&Value>,
    ) -> Result<(), StoreError> {
        self.finish(key, Status::Completed, Some(response), document).await
    }

    /// Records that RestoreInstance was sent but its outcome is unknown.
    pub async fn mark_outcome_unknown(&self, key: &Key) -> Result<(), StoreError> {
        self.finish(key, Status::OutcomeUnknown, None, None).await
    }

    /// [`Store::mark_outcome_unknown`], replacing the claim's document in the same write.
    pub async fn mark_outcome_unknown_with_document(
        &self,
        key: &Key,
        document: Option<&Value>,
    ) -> Result<(), StoreError> {
        self.finish(key, Status::OutcomeUnknown, None, document).await
    }

    /// Gives the key up (nothing happened): an identical retry may try again.
    pub async fn release(&self, key: &Key) -> Result<(), StoreError> {
        match &self.0 {
            Backend::Memory { records, .. } => {
                records.lock().unwrap_or_else(|p| p.into_inner()).remove(&key.id);
                Ok(())
            }
            Backend::Dynamo { client, table, .. } => client
                .get()
                .await
                .delete_item()
                .table_name(table)
                .key("id", AttributeValue::S(key.id.clone()))
                .send()
                .await
                .map(drop)
                .map_err(|e| dynamo_error(&e)),
        }
    }

    async fn finish(
        &self,
        key: &Key,
        status: Status,
        response: Option<&StoredResponse>,
        document: Option<&Value>,
    ) -> Result<(), StoreError> {
        match &self.0 {
            Backend::Memory { records, .. } => {
                let mut records = records.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(r) = records.get_mut(&key.id) {
                    r.status = status;
                    r.response = response.cloned();
                    if let Some(doc) = document {
                        r.document = Some(doc.clone());
                    }
                }
                Ok(())
            }
            Backend::Dynamo { client, table, .. } => {
                let mut update = client
                    .get()
                    .await
                    .update_item()
                    .table_name(table)
                    .key("id", AttributeValue::S(key.id.clone()))
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":s", AttributeValue::S(status.as_str().into()));
                let mut expression = String::from("SET #s = :s");
                if let Some(r) = response {
                    let stored = serde_json::json!({"status": r.status, "body": r.body}).to_string();
                    expression.push_str(", response_data = :r");
                    update = update.expression_attribute_values(":r", AttributeValue::S(stored));
                }
                if let Some(doc) = document {
                    expression.push_str(", document = :d");
                    update = update.expression_attribute_values(":d", AttributeValue::S(doc.to_string()));
                }
                update.update_expression(expression).send().await.map(drop).map_err(|e| dynamo_error(&e))
            }
        }
    }

    /// Replaces the document of the claim `key_id` (`source#delivery`), if that claim exists;
    /// never creates one (an item without a claim's fields would confuse later claims).
    pub async fn set_document(&self, key_id: &str, document: &Value) -> Result<(), StoreError> {
        match &self.0 {
            Backend::Memory { records, .. } => {
                let mut records = records.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(r) = records.get_mut(key_id) {
                    r.document = Some(document.clone());
                }
                Ok(())
            }
            Backend::Dynamo { client, table, .. } => {
                let result = client
                    .get()
                    .await
                    .update_item()
                    .table_name(table)
                    .key("id", AttributeValue::S(key_id.to_owned()))
                    .update_expression("SET document = :d")
                    .condition_expression("attribute_exists(id)")
                    .expression_attribute_values(":d", AttributeValue::S(document.to_string()))
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(()),
                    Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(()),
                    Err(e) => Err(dynamo_error(&e)),
                }
            }
        }
    }

    /// The document stored with the claim `key_id`, if the claim exists and has not expired.
    /// Status queries read it; claims never look at it.
    pub async fn get_document(&self, key_id: &str, now_ms: i64) -> Result<Option<Value>, StoreError> {
        match &self.0 {
            Backend::Memory { records, .. } => {
                let records = records.lock().unwrap_or_else(|p| p.into_inner());
                Ok(records.get(key_id).filter(|r| r.expires_at_ms > now_ms).and_then(|r| r.document.clone()))
            }
            Backend::Dynamo { client, table, .. } => {
                let out = client
                    .get()
                    .await
                    .get_item()
                    .table_name(table)
                    .key("id", AttributeValue::S(key_id.to_owned()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| dynamo_error(&e))?;
                let Some(item) = out.item else { return Ok(None) };
                // TTL deletion is lazy: an expired item may still be there.
                let expired = item
                    .get("expiration")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|s| s.saturating_mul(1000) <= now_ms);
                if expired {
                    return Ok(None);
                }
                Ok(item.get("document").and_then(|v| v.as_s().ok()).and_then(|raw| serde_json::from_str(raw).ok()))
            }
        }
    }

    async fn read(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        let Backend::Dynamo { client, table, .. } = &self.0 else {
            return Ok(None);
        };
        let out = client
            .get()
            .await
            .get_item()
            .table_name(table)
            .key("id", AttributeValue::S(key.id.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error(&e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let n = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
        let response = s("response_data").and_then(|raw| serde_json::from_str::<Value>(&raw).ok()).and_then(|v| {
            let status = u16::try_from(v.get("status")?.as_u64()?).ok()?;
            Some(StoredResponse { status, body: v.get("body")?.clone() })
        });
        Ok(Some(Record {
            status: s("status").and_then(|v| Status::parse(&v)).unwrap_or(Status::InProgress),
            payload_hash: s("payload_hash").unwrap_or_default(),
            response,
            in_progress_expiry_ms: n("in_progress_expiry").unwrap_or(i64::MAX),
            expires_at_ms: n("expiration").map_or(i64::MAX, |s| s.saturating_mul(1000)),
            document: None,
        }))
    }
}

fn dynamo_error<E: ProvideErrorMetadata + std::fmt::Debug, R>(e: &SdkError<E, R>) -> StoreError {
    StoreError(match e {
        SdkError::ServiceError(se) => se.err().code().unwrap_or("service error").to_owned(),
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(_) => "could not connect".into(),
        _ => "request failed".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(body: &str) -> Key {
        Key::new("webhook", "msg_1", body.as_bytes())
    }

    #[tokio::test]
    async fn the_memory_store_claims_once_replays_and_detects_key_reuse() {
        let store = Store::memory(Duration::from_secs(86_400));
        let k = key("{}");
        assert_eq!(store.claim(&k, 10_000, 1_000).await, Ok(Claim::Claimed));
        assert_eq!(store.claim(&k, 10_000, 2_000).await, Ok(Claim::InProgress));
        assert_eq!(store.claim(&key("{\"x\":1}"), 10_000, 2_000).await, Ok(Claim::KeyReuse));
        let answer = StoredResponse { status: 202, body: json!({"status": "started"}) };
        store.complete(&k, &answer).await.expect("complete");
        assert_eq!(store.claim(&k, 10_000, 3_000).await, Ok(Claim::Completed(answer)));
    }

    #[tokio::test]
    async fn a_claim_whose_holder_died_can_be_taken_over_and_a_released_key_reclaimed() {
        let store = Store::memory(Duration::from_secs(86_400));
        let k = key("{}");
        assert_eq!(store.claim(&k, 5_000, 1_000).await, Ok(Claim::Claimed));
        assert_eq!(store.claim(&k, 20_000, 6_000).await, Ok(Claim::Claimed));
        store.release(&k).await.expect("release");
        assert_eq!(store.claim(&k, 30_000, 7_000).await, Ok(Claim::Claimed));
        store.mark_outcome_unknown(&k).await.expect("mark");
        assert_eq!(store.claim(&k, 90_000, 80_000).await, Ok(Claim::OutcomeUnknown));
    }

    #[tokio::test]
    async fn a_document_rides_on_its_claim_and_expires_with_it() {
        let store = Store::memory(Duration::from_secs(10));
        let k = key("{}");
        store.set_document(&k.id, &json!({"stage": "orphan"})).await.expect("set");
        assert_eq!(store.get_document(&k.id, 1_000).await, Ok(None), "no claim, no document");
        let doc = json!({"stage": "accepted"});
        assert_eq!(store.claim_with_document(&k, 10_000, 1_000, Some(&doc)).await, Ok(Claim::Claimed));
        assert_eq!(store.get_document(&k.id, 2_000).await, Ok(Some(doc)));
        let answer = StoredResponse { status: 202, body: json!({"status": "started"}) };
        store.complete_with_document(&k, &answer, Some(&json!({"stage": "started"}))).await.expect("complete");
        assert_eq!(store.claim(&k, 10_000, 3_000).await, Ok(Claim::Completed(answer)), "claims ignore documents");
        assert_eq!(store.get_document(&k.id, 3_000).await, Ok(Some(json!({"stage": "started"}))));
        assert_eq!(store.get_document(&k.id, 11_000).await, Ok(None));
    }

    #[test]
    fn keys_separate_sources_and_hash_the_payload() {
        let a = Key::new("webhook", "id", b"body");
        assert_eq!(a.id, "webhook#id");
        assert_ne!(a, Key::new("slack", "id", b"body"));
        assert_ne!(a.payload_hash, Key::new("webhook", "id", b"other").payload_hash);
    }
}
