//! The confirmation prompt: look the backup up, seal a token, show instance, backup and warning.
//!
//! The lookup normally finishes inside the slash command's 3-second window. When it cannot
//! (a cold start, a slow Tencent answer), the command is acknowledged at once and the same
//! lookup runs in an asynchronous invocation of this function (`{"crsSlackPrompt": {...}}`,
//! delivered by IAM only), which posts the prompt through the command's `response_url`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::Audit;
use crate::clock::unix_now;
use crate::error::{CheckFailure, RestoreError};
use crate::payload::{BackupRef, RedisId, Region, RestoreMode};
use crate::restore::{ResolvedBackup, latest_usable};
use crate::state::AppState;
use crate::tencent::ApiVersion;
use crate::tencent::clone::Price;

use super::config::{SlackConfig, is_slack_id};
use super::messages::{self, PromptView};
use super::respond::{self, ResponseUrl};
use super::token::{self, ConfirmToken};

/// The event key of a deferred prompt; a Function URL event can never have it at the top level.
pub const ENVELOPE_KEY: &str = "crsSlackPrompt";

/// A prompt whose backup lookup did not fit the acknowledgement window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromptJob {
    pub team_id: String,
    pub user_id: String,
    pub response_url: ResponseUrl,
    pub redis_id: RedisId,
    pub backup: BackupRef,
    pub region: Region,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub mode: RestoreMode,
    /// Chosen by the command: a second delivery of this event shows the same confirmation, which
    /// can still be used only once.
    pub nonce: String,
}

pub fn envelope(job: &PromptJob) -> Value {
    json!({ ENVELOPE_KEY: job })
}

/// What the prompt shows: the backup a restore would use, and for a clone its price when
/// Tencent quotes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Looked {
    pub backup: ResolvedBackup,
    /// The price and what it is per (`hour`, `month`).
    pub price: Option<(Price, &'static str)>,
}

/// Which backup a restore of `backup` would use, with its time, checked as a restore would; for
/// a clone also what the new instance would cost.
pub async fn lookup(
    state: &AppState,
    redis_id: &RedisId,
    backup: &BackupRef,
    region: &Region,
    mode: RestoreMode,
) -> Result<Looked, RestoreError> {
    let creds = state.secrets.tencent_credentials(false).await?;
    let backup = find_backup(state, &creds, redis_id, backup, region).await?;
    let price = match mode {
        RestoreMode::InPlace => None,
        RestoreMode::Clone => {
            let billing = state.config.clone_billing;
            let source = state.tencent.describe_instance_detail(&creds, region, redis_id.as_str()).await?;
            let source = source.ok_or(CheckFailure::InstanceNotExists)?;
            // The price is shown when known; a failed quote does not stop the restore.
            let quoted = state.tencent.inquiry_price(&creds, region, &source, billing).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "price inquiry failed; the prompt shows no price");
                None
            });
            quoted.map(|p| (p, billing.per()))
        }
    };
    Ok(Looked { backup, price })
}

async fn find_backup(
    state: &AppState,
    creds: &crate::secrets::TencentCredentials,
    redis_id: &RedisId,
    backup: &BackupRef,
    region: &Region,
) -> Result<ResolvedBackup, RestoreError> {
    let backups = state.tencent.list_backups(creds, region, redis_id).await?;
    match backup {
        BackupRef::Latest => Ok(latest_usable(&backups).ok_or(CheckFailure::NoUsableBackup)?),
        BackupRef::Id(id) => {
            let found = backups.iter().find(|b| b.id == id.as_str()).ok_or(CheckFailure::BackupNotExists)?;
            if found.locked || found.status == 1 {
                return Err(CheckFailure::BackupLocked.into());
            }
            if !found.is_usable() {
                return Err(CheckFailure::BackupStatusAbnormal(found.status).into());
            }
            Ok(ResolvedBackup { id: id.clone(), start_time: Some(found.start_time.clone()) })
        }
    }
}

/// What the prompt is about, whichever path builds it.
pub struct Request<'a> {
    pub team_id: &'a str,
    pub user_id: &'a str,
    pub redis_id: &'a RedisId,
    pub backup: &'a BackupRef,
    pub region: &'a Region,
    pub reason: Option<&'a str>,
    pub nonce: &'a str,
    pub mode: RestoreMode,
}

/// Why Slack cannot ask for this mode, if it cannot: a clone is a purchase and needs API 3.0.
pub fn mode_refusal(state: &AppState, config: &SlackConfig, mode: RestoreMode) -> Option<(&'static str, &'static str)> {
    match mode {
        RestoreMode::InPlace => None,
        RestoreMode::Clone if !config.clone => Some((
            "CloneNotAllowed",
            ":no_entry: Restoring by clone from Slack is not allowed: a clone buys a new, billed instance, and the Slack configuration needs `\"clone\": true`.",
        )),
        RestoreMode::Clone if state.tencent.version() != ApiVersion::V3 => {
            Some(("CloneRequiresApi3", ":x: Restoring by clone needs Tencent API 3.0 (`TENCENT_API_VERSION=3`)."))
        }
        RestoreMode::Clone => None,
    }
}

/// Seals the token and renders the prompt.
pub fn render(config: &SlackConfig, req: &Request<'_>, looked: &Looked, now: i64) -> Result<Value, String> {
    let resolved = &looked.backup;
    let token = ConfirmToken {
        nonce: req.nonce.to_owned(),
        team_id: req.team_id.to_owned(),
        user_id: req.user_id.to_owned(),
        redis_id: req.redis_id.clone(),
        backup_id: resolved.id.clone(),
        region: req.region.clone(),
        backup_time: resolved.start_time.clone(),
        reason: req.reason.map(str::to_owned),
        expires_at: now + token::TTL_SECONDS,
        mode: req.mode,
    };
    let sealed = token.seal(&config.signing_secret).map_err(|e| e.to_string())?;
    if sealed.len() > token::MAX_TOKEN_LEN {
        return Err("the confirmation token does not fit a Slack button".into());
    }
    Ok(messages::prompt(&PromptView {
        user_id: req.user_id,
        redis_id: req.redis_id,
        region: req.region,
        backup_id: &resolved.id,
        backup_time: resolved.start_time.as_deref(),
        latest: *req.backup == BackupRef::Latest,
        reason: req.reason,
        token: &sealed,
        mode: req.mode,
        price: looked.price.as_ref().map(|(p, per)| messages::price(p, per)),
    }))
}

/// The ephemeral answer when the backup cannot be used (or looked up).
pub fn lookup_failed(redis_id: &RedisId, err: &RestoreError) -> Value {
    messages::ephemeral(&format!(
        ":x: Cannot prepare a restore of `{redis_id}`: *{}* {}",
        messages::escape(&err.code()),
        messages::escape(&err.message())
    ))
}

/// Runs a deferred prompt: look up, render, post through `response_url` (replacing the
/// "looking up" acknowledgement). Never fails; the audit line says how it went.
pub async fn run(state: &Arc<AppState>, job: PromptJob, deadline: Option<Instant>) -> Value {
    let started = Instant::now();
    let mut audit = Audit::new("slack");
    audit.phase = "prompt";
    audit.delivery_id = Some(format!("slack-{}", job.nonce));
    audit.key_id = Some(job.user_id.clone());
    audit.redis_id = Some(job.redis_id.clone());
    audit.region = Some(job.region.clone());
    audit.reason.clone_from(&job.reason);
    if let BackupRef::Id(id) = &job.backup {
        audit.backup_id = Some(id.clone());
    }
    let (outcome, code, message) = prepare(state, &job, &mut audit).await;
    let allow_loopback = state.config.callback_policy.allow_loopback;
    let post_by = deadline
        .map_or_else(|| Instant::now() + Duration::from_secs(30), |d| d.min(Instant::now() + Duration::from_secs(30)));
    let posted = respond::post(&job.response_url, &message, allow_loopback, post_by).await;
    audit.callback = Some(match &posted {
        Ok(status) => format!("prompt posted (HTTP {status})"),
        Err(reason) => format!("prompt not posted: {reason}"),
    });
    let (outcome, code) = match (&posted, outcome) {
        (Err(_), "prompted") => ("failed", Some("ResponseUrlFailed".to_owned())),
        _ => (outcome, code),
    };
    audit.emit_outcome(outcome, None, code.as_deref(), started.elapsed());
    json!({"outcome": outcome, "errorCode": code})
}

/// The message to post, with the audit outcome and error code it stands for.
async fn prepare(state: &AppState, job: &PromptJob, audit: &mut Audit) -> (&'static str, Option<String>, Value) {
    let refuse = |code: &str, text: &str| ("rejected", Some(code.to_owned()), replacing(messages::ephemeral(text)));
    // Re-validated although only IAM can deliver this event: it decides what a token binds.
    if !is_slack_id(&job.team_id) || !is_slack_id(&job.user_id) || job.nonce.len() != 32 {
        return refuse("InvalidPrompt", ":x: This request could not be prepared; run the command again.");
    }
    let keys = match state.secrets.signing_keys().await {
        Ok(keys) => keys,
        Err(e) => {
            let err = RestoreError::from(e);
            return ("failed", Some(err.code()), replacing(lookup_failed(&job.redis_id, &err)));
        }
    };
    let Some(config) = keys.slack.as_ref() else {
        return refuse("SlackNotConfigured", ":x: Slack is no longer configured for this function.");
    };
    if job.team_id != config.team_id || !config.user_allowed(&job.user_id) {
        return refuse("SlackUserNotAllowed", ":no_entry: You are no longer allowed to restore instances from Slack.");
    }
    if !config.instance_allowed(&job.redis_id) {
        return refuse(
            "InstanceNotAllowed",
            &format!(":no_entry: Restoring `{}` from Slack is not allowed.", job.redis_id),
        );
    }
    if let Some((code, text)) = mode_refusal(state, config, job.mode) {
        return refuse(code, text);
    }
    match lookup(state, &job.redis_id, &job.backup, &job.region, job.mode).await {
        Ok(resolved) => {
            audit.backup_id = Some(resolved.backup.id.clone());
            let req = Request {
                team_id: &job.team_id,
                user_id: &job.user_id,
                redis_id: &job.redis_id,
                backup: &job.backup,
                region: &job.region,
                reason: job.reason.as_deref(),
                nonce: &job.nonce,
                mode: job.mode,
            };
            match render(config, &req, &resolved, unix_now()) {
                Ok(prompt) => ("prompted", None, replacing(prompt)),
                Err(reason) => {
                    refuse("InvalidPrompt", &format!(":x: Cannot show the prompt: {}", messages::escape(&reason)))
                }
            }
        }
        Err(err) => {
            let outcome = if err.status() >= 500 { "failed" } else { "rejected" };
            (outcome, Some(err.code()), replacing(lookup_failed(&job.redis_id, &err)))
        }
    }
}

/// The deferred message replaces the "looking up backups" acknowledgement.
fn replacing(mut message: Value) -> Value {
    message["replace_original"] = true.into();
    message
}
