//! Slack chat-ops through the real handler: the checked-in Slack-shaped Function URL events
//! (form bodies, base64-encoded as Function URLs deliver them), signed at test time with an
//! independent v0 implementation, against the sandbox and moto, with a loopback receiver
//! standing in for Slack's `response_url`.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::receiver::{Received, Receiver};
use common::slack::{encode, fixture_form, signed};
use common::*;
use crs_restore::payload::{BackupId, RedisId, Region};
use crs_restore::sandbox::{Fault, FaultKind};
use crs_restore::secrets::SecretString;
use crs_restore::slack::token::ConfirmToken;
use crs_restore::tencent::ApiVersion;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
const MALLORY: &str = "U0M4LL0RY";
const TEXT: &str = "crs-izbob1wh latest ap-guangzhou INC-1234 cache corrupted";

static TRIGGERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn set(form: &mut [(String, String)], key: &str, value: &str) {
    form.iter_mut().find(|(k, _)| k == key).unwrap_or_else(|| panic!("fixture has {key}")).1 = value.to_owned();
}

/// The slash command fixture with `text`, a fresh trigger id, `response_url`, and `edit`.
fn command_form(text: &str, response_url: &str, edit: impl FnOnce(&mut Vec<(String, String)>)) -> String {
    let mut form = fixture_form("slack-slash-command.json");
    set(&mut form, "text", text);
    set(&mut form, "response_url", response_url);
    let n = TRIGGERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    set(&mut form, "trigger_id", &format!("1795674600{n:03}.24589152.0f1e2d3c4b5a69788796a5b4c3d2e1f0"));
    edit(&mut form);
    encode(&form)
}

fn command(text: &str, response_url: &str, edit: impl FnOnce(&mut Vec<(String, String)>)) -> Value {
    signed("slack-slash-command.json", &command_form(text, response_url, edit), now())
}

/// A button click from the confirm or cancel fixture, carrying `token`.
fn click(fixture_name: &str, token: &str, response_url: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let form = fixture_form(fixture_name);
    let mut payload: Value = serde_json::from_str(&form[0].1).expect("payload JSON");
    payload["actions"][0]["value"] = token.into();
    payload["response_url"] = response_url.into();
    edit(&mut payload);
    signed(fixture_name, &encode(&[("payload".to_owned(), payload.to_string())]), now())
}

fn confirm(token: &str, response_url: &str) -> Value {
    click("slack-block-actions-confirm.json", token, response_url, |_| {})
}

/// The Confirm button's value in a prompt.
fn token_of(prompt: &Value) -> String {
    let blocks = prompt["blocks"].as_array().unwrap_or_else(|| panic!("a prompt with blocks: {prompt}"));
    blocks
        .iter()
        .filter_map(|b| b["elements"].as_array())
        .flatten()
        .find(|e| e["action_id"] == "crs_restore_confirm")
        .and_then(|e| e["value"].as_str())
        .expect("a confirm button")
        .to_owned()
}

fn text(r: &Received) -> &str {
    r.event["text"].as_str().unwrap_or_default()
}

struct Slack {
    h: Harness,
    rx: Receiver,
}

impl Slack {
    async fn new(api: ApiVersion) -> Self {
        let h = Harness::builder(api).for_callbacks().build().await;
        Self { h, rx: Receiver::start(CALLBACK_KEY, &[]).await }
    }

    fn commands_url(&self) -> String {
        format!("http://{}/commands/{SLACK_TEAM}/1795674600123/aBcDeF", self.rx.addr)
    }

    fn actions_url(&self, n: u32) -> String {
        format!("http://{}/actions/{SLACK_TEAM}/179567461{n}/zYxWvU", self.rx.addr)
    }

    /// Runs the slash command and returns the prompt's token.
    async fn prompt(&self) -> String {
        let reply = self.h.invoke(command(TEXT, &self.commands_url(), |_| {})).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        token_of(&reply.body)
    }

    /// Waits for `n` posts to the receiver and returns their texts.
    async fn posts(&self, n: usize) -> Vec<String> {
        self.rx.wait_for(n, WAIT).await.iter().map(|r| text(r).to_owned()).collect()
    }

    /// Lets any stray asynchronous work finish before counting what it did.
    async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

fn expired_token(user: &str) -> String {
    ConfirmToken {
        nonce: "0123456789abcdef0123456789abcdef".into(),
        team_id: SLACK_TEAM.into(),
        user_id: user.into(),
        redis_id: RedisId::parse(REDIS_ID).expect("id"),
        backup_id: BackupId::parse(BACKUP_ID).expect("id"),
        region: Region::parse("ap-guangzhou").expect("region"),
        backup_time: None,
        reason: None,
        expires_at: now() - 1,
        mode: crs_restore::payload::RestoreMode::InPlace,
    }
    .seal(&SecretString::new(SLACK_SIGNING_SECRET))
    .expect("seals")
}

for_both_apis! {
    async fn a_confirmed_prompt_restores_once_and_reports_start_task_and_finish_to_slack(api: ApiVersion) {
        let s = Slack::new(api).await;
        let started = Instant::now();
        let reply = s.h.invoke(command(TEXT, &s.commands_url(), |_| {})).await;
        assert!(started.elapsed() < Duration::from_secs(3), "the prompt must beat Slack's 3 s limit");
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let prompt = reply.body.to_string();
        assert_eq!(reply.body["response_type"], "ephemeral");
        for needle in [REDIS_ID, "ap-guangzhou", BACKUP_ID, "2026-11-25 03:00:00", "INC-1234 cache corrupted", "overwritten", "Cancel"] {
            assert!(prompt.contains(needle), "prompt lacks {needle}: {prompt}");
        }
        assert_eq!(s.h.restores(), 0, "nothing happens before Confirm");

        let ack = s.h.invoke(confirm(&token_of(&reply.body), &s.actions_url(1))).await;
        assert_eq!(ack.status, 200, "{:?}", ack.body);
        let got = s.rx.wait_for(3, WAIT).await;
        assert_eq!(got.len(), 3, "{:?}", got.iter().map(text).collect::<Vec<_>>());
        assert_eq!(got[0].event["replace_original"], true);
        assert!(text(&got[0]).contains(&format!("started by <@{SLACK_USER}>")), "{}", text(&got[0]));
        assert_eq!(got[1].event["response_type"], "in_channel");
        assert!(text(&got[1]).contains("Tencent task ID: *"), "{}", text(&got[1]));
        assert_eq!(got[2].event["response_type"], "in_channel");
        assert!(text(&got[2]).contains("succeeded in ") && text(&got[2]).contains(" s ("), "{}", text(&got[2]));
        s.settle().await;
        assert_eq!(s.rx.received().len(), 3);
        assert_eq!(s.h.sandbox.calls("RestoreInstance"), 1);
        assert_eq!(s.h.restores(), 1);
    }

    async fn cancel_replaces_the_prompt_and_its_token_cannot_confirm_afterwards(api: ApiVersion) {
        let s = Slack::new(api).await;
        let token = s.prompt().await;
        let ack = s.h.invoke(click("slack-block-actions-cancel.json", &token, &s.actions_url(1), |_| {})).await;
        assert_eq!(ack.status, 200);
        let posts = s.posts(1).await;
        assert!(posts[0].contains("cancelled by"), "{posts:?}");
        assert_eq!(s.rx.received()[0].event["replace_original"], true);
        assert_eq!(s.h.invoke(confirm(&token, &s.actions_url(2))).await.status, 200);
        let posts = s.posts(2).await;
        assert!(posts[1].contains("already used"), "{posts:?}");
        s.settle().await;
        assert_eq!(s.h.sandbox.calls("RestoreInstance"), 0);
    }

    async fn a_forged_or_edited_token_is_refused_and_restores_nothing(api: ApiVersion) {
        let s = Slack::new(api).await;
        let token = s.prompt().await;
        let (claims, tag) = token.split_once('.').expect("two parts");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut edited: Value = serde_json::from_slice(&b64.decode(claims).expect("b64")).expect("json");
        edited["b"] = EXPIRED_BACKUP.into();
        let edited = format!("{}.{tag}", b64.encode(edited.to_string()));
        for (n, value) in [edited.as_str(), "eyJuIjoiMSJ9.AAAA", "not-a-token"].into_iter().enumerate() {
            assert_eq!(s.h.invoke(confirm(value, &s.actions_url(n as u32))).await.status, 200);
        }
        let posts = s.posts(3).await;
        assert!(posts.iter().all(|p| p.contains("not valid")), "{posts:?}");
        s.settle().await;
        assert_eq!(s.h.sandbox.calls("RestoreInstance"), 0);
        // The genuine token still works: the forgeries did not use it up.
        assert_eq!(s.h.invoke(confirm(&token, &s.actions_url(9))).await.status, 200);
        s.rx.wait_for(6, WAIT).await;
        assert_eq!(s.h.sandbox.calls("RestoreInstance"), 1);
    }

    async fn an_expired_token_is_refused_and_restores_nothing(api: ApiVersion) {
        let s = Slack::new(api).await;
        assert_eq!(s.h.invoke(confirm(&expired_token(SLACK_USER), &s.actions_url(1))).await.status, 200);
        let posts = s.posts(1).await;
        assert!(posts[0].contains("expired"), "{posts:?}");
        s.settle().await;
        assert_eq!(s.h.sandbox.calls("RestoreInstance"), 0);
    }

    async fn only_the_user_who_asked_can_confirm(api: ApiVersion) {
        let s = Slack::new(api).await;
        let token = s.prompt().await;
        let by_bob = click("slack-block-actions-confirm.json", &token, &s.actions_url(1), |p| {
            p["user"]["id"] = SLACK_OTHER_USER.into();
        });
        assert_eq!(s.h.invoke(by_bob).await.status, 200);
        let posts = s.posts(1).await;
        assert!(posts[0].contains(&format!("Only <@{SLACK_USER}> who asked can confirm")), "{posts:?}");
        s.settle().await;
        assert_eq!(s.h.sandbox.calls("RestoreInstance"), 0);
        // Bob's attempt did not use the token up.
        assert_eq!(s.h.invoke(confirm(&token, &s.actions_url(2))).await.status, 200);
        s.rx.wait_for(4, WAIT).await;
        assert_eq!(s.h.sandbox.calls("RestoreInstance"), 1);
    }

    async fn a_retried_command_shows_no_second_prompt_and_a_retried_confirm_restores_once(api: ApiVersion) {
        let s = Slack::new(api).await;
        let first = command(TEXT, &s.commands_url(), |_| {});
        let mut retry = first.clone();
        retry["headers"]["x-slack-retry-num"] = "1".into();
        retry["headers"]["x-slack-retry-reason"] = "http_timeout".into();
        let reply = s.h.invoke(first).await;
        let token = token_of(&reply.body);
        let again = s.h.invoke(retry).await;
        assert_eq!(again.status, 200);
        assert!(again.body["blocks"].is_null(), "no second prompt: {:?}", again.body);
        assert!(again.body["text"].as_str().is_some_and(|t| t.contains("already being handled")));

        let click = confirm(&token, &s.actions_url(1));
        let mut retried = click.clone();
        retried["headers"]["x-slack-retry-num"] = "1".into();
        assert_eq!(s.h.invoke(click).await.status, 200);
        assert_eq!(s.h.invoke(retried).await.status, 200);
        let posts = s.posts(3).await;
        assert!(posts[2].contains("succeeded"), "{posts:?}");
        s.settle().await;
        assert_eq!(s.rx.received().len(), 3, "a retry is acknowledged silently");
        assert_eq!(s.h.sandbox.calls("RestoreInstance"), 1);
    }

    async fn a_double_confirm_restores_exactly_once(api: ApiVersion) {
        let s = Slack::new(api).await;
        let token = s.prompt().await;
        let (a, b) = (confirm(&token, &s.actions_url(1)), confirm(&token, &s.actions_url(2)));
        let (ra, rb) = tokio::join!(s.h.invoke(a), s.h.invoke(b));
        assert_eq!((ra.status, rb.status), (200, 200));
        assert_eq!(s.h.invoke(confirm(&token, &s.actions_url(3))).await.status, 200);
        let posts = s.posts(5).await;
        assert_eq!(posts.iter().filter(|p| p.contains("already used")).count(), 2, "{posts:?}");
        assert_eq!(posts.iter().filter(|p| p.contains("succeeded")).count(), 1, "{posts:?}");
        s.settle().await;
        assert_eq!(s.h.sandbox.calls("RestoreInstance"), 1);
        assert_eq!(s.h.restores(), 1);
    }

    async fn a_slow_backup_lookup_is_acknowledged_in_time_and_the_prompt_follows_through_response_url(api: ApiVersion) {
        let s = Slack::new(api).await;
        let action = match api {
            ApiVersion::V2 => "GetRedisBackupList",
            ApiVersion::V3 => "DescribeInstanceBackups",
        };
        let slow = FaultKind::DelayResponse(Duration::from_millis(2600));
        s.h.sandbox.inject(Fault { action: Some(action.into()), kind: slow, times: 1 });
        let started = Instant::now();
        let reply = s.h.invoke(command(TEXT, &s.commands_url(), |_| {})).await;
        assert!(started.elapsed() < Duration::from_millis(2800), "acknowledged after {:?}", started.elapsed());
        assert_eq!(reply.status, 200);
        assert!(reply.body["text"].as_str().is_some_and(|t| t.contains("Looking up backups")), "{:?}", reply.body);
        let got = s.rx.wait_for(1, WAIT).await;
        assert_eq!(got[0].event["replace_original"], true);
        assert!(got[0].event.to_string().contains(BACKUP_ID));
        let token = token_of(&got[0].event);
        assert_eq!(s.h.invoke(confirm(&token, &s.actions_url(1))).await.status, 200);
        let posts = s.posts(4).await;
        assert!(posts[3].contains("succeeded"), "{posts:?}");
        assert_eq!(s.h.sandbox.calls("RestoreInstance"), 1);
    }

    async fn a_tencent_refusal_during_the_restore_is_reported_to_the_channel_with_its_code(api: ApiVersion) {
        let s = Slack::new(api).await;
        let token = s.prompt().await;
        s.h.sandbox.inject(Fault::error("RestoreInstance", "PasswordError"));
        assert_eq!(s.h.invoke(confirm(&token, &s.actions_url(1))).await.status, 200);
        let got = s.rx.wait_for(2, WAIT).await;
        assert_eq!(got[1].event["response_type"], "in_channel");
        assert!(text(&got[1]).contains("could not start") && text(&got[1]).contains("*PasswordError*"), "{}", text(&got[1]));
        s.settle().await;
        assert_eq!(s.h.restores(), 0);
    }

    async fn a_backup_that_cannot_be_used_is_explained_instead_of_prompted(api: ApiVersion) {
        let s = Slack::new(api).await;
        let reply = s.h.invoke(command(&format!("{REDIS_ID} {EXPIRED_BACKUP}"), &s.commands_url(), |_| {})).await;
        assert_eq!(reply.status, 200);
        assert!(reply.body["blocks"].is_null());
        assert!(reply.body["text"].as_str().is_some_and(|t| t.contains("BackupStatusAbnormal")), "{:?}", reply.body);
    }
}

#[tokio::test]
async fn the_slash_command_fixture_as_slack_sends_it_gets_a_prompt() {
    let h = Harness::builder(ApiVersion::V2).build().await;
    let form = encode(&fixture_form("slack-slash-command.json"));
    let reply = h.invoke(signed("slack-slash-command.json", &form, now())).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert!(!token_of(&reply.body).is_empty());
}

#[tokio::test]
async fn requests_from_another_workspace_are_refused() {
    let s = Slack::new(ApiVersion::V2).await;
    let reply = s.h.invoke(command(TEXT, &s.commands_url(), |f| set(f, "team_id", "T0OTHER01"))).await;
    assert_eq!(reply.status, 200);
    assert!(reply.body["text"].as_str().is_some_and(|t| t.contains("one Slack workspace")), "{:?}", reply.body);
    let token = s.prompt().await;
    let from_other = click("slack-block-actions-confirm.json", &token, &s.actions_url(1), |p| {
        p["team"]["id"] = "T0OTHER01".into();
        p["user"]["team_id"] = "T0OTHER01".into();
    });
    assert_eq!(s.h.invoke(from_other).await.status, 200);
    assert!(s.posts(1).await[0].contains("one Slack workspace"));
    s.settle().await;
    assert_eq!(s.h.sandbox.calls("RestoreInstance"), 0);
}

#[tokio::test]
async fn users_and_channels_not_listed_are_refused() {
    let s = Slack::new(ApiVersion::V2).await;
    let reply = s.h.invoke(command(TEXT, &s.commands_url(), |f| set(f, "user_id", MALLORY))).await;
    assert!(reply.body["text"].as_str().is_some_and(|t| t.contains("not allowed") && t.contains(MALLORY)));
    let reply = s.h.invoke(command(TEXT, &s.commands_url(), |f| set(f, "channel_id", "C0RANDOM1"))).await;
    assert!(reply.body["text"].as_str().is_some_and(|t| t.contains("this channel")), "{:?}", reply.body);
    let token = s.prompt().await;
    let by_mallory = click("slack-block-actions-confirm.json", &token, &s.actions_url(1), |p| {
        p["user"]["id"] = MALLORY.into();
    });
    assert_eq!(s.h.invoke(by_mallory).await.status, 200);
    assert!(s.posts(1).await[0].contains("not allowed"));
    s.settle().await;
    assert_eq!(s.h.sandbox.calls("RestoreInstance"), 0);
}

#[tokio::test]
async fn an_instance_outside_the_slack_allow_list_is_refused_without_a_lookup() {
    let s = Slack::new(ApiVersion::V3).await;
    let reply = s.h.invoke(command("crs-drill001 latest", &s.commands_url(), |_| {})).await;
    assert_eq!(reply.status, 200);
    assert!(reply.body["text"].as_str().is_some_and(|t| t.contains("`crs-drill001`") && t.contains("not allowed")));
    assert_eq!(s.h.sandbox.calls("DescribeInstanceBackups"), 0);
}

#[tokio::test]
async fn help_and_usage_errors_are_ephemeral_answers() {
    let s = Slack::new(ApiVersion::V2).await;
    let help = s.h.invoke(command("help", &s.commands_url(), |_| {})).await;
    assert_eq!((help.status, help.body["response_type"].as_str()), (200, Some("ephemeral")));
    assert!(help.body["text"].as_str().is_some_and(|t| t.contains("/crs-restore &lt;instance id&gt;")));
    for (input, needle) in
        [("", "which instance"), ("crs-izbob1wh", "Which backup"), ("drop tables", "not an instance id")]
    {
        let reply = s.h.invoke(command(input, &s.commands_url(), |_| {})).await;
        let t = reply.body["text"].as_str().unwrap_or_default();
        assert!(t.contains(needle) && t.contains("Usage:"), "{input:?}: {t}");
    }
}

#[tokio::test]
async fn bad_and_stale_signatures_are_refused_before_anything_is_parsed() {
    let s = Slack::new(ApiVersion::V2).await;
    let form = command_form(TEXT, &s.commands_url(), |_| {});
    let mut tampered = signed("slack-slash-command.json", &form, now());
    tampered["body"] = STANDARD.encode(form.replace("latest", "e824aecc-ef5e-11e6-a2c7-525400082493")).into();
    let stale = signed("slack-slash-command.json", &form, now() - 301);
    let mut unsigned = signed("slack-slash-command.json", &form, now());
    unsigned["headers"].as_object_mut().expect("headers").remove("x-slack-request-timestamp");
    for (ev, code) in [(tampered, "InvalidSignature"), (stale, "StaleTimestamp"), (unsigned, "MissingSignature")] {
        let reply = s.h.invoke(ev).await;
        assert_eq!((reply.status, reply.code()), (401, code), "{:?}", reply.body);
    }
    assert_eq!(s.h.sandbox.calls("GetRedisBackupList"), 0);
    assert!(s.rx.received().is_empty());
}

#[tokio::test]
async fn a_deferred_prompt_event_inside_a_function_url_body_is_just_an_unsigned_request() {
    let h = Harness::new(ApiVersion::V2).await;
    let mut ev = fixture("function-url-restore.json");
    ev["body"] = json!({"crsSlackPrompt": {"teamId": SLACK_TEAM}}).to_string().into();
    assert_eq!(h.invoke(ev).await.status, 401);
}

#[tokio::test]
async fn refusals_are_audited_and_neither_the_signing_secret_nor_a_response_url_reaches_the_logs() {
    let capture = common::logs::LogCapture::global();

    let s = Slack::new(ApiVersion::V2).await;
    s.h.invoke(command(TEXT, &s.commands_url(), |f| set(f, "team_id", "T0OTHER01"))).await;
    s.h.invoke(command(TEXT, &s.commands_url(), |f| set(f, "user_id", MALLORY))).await;
    s.h.invoke(command("crs-drill001 latest", &s.commands_url(), |_| {})).await;
    s.h.invoke(confirm("forged.token", &s.actions_url(1))).await;
    let token = s.prompt().await;
    s.h.invoke(confirm(&token, &s.actions_url(2))).await;
    let posts = s.posts(4).await;
    assert!(posts[3].contains("succeeded"), "{posts:?}");
    s.settle().await;

    let logs = capture.text();
    for secret in [SLACK_SIGNING_SECRET, "aBcDeF", "zYxWvU", token.as_str()] {
        let hit = logs.lines().find(|l| l.contains(secret));
        assert!(hit.is_none(), "{secret:?} leaked in: {}", hit.unwrap_or_default());
    }
    let audits: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["audit"] == true && v["source"] == "slack")
        .collect();
    let has = |code: &str, key: &str| audits.iter().any(|a| a["error_code"] == code && a["key_id"] == key);
    assert!(has("SlackTeamNotAllowed", SLACK_USER), "{audits:?}");
    assert!(has("SlackUserNotAllowed", MALLORY));
    assert!(has("InstanceNotAllowed", SLACK_USER));
    assert!(has("InvalidConfirmToken", SLACK_USER));
    // The capture is shared by every test of this binary: pair this test's confirmation with its
    // job by delivery id (the job of a confirmation of another test may still be running).
    let job_of = |a: &Value| audits.iter().find(|j| j["phase"] == "job" && j["delivery_id"] == a["delivery_id"]);
    let accepted = audits
        .iter()
        .find(|a| a["outcome"] == "accepted" && a["redis_id"] == REDIS_ID && job_of(a).is_some())
        .expect("the confirmation is audited");
    for field in ["delivery_id", "redis_id", "backup_id", "region", "reason"] {
        assert!(!accepted[field].is_null(), "audit line lacks {field}: {accepted}");
    }
    let job = job_of(accepted).expect("the job is audited");
    assert_eq!((job["outcome"].as_str(), job["key_id"].as_str()), (Some("succeeded"), Some(SLACK_USER)));
}

#[tokio::test]
async fn a_clone_from_slack_shows_mode_and_price_and_posts_the_clones_address_when_it_runs() {
    let s = Slack::new(ApiVersion::V3).await;
    let line = format!("{CLONE_SOURCE} latest mode=clone INC-77 cache corrupted");
    let reply = s.h.invoke(command(&line, &s.commands_url(), |_| {})).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let prompt = reply.body.to_string();
    for needle in ["Clone (CloneInstances)", "new, billed instance", "about 0.20 CNY per hour", CLONE_BACKUP, "INC-77"]
    {
        assert!(prompt.contains(needle), "prompt lacks {needle}: {prompt}");
    }
    assert_eq!(s.h.sandbox.calls("CloneInstances"), 0, "nothing is bought before Confirm");

    let ack = s.h.invoke(confirm(&token_of(&reply.body), &s.actions_url(1))).await;
    assert_eq!(ack.status, 200, "{:?}", ack.body);
    let got = s.rx.wait_for(3, WAIT).await;
    let texts: Vec<&str> = got.iter().map(text).collect();
    assert!(texts[0].contains("by clone"), "{texts:?}");
    let clones = s.h.sandbox.clones_of(CLONE_SOURCE);
    assert_eq!(clones.len(), 1);
    assert!(texts[1].contains(&clones[0]) && texts[1].contains("billed"), "{texts:?}");
    assert!(
        texts[2].contains("is running") && texts[2].contains(&clones[0]) && texts[2].contains(":6379"),
        "{texts:?}"
    );
    s.settle().await;
    assert_eq!(s.h.sandbox.calls("CloneInstances"), 1);
}

#[tokio::test]
async fn a_clone_from_slack_needs_clone_permission_in_the_slack_configuration() {
    let s = Slack::new(ApiVersion::V3).await;
    let mut keys = default_signing_keys();
    keys["slack"]["clone"] = false.into();
    s.h.put_secret("signing-keys", &keys.to_string()).await;
    let line = format!("{CLONE_SOURCE} latest mode=clone INC-77");
    let reply = s.h.invoke(command(&line, &s.commands_url(), |_| {})).await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.to_string().contains("\\\"clone\\\": true"), "{:?}", reply.body);
    assert_eq!(s.h.sandbox.calls("DescribeInstanceBackups"), 0);
}
