//! The one place where failures become HTTP answers: status, public code, message.
//!
//! Every expected failure is a [`RestoreError`]; its JSON body is
//! `{"error": {"code", "message", "tencentCode"?}, "deliveryId"?}`. Messages never carry
//! secret values (the types that could hold them are redacted) or raw request bodies.

use serde_json::{Value, json};

use crate::callback::CallbackUrlError;
use crate::event::HttpResponse;
use crate::idempotency::StoreError;
use crate::invoke::InvokeError;
use crate::payload::PayloadError;
use crate::secrets::SecretsError;
use crate::signature::SignatureError;
use crate::tencent::{Failure, TencentError};

/// Bodies larger than this are refused before anything else is done with them.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("method {0} is not allowed; use POST")]
    MethodNotAllowed(String),
    #[error("content-type must be application/json")]
    UnsupportedMediaType,
    #[error("body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("body is marked base64-encoded but does not decode")]
    InvalidBase64,
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("field \"region\" is required: the request names none and TENCENT_REGION is not set")]
    RegionRequired,
    #[error("key {key_id:?} is not allowed to restore {redis_id}")]
    Forbidden { key_id: String, redis_id: String },
    #[error(transparent)]
    Callback(#[from] CallbackUrlError),
    #[error("field \"waitForCompletion\" requires a callbackUrl: there is nobody to tell when the restore ends")]
    WaitWithoutCallback,
    #[error(transparent)]
    Check(#[from] CheckFailure),
    #[error("the function's configuration is wrong: {0}")]
    Configuration(String),
    #[error(transparent)]
    AsyncInvoke(#[from] InvokeError),
    #[error("this delivery is already being processed; wait for its result instead of sending it again")]
    DuplicateInProgress,
    #[error("this delivery id was already used with a different payload; use a new webhook-id")]
    IdempotencyKeyReuse,
    #[error(
        "an earlier attempt of this delivery sent RestoreInstance or CloneInstances and its outcome is unknown; check the instance's task list (in place) or search for an instance tagged crs-restore:delivery={0} (clone) before restoring again (with a new delivery id)"
    )]
    OutcomeUnknown(String),
    #[error(
        "CloneInstances was sent but no answer came back, and no instance tagged {tag} appeared: a clone may still be created and billed; search the instance list for the tag {tag} before restoring again (with a new delivery id)"
    )]
    CloneOutcomeUnknown { tag: String },
    #[error("key {key_id:?} may not clone: a clone buys a new, billed instance; the key entry needs \"clone\": true")]
    CloneNotAllowed { key_id: String },
    #[error("mode \"clone\" needs Tencent API 3.0 (TENCENT_API_VERSION=3): API 2.0 has no CloneInstances")]
    CloneRequiresApi3,
    #[error("point-in-time restore is not possible: {0}")]
    PointInTimeUnavailable(String),
    #[error(
        "Tencent restores {} only by cloning a new instance from the backup, not in place; send the request again with \"mode\": \"clone\" ({})",
        .edition.as_deref().unwrap_or("this edition"), .source
    )]
    InPlaceRestoreUnsupported { edition: Option<String>, source: TencentError },
    #[error("the source instance cannot be cloned as a twin: {0}")]
    CloneSourceUnsupported(String),
    #[error(
        "the drill's clone would cost {price} {currency} per hour, more than DRILL_MAX_HOURLY_PRICE ({limit}); nothing was bought"
    )]
    DrillPriceLimit { price: f64, currency: String, limit: f64 },
    #[error(transparent)]
    IdempotencyUnavailable(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Tencent(#[from] TencentError),
}

impl RestoreError {
    pub fn status(&self) -> u16 {
        match self {
            Self::MethodNotAllowed(_) => 405,
            Self::UnsupportedMediaType => 415,
            Self::PayloadTooLarge => 413,
            Self::InvalidBase64
            | Self::Payload(_)
            | Self::RegionRequired
            | Self::Callback(_)
            | Self::WaitWithoutCallback => 400,
            Self::Check(c) => c.status(),
            Self::Configuration(_) => 500,
            Self::AsyncInvoke(_) | Self::IdempotencyUnavailable(_) => 503,
            Self::DuplicateInProgress
            | Self::OutcomeUnknown(_)
            | Self::CloneOutcomeUnknown { .. }
            | Self::PointInTimeUnavailable(_)
            | Self::InPlaceRestoreUnsupported { .. }
            | Self::CloneSourceUnsupported(_)
            | Self::DrillPriceLimit { .. } => 409,
            Self::CloneNotAllowed { .. } => 403,
            Self::CloneRequiresApi3 => 422,
            Self::IdempotencyKeyReuse => 422,
            Self::Signature(_) => 401,
            Self::Forbidden { .. } => 403,
            Self::Secrets(SecretsError::Malformed { .. }) => 500,
            Self::Secrets(_) => 503,
            Self::Tencent(t) => match t {
                TencentError::Api { failure, .. } => match failure {
                    Failure::InstanceNotExists | Failure::BackupNotExists => 404,
                    Failure::InstanceLocked
                    | Failure::BackupLocked
                    | Failure::InstanceStatusAbnormal
                    | Failure::BackupStatusAbnormal => 409,
                    Failure::InvalidParameter => 422,
                    Failure::PaymentFailed => 402,
                    Failure::NotPermitted => 403,
                    Failure::InPlaceUnsupported | Failure::CapacityUnavailable | Failure::QuotaExceeded => 409,
                    Failure::PasswordError | Failure::AuthFailure | Failure::Unsupported | Failure::Other => 502,
                },
                TencentError::Timeout { .. } => 504,
                TencentError::Config(_) => 500,
                TencentError::Unreachable { .. }
                | TencentError::Interrupted { .. }
                | TencentError::HttpStatus { .. }
                | TencentError::Malformed { .. } => 502,
            },
        }
    }

    /// The stable, documented error code.
    pub fn code(&self) -> String {
        let fixed = match self {
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::UnsupportedMediaType => "UnsupportedMediaType",
            Self::PayloadTooLarge => "PayloadTooLarge",
            Self::InvalidBase64 => "InvalidBase64Body",
            Self::Signature(e) => e.code(),
            Self::Payload(e) => e.code(),
            Self::RegionRequired => "MissingField",
            Self::Forbidden { .. } => "InstanceNotAllowed",
            Self::Callback(_) => "CallbackUrlNotAllowed",
            Self::WaitWithoutCallback => "InvalidField",
            Self::Check(c) => c.code(),
            Self::Configuration(_) => "ConfigurationError",
            Self::AsyncInvoke(_) => "AsyncInvokeFailed",
            Self::DuplicateInProgress => "DuplicateInProgress",
            Self::IdempotencyKeyReuse => "IdempotencyKeyReuse",
            Self::OutcomeUnknown(_) | Self::CloneOutcomeUnknown { .. } => "OutcomeUnknown",
            Self::CloneNotAllowed { .. } => "CloneNotAllowed",
            Self::CloneRequiresApi3 => "CloneRequiresApi3",
            Self::PointInTimeUnavailable(_) => "PointInTimeUnavailable",
            Self::InPlaceRestoreUnsupported { .. } => "InPlaceRestoreUnsupported",
            Self::CloneSourceUnsupported(_) => "CloneSourceUnsupported",
            Self::DrillPriceLimit { .. } => "DrillPriceLimitExceeded",
            Self::IdempotencyUnavailable(_) => "IdempotencyUnavailable",
            Self::Secrets(SecretsError::NotFound { .. }) => "SecretNotFound",
            Self::Secrets(SecretsError::Unavailable { .. }) => "SecretsUnavailable",
            Self::Secrets(SecretsError::Malformed { .. }) => "SecretMalformed",
            Self::Tencent(t) => match t {
                TencentError::Api { name, .. } => return name.clone(),
                TencentError::Unreachable { .. } => "TencentUnreachable",
                TencentError::Timeout { .. } => "TencentTimeout",
                TencentError::Interrupted { .. } => "TencentConnectionLost",
                TencentError::HttpStatus { .. } => "TencentHttpError",
                TencentError::Malformed { .. } => "TencentMalformedResponse",
                TencentError::Config(_) => "ConfigurationError",
            },
        };
        fixed.to_owned()
    }

    pub fn message(&self) -> String {
        match self {
            Self::Tencent(TencentError::Api { failure: Failure::PasswordError, message, .. }) => format!(
                "Tencent rejected the instance password stored in Secrets Manager, also after re-reading it: the function's configuration is wrong ({message})"
            ),
            Self::Tencent(TencentError::Api { failure: Failure::AuthFailure, name, message, .. }) => format!(
                "Tencent rejected the function's API credentials or permissions, also after re-reading them: the function's configuration is wrong ({name}: {message})"
            ),
            Self::Tencent(e) if e.outcome_unknown() => {
                format!("{e}: the restore may have started; check the instance's task list before retrying")
            }
            other => other.to_string(),
        }
    }

    /// Whether a restore may have started although this error was returned.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::Tencent(t) if t.outcome_unknown()) || matches!(self, Self::CloneOutcomeUnknown { .. })
    }

    /// Whether Tencent refused the purchase of a clone (payment, capacity, quota, allow list...).
    pub fn purchase_failed(&self) -> bool {
        matches!(self, Self::Tencent(TencentError::Api { action, .. }) if *action == crate::tencent::error::CLONE_ACTION)
    }

    fn tencent_code(&self) -> Option<Value> {
        match self {
            Self::Tencent(TencentError::Api { code, .. })
            | Self::InPlaceRestoreUnsupported { source: TencentError::Api { code, .. }, .. } => Some(code.to_json()),
            _ => None,
        }
    }

    pub fn to_response(&self, delivery_id: Option<&str>) -> HttpResponse {
        let mut error = json!({"code": self.code(), "message": self.message()});
        if let Some(code) = self.tencent_code() {
            error["tencentCode"] = code;
        }
        let mut body = json!({ "error": error });
        if let Some(id) = delivery_id {
            body["deliveryId"] = id.into();
        }
        let mut response = HttpResponse::json(self.status(), body);
        if matches!(self, Self::MethodNotAllowed(_)) {
            response.headers.push(("allow", "POST".into()));
        }
        response
    }
}

/// A precondition checked by us (dry runs, "latest"), named like the Tencent error a real
/// restore would have met, so callers handle both the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckFailure {
    #[error("the instance does not exist in this region")]
    InstanceNotExists,
    #[error("the instance's status ({}) does not allow a restore now", .0.map_or_else(|| "unknown".to_owned(), |s| s.to_string()))]
    InstanceStatusAbnormal(Option<i64>),
    #[error("no backup with this id exists for the instance")]
    BackupNotExists,
    #[error("the instance has no usable backup (status normal and not locked)")]
    NoUsableBackup,
    #[error("the backup's status ({0}) does not allow a restore; it may have expired")]
    BackupStatusAbnormal(i64),
    #[error("the backup is locked by another task")]
    BackupLocked,
}

impl CheckFailure {
    pub fn status(&self) -> u16 {
        match self {
            Self::InstanceNotExists | Self::BackupNotExists | Self::NoUsableBackup => 404,
            Self::InstanceStatusAbnormal(_) | Self::BackupStatusAbnormal(_) | Self::BackupLocked => 409,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InstanceNotExists => "InstanceNotExists",
            Self::InstanceStatusAbnormal(_) => "InstanceStatusAbnormal",
            Self::BackupNotExists | Self::NoUsableBackup => "BackupNotExists",
            Self::BackupStatusAbnormal(_) => "BackupStatusAbnormal",
            Self::BackupLocked => "BackupLockedError",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tencent::TencentCode;

    fn api(failure: Failure, code: i64, name: &str) -> RestoreError {
        RestoreError::Tencent(TencentError::Api {
            action: "RestoreInstance",
            failure,
            code: TencentCode::V2(code),
            name: name.into(),
            message: "m".into(),
        })
    }

    #[test]
    fn tencent_business_errors_map_to_the_documented_statuses() {
        let cases = [
            (Failure::InstanceNotExists, 10701, "InstanceNotExists", 404),
            (Failure::BackupNotExists, 11213, "BackupNotExists", 404),
            (Failure::InstanceLocked, 10707, "InstanceLockedError", 409),
            (Failure::BackupLocked, 10710, "BackupLockedError", 409),
            (Failure::InstanceStatusAbnormal, 10702, "InstanceStatusAbnormal", 409),
            (Failure::BackupStatusAbnormal, 10711, "BackupStatusAbnormal", 409),
            (Failure::InvalidParameter, 11201, "InvalidParameter", 422),
            (Failure::PasswordError, 10712, "PasswordError", 502),
            (Failure::AuthFailure, 4100, "TencentAuthFailure", 502),
        ];
        for (failure, code, name, status) in cases {
            let e = api(failure, code, name);
            let r = e.to_response(Some("msg_1"));
            assert_eq!((r.status, e.code().as_str()), (status, name));
            assert_eq!(r.body["error"]["tencentCode"], json!(code));
            assert_eq!(r.body["deliveryId"], json!("msg_1"));
        }
    }

    #[test]
    fn transport_failures_say_whether_the_restore_may_have_started() {
        let timeout = RestoreError::Tencent(TencentError::Timeout { action: "RestoreInstance", seconds: 10 });
        assert_eq!(timeout.status(), 504);
        assert!(timeout.message().contains("may have started"));
        let refused = RestoreError::Tencent(TencentError::Unreachable {
            action: "RestoreInstance",
            detail: "connection failed".into(),
        });
        assert_eq!(refused.status(), 502);
        assert!(!refused.message().contains("may have started"));
    }

    #[test]
    fn request_errors_have_their_statuses_and_405_says_what_is_allowed() {
        let r = RestoreError::MethodNotAllowed("GET".into()).to_response(None);
        assert_eq!(r.status, 405);
        assert!(r.headers.iter().any(|(k, v)| *k == "allow" && v == "POST"));
        assert_eq!(RestoreError::PayloadTooLarge.status(), 413);
        assert_eq!(RestoreError::UnsupportedMediaType.status(), 415);
        assert_eq!(RestoreError::Signature(SignatureError::NoMatch).status(), 401);
        assert_eq!(RestoreError::Secrets(SecretsError::NotFound { id: "x".into() }).status(), 503);
    }
}
