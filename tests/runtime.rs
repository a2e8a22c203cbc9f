//! The real `crs-restore` binary through the real Lambda runtime loop (a loopback Runtime API,
//! `common::runtime_api`): what reaches the handler, and what the runtime library itself logs.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use common::receiver::Receiver;
use common::runtime_api::{Answer, Function, RuntimeApi};
use common::slack::{encode, fixture_form, signed};
use common::*;
use crs_restore::tencent::ApiVersion;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The handler's answer to an invocation; panics when the runtime failed it instead.
async fn response(api: &RuntimeApi, id: &str) -> Value {
    match api.answer(id, WAIT).await {
        Some(Answer::Response(body)) => serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
        other => panic!("invocation {id} was not answered by the handler: {other:?}"),
    }
}

#[tokio::test]
async fn a_direct_invocation_nested_ten_thousand_deep_gets_the_functions_own_json_error() {
    let h = Harness::new(ApiVersion::V3).await;
    let api = RuntimeApi::start().await;
    let function = Function::spawn(&api, &moto_endpoint(), "INFO", &h.env);

    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}null{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    for payload in [deep_array, deep_object] {
        let answer = response(&api, &api.push(payload)).await;
        assert_eq!(answer["error"]["code"], "MalformedJson", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("recursion limit"), "{message}");
    }
    // The process is still serving, and ordinary events are unaffected.
    let answer = response(&api, &api.push(r#"{"unexpected": true}"#)).await;
    assert_eq!(answer["error"]["code"], "UnrecognizedEvent", "{answer}");
    let logs = function.logs();
    assert_eq!(logs.matches("unreadable event").count(), 2, "{logs}");
}

/// The most verbose `LogLevel` template.yaml offers (its `AllowedValues`).
fn most_verbose_template_level() -> &'static str {
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).expect("template");
    let parameter = template.split("\n  LogLevel:\n").nth(1).expect("a LogLevel parameter");
    let allowed = parameter.lines().find(|l| l.trim_start().starts_with("AllowedValues:")).expect("AllowedValues");
    ["TRACE", "DEBUG", "INFO"].into_iter().find(|level| allowed.contains(level)).expect("a known level")
}

/// `s` and everything it decodes to, recursively: JSON string values (a log line, an event
/// inside it, a body inside that), percent/form decoding, and base64 runs (standard and URL-safe).
fn decoded_forms(s: &str, depth: usize, out: &mut Vec<String>) {
    out.push(s.to_owned());
    if depth == 0 {
        return;
    }
    if let Ok(value) = serde_json::from_str::<Value>(s) {
        let mut strings = Vec::new();
        collect_strings(&value, &mut strings);
        for string in strings.iter().filter(|string| string.as_str() != s) {
            decoded_forms(string, depth - 1, out);
        }
    }
    if s.contains('%') || s.contains('+') {
        let decoded = percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
        if decoded != s {
            decoded_forms(&decoded, depth - 1, out);
        }
    }
    let is_base64 = |c: char| c.is_ascii_alphanumeric() || "+/=-_".contains(c);
    for run in s.split(|c: char| !is_base64(c)).filter(|run| run.len() >= 16) {
        for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            if let Some(text) = engine.decode(run).ok().and_then(|bytes| String::from_utf8(bytes).ok()) {
                decoded_forms(&text, depth - 1, out);
                break;
            }
        }
    }
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            collect_strings(v, out);
        }),
        _ => {}
    }
}

#[test]
fn the_leak_check_finds_a_token_in_a_url_encoded_form_inside_base64_inside_a_logged_event() {
    let form = "token=t0p-s3cret&response_url=https%3A%2F%2Fhooks.example%2Fx";
    let event = json!({"body": STANDARD.encode(form), "isBase64Encoded": true}).to_string();
    let line = json!({"level": "TRACE", "body": event}).to_string();
    assert!(!line.contains("t0p-s3cret") && !line.contains("https://hooks.example/x"));
    let mut forms = Vec::new();
    decoded_forms(&line, 8, &mut forms);
    assert!(forms.iter().any(|f| f.contains("t0p-s3cret")));
    assert!(forms.iter().any(|f| f.contains("https://hooks.example/x")));
}

#[tokio::test]
async fn at_the_templates_most_verbose_level_no_secret_url_token_or_body_reaches_the_logs_in_any_encoding() {
    let level = most_verbose_template_level();
    let h = Harness::builder(ApiVersion::V3).for_callbacks().build().await;
    let rx = Receiver::start(CALLBACK_KEY, &[]).await;
    let api = RuntimeApi::start().await;
    let function = Function::spawn(&api, &moto_endpoint(), level, &h.env);

    // A signed restore with a callback: answered at once, then a job through Invoke and the loop.
    let callback_url = format!("http://{}/hooks/cb-9d2f7a61e0b4", rx.addr);
    let body = json!({"redisId": REDIS_ID, "backupId": BACKUP_ID, "reason": "INC-77 log leak check",
                      "callbackUrl": callback_url, "waitForCompletion": true})
    .to_string();
    let answer = response(&api, &api.push(signed_event(&body, KEY_RUNBOOKS).to_string())).await;
    assert_eq!(answer["statusCode"], 202, "{answer}");
    let events = rx.wait_for_kind("restore.succeeded", WAIT).await;
    assert!(events.iter().any(|r| r.event["type"] == "restore.succeeded"), "{events:?}");

    // A Slack slash command (verification token, response_url) and its confirmation click.
    let verification_token = "vErIfIcAtIoNtOkEn4242xyz";
    let commands_url = format!("http://{}/commands/{SLACK_TEAM}/1795674600123/sEcReTcOmMaNdPaTh", rx.addr);
    let actions_url = format!("http://{}/actions/{SLACK_TEAM}/1795674610456/sEcReTaCtIoNpAtH", rx.addr);
    let mut form = fixture_form("slack-slash-command.json");
    for (key, value) in &mut form {
        match key.as_str() {
            "token" => *value = verification_token.to_owned(),
            "response_url" => value.clone_from(&commands_url),
            _ => {}
        }
    }
    let command_form = encode(&form);
    let prompt = response(&api, &api.push(signed("slack-slash-command.json", &command_form, now()).to_string())).await;
    assert_eq!(prompt["statusCode"], 200, "{prompt}");
    let prompt: Value = serde_json::from_str(prompt["body"].as_str().unwrap_or_default()).expect("prompt JSON");
    let confirmation = prompt["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["elements"].as_array())
        .flatten()
        .find(|e| e["action_id"] == "crs_restore_confirm")
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("a confirm button: {prompt}"))
        .to_owned();
    let click = fixture_form("slack-block-actions-confirm.json");
    let mut payload: Value = serde_json::from_str(&click[0].1).expect("payload JSON");
    payload["actions"][0]["value"] = confirmation.clone().into();
    payload["response_url"] = actions_url.clone().into();
    payload["token"] = verification_token.into();
    let click_form = encode(&[("payload".to_owned(), payload.to_string())]);
    let ack =
        response(&api, &api.push(signed("slack-block-actions-confirm.json", &click_form, now()).to_string())).await;
    assert_eq!(ack["statusCode"], 200, "{ack}");
    api.settle(WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let logs = function.logs();
    assert!(!api.self_invoked().is_empty(), "the job went through Invoke and the runtime loop");
    assert!(logs.lines().count() > 20, "logging was captured at {level}:\n{logs}");
    let whsec = |k: &str| k.trim_start_matches("whsec_").to_owned();
    let secrets: HashMap<&str, String> = HashMap::from([
        ("instance password", PASSWORD.to_owned()),
        ("Tencent secret key", TENCENT_SECRET_KEY.to_owned()),
        ("webhook key", whsec(KEY_RUNBOOKS)),
        ("callback key", whsec(CALLBACK_KEY)),
        ("Slack signing secret", SLACK_SIGNING_SECRET.to_owned()),
        ("Slack verification token", verification_token.to_owned()),
        ("confirmation token", confirmation),
        ("slash command response_url", commands_url),
        ("interaction response_url", actions_url),
        ("callback URL", callback_url),
        ("request body", body),
        ("slash command body", command_form),
        ("interaction body", click_form),
        ("interaction payload", payload.to_string()),
    ]);
    for line in logs.lines() {
        let mut forms = Vec::new();
        decoded_forms(line, 8, &mut forms);
        for (what, secret) in &secrets {
            let encoded = [
                secret.clone(),
                STANDARD.encode(secret),
                form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>(),
            ];
            let leaked = forms.iter().any(|form| encoded.iter().any(|e| form.contains(e.as_str())));
            assert!(!leaked, "the {what} leaked at {level} into: {line}");
        }
    }
}
