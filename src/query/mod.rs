//! Signed read-only queries on the restore channel: `{"query": "status", "deliveryId"}` (how
//! far a delivery got, read live from Tencent) and `{"query": "tasks", "redisId", "region"?}`
//! (an instance's recent restore, clone and backup tasks).
//!
//! A body is a query exactly when it is a JSON object with a top-level `query` field; a
//! restore request can never have one (its parser refuses unknown fields), so neither is ever
//! mistaken for the other. Queries are verified like restores but never claimed in the
//! idempotency store, so any `webhook-id` may be reused for them.

pub mod reconcile;
pub mod record;
mod status;
pub mod tasks;

use std::time::Instant;

use serde_json::{Value, json};

use crate::audit::Audit;
use crate::auth::KeyConfig;
use crate::error::RestoreError;
use crate::event::HttpResponse;
use crate::payload::{Object, PayloadError, RedisId, Region};
use crate::state::AppState;

pub(crate) use status::reconcile_record;
pub use status::{StatusAnswer, status_of};

/// A validated query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Status { delivery_id: String },
    Tasks { redis_id: RedisId, region: Option<Region> },
}

impl Query {
    /// Whether `body` is a query (a JSON object with a top-level `query` field).
    pub fn is_query(body: &[u8]) -> bool {
        Object::parse(body).is_ok_and(|o| o.get("query").is_some())
    }

    /// Parses a query body; every field is checked as strictly as a restore request's.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let object = Object::parse(body)?;
        let invalid = |field, reason: &str| PayloadError::InvalidField { field, reason: reason.into() };
        match object.required_str("query")? {
            "status" => {
                object.check_fields(&["query", "deliveryId"])?;
                let id = object.required_str("deliveryId")?;
                // The webhook-id rule: what a delivery id can be at all.
                let ok = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic() && b != b'.');
                if !ok {
                    return Err(invalid(
                        "deliveryId",
                        "must be 1-128 printable ASCII characters without '.' or spaces",
                    ));
                }
                Ok(Self::Status { delivery_id: id.to_owned() })
            }
            "tasks" => {
                object.check_fields(&["query", "redisId", "region"])?;
                let redis_id = RedisId::parse(object.required_str("redisId")?).map_err(|r| invalid("redisId", &r))?;
                let region =
                    object.optional_str("region")?.map(Region::parse).transpose().map_err(|r| invalid("region", &r))?;
                Ok(Self::Tasks { redis_id, region })
            }
            _ => Err(invalid("query", "must be \"status\" or \"tasks\"")),
        }
    }
}

/// Answers a verified query for the key that signed it.
pub async fn answer(
    state: &AppState,
    query: Query,
    key: &KeyConfig,
    audit: &mut Audit,
    _deadline: Option<Instant>,
) -> Result<HttpResponse, RestoreError> {
    audit.phase = "query";
    let body = match query {
        Query::Status { delivery_id } => {
            audit.delivery_id = Some(delivery_id.clone());
            let answer = status_of(state, "webhook", &delivery_id, Some(&key.id)).await?;
            audit.redis_id = Some(answer.redis_id.clone());
            audit.task_id = answer.task_id;
            answer.to_json()
        }
        Query::Tasks { redis_id, region } => {
            let region = region.or_else(|| state.config.default_region.clone()).ok_or(RestoreError::RegionRequired)?;
            audit.redis_id = Some(redis_id.clone());
            audit.region = Some(region.clone());
            if !key.allow.allows(&redis_id) {
                return Err(RestoreError::Forbidden { key_id: key.id.clone(), redis_id: redis_id.to_string() });
            }
            tasks::list(state, &redis_id, &region).await?
        }
    };
    Ok(HttpResponse::json(200, body))
}

/// The answer a restore that started gives, for a delivery whose task was reconciled.
pub fn started_body(record: &record::DeliveryRecord) -> Value {
    json!({
        "status": "started",
        "taskId": record.task_id,
        "redisId": record.redis_id.as_str(),
        "backupId": record.backup,
        "region": record.region.as_str(),
        "deliveryId": record.delivery_id,
        "reconciled": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_bodies_parse_and_restore_bodies_are_not_queries() {
        assert!(Query::is_query(br#"{"query":"status","deliveryId":"msg_1"}"#));
        assert!(!Query::is_query(br#"{"redisId":"crs-izbob1wh","backupId":"latest"}"#));
        assert!(!Query::is_query(b"not json"));
        assert_eq!(
            Query::parse(br#"{"query":"status","deliveryId":"msg_1"}"#),
            Ok(Query::Status { delivery_id: "msg_1".into() })
        );
        let tasks = Query::parse(br#"{"query":"tasks","redisId":"crs-izbob1wh"}"#).expect("valid");
        assert!(matches!(tasks, Query::Tasks { region: None, .. }));
    }

    #[test]
    fn garbage_queries_name_their_field() {
        let field = |body: &str| match Query::parse(body.as_bytes()) {
            Err(PayloadError::InvalidField { field, .. }) => field.to_owned(),
            Err(other) => other.code().to_owned(),
            Ok(q) => panic!("{body} parsed as {q:?}"),
        };
        assert_eq!(field(r#"{"query":"restore"}"#), "query");
        assert_eq!(field(r#"{"query":5}"#), "query");
        assert_eq!(field(r#"{"query":"status"}"#), "MissingField");
        assert_eq!(field(r#"{"query":"status","deliveryId":"a.b"}"#), "deliveryId");
        assert_eq!(field(r#"{"query":"status","deliveryId":"m","redisId":"crs-izbob1wh"}"#), "UnknownField");
        assert_eq!(field(r#"{"query":"tasks","redisId":"crs-X"}"#), "redisId");
        assert_eq!(field(r#"{"query":"tasks","redisId":"crs-izbob1wh","backupId":"latest"}"#), "UnknownField");
        assert_eq!(field(r#"{"query":"status","query":"tasks","deliveryId":"m"}"#), "DuplicateField");
    }
}
