//! `sign` and `sign-event`: fresh Standard Webhooks headers for a body or a Function URL event,
//! so curl, `cargo lambda invoke` and `sam local invoke` can send requests the function accepts.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::args::{SignArgs, SignEventArgs};
use super::{Fatal, exit, key, new_delivery_id};
use crate::clock::unix_now;
use crate::signature::{self, WebhookSecret};

/// The three headers the function checks, in the order a reader expects them.
pub(crate) struct Headers {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
}

impl Headers {
    pub(crate) fn new(secret: &WebhookSecret, id: String, body: &[u8]) -> Self {
        let timestamp = unix_now();
        let signature = signature::sign(secret, &id, timestamp, body);
        Self { id, timestamp, signature }
    }
}

pub(crate) fn sign(
    args: SignArgs,
    key_env: Option<&str>,
    stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
) -> Result<u8, Fatal> {
    let secret = key::load(args.key.key_file.as_deref(), key_env, stderr)?;
    // The file's exact bytes are signed: trimming a final newline here would make curl's
    // `--data-binary @FILE` (which sends it) fail verification.
    let body = match (&args.body_file, args.body) {
        (Some(path), _) => read(path)?,
        (None, Some(text)) => text.into_bytes(),
        (None, None) => return Err(Fatal::usage("give --body-file FILE or --body JSON")),
    };
    let h = Headers::new(&secret, args.delivery_id.unwrap_or_else(new_delivery_id), &body);
    let _ = writeln!(
        stdout,
        "webhook-id: {}\nwebhook-timestamp: {}\nwebhook-signature: {}",
        h.id, h.timestamp, h.signature
    );
    Ok(exit::OK)
}

pub(crate) fn sign_event(
    args: SignEventArgs,
    key_env: Option<&str>,
    stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
) -> Result<u8, Fatal> {
    let secret = key::load(args.key.key_file.as_deref(), key_env, stderr)?;
    let raw = read(&args.file)?;
    let mut event: Value =
        serde_json::from_slice(&raw).map_err(|e| Fatal::usage(format!("{} is not JSON: {e}", args.file.display())))?;
    let id = match (args.keep_id, args.delivery_id) {
        (true, _) => Some(existing_id(&event, &args.file)?),
        (false, given) => given,
    };
    resign(&mut event, &secret, id).map_err(|why| Fatal::usage(format!("{}: {why}", args.file.display())))?;
    let pretty = serde_json::to_string_pretty(&event).unwrap_or_else(|_| event.to_string());
    let _ = writeln!(stdout, "{pretty}");
    Ok(exit::OK)
}

fn existing_id(event: &Value, file: &Path) -> Result<String, Fatal> {
    let id = header(event, "webhook-id").ok_or_else(|| {
        Fatal::usage(format!("{}: --keep-id, but the event has no webhook-id header", file.display()))
    })?;
    super::args::parse_delivery_id(id).map_err(|why| Fatal::usage(format!("{}: its webhook-id {why}", file.display())))
}

fn header<'a>(event: &'a Value, name: &str) -> Option<&'a str> {
    event["headers"].as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str())
}

/// Replaces the event's signature headers (and content-length) for its body; `id` `None` means a new one.
pub(crate) fn resign(event: &mut Value, secret: &WebhookSecret, id: Option<String>) -> Result<(), String> {
    let object = event.as_object_mut().ok_or("the event is not a JSON object")?;
    // The function verifies the bytes it receives, which for a base64 event are the decoded ones.
    let body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if object.get("isBase64Encoded") == Some(&Value::Bool(true)) => {
            STANDARD.decode(text).map_err(|e| format!("isBase64Encoded is true but the body is not base64: {e}"))?
        }
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(_) => return Err("\"body\" must be a string, as Function URL events carry it".into()),
    };
    let headers = object.entry("headers").or_insert_with(|| Value::Object(Map::new()));
    let headers = headers.as_object_mut().ok_or("\"headers\" is not a JSON object")?;
    let h = Headers::new(secret, id.unwrap_or_else(new_delivery_id), &body);
    // Function URLs lower-case header names; drop any other spelling so only ours remain.
    let names = ["webhook-id", "webhook-timestamp", "webhook-signature", "content-length"];
    headers.retain(|k, _| !names.iter().any(|n| k.eq_ignore_ascii_case(n)) || names.contains(&k.as_str()));
    headers.insert("webhook-id".into(), h.id.into());
    headers.insert("webhook-timestamp".into(), h.timestamp.to_string().into());
    headers.insert("webhook-signature".into(), h.signature.into());
    if headers.contains_key("content-length") {
        headers.insert("content-length".into(), body.len().to_string().into());
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, Fatal> {
    std::fs::read(path).map_err(|e| Fatal::usage(format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::signature::SignedHeaders;

    fn secret() -> WebhookSecret {
        WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("test key")
    }

    fn verifies(event: &Value, body: &[u8]) -> bool {
        let keys = [secret()];
        let headers = SignedHeaders {
            id: event["headers"]["webhook-id"].as_str(),
            timestamp: event["headers"]["webhook-timestamp"].as_str(),
            signature: event["headers"]["webhook-signature"].as_str(),
        };
        signature::verify(&keys, |k| k, headers, body, unix_now()).is_ok()
    }

    #[test]
    fn a_base64_event_is_signed_over_its_decoded_body() {
        let mut event =
            json!({"headers": {"content-length": "1"}, "body": STANDARD.encode("{\"a\":1}"), "isBase64Encoded": true});
        resign(&mut event, &secret(), None).expect("resigned");
        assert!(verifies(&event, b"{\"a\":1}"));
        assert_eq!(event["headers"]["content-length"], "7");
    }

    #[test]
    fn other_spellings_of_the_signature_headers_are_replaced() {
        let mut event =
            json!({"headers": {"Webhook-Id": "old", "WEBHOOK-SIGNATURE": "v1,old", "accept": "*/*"}, "body": "{}"});
        resign(&mut event, &secret(), Some("msg_given".into())).expect("resigned");
        let headers = event["headers"].as_object().expect("headers");
        assert_eq!(headers.len(), 4, "{headers:?}");
        assert_eq!(headers["webhook-id"], "msg_given");
        assert!(verifies(&event, b"{}"));
    }

    #[test]
    fn events_that_are_not_function_url_shaped_are_refused() {
        for bad in [json!([]), json!({"body": 5}), json!({"body": "!", "isBase64Encoded": true}), json!({"headers": 1})]
        {
            assert!(resign(&mut bad.clone(), &secret(), None).is_err(), "{bad}");
        }
    }
}
