//! The request handler: verify, parse, authorize, fetch secrets, restore, answer, audit.
//!
//! [`handle_event`] is the Lambda entry point (any event JSON in, response JSON out);
//! [`handle_http`] is the same for an already-decoded HTTP request. Both are plain async
//! functions of (state, request) so tests drive them directly.

use std::time::Instant;

use serde_json::{Value, json};

use crate::audit::Audit;
use crate::error::{MAX_BODY_BYTES, RestoreError};
use crate::event::{BodyError, HttpRequest, HttpResponse, Incoming};
use crate::payload::{BackupRef, RestoreRequest};
use crate::secrets::InstancePassword;
use crate::signature::{self, SignedHeaders};
use crate::state::AppState;
use crate::tencent::{Failure, TencentError, unix_now};

/// Entry point for every Lambda invocation.
pub async fn handle_event(state: &AppState, event: Value) -> Value {
    match Incoming::classify(event) {
        Incoming::Http(ev) => {
            let response = match HttpRequest::from_event(ev, MAX_BODY_BYTES) {
                Ok(req) => handle_http(state, req).await,
                Err((req, err)) => {
                    let err = match err {
                        BodyError::TooLarge => RestoreError::PayloadTooLarge,
                        BodyError::InvalidBase64 => RestoreError::InvalidBase64,
                    };
                    let mut audit = Audit::new("webhook");
                    audit.request_id = req.request_id;
                    audit.source_ip = req.source_ip;
                    audit.emit(err.status(), Some(&err.code()), std::time::Duration::ZERO);
                    err.to_response(None)
                }
            };
            response.into_lambda()
        }
        Incoming::Unrecognized => {
            tracing::warn!(audit = true, outcome = "rejected", "unrecognized event shape; ignored");
            json!({"error": {"code": "UnrecognizedEvent", "message": "this function accepts Function URL requests only"}})
        }
    }
}

/// Handles one HTTP request end to end and emits its audit line.
pub async fn handle_http(state: &AppState, req: HttpRequest) -> HttpResponse {
    let started = Instant::now();
    let mut audit = Audit::new("webhook");
    audit.request_id.clone_from(&req.request_id);
    audit.source_ip.clone_from(&req.source_ip);
    let response = match restore(state, &req, &mut audit).await {
        Ok(response) => {
            audit.emit(response.status, None, started.elapsed());
            response
        }
        Err(err) => {
            let code = err.code();
            if err.status() >= 500 {
                tracing::warn!(error_code = %code, error = %err.message(), "restore request failed");
            }
            audit.emit(err.status(), Some(&code), started.elapsed());
            err.to_response(audit.delivery_id.as_deref())
        }
    };
    response
}

async fn restore(state: &AppState, req: &HttpRequest, audit: &mut Audit) -> Result<HttpResponse, RestoreError> {
    if !req.method.eq_ignore_ascii_case("POST") {
        return Err(RestoreError::MethodNotAllowed(req.method.chars().take(16).collect()));
    }
    if !is_json(req.header("content-type")) {
        return Err(RestoreError::UnsupportedMediaType);
    }
    let headers = SignedHeaders {
        id: req.header("webhook-id"),
        timestamp: req.header("webhook-timestamp"),
        signature: req.header("webhook-signature"),
    };
    // Cheap rejections first: no secret is fetched for a request that cannot be valid.
    signature::precheck(headers, unix_now())?;
    let keys = state.secrets.signing_keys().await?;
    let verified = signature::verify(&keys.keys, |k| &k.secret, headers, &req.body, unix_now())?;
    audit.delivery_id = Some(verified.id.to_owned());
    audit.key_id = Some(verified.key.id.clone());

    let request = RestoreRequest::parse(&req.body)?;
    audit.redis_id = Some(request.redis_id.clone());
    audit.reason = request.reason.as_ref().map(|r| r.as_str().to_owned());
    let BackupRef::Id(backup_id) = &request.backup;
    audit.backup_id = Some(backup_id.clone());
    let region = request.region.clone().or_else(|| state.config.default_region.clone()).ok_or(RestoreError::RegionRequired)?;
    audit.region = Some(region.clone());
    if !verified.key.allow.allows(&request.redis_id) {
        return Err(RestoreError::Forbidden { key_id: verified.key.id.clone(), redis_id: request.redis_id.to_string() });
    }

    // Both secrets are needed: fetch them concurrently to save a round trip on a cold start.
    let (creds, password) = tokio::join!(
        state.secrets.tencent_credentials(false),
        state.secrets.instance_password(&request.redis_id, false)
    );
    let (mut creds, mut password) = (creds?, password?);
    let mut refetched = false;
    let task_id = loop {
        let result =
            state.tencent.restore_instance(&creds, &region, &request.redis_id, backup_id, &password).await;
        // Tencent said no without changing anything: if the secret it rejected has changed in
        // Secrets Manager (rotation), retry once with the new value.
        let retry = match &result {
            Err(TencentError::Api { failure: Failure::PasswordError, .. }) if !refetched => {
                let fresh = state.secrets.instance_password(&request.redis_id, true).await?;
                audit.refetched = Some("instance-password");
                let changed = !matches!((&*fresh, &*password), (InstancePassword::Password(a), InstancePassword::Password(b)) if a == b);
                password = fresh;
                changed
            }
            Err(TencentError::Api { failure: Failure::AuthFailure, .. }) if !refetched => {
                let fresh = state.secrets.tencent_credentials(true).await?;
                audit.refetched = Some("tencent-credentials");
                let changed = fresh.secret_id != creds.secret_id || fresh.secret_key != creds.secret_key || fresh.token != creds.token;
                creds = fresh;
                changed
            }
            _ => false,
        };
        refetched = true;
        if !retry {
            break result?;
        }
    };
    audit.task_id = Some(task_id);
    Ok(HttpResponse::json(
        202,
        json!({
            "status": "started",
            "taskId": task_id,
            "redisId": request.redis_id.as_str(),
            "backupId": backup_id.as_str(),
            "region": region.as_str(),
            "deliveryId": verified.id,
        }),
    ))
}

/// `application/json`, optionally with parameters such as `; charset=utf-8`.
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_with_parameters_are_accepted() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(!is_json(Some("application/x-www-form-urlencoded")));
        assert!(!is_json(Some("application/jsonp")));
        assert!(!is_json(None));
    }
}
