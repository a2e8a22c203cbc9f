//! A corpus of hand-made hostile requests through the real handler (moto and the CRS sandbox,
//! both Tencent API generations): huge bodies, deep nesting, invalid UTF-8, duplicate keys,
//! look-alike instance ids, header injection, malformed and multiple signatures, timestamps at the
//! tolerance edges and in milliseconds, base64 bodies that don't decode. Each gets its documented
//! status and error code, its answer never echoes the input, and no case sends RestoreInstance.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
use common::*;
use crs_restore::signature::{self, WebhookSecret};
use crs_restore::tencent::ApiVersion;
use serde_json::{Value, json};

/// One hostile request and the answer the error contract documents for it.
struct Case {
    name: &'static str,
    event: Value,
    status: u16,
    code: &'static str,
}

fn key(k: &str) -> WebhookSecret {
    WebhookSecret::parse(k).expect("test key")
}

fn unique_id() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!("msg_hostile{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// The fixture carrying `body` (base64 when it is not UTF-8), signed over its exact bytes.
fn signed_bytes(body: &[u8], signer: &str) -> Value {
    let id = unique_id();
    let ts = now();
    let mut ev = fixture("function-url-restore.json");
    match std::str::from_utf8(body) {
        Ok(text) => ev["body"] = text.into(),
        Err(_) => {
            ev["body"] = STANDARD.encode(body).into();
            ev["isBase64Encoded"] = true.into();
        }
    }
    ev["headers"]["webhook-id"] = id.clone().into();
    ev["headers"]["webhook-timestamp"] = ts.to_string().into();
    ev["headers"]["webhook-signature"] = signature::sign(&key(signer), &id, ts, body).into();
    ev["headers"]["content-length"] = body.len().to_string().into();
    ev
}

fn signed(body: &str) -> Value {
    signed_bytes(body.as_bytes(), KEY_RUNBOOKS)
}

/// A valid restore request with `field` set to the raw JSON text `value`.
fn body_with(field: &str, value: &str) -> String {
    format!(r#"{{"redisId":"{REDIS_ID}","backupId":"{BACKUP_ID}","dryRun":true,"{field}":{value}}}"#)
}

fn with_header(mut ev: Value, name: &str, value: impl Into<Value>) -> Value {
    ev["headers"][name] = value.into();
    ev
}

fn without_header(mut ev: Value, name: &str) -> Value {
    ev["headers"].as_object_mut().expect("headers").remove(name);
    ev
}

/// A correctly signed event whose timestamp header reads `ts` (signed as that text).
fn signed_at(body: &str, ts: &str) -> Value {
    let id = unique_id();
    let mut content = format!("{id}.{ts}.").into_bytes();
    content.extend_from_slice(body.as_bytes());
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(
        &STANDARD.decode(KEY_RUNBOOKS.trim_start_matches("whsec_")).expect("key"),
    )
    .expect("key");
    hmac::Mac::update(&mut mac, &content);
    let sig = format!("v1,{}", STANDARD.encode(hmac::Mac::finalize(mac).into_bytes()));
    let ev = with_header(signed(body), "webhook-id", id);
    with_header(with_header(ev, "webhook-timestamp", ts), "webhook-signature", sig)
}

fn the_signature(ev: &Value) -> String {
    ev["headers"]["webhook-signature"].as_str().expect("signature").to_owned()
}

/// `text` followed by spaces up to `len` bytes.
fn pad(text: &str, len: usize) -> String {
    format!("{text}{}", " ".repeat(len - text.len()))
}

fn deep(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

fn corpus() -> Vec<Case> {
    let valid = restore_body(REDIS_ID, BACKUP_ID);
    let dry = body_with("reason", r#""hostile corpus""#);
    let case = |name, event, status, code| Case { name, event, status, code };
    let mut invalid_utf8 = format!(r#"{{"redisId":"crs-izbob1w","backupId":"{BACKUP_ID}"}}"#).into_bytes();
    invalid_utf8.insert(24, 0xff);
    let mut unpadded = valid.clone();
    while unpadded.len() % 3 != 1 {
        unpadded.push(' ');
    }
    let mut cases = vec![
        // Size.
        case("body one byte over 64 KiB", signed(&pad(&valid, 65_537)), 413, "PayloadTooLarge"),
        case("1 MiB body", signed(&" ".repeat(1 << 20)), 413, "PayloadTooLarge"),
        case(
            "base64 body that decodes to over 64 KiB",
            {
                let mut ev = signed(&valid);
                ev["isBase64Encoded"] = true.into();
                ev["body"] = STANDARD.encode(vec![b' '; 65_537]).into();
                ev
            },
            413,
            "PayloadTooLarge",
        ),
        case(
            "exactly 64 KiB: parsed, not refused for size",
            signed(&pad(&format!(r#"{{"redisId":"{REDIS_ID}"}}"#), 65_536)),
            400,
            "MissingField",
        ),
        // Nesting and encodings.
        case("JSON nested 10,000 deep", signed(&deep(10_000)), 400, "MalformedJson"),
        case(
            "JSON nested 200 deep inside a known field",
            signed(&body_with("reason", &deep(200))),
            400,
            "MalformedJson",
        ),
        case(
            "JSON nested 100 deep inside a known field",
            signed(&body_with("reason", &deep(100))),
            400,
            "InvalidField",
        ),
        case(
            "invalid UTF-8 inside a string (signed, base64-delivered)",
            signed_bytes(&invalid_utf8, KEY_RUNBOOKS),
            400,
            "MalformedJson",
        ),
        case("lone UTF-16 surrogate escape", signed(&body_with("reason", r#""\ud800""#)), 400, "MalformedJson"),
        case("UTF-8 byte order mark before the object", signed(&format!("\u{feff}{valid}")), 400, "MalformedJson"),
        case(
            "UTF-16 body",
            signed_bytes(&valid.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>(), KEY_RUNBOOKS),
            400,
            "MalformedJson",
        ),
        case("empty body", signed(""), 400, "MalformedJson"),
        case("JSON null", signed("null"), 400, "MalformedJson"),
        case("JSON array of requests", signed(&format!("[{valid}]")), 400, "MalformedJson"),
        case("two objects back to back", signed(&format!("{valid}{valid}")), 400, "MalformedJson"),
        // Duplicate keys: a signer and a reader must never disagree on the instance.
        case(
            "duplicate redisId, allowed instance first",
            signed_bytes(
                format!(r#"{{"redisId":"crs-drill001","redisId":"{REDIS_ID}","backupId":"{BACKUP_ID}"}}"#).as_bytes(),
                KEY_DRILLS,
            ),
            400,
            "DuplicateField",
        ),
        case(
            "duplicate redisId spelled with an escape",
            signed(&format!(r#"{{"redisId":"crs-aaaaaaaa","red\u0069sId":"{REDIS_ID}","backupId":"{BACKUP_ID}"}}"#)),
            400,
            "DuplicateField",
        ),
        case("duplicate backupId", signed(&body_with("backupId", r#""latest""#)), 400, "DuplicateField"),
        case("duplicate dryRun (true, then false)", signed(&body_with("dryRun", "false")), 400, "DuplicateField"),
        case("unknown field", signed(&body_with("force", "true")), 400, "UnknownField"),
        case("a job envelope inside the body", signed(&body_with("crsRestoreJob", "{}")), 400, "UnknownField"),
        case(
            "an unknown field name of 10,000 characters",
            signed(&body_with(&"x".repeat(10_000), "1")),
            400,
            "UnknownField",
        ),
        // Types and values.
        case("redisId null", signed(&format!(r#"{{"redisId":null,"backupId":"{BACKUP_ID}"}}"#)), 400, "MissingField"),
        case("redisId a number", signed(&format!(r#"{{"redisId":1,"backupId":"{BACKUP_ID}"}}"#)), 400, "InvalidField"),
        case(
            "redisId an array",
            signed(&format!(r#"{{"redisId":["{REDIS_ID}"],"backupId":"{BACKUP_ID}"}}"#)),
            400,
            "InvalidField",
        ),
        case(
            "dryRun as a string",
            signed(&format!(r#"{{"redisId":"{REDIS_ID}","backupId":"latest","dryRun":"false"}}"#)),
            400,
            "InvalidField",
        ),
        case("backupId path traversal", signed(&restore_body(REDIS_ID, "../../../etc/passwd")), 400, "InvalidField"),
        case("reason with a NUL", signed(&body_with("reason", r#""ok\u0000x""#)), 400, "InvalidField"),
        case("reason with an ANSI escape", signed(&body_with("reason", r#""\u001b[31mred""#)), 400, "InvalidField"),
        case(
            "reason of 501 characters",
            signed(&body_with("reason", &format!("\"{}\"", "é".repeat(501)))),
            400,
            "InvalidField",
        ),
        case("region with upper case", signed(&body_with("region", r#""AP-GUANGZHOU""#)), 400, "InvalidField"),
        case(
            "waitForCompletion without a callback",
            signed(&body_with("waitForCompletion", "true")),
            400,
            "InvalidField",
        ),
        // Callback URLs that point inside (SSRF).
        case(
            "callback to the metadata service",
            signed(&body_with("callbackUrl", r#""https://169.254.169.254/latest/meta-data/""#)),
            400,
            "CallbackUrlNotAllowed",
        ),
        case(
            "callback to the metadata service as one decimal number",
            signed(&body_with("callbackUrl", r#""https://2852039166/""#)),
            400,
            "CallbackUrlNotAllowed",
        ),
        case(
            "callback to loopback in hex",
            signed(&body_with("callbackUrl", r#""https://0x7f.1/""#)),
            400,
            "CallbackUrlNotAllowed",
        ),
        case(
            "callback to IPv4-mapped IPv6 metadata",
            signed(&body_with("callbackUrl", r#""https://[::ffff:a9fe:a9fe]/""#)),
            400,
            "CallbackUrlNotAllowed",
        ),
        case(
            "callback to the IPv6 metadata service",
            signed(&body_with("callbackUrl", r#""https://[fd00:ec2::254]/""#)),
            400,
            "CallbackUrlNotAllowed",
        ),
        case(
            "callback to localhost by name",
            signed(&body_with("callbackUrl", r#""https://localhost:8443/x""#)),
            400,
            "CallbackUrlNotAllowed",
        ),
        case(
            "callback over plain http",
            signed(&body_with("callbackUrl", r#""http://93.184.216.34/""#)),
            400,
            "CallbackUrlNotAllowed",
        ),
        case(
            "callback with credentials",
            signed(&body_with("callbackUrl", r#""https://u:p@93.184.216.34/""#)),
            400,
            "CallbackUrlNotAllowed",
        ),
        case(
            "callback to a file URL",
            signed(&body_with("callbackUrl", r#""file:///etc/passwd""#)),
            400,
            "CallbackUrlNotAllowed",
        ),
        // Look-alike instance ids.
        case("Cyrillic o in the instance id", signed(&restore_body("crs-izbоb1wh", BACKUP_ID)), 400, "InvalidField"),
        case(
            "fullwidth letters in the instance id",
            signed(&restore_body("ｃｒｓ-izbob1wh", BACKUP_ID)),
            400,
            "InvalidField",
        ),
        case(
            "zero-width space in the instance id",
            signed(&restore_body("crs-izbob\u{200b}1wh", BACKUP_ID)),
            400,
            "InvalidField",
        ),
        case(
            "combining accent in the instance id",
            signed(&restore_body("crs-izbo\u{301}b1wh", BACKUP_ID)),
            400,
            "InvalidField",
        ),
        case(
            "Kelvin sign in the instance id",
            signed(&restore_body("crs-\u{212a}zbob1wh", BACKUP_ID)),
            400,
            "InvalidField",
        ),
        case("upper-case instance id", signed(&restore_body("CRS-IZBOB1WH", BACKUP_ID)), 400, "InvalidField"),
        case(
            "instance id with a trailing newline",
            signed(&restore_body("crs-izbob1wh\n", BACKUP_ID)),
            400,
            "InvalidField",
        ),
        case(
            "instance id with an escaped NUL",
            signed(&format!(r#"{{"redisId":"crs-izbob1wh\u0000","backupId":"{BACKUP_ID}"}}"#)),
            400,
            "InvalidField",
        ),
        case("instance id of nine characters", signed(&restore_body("crs-izbob1whx", BACKUP_ID)), 400, "InvalidField"),
        // Method and content type.
        case("GET", with_method(signed(&valid), "GET"), 405, "MethodNotAllowed"),
        case("POST with a trailing space", with_method(signed(&valid), "POST "), 405, "MethodNotAllowed"),
        case("no content type", without_header(signed(&valid), "content-type"), 415, "UnsupportedMediaType"),
        case(
            "form content type",
            with_header(signed(&valid), "content-type", "application/x-www-form-urlencoded"),
            415,
            "UnsupportedMediaType",
        ),
        case(
            "JSON look-alike content type",
            with_header(signed(&valid), "content-type", "application/jsonp"),
            415,
            "UnsupportedMediaType",
        ),
        case(
            "content type with an injected header",
            with_header(signed(&valid), "content-type", "application/json\r\nwebhook-signature: v1,AAAA"),
            415,
            "UnsupportedMediaType",
        ),
        // Signature headers.
        case("no webhook-signature", without_header(signed(&valid), "webhook-signature"), 401, "MissingSignature"),
        case("no webhook-id", without_header(signed(&valid), "webhook-id"), 401, "MissingSignature"),
        case("no webhook-timestamp", without_header(signed(&valid), "webhook-timestamp"), 401, "MissingSignature"),
        case(
            "signature header as a list, not a string",
            {
                let ev = signed(&valid);
                let sig = the_signature(&ev);
                with_header(ev, "webhook-signature", json!([sig]))
            },
            401,
            "MissingSignature",
        ),
        case(
            "webhook-id with CR LF and an injected header",
            with_header(signed(&valid), "webhook-id", "msg_1\r\nx-admin: 1"),
            401,
            "MalformedSignatureHeaders",
        ),
        case(
            "webhook-id with a dot (shifts the signed boundary)",
            with_header(signed(&valid), "webhook-id", "msg.1"),
            401,
            "MalformedSignatureHeaders",
        ),
        case(
            "webhook-id with a space",
            with_header(signed(&valid), "webhook-id", "msg 1"),
            401,
            "MalformedSignatureHeaders",
        ),
        case(
            "webhook-id of 129 characters",
            with_header(signed(&valid), "webhook-id", "m".repeat(129)),
            401,
            "MalformedSignatureHeaders",
        ),
        case(
            "webhook-id with non-ASCII",
            with_header(signed(&valid), "webhook-id", "msg_é"),
            401,
            "MalformedSignatureHeaders",
        ),
        case("empty webhook-id", with_header(signed(&valid), "webhook-id", ""), 401, "MalformedSignatureHeaders"),
        case(
            "two signature headers joined with a comma (as Function URLs join repeats)",
            {
                let ev = signed(&valid);
                let sig = the_signature(&ev);
                with_header(ev, "webhook-signature", format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,{sig}"))
            },
            401,
            "InvalidSignature",
        ),
        case(
            "valid signature after 16 decoys (only 16 entries are tried)",
            {
                let ev = signed(&valid);
                let sig = the_signature(&ev);
                let decoys = vec!["v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; 16].join(" ");
                with_header(ev, "webhook-signature", format!("{decoys} {sig}"))
            },
            401,
            "InvalidSignature",
        ),
        case(
            "10,000 junk signature entries",
            with_header(signed(&valid), "webhook-signature", vec!["v1,x"; 10_000].join(" ")),
            401,
            "InvalidSignature",
        ),
        case(
            "signature without its version",
            {
                let ev = signed(&valid);
                let sig = the_signature(&ev);
                with_header(ev, "webhook-signature", sig.trim_start_matches("v1,").to_owned())
            },
            401,
            "InvalidSignature",
        ),
        case(
            "signature under another version (v2)",
            {
                let ev = signed(&valid);
                let sig = the_signature(&ev);
                with_header(ev, "webhook-signature", sig.replace("v1,", "v2,"))
            },
            401,
            "InvalidSignature",
        ),
        case(
            "signature with an upper-case version (V1)",
            {
                let ev = signed(&valid);
                let sig = the_signature(&ev);
                with_header(ev, "webhook-signature", sig.replace("v1,", "V1,"))
            },
            401,
            "InvalidSignature",
        ),
        case(
            "signature without base64 padding",
            {
                let ev = signed(&valid);
                let sig = the_signature(&ev);
                with_header(ev, "webhook-signature", sig.trim_end_matches('=').to_owned())
            },
            401,
            "InvalidSignature",
        ),
        case(
            "signature in hex instead of base64",
            {
                let ev = signed(&valid);
                let raw = STANDARD.decode(the_signature(&ev).trim_start_matches("v1,")).expect("b64");
                with_header(ev, "webhook-signature", format!("v1,{}", hex::encode(raw)))
            },
            401,
            "InvalidSignature",
        ),
        case(
            "signature truncated to 16 bytes",
            {
                let ev = signed(&valid);
                let raw = STANDARD.decode(the_signature(&ev).trim_start_matches("v1,")).expect("b64");
                with_header(ev, "webhook-signature", format!("v1,{}", STANDARD.encode(&raw[..16])))
            },
            401,
            "InvalidSignature",
        ),
        case("empty signature entry", with_header(signed(&valid), "webhook-signature", "v1,"), 401, "InvalidSignature"),
        case(
            "signature by a key that is not configured",
            signed_bytes(valid.as_bytes(), "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"),
            401,
            "InvalidSignature",
        ),
        case(
            "signature keyed with the literal whsec_ string",
            {
                let ev = signed(&valid);
                let (id, ts) = (
                    ev["headers"]["webhook-id"].as_str().unwrap_or_default().to_owned(),
                    ev["headers"]["webhook-timestamp"].as_str().unwrap_or_default().to_owned(),
                );
                let mut mac =
                    <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(KEY_RUNBOOKS.as_bytes()).expect("key");
                hmac::Mac::update(&mut mac, format!("{id}.{ts}.{valid}").as_bytes());
                let sig = format!("v1,{}", STANDARD.encode(hmac::Mac::finalize(mac).into_bytes()));
                with_header(ev, "webhook-signature", sig)
            },
            401,
            "InvalidSignature",
        ),
        case(
            "signature over the re-serialized JSON, not the raw bytes",
            {
                let raw = format!(r#"{{ "redisId": "{REDIS_ID}", "backupId": "{BACKUP_ID}" }}"#);
                let reserialized: Value = serde_json::from_str(&raw).expect("json");
                let mut ev = signed(&reserialized.to_string());
                ev["body"] = raw.into();
                ev
            },
            401,
            "InvalidSignature",
        ),
        case(
            "body changed after signing",
            {
                let mut ev = signed(&valid);
                ev["body"] = restore_body("crs-aaaaaaaa", BACKUP_ID).into();
                ev
            },
            401,
            "InvalidSignature",
        ),
        case(
            "signed by a key whose allow list does not name the instance",
            signed_bytes(valid.as_bytes(), KEY_DRILLS),
            403,
            "InstanceNotAllowed",
        ),
        // Timestamps.
        case("timestamp 310 s in the past", signed_at(&valid, &(now() - 310).to_string()), 401, "StaleTimestamp"),
        case("timestamp 310 s in the future", signed_at(&valid, &(now() + 310).to_string()), 401, "StaleTimestamp"),
        case("timestamp in milliseconds", signed_at(&valid, &(now() * 1000).to_string()), 401, "StaleTimestamp"),
        case("timestamp in microseconds", signed_at(&valid, &(now() * 1_000_000).to_string()), 401, "StaleTimestamp"),
        case("timestamp zero", signed_at(&valid, "0"), 401, "StaleTimestamp"),
        case("timestamp with a plus sign", signed_at(&valid, &format!("+{}", now())), 401, "MalformedSignatureHeaders"),
        case("negative timestamp", signed_at(&valid, &format!("-{}", now())), 401, "MalformedSignatureHeaders"),
        case(
            "timestamp with a leading space",
            signed_at(&valid, &format!(" {}", now())),
            401,
            "MalformedSignatureHeaders",
        ),
        case("timestamp with a fraction", signed_at(&valid, &format!("{}.5", now())), 401, "MalformedSignatureHeaders"),
        case("timestamp in exponent notation", signed_at(&valid, "1.7e9"), 401, "MalformedSignatureHeaders"),
        case("timestamp in hex", signed_at(&valid, &format!("0x{:x}", now())), 401, "MalformedSignatureHeaders"),
        case("timestamp as a date", signed_at(&valid, "2026-11-26T06:00:00Z"), 401, "MalformedSignatureHeaders"),
        case(
            "timestamp of 19 digits (i64 overflow bait)",
            signed_at(&valid, "9223372036854775808"),
            401,
            "MalformedSignatureHeaders",
        ),
        case("empty timestamp", signed_at(&valid, ""), 401, "MalformedSignatureHeaders"),
        // Base64 bodies.
        case(
            "base64 body that is not base64",
            {
                let mut ev = signed(&valid);
                ev["isBase64Encoded"] = true.into();
                ev["body"] = "%%% not base64 %%%".into();
                ev
            },
            400,
            "InvalidBase64Body",
        ),
        case(
            "base64 body without padding",
            {
                let mut ev = signed(&valid);
                ev["isBase64Encoded"] = true.into();
                ev["body"] = STANDARD_NO_PAD.encode(&unpadded).into();
                ev
            },
            400,
            "InvalidBase64Body",
        ),
        case(
            "base64 body in the URL-safe alphabet",
            {
                let mut ev = signed(&valid);
                ev["isBase64Encoded"] = true.into();
                ev["body"] = URL_SAFE.encode([0xfb, 0xff, 0xfe]).into();
                ev
            },
            400,
            "InvalidBase64Body",
        ),
        case(
            "base64 body wrapped at 76 columns",
            {
                let mut ev = signed(&valid);
                ev["isBase64Encoded"] = true.into();
                let b = STANDARD.encode(&valid);
                ev["body"] = format!("{}\r\n{}", &b[..76], &b[76..]).into();
                ev
            },
            400,
            "InvalidBase64Body",
        ),
        case(
            "base64 of a body other than the signed one",
            {
                let mut ev = signed(&valid);
                ev["isBase64Encoded"] = true.into();
                ev["body"] = STANDARD.encode(restore_body("crs-aaaaaaaa", BACKUP_ID)).into();
                ev
            },
            401,
            "InvalidSignature",
        ),
    ];
    // Accepted controls: the same shapes that must still work (dry runs: nothing is restored).
    let accepted = |name, event| Case { name, event, status: 200, code: "" };
    cases.extend([
        accepted("a timestamp 290 s in the past", signed_at(&dry, &(now() - 290).to_string())),
        accepted("a timestamp 290 s in the future", signed_at(&dry, &(now() + 290).to_string())),
        accepted("header names in mixed case", {
            let ev = signed(&dry);
            let headers = ev["headers"]
                .as_object()
                .expect("headers")
                .iter()
                .map(|(k, v)| (k.to_uppercase(), v.clone()))
                .collect();
            let mut ev = ev;
            ev["headers"] = Value::Object(headers);
            ev
        }),
        accepted("method in lower case", with_method(signed(&dry), "post")),
        accepted(
            "content type with a charset",
            with_header(signed(&dry), "content-type", "Application/JSON; charset=utf-8"),
        ),
        accepted("the valid signature after 15 decoys and unknown versions", {
            let ev = signed(&dry);
            let sig = the_signature(&ev);
            let decoys = vec!["v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; 15].join(" ");
            with_header(ev, "webhook-signature", format!("v1a,xyz== v2,abc {decoys} {sig}"))
        }),
        accepted(
            "the instance id written with a JSON escape",
            signed(&format!(r#"{{"redisId":"\u0063rs-izbob1wh","backupId":"{BACKUP_ID}","dryRun":true}}"#)),
        ),
        accepted("a base64-delivered body", {
            let mut ev = signed(&dry);
            ev["isBase64Encoded"] = true.into();
            ev["body"] = STANDARD.encode(&dry).into();
            ev
        }),
    ]);
    cases
}

fn with_method(mut ev: Value, method: &str) -> Value {
    ev["requestContext"]["http"]["method"] = method.into();
    ev
}

for_both_apis! {
    async fn every_hostile_request_gets_its_documented_answer_and_restores_nothing(api: ApiVersion) {
        let h = Harness::new(api).await;
        let mut wrong = Vec::new();
        let cases = corpus();
        for case in &cases {
            let reply = h.invoke(case.event.clone()).await;
            if (reply.status, reply.code()) != (case.status, case.code) {
                wrong.push(format!("{}: want {} {}, got {} {:?}", case.name, case.status, case.code, reply.status, reply.body));
            }
            // The answer is small and never echoes the hostile input back.
            let text = reply.body.to_string();
            if text.len() > 1024 {
                wrong.push(format!("{}: {}-byte answer", case.name, text.len()));
            }
        }
        println!("hostile corpus: {} cases", cases.len());
        assert!(wrong.is_empty(), "{} of {} cases answered wrongly:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
        assert_eq!(h.sandbox.calls("RestoreInstance"), 0, "no hostile request may reach RestoreInstance");
        assert_eq!(h.restores(), 0);
    }
}
