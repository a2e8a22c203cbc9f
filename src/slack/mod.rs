//! Slack chat-ops: `/crs-restore` and its Confirm / Cancel buttons, both posted to the function
//! URL, verified with Slack's v0 signature before anything is parsed.
//!
//! The conversation: the command answers (within Slack's 3 seconds) with an ephemeral prompt
//! showing the backup that would be used; Confirm carries a sealed, single-use token bound to
//! the requester; the restore then runs as an asynchronous [`Job`](crate::job::Job) whose events
//! are posted to the channel through the interaction's `response_url` ([`notify`]).
//!
//! Every verified request is authorized against the `"slack"` object of the signing keys
//! secret (workspace, users, channels, instances); refusals are explained to the user
//! (ephemerally) and audited. Every request leaves exactly one audit line (`source: "slack"`).

pub mod command;
pub mod config;
mod interaction;
pub mod messages;
pub mod notify;
pub mod prompt;
pub mod respond;
pub mod token;
pub mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::audit::Audit;
use crate::clock::{claim_window, unix_now};
use crate::error::RestoreError;
use crate::event::{HttpRequest, HttpResponse};
use crate::idempotency::{Claim, Key, StoredResponse};
use crate::payload::BackupRef;
use crate::state::AppState;

use self::command::Command;
use self::config::is_slack_id;
use self::respond::ResponseUrl;
use self::verify::{SlackHeaders, SlackSignatureError};

pub use self::config::SlackConfig;
pub use self::notify::{SlackTarget, notify};
pub use self::prompt::{ENVELOPE_KEY as PROMPT_ENVELOPE_KEY, PromptJob, run as run_prompt};

/// Time for the backup lookup inside Slack's 3-second acknowledgement window (cold starts
/// included: the clock starts when the request reaches the handler).
pub const LOOKUP_BUDGET: Duration = Duration::from_secs(2);

/// An answer to Slack, with what the audit line says about it.
struct Reply {
    response: HttpResponse,
    outcome: &'static str,
    code: Option<String>,
}

impl Reply {
    fn ok(body: Value, outcome: &'static str) -> Self {
        Self { response: HttpResponse::json(200, body), outcome, code: None }
    }

    /// A verified request refused: Slack only shows a 200's body, so the explanation is one.
    fn refused(body: Value, code: &str) -> Self {
        Self { response: HttpResponse::json(200, body), outcome: "rejected", code: Some(code.to_owned()) }
    }

    /// A request that is not (yet) known to come from Slack, or that we could not serve.
    fn error(err: &RestoreError) -> Self {
        let outcome = if err.status() >= 500 { "failed" } else { "rejected" };
        Self { response: err.to_response(None), outcome, code: Some(err.code()) }
    }

    fn status(status: u16, code: &str, message: &str) -> Self {
        let body = json!({"error": {"code": code, "message": message}});
        let outcome = if status >= 500 { "failed" } else { "rejected" };
        Self { response: HttpResponse::json(status, body), outcome, code: Some(code.to_owned()) }
    }

    fn unverified(err: &SlackSignatureError) -> Self {
        Self::status(401, err.code(), &err.to_string())
    }
}

/// Handles one request that carries `x-slack-signature` and emits its audit line.
pub async fn handle(state: &Arc<AppState>, req: HttpRequest, deadline: Option<Instant>) -> HttpResponse {
    let started = Instant::now();
    let mut audit = Audit::new("slack");
    audit.request_id.clone_from(&req.request_id);
    audit.source_ip.clone_from(&req.source_ip);
    let reply = route(state, &req, deadline, started, &mut audit).await;
    audit.emit_outcome(reply.outcome, Some(reply.response.status), reply.code.as_deref(), started.elapsed());
    reply.response
}

async fn route(
    state: &Arc<AppState>,
    req: &HttpRequest,
    deadline: Option<Instant>,
    started: Instant,
    audit: &mut Audit,
) -> Reply {
    if !req.method.eq_ignore_ascii_case("POST") {
        return Reply::error(&RestoreError::MethodNotAllowed(req.method.chars().take(16).collect()));
    }
    if !req.content_type_is("application/x-www-form-urlencoded") {
        return Reply::status(415, "UnsupportedMediaType", "Slack requests must be application/x-www-form-urlencoded");
    }
    let headers =
        SlackHeaders { timestamp: req.header("x-slack-request-timestamp"), signature: req.header("x-slack-signature") };
    // Cheap rejections first: no secret is fetched for a request that cannot be valid.
    if let Err(e) = verify::precheck(headers, unix_now()) {
        return Reply::unverified(&e);
    }
    let keys = match state.secrets.signing_keys().await {
        Ok(keys) => keys,
        Err(e) => return Reply::error(&e.into()),
    };
    let Some(config) = keys.slack.as_ref() else {
        return Reply::status(401, "SlackNotConfigured", "this function has no \"slack\" configuration");
    };
    if let Err(e) = verify::verify(&config.signing_secret, headers, &req.body, unix_now()) {
        return Reply::unverified(&e);
    }
    // Slack retries slow acknowledgements; the claims below make a retry harmless.
    let retry = req.header("x-slack-retry-num").and_then(|n| n.trim().parse::<u32>().ok());
    if let Some(n) = retry {
        let reason: String = req.header("x-slack-retry-reason").unwrap_or_default().chars().take(64).collect();
        tracing::info!(retry_num = n, retry_reason = %reason, "Slack retried a request");
    }

    let form: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if let Some(payload) = field("payload") {
        return interaction::handle(state, config, payload, retry, deadline, audit).await;
    }
    if field("ssl_check").is_some() {
        return Reply::ok(json!({}), "ssl-check");
    }
    if field("command").is_none() {
        return Reply::status(400, "UnsupportedSlackRequest", "expected a slash command or an interaction payload");
    }
    let form = CommandForm {
        team_id: field("team_id").unwrap_or_default(),
        user_id: field("user_id").unwrap_or_default(),
        channel_id: field("channel_id").unwrap_or_default(),
        text: field("text").unwrap_or_default(),
        response_url: field("response_url").unwrap_or_default(),
        trigger_id: field("trigger_id").unwrap_or_default(),
        command: field("command").unwrap_or_default(),
    };
    slash_command(state, config, &form, &req.body, deadline, started, audit).await
}

/// The slash command fields we use.
struct CommandForm<'a> {
    team_id: &'a str,
    user_id: &'a str,
    channel_id: &'a str,
    text: &'a str,
    response_url: &'a str,
    trigger_id: &'a str,
    command: &'a str,
}

async fn slash_command(
    state: &Arc<AppState>,
    config: &SlackConfig,
    form: &CommandForm<'_>,
    body: &[u8],
    deadline: Option<Instant>,
    started: Instant,
    audit: &mut Audit,
) -> Reply {
    let name = command_name(form.command);
    audit.key_id = Some(logged_id(form.user_id));
    if form.team_id != config.team_id {
        let text = ":no_entry: This app serves one Slack workspace only; requests from other workspaces are refused.";
        return Reply::refused(messages::ephemeral(text), "SlackTeamNotAllowed");
    }
    let restore = match command::parse(form.text) {
        Ok(Command::Help) => return Reply::ok(messages::help(&name), "help"),
        Ok(Command::Restore(restore)) => restore,
        Err(e) => return Reply::refused(messages::usage(&name, &e.0), "UsageError"),
    };
    audit.redis_id = Some(restore.redis_id.clone());
    audit.reason.clone_from(&restore.reason);
    if let BackupRef::Id(id) = &restore.backup {
        audit.backup_id = Some(id.clone());
    }
    if !config.user_allowed(form.user_id) {
        let text = format!(
            ":no_entry: You are not allowed to restore instances from Slack. Ask the team that runs crs-restore to \
             add your user id (`{}`) to `allowedUsers`.",
            logged_id(form.user_id)
        );
        return Reply::refused(messages::ephemeral(&text), "SlackUserNotAllowed");
    }
    if !config.channel_allowed(form.channel_id) {
        let text =
            ":no_entry: Restores cannot be requested from this channel; use one of the channels in `allowedChannels`.";
        return Reply::refused(messages::ephemeral(text), "SlackChannelNotAllowed");
    }
    if !config.instance_allowed(&restore.redis_id) {
        let text = format!(
            ":no_entry: Restoring `{}` from Slack is not allowed (not in the Slack `allow` list).",
            restore.redis_id
        );
        return Reply::refused(messages::ephemeral(&text), "InstanceNotAllowed");
    }
    audit.mode = Some(restore.mode);
    if let Some((code, text)) = prompt::mode_refusal(state, config, restore.mode) {
        return Reply::refused(messages::ephemeral(text), code);
    }
    let Some(region) = restore.region.clone().or_else(|| state.config.default_region.clone()) else {
        let problem = "Name the region (for example `ap-guangzhou`): this function has no default region.";
        return Reply::refused(messages::usage(&name, problem), "UsageError");
    };
    audit.region = Some(region.clone());
    let Ok(response_url) = ResponseUrl::parse(form.response_url, state.config.callback_policy.allow_loopback) else {
        return Reply::refused(
            messages::ephemeral(":x: This request has no usable response_url."),
            "ResponseUrlNotAllowed",
        );
    };

    // A retried or duplicated command shows no second prompt (each prompt is a new token).
    let trigger = if valid_trigger(form.trigger_id) {
        form.trigger_id.to_owned()
    } else {
        hex::encode(&Sha256::digest(body)[..16])
    };
    let key = Key::new("slack", &format!("command-{trigger}"), body);
    let (now_ms, until_ms) = claim_window(deadline);
    match state.idempotency.claim(&key, until_ms, now_ms).await {
        Ok(Claim::Claimed) => {}
        Ok(_) => {
            let text = "This command is already being handled; its answer follows.";
            return Reply {
                response: HttpResponse::json(200, messages::ephemeral(text)),
                outcome: "duplicate",
                code: None,
            };
        }
        Err(e) => {
            let err = RestoreError::from(e);
            let text = format!(":x: Nothing was done: {}. Try again in a moment.", messages::escape(&err.message()));
            return Reply { response: HttpResponse::json(200, messages::ephemeral(&text)), ..Reply::error(&err) };
        }
    }

    let nonce = token::new_nonce();
    audit.delivery_id = Some(format!("slack-{nonce}"));
    let request = prompt::Request {
        team_id: form.team_id,
        user_id: form.user_id,
        redis_id: &restore.redis_id,
        backup: &restore.backup,
        region: &region,
        reason: restore.reason.as_deref(),
        nonce: &nonce,
        mode: restore.mode,
    };
    let mut budget = LOOKUP_BUDGET.saturating_sub(started.elapsed());
    if let Some(d) = deadline {
        budget = budget.min(d.saturating_duration_since(Instant::now()).saturating_sub(Duration::from_secs(1)));
    }
    let looked_up =
        tokio::time::timeout(budget, prompt::lookup(state, &restore.redis_id, &restore.backup, &region, restore.mode))
            .await;
    let reply = match looked_up {
        Ok(Ok(resolved)) => {
            audit.backup_id = Some(resolved.backup.id.clone());
            match prompt::render(config, &request, &resolved, unix_now()) {
                Ok(body) => Reply::ok(body, "prompted"),
                Err(reason) => Reply::refused(messages::ephemeral(&messages::escape(&reason)), "InvalidPrompt"),
            }
        }
        Ok(Err(err)) => Reply {
            response: HttpResponse::json(200, prompt::lookup_failed(&restore.redis_id, &err)),
            ..Reply::error(&err)
        },
        // Too slow for the acknowledgement: answer now, prompt from an asynchronous invocation.
        Err(_) => {
            let job = PromptJob {
                team_id: form.team_id.to_owned(),
                user_id: form.user_id.to_owned(),
                response_url,
                redis_id: restore.redis_id.clone(),
                backup: restore.backup.clone(),
                region: region.clone(),
                reason: restore.reason.clone(),
                mode: restore.mode,
                nonce: nonce.clone(),
            };
            match state.invoker.dispatch_slack_prompt(state, job).await {
                Ok(()) => {
                    let text = format!(":hourglass_flowing_sand: Looking up backups of `{}`…", restore.redis_id);
                    Reply::ok(messages::ephemeral(&text), "deferred")
                }
                Err(e) => {
                    let err = RestoreError::from(e);
                    let text = ":x: The backup lookup could not be started; nothing was done. Try again.";
                    Reply { response: HttpResponse::json(200, messages::ephemeral(text)), ..Reply::error(&err) }
                }
            }
        }
    };
    let stored = StoredResponse { status: reply.response.status, body: reply.response.body.clone() };
    if let Err(e) = state.idempotency.complete(&key, &stored).await {
        tracing::error!(key = %key.id, error = %e, "could not record the outcome of a Slack command");
    }
    reply
}

/// The command as the user typed it, for help texts; anything odd becomes the default name.
fn command_name(raw: &str) -> String {
    let ok = raw.len() <= 33
        && raw.strip_prefix('/').is_some_and(|n| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        });
    if ok { raw.to_owned() } else { "/crs-restore".to_owned() }
}

/// A Slack id for logs and messages; attacker-controlled text is never echoed as is.
fn logged_id(raw: &str) -> String {
    if is_slack_id(raw) { raw.to_owned() } else { "invalid".to_owned() }
}

fn valid_trigger(raw: &str) -> bool {
    (1..=128).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Incoming;

    #[test]
    fn odd_command_names_and_ids_are_never_echoed() {
        assert_eq!(command_name("/crs-restore-staging"), "/crs-restore-staging");
        assert_eq!(command_name("/<!channel>"), "/crs-restore");
        assert_eq!(command_name(""), "/crs-restore");
        assert_eq!(logged_id("U0123ALICE"), "U0123ALICE");
        assert_eq!(logged_id("U1\n{\"audit\":true}"), "invalid");
    }

    #[test]
    fn a_prompt_event_is_classified_only_without_a_request_context() {
        let prompt = json!({"teamId": "T0001ABCD", "userId": "U0123ALICE",
            "responseUrl": "https://hooks.slack.com/commands/T0001ABCD/1/x", "redisId": "crs-izbob1wh",
            "backup": "latest", "region": "ap-guangzhou", "nonce": "0123456789abcdef0123456789abcdef"});
        assert!(matches!(Incoming::classify(json!({ PROMPT_ENVELOPE_KEY: prompt.clone() })), Incoming::SlackPrompt(_)));
        let inside_url_event = json!({ PROMPT_ENVELOPE_KEY: prompt.clone(), "requestContext": {"http": {}} });
        assert!(matches!(Incoming::classify(inside_url_event), Incoming::Unrecognized));
        let mut bad = prompt;
        bad["responseUrl"] = "https://evil.example/x".into();
        assert!(matches!(Incoming::classify(json!({ PROMPT_ENVELOPE_KEY: bad })), Incoming::InvalidJob(_)));
    }
}
