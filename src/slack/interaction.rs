//! Button clicks on the prompt (`block_actions`): Confirm starts the restore, Cancel retires
//! the prompt. Either one uses the token up.
//!
//! Slack ignores the body of an interaction's acknowledgement, so every answer the user sees
//! goes through the interaction's `response_url`; the HTTP answer is an empty acknowledgement.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::audit::Audit;
use crate::clock::unix_now;
use crate::error::RestoreError;
use crate::event::HttpResponse;
use crate::idempotency::{Claim, Key, Store, StoreError, StoredResponse};
use crate::job::Job;
use crate::payload::BackupRef;
use crate::state::AppState;

use super::config::SlackConfig;
use super::messages::{self, CANCEL_ACTION, CONFIRM_ACTION, mention};
use super::notify::SlackTarget;
use super::respond::{self, ResponseUrl};
use super::token::{ConfirmToken, Opened, TokenError};
use super::{Reply, claim_window, logged_id};

/// Time allowed for one in-request post, so the acknowledgement still lands inside 3 seconds.
const POST_BUDGET: Duration = Duration::from_millis(1500);

/// The fields of a `block_actions` payload we use.
struct Click<'a> {
    team_id: &'a str,
    user_id: &'a str,
    channel_id: &'a str,
    action_id: &'a str,
    value: &'a str,
}

pub(super) async fn handle(
    state: &Arc<AppState>,
    config: &SlackConfig,
    payload: &str,
    retry: Option<u32>,
    deadline: Option<Instant>,
    audit: &mut Audit,
) -> Reply {
    let Ok(v) = serde_json::from_str::<Value>(payload) else {
        return Reply::status(400, "MalformedPayload", "the interaction payload is not JSON");
    };
    let text = |pointer: &str| v.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
    if text("/type") != "block_actions" {
        return Reply::ok(json!({}), "ignored");
    }
    let click = Click {
        team_id: Some(text("/team/id")).filter(|t| !t.is_empty()).unwrap_or_else(|| text("/user/team_id")),
        user_id: text("/user/id"),
        channel_id: text("/channel/id"),
        action_id: text("/actions/0/action_id"),
        value: text("/actions/0/value"),
    };
    audit.key_id = Some(logged_id(click.user_id));
    let allow_loopback = state.config.callback_policy.allow_loopback;
    let Ok(response_url) = ResponseUrl::parse(text("/response_url"), allow_loopback) else {
        // Nowhere to answer: nothing happens, and the audit line says why.
        return refused_silently("ResponseUrlNotAllowed");
    };
    let say = Say { url: &response_url, allow_loopback, deadline };

    if click.team_id != config.team_id {
        say.tell(messages::ephemeral_note(":no_entry: This app serves one Slack workspace only.")).await;
        return refused_silently("SlackTeamNotAllowed");
    }
    if !config.user_allowed(click.user_id) {
        say.tell(messages::ephemeral_note(":no_entry: You are not allowed to restore instances from Slack.")).await;
        return refused_silently("SlackUserNotAllowed");
    }
    let confirm = match click.action_id {
        CONFIRM_ACTION => true,
        CANCEL_ACTION => false,
        _ => return Reply::ok(json!({}), "ignored"),
    };
    let opened = match ConfirmToken::open(click.value, &config.signing_secret, unix_now()) {
        Ok(opened) => opened,
        Err(TokenError::Expired) if !confirm => {
            say.tell(messages::replace(":no_entry_sign: Restore cancelled; nothing was changed.")).await;
            return Reply::ok(json!({}), "cancelled");
        }
        Err(TokenError::Expired) => {
            let text = ":hourglass: This prompt has expired (prompts are valid for 5 minutes); nothing was restored. \
                        Run the command again.";
            say.tell(messages::replace(text)).await;
            return refused_silently("ConfirmTokenExpired");
        }
        Err(_) => {
            say.tell(messages::ephemeral_note(":x: This button is not valid; nothing was restored.")).await;
            return refused_silently("InvalidConfirmToken");
        }
    };
    let token = &opened.token;
    audit.delivery_id = Some(format!("slack-{}", token.nonce));
    audit.redis_id = Some(token.redis_id.clone());
    audit.backup_id = Some(token.backup_id.clone());
    audit.region = Some(token.region.clone());
    audit.reason.clone_from(&token.reason);
    if token.team_id != click.team_id {
        say.tell(messages::ephemeral_note(":x: This button is not valid; nothing was restored.")).await;
        return refused_silently("InvalidConfirmToken");
    }
    if token.user_id != click.user_id {
        let verb = if confirm { "confirm" } else { "cancel" };
        let text = format!(":no_entry: Only {} who asked can {verb} this restore.", mention(&token.user_id));
        say.tell(messages::ephemeral_note(&text)).await;
        return refused_silently("NotRequester");
    }
    if confirm && !config.channel_allowed(click.channel_id) {
        say.tell(messages::ephemeral_note(":no_entry: Restores cannot be confirmed in this channel.")).await;
        return refused_silently("SlackChannelNotAllowed");
    }
    // The prompt was issued under the configuration of its time; the restore needs today's.
    if confirm && !config.instance_allowed(&token.redis_id) {
        let text = format!(":no_entry: Restoring `{}` from Slack is no longer allowed.", token.redis_id);
        say.tell(messages::ephemeral_note(&text)).await;
        return refused_silently("InstanceNotAllowed");
    }
    if confirm && let Some((code, text)) = super::prompt::mode_refusal(state, config, token.mode) {
        say.tell(messages::ephemeral_note(text)).await;
        return refused_silently(code);
    }

    // One use per token, claimed before anything starts: double clicks, Slack retries and a
    // Cancel after a Confirm (or the reverse) all stop here.
    let key = token_key(&opened);
    let (now_ms, until_ms) = claim_window(deadline);
    match claim(&state.idempotency, &key, until_ms, now_ms).await {
        Ok(true) => {}
        Ok(false) if retry.is_some() => return Reply::ok(json!({}), "duplicate"),
        Ok(false) => {
            let text = ":information_source: This prompt was already used; nothing new was started.";
            say.tell(messages::ephemeral_note(text)).await;
            return Reply { code: Some("ConfirmTokenUsed".into()), ..Reply::ok(json!({}), "duplicate") };
        }
        Err(e) => {
            let err = RestoreError::from(e);
            let text = ":x: Nothing was started: the function could not record this confirmation. Try again.";
            say.tell(messages::ephemeral_note(text)).await;
            return Reply { response: ack(), ..Reply::error(&err) };
        }
    }
    let settle = |body: Value| StoredResponse { status: 200, body };

    if !confirm {
        let text = format!(
            ":no_entry_sign: Restore of `{}` cancelled by {}; nothing was changed.",
            token.redis_id,
            mention(click.user_id)
        );
        say.tell(messages::replace(&text)).await;
        if let Err(e) = state.idempotency.complete(&key, &settle(json!({"status": "cancelled"}))).await {
            tracing::error!(key = %key.id, error = %e, "could not record a cancelled Slack prompt");
        }
        return Reply::ok(json!({}), "cancelled");
    }

    // Replaced before the job is handed on, so it always precedes the job's own messages.
    let how = if token.mode == crate::payload::RestoreMode::Clone { " by clone (a new, billed instance)" } else { "" };
    let started_text = format!(
        ":arrows_counterclockwise: Restore of `{}` ({}) from backup `{}`{how} started by {}.",
        token.redis_id,
        token.region,
        token.backup_id,
        mention(click.user_id)
    );
    let replaced = say.post(messages::replace(&started_text)).await;
    audit.callback = Some(match &replaced {
        Ok(status) => format!("prompt replaced (HTTP {status})"),
        Err(reason) => format!("prompt not replaced: {reason}"),
    });
    let delivery_id = format!("slack-{}", token.nonce);
    let job = Job {
        delivery_id: delivery_id.clone(),
        source: "slack".into(),
        caller: click.user_id.to_owned(),
        redis_id: token.redis_id.clone(),
        backup: BackupRef::Id(token.backup_id.clone()),
        region: token.region.clone(),
        reason: token.reason.clone(),
        mode: token.mode,
        point_in_time: None,
        callback_url: None,
        wait: true,
        dry_run: false,
        drill: false,
        watch: None,
        slack: Some(SlackTarget {
            response_url: response_url.clone(),
            user_id: click.user_id.to_owned(),
            backup_start_time: token.backup_time.clone(),
            posts_before: 1,
            expires_at: unix_now() + respond::VALID_SECONDS,
        }),
    };
    match state.invoker.dispatch(state, job).await {
        Ok(()) => {
            let body = json!({"status": "accepted", "deliveryId": delivery_id});
            if let Err(e) = state.idempotency.complete(&key, &settle(body)).await {
                tracing::error!(key = %key.id, error = %e, "could not record a confirmed Slack prompt");
            }
            Reply::ok(json!({}), "accepted")
        }
        Err(e) => {
            // Nothing started: the token may be used again.
            if let Err(e) = state.idempotency.release(&key).await {
                tracing::error!(key = %key.id, error = %e, "could not release a Slack confirmation");
            }
            let err = RestoreError::from(e);
            let text = format!(
                ":x: The restore of `{}` could not be started ({}); nothing was changed. Run the command again.",
                token.redis_id,
                messages::escape(&err.code())
            );
            say.tell(messages::replace(&text)).await;
            Reply { response: ack(), ..Reply::error(&err) }
        }
    }
}

/// The idempotency key of a token's single use: `slack#<nonce>` over the exact claims.
pub(super) fn token_key(opened: &Opened) -> Key {
    Key::new("slack", &opened.token.nonce, &opened.claims)
}

/// `true` when this click owns the token; any other state (in progress, done, or the same
/// nonce with other claims) means the token was used.
pub(super) async fn claim(store: &Store, key: &Key, until_ms: i64, now_ms: i64) -> Result<bool, StoreError> {
    Ok(matches!(store.claim(key, until_ms, now_ms).await?, Claim::Claimed))
}

fn ack() -> HttpResponse {
    HttpResponse::json(200, json!({}))
}

/// A refusal already explained through `response_url`; Slack gets a plain acknowledgement.
fn refused_silently(code: &str) -> Reply {
    Reply { response: ack(), outcome: "rejected", code: Some(code.to_owned()) }
}

/// Posts to the interaction's `response_url` within the acknowledgement window.
struct Say<'a> {
    url: &'a ResponseUrl,
    allow_loopback: bool,
    deadline: Option<Instant>,
}

impl Say<'_> {
    async fn post(&self, message: Value) -> Result<u16, String> {
        let soon = Instant::now() + POST_BUDGET;
        let by = self.deadline.map_or(soon, |d| d.min(soon));
        let posted = respond::post(self.url, &message, self.allow_loopback, by).await;
        if let Err(reason) = &posted {
            tracing::warn!(%reason, "posting to a Slack response_url failed");
        }
        posted
    }

    /// Posts where the outcome changes nothing for the caller (it is logged by `post`).
    async fn tell(&self, message: Value) {
        let _outcome = self.post(message).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{BackupId, RedisId, Region};
    use crate::secrets::SecretString;

    #[tokio::test]
    async fn a_token_can_be_used_once_whether_confirmed_or_cancelled() {
        let secret = SecretString::new("8f742231b10e8888abcd99yyyzzz85a5");
        let now = unix_now();
        let token = ConfirmToken {
            nonce: super::super::token::new_nonce(),
            team_id: "T0001ABCD".into(),
            user_id: "U0123ALICE".into(),
            redis_id: RedisId::parse("crs-izbob1wh").expect("id"),
            backup_id: BackupId::parse("e824aecc-ef5e-11e6-a2c7-525400082493").expect("id"),
            region: Region::parse("ap-guangzhou").expect("region"),
            backup_time: None,
            reason: None,
            expires_at: now + 300,
            mode: crate::payload::RestoreMode::InPlace,
        };
        let value = token.seal(&secret).expect("seals");
        let store = Store::memory(Duration::from_secs(86_400));
        let first = ConfirmToken::open(&value, &secret, now).expect("opens");
        let key = token_key(&first);
        assert_eq!(claim(&store, &key, 60_000, 1_000).await, Ok(true));
        // A second click, a retry, or a Cancel after the Confirm: the same key, already claimed.
        let again = ConfirmToken::open(&value, &secret, now).expect("opens");
        assert_eq!(claim(&store, &token_key(&again), 60_000, 2_000).await, Ok(false));
        store.complete(&key, &StoredResponse { status: 200, body: json!({"status": "accepted"}) }).await.expect("done");
        assert_eq!(claim(&store, &token_key(&again), 60_000, 3_000).await, Ok(false));
        // A second prompt for the same command (same nonce, later expiry) is the same use.
        let mut twin = token.clone();
        twin.expires_at += 10;
        let twin = ConfirmToken::open(&twin.seal(&secret).expect("seals"), &secret, now).expect("opens");
        assert_eq!(claim(&store, &token_key(&twin), 60_000, 4_000).await, Ok(false));
    }
}
