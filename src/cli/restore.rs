//! `restore`: builds the body, signs and sends it (retrying only where that is known to be
//! safe), and turns the function's answer into a sentence or passes its JSON through.

use std::error::Error as _;
use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;
use serde_json::{Map, Value};

use super::args::RestoreArgs;
use super::{Fatal, exit, key, new_delivery_id};
use crate::clock::unix_now;
use crate::signature::{self, WebhookSecret};

/// The function's answer to the last attempt.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub location: Option<String>,
}

pub(crate) async fn run(
    args: RestoreArgs,
    key_env: Option<&str>,
    stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
    retry_delays: &[Duration],
) -> Result<u8, Fatal> {
    // Everything that can be wrong locally is checked before the first byte goes out.
    let secret = key::load(args.key.key_file.as_deref(), key_env, stderr)?;
    let url = check_url(&args.url)?;
    let body = request_body(&args);
    let id = args.delivery_id.clone().unwrap_or_else(new_delivery_id);
    let timeout = Duration::from_secs(args.timeout);
    let client = reqwest::Client::builder()
        // A redirect means the URL is wrong; following it would re-send a signed restore elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("crs-restore-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Fatal::usage(format!("cannot set up the HTTP client: {}", describe(&e))))?;
    let sent = Delivery { client: &client, url: &url, secret: &secret, id: &id, body: &body, timeout };
    let answer = sent.send(retry_delays, stderr).await?;
    Ok(report(&answer, &args, &id, stdout, stderr))
}

/// The function URL must be https, except for a function running on this machine (`make run`):
/// plain http elsewhere would carry restore requests in the clear.
fn check_url(raw: &str) -> Result<Url, Fatal> {
    let url = Url::parse(raw).map_err(|e| Fatal::usage(format!("--url {raw:?} is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(Fatal::usage(format!(
            "--url {url} must be https (plain http is accepted only for a local function on 127.0.0.1 or localhost)"
        ))),
        other => Err(Fatal::usage(format!("--url must be an https URL, not {other}:"))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => {
            host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// The JSON body. Optional fields are sent only when asked for, so a function that does not
/// know them yet still accepts a plain restore.
pub(crate) fn request_body(args: &RestoreArgs) -> Vec<u8> {
    let mut map = Map::new();
    map.insert("redisId".into(), args.redis_id.clone().into());
    let optional = [
        ("backupId", &args.backup_id),
        ("mode", &args.mode),
        ("pointInTime", &args.point_in_time),
        ("region", &args.region),
        ("reason", &args.reason),
        ("callbackUrl", &args.callback_url),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            map.insert(name.into(), value.clone().into());
        }
    }
    if args.wait {
        map.insert("waitForCompletion".into(), true.into());
    }
    if args.dry_run {
        map.insert("dryRun".into(), true.into());
    }
    Value::Object(map).to_string().into_bytes()
}

/// One logical request: the same id and body on every attempt.
struct Delivery<'a> {
    client: &'a reqwest::Client,
    url: &'a Url,
    secret: &'a WebhookSecret,
    id: &'a str,
    body: &'a [u8],
    timeout: Duration,
}

impl Delivery<'_> {
    /// Sends until an answer that should not be retried, or until `retry_delays` runs out.
    ///
    /// Retried: no connection at all (nothing reached the function), and 502/503/504 (the
    /// gateway or the function's dependencies are struggling). Both are safe because every
    /// attempt carries the same webhook-id, which the function deduplicates; only the timestamp
    /// and signature are new, so the 5-minute freshness window never closes on a retry.
    async fn send(&self, retry_delays: &[Duration], stderr: &mut (dyn Write + Send)) -> Result<Answer, Fatal> {
        let mut attempt = 0;
        loop {
            let can_retry = attempt < retry_delays.len();
            let timestamp = unix_now();
            let result = self
                .client
                .post(self.url.clone())
                .header("content-type", "application/json")
                .header("webhook-id", self.id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature::sign(self.secret, self.id, timestamp, self.body))
                .body(self.body.to_vec())
                .send()
                .await;
            let why = match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(clean);
                    let body = response.bytes().await.map_err(|e| self.lost(&e))?.to_vec();
                    let answer = Answer { status, body, location };
                    if !(can_retry && matches!(status, 502..=504)) {
                        return Ok(answer);
                    }
                    format!(
                        "answered {status}{}",
                        error_code(&answer.body).map(|c| format!(" {c}")).unwrap_or_default()
                    )
                }
                Err(e) if e.is_connect() && can_retry => format!("could not connect ({})", describe(&e)),
                Err(e) if e.is_connect() => {
                    return Err(Fatal {
                        code: exit::UNREACHABLE,
                        message: format!(
                            "could not reach {} after {} attempts: {}",
                            self.url,
                            attempt + 1,
                            describe(&e)
                        ),
                    });
                }
                Err(e) => return Err(self.lost(&e)),
            };
            let delay = retry_delays[attempt];
            let _ = writeln!(
                stderr,
                "crs-restore-cli: attempt {} {why}; retrying in {} s with the same delivery {}",
                attempt + 1,
                delay.as_secs_f32(),
                self.id
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// The request may have reached the function, so it is not retried blindly: the operator
    /// gets the delivery id to retry with, which is safe.
    fn lost(&self, e: &reqwest::Error) -> Fatal {
        let what = if e.is_timeout() {
            format!("no answer from {} within {} s", self.url, self.timeout.as_secs())
        } else {
            format!("the connection to {} failed before a complete answer: {}", self.url, describe(e))
        };
        Fatal {
            code: exit::UNREACHABLE,
            message: format!(
                "{what}. The restore may or may not have started: re-run the same command with \
                 --delivery-id {} to find out without restoring twice",
                self.id
            ),
        }
    }
}

/// Writes the outcome and returns the exit code.
pub(crate) fn report(
    answer: &Answer,
    args: &RestoreArgs,
    id: &str,
    stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
) -> u8 {
    let code = match answer.status {
        200..=299 => exit::OK,
        400..=599 => exit::REFUSED,
        _ => exit::UNREACHABLE,
    };
    if args.json && code != exit::UNREACHABLE {
        let _ = stdout.write_all(&answer.body);
        if !answer.body.ends_with(b"\n") {
            let _ = stdout.write_all(b"\n");
        }
        return code;
    }
    let json: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    match code {
        exit::OK => {
            let _ = writeln!(stdout, "{}", success_sentence(&json, args, id));
        }
        exit::REFUSED => {
            let _ = writeln!(stderr, "{}", error_sentence(answer.status, &json, &answer.body));
            let delivery = text(&json["deliveryId"]).unwrap_or_else(|| id.to_owned());
            let hint = if answer.status >= 500 {
                format!(" (re-running the same command with --delivery-id {delivery} is safe)")
            } else {
                String::new()
            };
            let _ = writeln!(stderr, "delivery {delivery}{hint}");
        }
        _ => {
            let to = answer.location.as_deref().map(|l| format!(" to {l}")).unwrap_or_default();
            let _ = writeln!(
                stderr,
                "crs-restore-cli: {} answered {}{to}, which is not the function: check --url (the stack's FunctionUrl output)",
                args.url, answer.status
            );
        }
    }
    code
}

fn success_sentence(json: &Value, args: &RestoreArgs, id: &str) -> String {
    let get = |field: &str, fallback: &str| text(&json[field]).unwrap_or_else(|| fallback.to_owned());
    let redis = get("redisId", &args.redis_id);
    // With `latest` the function names the backup it chose; its time tells the operator how
    // much data the restore gives back.
    let taken = text(&json["backupStartTime"]).map(|t| format!(" taken {t}")).unwrap_or_default();
    let backup = format!("{}{taken}", get("backupId", args.backup_id.as_deref().unwrap_or("?")));
    let region = get("region", args.region.as_deref().unwrap_or("default region"));
    let delivery = get("deliveryId", id);
    let sentence = match json["status"].as_str() {
        Some("started") => format!(
            "restore started: task {} on {redis} from backup {backup} ({region}), delivery {delivery}",
            get("taskId", "?")
        ),
        Some("cloning") => {
            let at = text(&json["pointInTime"]).map(|t| format!(" at {t}")).unwrap_or_default();
            format!(
                "clone being created: {} ({}) from {redis} backup {backup}{at} ({region}), deal {}, delivery {delivery}; \
                 {redis} is unchanged, the clone is billed",
                get("cloneInstanceId", "?"),
                get("cloneName", "?"),
                get("dealId", "unknown")
            )
        }
        Some("accepted") => {
            let callback = get("callbackUrl", args.callback_url.as_deref().unwrap_or("the callback URL"));
            format!("accepted: delivery {delivery} (the result goes to {callback})")
        }
        Some("dry-run-ok") if json["mode"] == "clone" => {
            let clone = &json["clone"];
            let price =
                match (json["price"]["amount"].as_f64(), text(&json["price"]["currency"]), text(&json["price"]["per"]))
                {
                    (Some(amount), Some(currency), Some(per)) => format!(", about {amount:.2} {currency} per {per}"),
                    _ => String::new(),
                };
            format!(
                "dry run OK: {redis} ({}) can be restored by clone from backup {backup} ({region}) into {} in zone {}, \
                 {} {}, billed {}{price}; nothing was bought, delivery {delivery}",
                get("edition", "edition unknown"),
                text(&clone["name"]).unwrap_or_default(),
                text(&clone["zoneId"]).unwrap_or_default(),
                text(&clone["vpcId"]).unwrap_or_default(),
                text(&clone["subnetId"]).unwrap_or_default(),
                text(&clone["billingMode"]).unwrap_or_default(),
            )
        }
        Some("dry-run-ok") => {
            let name = text(&json["instanceName"]).map(|n| format!(" ({n})")).unwrap_or_default();
            format!(
                "dry run OK: {redis}{name} can be restored from backup {backup} ({region}); nothing was changed, \
                 delivery {delivery}"
            )
        }
        // An answer this CLI does not know yet: show it rather than guess.
        _ => format!("ok: {}", clean(&json.to_string())),
    };
    if json["replayed"] == Value::Bool(true) {
        format!("{sentence} (replayed: the function had already handled this delivery; nothing new was started)")
    } else {
        sentence
    }
}

fn error_sentence(status: u16, json: &Value, raw: &[u8]) -> String {
    let error = &json["error"];
    match text(&error["code"]) {
        Some(code) => {
            let message = text(&error["message"]).unwrap_or_default();
            let tencent = text(&error["tencentCode"]).map(|c| format!(" (Tencent {c})")).unwrap_or_default();
            format!("error {status} {code}: {message}{tencent}")
        }
        // Not the function's error shape: e.g. the Function URL's own 403 or a gateway page.
        None => format!("error {status}: {}", clean(&String::from_utf8_lossy(raw))),
    }
}

fn error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body).ok().and_then(|v| text(&v["error"]["code"]))
}

/// A JSON scalar as display text; strings are cleaned because they come from the network.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(clean(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Keeps server-provided text from moving the cursor or flooding the terminal.
fn clean(s: &str) -> String {
    const MAX_CHARS: usize = 500;
    let mut out: String = s.trim().chars().take(MAX_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if s.trim().chars().count() > MAX_CHARS {
        out.push_str("...");
    }
    out
}

/// An error with its causes, since reqwest's own message rarely says "connection refused".
fn describe(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&cause_text)) {
            parts.push(cause_text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use serde_json::json;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(extra: &[&str]) -> RestoreArgs {
        let base = ["crs-restore-cli", "restore", "--url", "https://x.example", "--redis-id", "crs-izbob1wh"];
        let all = base.iter().chain(["--backup-id", "latest"].iter()).chain(extra.iter());
        match Cli::try_parse_from(all).expect("valid args").command {
            Command::Restore(a) => a,
            other => panic!("not restore: {other:?}"),
        }
    }

    fn answer(status: u16, body: Value) -> Answer {
        Answer { status, body: body.to_string().into_bytes(), location: None }
    }

    fn report_text(a: &Answer, args: &RestoreArgs) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = report(a, args, "msg_local", &mut out, &mut err);
        (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
    }

    #[test]
    fn only_the_fields_asked_for_are_sent() {
        let plain: Value = serde_json::from_slice(&request_body(&args(&[]))).expect("json");
        assert_eq!(plain, json!({"redisId": "crs-izbob1wh", "backupId": "latest"}));
        let a = args(&[
            "--region",
            "ap-guangzhou",
            "--reason",
            "INC-1",
            "--callback-url",
            "https://cb",
            "--wait",
            "--dry-run",
        ]);
        let full: Value = serde_json::from_slice(&request_body(&a)).expect("json");
        assert_eq!(
            full,
            json!({"redisId": "crs-izbob1wh", "backupId": "latest", "region": "ap-guangzhou", "reason": "INC-1",
                   "callbackUrl": "https://cb", "waitForCompletion": true, "dryRun": true})
        );
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        assert!(check_url("https://abc.lambda-url.ap-southeast-1.on.aws/").is_ok());
        for ok in ["http://127.0.0.1:9000", "http://localhost:9000/", "http://[::1]:9000"] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in ["http://abc.lambda-url.ap-southeast-1.on.aws/", "ftp://x", "not a url"] {
            assert_eq!(check_url(bad).expect_err(bad).code, exit::USAGE, "{bad}");
        }
    }

    #[test]
    fn each_kind_of_success_reads_as_a_sentence() {
        let started = json!({"status": "started", "taskId": 375074, "redisId": "crs-izbob1wh",
            "backupId": "e824aecc", "region": "ap-guangzhou", "deliveryId": "msg_1"});
        let (code, out, _) = report_text(&answer(202, started.clone()), &args(&[]));
        assert_eq!(code, 0);
        assert_eq!(
            out.trim(),
            "restore started: task 375074 on crs-izbob1wh from backup e824aecc (ap-guangzhou), delivery msg_1"
        );
        let mut replayed = started;
        replayed["replayed"] = true.into();
        assert!(report_text(&answer(202, replayed), &args(&[])).1.contains("replayed"));
        let accepted = json!({"status": "accepted", "deliveryId": "msg_2"});
        let (_, out, _) = report_text(&answer(202, accepted), &args(&["--callback-url", "https://cb.example/x"]));
        assert_eq!(out.trim(), "accepted: delivery msg_2 (the result goes to https://cb.example/x)");
        let dry =
            json!({"status": "dry-run-ok", "redisId": "crs-izbob1wh", "backupId": "b1", "region": "ap-guangzhou"});
        assert!(report_text(&answer(200, dry), &args(&["--dry-run"])).1.starts_with("dry run OK: crs-izbob1wh"));
    }

    #[test]
    fn a_function_error_prints_status_code_message_and_tencent_code() {
        let body = json!({"error": {"code": "InstanceLockedError", "message": "locked", "tencentCode": 10101},
            "deliveryId": "msg_3"});
        let (code, out, err) = report_text(&answer(409, body), &args(&[]));
        assert_eq!((code, out.as_str()), (1, ""));
        assert!(err.starts_with("error 409 InstanceLockedError: locked (Tencent 10101)\ndelivery msg_3\n"), "{err}");
    }

    #[test]
    fn a_non_function_answer_is_shown_cleaned_and_a_redirect_is_exit_3() {
        let a = Answer { status: 403, body: b"{\"Message\":\"Forbidden\"}\x1b[2J".to_vec(), location: None };
        let (code, _, err) = report_text(&a, &args(&[]));
        assert_eq!(code, 1);
        assert!(err.starts_with("error 403: {\"Message\":\"Forbidden\"} [2J"), "{err}");
        let moved = Answer { status: 301, body: Vec::new(), location: Some("https://elsewhere".into()) };
        let (code, _, err) = report_text(&moved, &args(&["--json"]));
        assert_eq!(code, 3);
        assert!(err.contains("301 to https://elsewhere"), "{err}");
    }

    #[test]
    fn json_mode_passes_the_body_through_for_errors_too() {
        let body = json!({"error": {"code": "InvalidSignature", "message": "no"}});
        let (code, out, err) = report_text(&answer(401, body.clone()), &args(&["--json"]));
        assert_eq!((code, err.as_str()), (1, ""));
        assert_eq!(serde_json::from_str::<Value>(&out).expect("json"), body);
    }
}
