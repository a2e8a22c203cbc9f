//! The request handler: verify, parse, authorize, then restore now or hand the restore to an
//! asynchronous job, answer, audit.
//!
//! [`handle_raw_invocation`] is the Lambda entry point (the payload's text in, response JSON out),
//! [`handle_invocation`] the same for a parsed event;
//! [`handle_http`] is the same for an already-decoded HTTP request. Both are plain async
//! functions of (state, request) so tests drive them directly.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::audit::Audit;
use crate::callback::CallbackUrl;
use crate::clock::{claim_window, unix_now};
use crate::error::{MAX_BODY_BYTES, RestoreError};
use crate::event::{BodyError, HttpRequest, HttpResponse, Incoming};
use crate::idempotency::{Claim, Key, StoredResponse};
use crate::job::{self, Job};
use crate::payload::{BackupRef, RestoreMode, RestoreRequest};
use crate::restore::{self, Outcome, Target};
use crate::signature::{self, SignedHeaders};
use crate::state::AppState;
use crate::tencent::ApiVersion;

/// Entry point for an invocation without a deadline (tests, local mode).
pub async fn handle_event(state: &Arc<AppState>, event: Value) -> Value {
    handle_invocation(state, event, None).await
}

/// Entry point for the Lambda run loop: the invocation payload exactly as Lambda sent it. The
/// runtime library hands it over unparsed, so every payload gets this function's own answer:
/// one serde_json refuses (e.g. nested deeper than its recursion limit) is answered with a JSON
/// error here instead of failing the invocation before the handler runs.
pub async fn handle_raw_invocation(state: &Arc<AppState>, payload: &str, deadline: Option<Instant>) -> Value {
    match serde_json::from_str::<Value>(payload) {
        Ok(event) => handle_invocation(state, event, deadline).await,
        Err(err) => {
            // serde_json's message names a position and a reason, never the payload's content.
            let message = format!("the invocation payload is not JSON this function can read: {err}");
            tracing::warn!(audit = true, outcome = "rejected", error_code = "MalformedJson", %message, "unreadable event");
            json!({"error": {"code": "MalformedJson", "message": message}})
        }
    }
}

/// Entry point for every Lambda invocation; `deadline` is when Lambda will stop this one.
pub async fn handle_invocation(state: &Arc<AppState>, event: Value, deadline: Option<Instant>) -> Value {
    match Incoming::classify(event) {
        Incoming::Http(ev) => {
            let (request_id, source_ip) =
                (ev.request_context.request_id.clone(), ev.request_context.http.source_ip.clone());
            let response = match HttpRequest::from_event(ev, MAX_BODY_BYTES) {
                Ok(req) => handle_http(state, req, deadline).await,
                Err(err) => {
                    let err = match err {
                        BodyError::TooLarge => RestoreError::PayloadTooLarge,
                        BodyError::InvalidBase64 => RestoreError::InvalidBase64,
                    };
                    let mut audit = Audit::new("webhook");
                    audit.request_id = request_id;
                    audit.source_ip = source_ip;
                    audit.emit(err.status(), "", Some(&err.code()), Duration::ZERO);
                    err.to_response(None)
                }
            };
            response.into_lambda()
        }
        // A drill handed to a later invocation still ends as a drill: with its metrics.
        Incoming::Job(job) if job.drill => crate::drill::run_job(state, *job, deadline).await.to_json(),
        Incoming::Job(job) => job::run(state, *job, deadline).await.to_json(),
        Incoming::Drill(event) => crate::drill::run(state, &event, deadline).await,
        Incoming::SlackPrompt(prompt) => crate::slack::run_prompt(state, *prompt, deadline).await,
        Incoming::InvalidJob(reason) => {
            tracing::error!(audit = true, outcome = "rejected", %reason, "asynchronous job event does not validate");
            json!({"error": {"code": "InvalidJob", "message": reason}})
        }
        Incoming::Unrecognized => {
            tracing::warn!(audit = true, outcome = "rejected", "unrecognized event shape; ignored");
            json!({"error": {"code": "UnrecognizedEvent", "message": "this function accepts Function URL requests only"}})
        }
    }
}

/// Handles one HTTP request end to end and emits its audit line.
pub async fn handle_http(state: &Arc<AppState>, req: HttpRequest, deadline: Option<Instant>) -> HttpResponse {
    // Slack signs with its own scheme (v0), sends forms, and has its own conversation.
    if req.header("x-slack-signature").is_some() {
        return crate::slack::handle(state, req, deadline).await;
    }
    let started = Instant::now();
    let mut audit = Audit::new("webhook");
    audit.request_id.clone_from(&req.request_id);
    audit.source_ip.clone_from(&req.source_ip);
    let result = match admit(state, &req, &mut audit).await {
        Ok(admitted) => {
            let key = Key::new("webhook", &admitted.delivery_id, &req.body);
            once(state, &key, deadline, run(state, admitted, &mut audit)).await
        }
        Err(err) => Err(err),
    };
    match result {
        Ok((response, outcome)) => {
            audit.emit(response.status, outcome, None, started.elapsed());
            response
        }
        Err(err) => {
            let code = err.code();
            if err.status() >= 500 {
                tracing::warn!(error_code = %code, error = %err.message(), "restore request failed");
            }
            audit.emit(err.status(), "", Some(&code), started.elapsed());
            err.to_response(audit.delivery_id.as_deref())
        }
    }
}

/// Runs `work` at most once per `key`: claims the key first, replays a recorded answer, and
/// records what happened so a duplicate gets the same answer. Fails closed when the store is
/// unavailable.
pub async fn once(
    state: &AppState,
    key: &Key,
    deadline: Option<Instant>,
    work: impl Future<Output = Result<(HttpResponse, &'static str), RestoreError>>,
) -> Result<(HttpResponse, &'static str), RestoreError> {
    let (now_ms, until_ms) = claim_window(deadline);
    match state.idempotency.claim(key, until_ms, now_ms).await? {
        Claim::Claimed => {}
        Claim::InProgress => return Err(RestoreError::DuplicateInProgress),
        Claim::KeyReuse => return Err(RestoreError::IdempotencyKeyReuse),
        Claim::OutcomeUnknown => {
            let delivery = key.id.split_once('#').map_or(key.id.as_str(), |(_, id)| id);
            return Err(RestoreError::OutcomeUnknown(delivery.to_owned()));
        }
        Claim::Completed(stored) => {
            let mut body = stored.body;
            if let Some(obj) = body.as_object_mut() {
                obj.insert("replayed".into(), true.into());
            }
            return Ok((HttpResponse::json(stored.status, body), "replayed"));
        }
    }
    let result = work.await;
    // The work has happened: a failure to record it is logged, never turned into a new error
    // (the duplicate that follows would be told the truth by the claim's in-progress state).
    let settled = match &result {
        Ok((response, _)) => {
            state
                .idempotency
                .complete(key, &StoredResponse { status: response.status, body: response.body.clone() })
                .await
        }
        Err(err) if err.outcome_unknown() => state.idempotency.mark_outcome_unknown(key).await,
        // The caller's request was answered for good: an identical retry gets the same answer.
        Err(err) if err.status() < 500 => {
            let answer = err.to_response(key.id.split_once('#').map(|(_, id)| id));
            state.idempotency.complete(key, &StoredResponse { status: answer.status, body: answer.body }).await
        }
        // Nothing was started (unavailable dependencies): an identical retry may try again.
        Err(_) => state.idempotency.release(key).await,
    };
    if let Err(e) = settled {
        tracing::error!(key = %key.id, error = %e, "could not record the outcome of a delivery");
    }
    result
}

/// A verified, authorized, validated request, ready to run.
struct Admitted {
    delivery_id: String,
    caller: String,
    target: Target,
    reason: Option<String>,
    callback: Option<CallbackUrl>,
    wait: bool,
    dry_run: bool,
}

/// A Standard Webhooks request: verified on raw bytes, then parsed and authorized.
async fn admit(state: &AppState, req: &HttpRequest, audit: &mut Audit) -> Result<Admitted, RestoreError> {
    if !req.method.eq_ignore_ascii_case("POST") {
        return Err(RestoreError::MethodNotAllowed(req.method.chars().take(16).collect()));
    }
    if !req.content_type_is("application/json") {
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
    let delivery_id = verified.id.to_owned();
    audit.delivery_id = Some(delivery_id.clone());
    audit.key_id = Some(verified.key.id.clone());

    let request = RestoreRequest::parse(&req.body)?;
    audit.redis_id = Some(request.redis_id.clone());
    audit.reason = request.reason.as_ref().map(|r| r.as_str().to_owned());
    if let BackupRef::Id(id) = &request.backup {
        audit.backup_id = Some(id.clone());
    }
    let region =
        request.region.clone().or_else(|| state.config.default_region.clone()).ok_or(RestoreError::RegionRequired)?;
    audit.region = Some(region.clone());
    if !verified.key.allow.allows(&request.redis_id) {
        return Err(RestoreError::Forbidden {
            key_id: verified.key.id.clone(),
            redis_id: request.redis_id.to_string(),
        });
    }
    audit.mode = Some(request.mode);
    if request.mode == RestoreMode::Clone {
        // A clone is a purchase: only keys that say so may make one, and only API 3.0 can.
        if !verified.key.clone {
            return Err(RestoreError::CloneNotAllowed { key_id: verified.key.id.clone() });
        }
        if state.tencent.version() != ApiVersion::V3 {
            return Err(RestoreError::CloneRequiresApi3);
        }
    }

    // Everything about the callback is checked before anything starts.
    let policy = &state.config.callback_policy;
    let callback = match &request.callback_url {
        Some(raw) => {
            let url = CallbackUrl::parse(raw, policy)?;
            url.check_resolution(policy).await?;
            if keys.callback_secret.is_none() {
                return Err(RestoreError::Configuration(
                    "callbackUrl needs a \"callbackSecret\" in the signing keys secret to sign callbacks".into(),
                ));
            }
            Some(url)
        }
        None if request.wait_for_completion => return Err(RestoreError::WaitWithoutCallback),
        None => None,
    };
    Ok(Admitted {
        delivery_id,
        caller: verified.key.id.clone(),
        target: Target {
            redis_id: request.redis_id,
            backup: request.backup,
            region,
            mode: request.mode,
            point_in_time: request.point_in_time,
        },
        reason: audit.reason.clone(),
        callback,
        wait: request.wait_for_completion,
        dry_run: request.dry_run,
    })
}

/// Runs an admitted request: now, or as an asynchronous job when there is a callback.
async fn run(
    state: &Arc<AppState>,
    admitted: Admitted,
    audit: &mut Audit,
) -> Result<(HttpResponse, &'static str), RestoreError> {
    let Admitted { delivery_id, caller, target, reason, callback, wait, dry_run } = admitted;
    if let Some(callback_url) = callback {
        let job = Job {
            delivery_id: delivery_id.clone(),
            source: "webhook".into(),
            caller,
            redis_id: target.redis_id,
            backup: target.backup,
            region: target.region,
            mode: target.mode,
            point_in_time: target.point_in_time,
            reason,
            callback_url: Some(callback_url),
            wait,
            dry_run,
            drill: false,
            watch: None,
            slack: None,
        };
        state.invoker.dispatch(state, job).await?;
        let body = json!({"status": "accepted", "deliveryId": delivery_id});
        return Ok((HttpResponse::json(202, body), "accepted"));
    }

    let outcome = restore::execute(state, &target, &delivery_id, dry_run, audit).await?;
    let (status, body, audit_outcome) = outcome_answer(&target, &delivery_id, outcome);
    Ok((HttpResponse::json(status, body), audit_outcome))
}

/// The synchronous answer to an outcome (also what Slack and jobs report from).
pub fn outcome_answer(target: &Target, delivery_id: &str, outcome: Outcome) -> (u16, Value, &'static str) {
    match outcome {
        Outcome::Started { task_id, backup } => {
            let mut body = json!({
                "status": "started",
                "taskId": task_id,
                "redisId": target.redis_id.as_str(),
                "backupId": backup.id.as_str(),
                "region": target.region.as_str(),
                "deliveryId": delivery_id,
            });
            if let Some(time) = backup.start_time {
                body["backupStartTime"] = time.into();
            }
            (202, body, "started")
        }
        Outcome::DryRunOk { backup, instance_name, edition } => {
            let mut body = json!({
                "status": "dry-run-ok",
                "dryRun": true,
                "mode": "inPlace",
                "redisId": target.redis_id.as_str(),
                "instanceName": instance_name,
                "backupId": backup.id.as_str(),
                "backupStartTime": backup.start_time,
                "region": target.region.as_str(),
                "deliveryId": delivery_id,
            });
            if let Some(edition) = edition {
                body["edition"] = edition.label().into();
                body["supportedModes"] = json!(edition.supported_modes());
            }
            (200, body, "dry-run-ok")
        }
        Outcome::Cloning(clone) => {
            let mut body = json!({
                "status": "cloning",
                "mode": "clone",
                "redisId": target.redis_id.as_str(),
                "backupId": clone.backup_id,
                "cloneInstanceId": clone.instance_id,
                "cloneName": clone.name,
                "dealId": clone.deal_id,
                "region": target.region.as_str(),
                "deliveryId": delivery_id,
            });
            if let Some(at) = clone.point_in_time {
                body["pointInTime"] = at.to_rfc3339().into();
            }
            if let Some(time) = clone.backup_start_time {
                body["backupStartTime"] = time.into();
            }
            if clone.reconciled {
                body["reconciled"] = true.into();
            }
            (202, body, "cloning")
        }
        Outcome::CloneDryRunOk(plan) => {
            let edition = plan.source.edition;
            let mut body = json!({
                "status": "dry-run-ok",
                "dryRun": true,
                "mode": "clone",
                "redisId": target.redis_id.as_str(),
                "instanceName": plan.source.name,
                "edition": edition.label(),
                "supportedModes": edition.supported_modes(),
                "backupId": plan.backup_id,
                "clone": {
                    "name": plan.request.name,
                    "zoneId": plan.request.zone_id,
                    "vpcId": plan.request.vpc_id,
                    "subnetId": plan.request.subnet_id,
                    "securityGroupIds": plan.request.security_groups,
                    "billingMode": plan.request.billing.name(),
                },
                "region": target.region.as_str(),
                "deliveryId": delivery_id,
            });
            if let Some(backup) = &plan.backup {
                body["backupStartTime"] = backup.start_time.clone().into();
            }
            if let Some(at) = plan.point_in_time {
                body["pointInTime"] = at.to_rfc3339().into();
            }
            if let Some(price) = &plan.price {
                body["price"] =
                    json!({"amount": price.amount, "currency": price.currency, "per": plan.request.billing.per()});
            }
            (200, body, "dry-run-ok")
        }
    }
}
