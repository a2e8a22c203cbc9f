//! The runbook CLI against the real function served on loopback (CRS sandbox + moto), against
//! a scripted stub where a status must be forced, and as the built binary.

mod common;

use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::*;
use crs_restore::cli::{self, Context};
use crs_restore::signature::{self, SignedHeaders, WebhookSecret};
use crs_restore::tencent::ApiVersion;
use serde_json::{Value, json};

/// A valid key that the function does not know.
const STRANGER_KEY: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";

struct Run {
    code: u8,
    stdout: String,
    stderr: String,
}

/// Runs the CLI in-process with `key` as the key variable and near-zero retry delays.
async fn cli(args: &[&str], key: Option<&str>) -> Run {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut ctx = Context::new(key.map(str::to_owned), &mut stdout, &mut stderr);
    ctx.retry_delays = vec![Duration::from_millis(10); 2];
    let argv = std::iter::once("crs-restore-cli").chain(args.iter().copied());
    let code = cli::run(argv, ctx).await;
    Run { code, stdout: String::from_utf8_lossy(&stdout).into(), stderr: String::from_utf8_lossy(&stderr).into() }
}

/// `restore` of the sandbox's healthy instance and backup at `url`, plus `extra` flags.
async fn restore(url: &str, key: Option<&str>, extra: &[&str]) -> Run {
    let mut args =
        vec!["restore", "--url", url, "--redis-id", REDIS_ID, "--backup-id", BACKUP_ID, "--reason", "cli test"];
    args.extend_from_slice(extra);
    cli(&args, key).await
}

/// Serves the harness's function with `local::serve_on` on a free loopback port; returns its URL.
async fn serve(h: &Harness) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(crs_restore::local::serve_on(listener, h.state.clone()));
    format!("http://{addr}")
}

/// What a stub endpoint received: webhook-id, webhook-timestamp, webhook-signature and body.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

#[derive(Clone)]
struct Stub {
    /// Answers in order; the last one repeats.
    script: Arc<Vec<(u16, &'static str, Duration)>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Stub {
    async fn start(script: Vec<(u16, &'static str, Duration)>) -> (Self, String) {
        let stub = Self { script: Arc::new(script), received: Arc::default() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new().fallback(Self::answer).with_state(stub.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (stub, url)
    }

    async fn answer(State(stub): State<Self>, headers: HeaderMap, body: Bytes) -> (StatusCode, HeaderMap, String) {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let n = {
            let mut received = stub.received.lock().expect("lock");
            received.push(Received {
                id: header("webhook-id"),
                timestamp: header("webhook-timestamp"),
                signature: header("webhook-signature"),
                body: body.to_vec(),
            });
            received.len() - 1
        };
        let (status, body, delay) = stub.script[n.min(stub.script.len() - 1)];
        tokio::time::sleep(delay).await;
        let mut out = HeaderMap::new();
        out.insert("content-type", "application/json".parse().expect("header"));
        if (300..400).contains(&status) {
            out.insert("location", "https://elsewhere.example/".parse().expect("header"));
        }
        (StatusCode::from_u16(status).expect("status"), out, body.to_owned())
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

const STARTED: &str = r#"{"status":"started","taskId":7,"redisId":"crs-izbob1wh","backupId":"b","region":"ap-guangzhou","deliveryId":"msg_x"}"#;
const UNAVAILABLE: &str = r#"{"error":{"code":"SecretsUnavailable","message":"try again"}}"#;

fn verifies(key: &str, id: &str, timestamp: &str, sig: &str, body: &[u8]) -> bool {
    let keys = [WebhookSecret::parse(key).expect("key")];
    let headers = SignedHeaders { id: Some(id), timestamp: Some(timestamp), signature: Some(sig) };
    signature::verify(&keys, |k| k, headers, body, now()).is_ok()
}

fn temp_file(name: &str, contents: &str, mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("crs-restore-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

#[tokio::test]
async fn a_restore_succeeds_and_prints_the_task_id() {
    let h = Harness::new(ApiVersion::V2).await;
    let url = serve(&h).await;
    let run = restore(&url, Some(KEY_RUNBOOKS), &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("restore started: task 375"), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("on {REDIS_ID} from backup {BACKUP_ID}")), "{}", run.stdout);
    assert!(run.stdout.contains("(ap-guangzhou), delivery msg_"), "{}", run.stdout);
    assert_eq!(h.sandbox.total_restores_started(), 1);
}

#[tokio::test]
async fn json_prints_the_functions_answer_verbatim() {
    let h = Harness::new(ApiVersion::V3).await;
    let url = serve(&h).await;
    let run = restore(&url, Some(KEY_RUNBOOKS), &["--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let answer: Value = serde_json::from_str(&run.stdout).expect("stdout is the function's JSON");
    assert_eq!((answer["status"].as_str(), answer["redisId"].as_str()), (Some("started"), Some(REDIS_ID)));
    assert!(answer["taskId"].is_i64(), "{answer}");
}

#[tokio::test]
async fn a_dry_run_of_the_latest_backup_restores_nothing() {
    let h = Harness::new(ApiVersion::V3).await;
    let url = serve(&h).await;
    let args = ["restore", "--url", &url, "--redis-id", REDIS_ID, "--backup-id", "latest", "--dry-run"];
    let run = cli(&args, Some(KEY_RUNBOOKS)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with(&format!("dry run OK: {REDIS_ID} ({REDIS_ID}-name) can be restored from backup ")));
    assert!(run.stdout.contains("nothing was changed"), "{}", run.stdout);
    assert_eq!(h.sandbox.total_restores_started(), 0);
}

#[tokio::test]
async fn a_locked_instance_exits_1_and_prints_instance_locked_error() {
    let h = Harness::new(ApiVersion::V2).await;
    let url = serve(&h).await;
    assert_eq!(restore(&url, Some(KEY_RUNBOOKS), &[]).await.code, 0);
    let run = restore(&url, Some(KEY_RUNBOOKS), &[]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with("error 409 InstanceLockedError: "), "{}", run.stderr);
    assert_eq!(h.sandbox.total_restores_started(), 1);
}

#[tokio::test]
async fn a_given_delivery_id_is_sent_as_the_webhook_id() {
    let h = Harness::new(ApiVersion::V2).await;
    let url = serve(&h).await;
    let run = restore(&url, Some(KEY_RUNBOOKS), &["--json", "--delivery-id", "msg_runbookINC1234"]).await;
    let answer: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(answer["deliveryId"], "msg_runbookINC1234", "{answer}");
}

#[tokio::test]
async fn a_missing_or_invalid_key_exits_2_before_any_network_call() {
    let (stub, url) = Stub::start(vec![(202, STARTED, Duration::ZERO)]).await;
    let missing = restore(&url, None, &[]).await;
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("CRS_RESTORE_SIGNING_KEY") && missing.stderr.contains("--key-file"));
    let invalid = restore(&url, Some("whsec_SECRETSECRET!!"), &[]).await;
    assert_eq!(invalid.code, 2);
    assert!(invalid.stderr.contains("not usable") && !invalid.stderr.contains("SECRETSECRET"), "{}", invalid.stderr);
    assert!(stub.received().is_empty());
}

#[tokio::test]
async fn the_key_can_come_from_a_key_file_and_wins_over_the_environment() {
    let h = Harness::new(ApiVersion::V2).await;
    let url = serve(&h).await;
    let file = temp_file("runbooks.key", &format!("{KEY_RUNBOOKS}\n"), 0o600);
    let path = file.to_str().expect("utf-8 path");
    let run = restore(&url, Some(STRANGER_KEY), &["--key-file", path]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    assert_eq!(h.sandbox.total_restores_started(), 1);
}

#[tokio::test]
async fn a_key_file_readable_by_others_is_used_with_a_warning() {
    let (_stub, url) = Stub::start(vec![(202, STARTED, Duration::ZERO)]).await;
    let file = temp_file("shared.key", KEY_RUNBOOKS, 0o644);
    let run = restore(&url, None, &["--key-file", file.to_str().expect("utf-8 path")]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("mode 0644") && !run.stderr.contains(KEY_RUNBOOKS), "{}", run.stderr);
}

#[tokio::test]
async fn a_wrong_key_exits_1_with_invalid_signature() {
    let h = Harness::new(ApiVersion::V2).await;
    let url = serve(&h).await;
    let run = restore(&url, Some(STRANGER_KEY), &[]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with("error 401 InvalidSignature: "), "{}", run.stderr);
    assert_eq!(h.sandbox.total_restores_started(), 0);
}

#[tokio::test]
async fn an_unreachable_url_exits_3_after_three_attempts() {
    let run = restore(&closed_port_url(), Some(KEY_RUNBOOKS), &[]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stderr.matches("retrying in").count(), 2, "{}", run.stderr);
    assert!(run.stderr.contains("could not reach") && run.stderr.contains("after 3 attempts"), "{}", run.stderr);
}

#[tokio::test]
async fn gateway_errors_are_retried_with_the_same_delivery_id_and_body_and_fresh_signatures() {
    let script =
        vec![(503, UNAVAILABLE, Duration::ZERO), (502, "bad gateway", Duration::ZERO), (202, STARTED, Duration::ZERO)];
    let (stub, url) = Stub::start(script).await;
    let run = restore(&url, Some(KEY_RUNBOOKS), &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("attempt 1 answered 503 SecretsUnavailable; retrying"), "{}", run.stderr);
    let got = stub.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!((&r.id, &r.body), (&got[0].id, &got[0].body));
        assert!(verifies(KEY_RUNBOOKS, &r.id, &r.timestamp, &r.signature, &r.body), "{r:?}");
    }
    assert!(got[0].id.starts_with("msg_") && got[0].id.len() == 28, "{}", got[0].id);
}

#[tokio::test]
async fn a_gateway_error_on_the_last_attempt_exits_1() {
    let (stub, url) =
        Stub::start(vec![(504, r#"{"error":{"code":"TencentTimeout","message":"m"}}"#, Duration::ZERO)]).await;
    let run = restore(&url, Some(KEY_RUNBOOKS), &[]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("error 504 TencentTimeout: m") && run.stderr.contains("is safe"), "{}", run.stderr);
    assert_eq!(stub.received().len(), 3);
}

#[tokio::test]
async fn other_refusals_and_failures_are_never_retried() {
    for status in [400, 401, 409, 429, 500] {
        let (stub, url) = Stub::start(vec![(status, UNAVAILABLE, Duration::ZERO)]).await;
        assert_eq!(restore(&url, Some(KEY_RUNBOOKS), &[]).await.code, 1, "{status}");
        assert_eq!(stub.received().len(), 1, "{status}");
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_exits_3() {
    let (stub, url) = Stub::start(vec![(307, "", Duration::ZERO)]).await;
    let run = restore(&url, Some(KEY_RUNBOOKS), &[]).await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("307 to https://elsewhere.example/"), "{}", run.stderr);
    assert_eq!(stub.received().len(), 1);
}

#[tokio::test]
async fn a_timeout_exits_3_without_retrying_and_names_the_delivery_to_retry_with() {
    let (stub, url) = Stub::start(vec![(202, STARTED, Duration::from_secs(5))]).await;
    let run = restore(&url, Some(KEY_RUNBOOKS), &["--timeout", "1", "--delivery-id", "msg_slow1"]).await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("within 1 s") && run.stderr.contains("--delivery-id msg_slow1"), "{}", run.stderr);
    assert_eq!(stub.received().len(), 1);
}

#[tokio::test]
async fn the_optional_flags_become_body_fields() {
    let (stub, url) = Stub::start(vec![(202, r#"{"status":"accepted","deliveryId":"msg_a"}"#, Duration::ZERO)]).await;
    let extra = ["--region", "ap-shanghai", "--callback-url", "https://hooks.example/cb", "--wait", "--dry-run"];
    let run = restore(&url, Some(KEY_RUNBOOKS), &extra).await;
    assert_eq!(run.stdout, "accepted: delivery msg_a (the result goes to https://hooks.example/cb)\n");
    let body: Value = serde_json::from_slice(&stub.received()[0].body).expect("JSON body");
    assert_eq!(
        body,
        json!({"redisId": REDIS_ID, "backupId": BACKUP_ID, "reason": "cli test", "region": "ap-shanghai",
               "callbackUrl": "https://hooks.example/cb", "waitForCompletion": true, "dryRun": true})
    );
}

#[tokio::test]
async fn sign_output_verifies_with_the_functions_verifier() {
    let body = restore_body(REDIS_ID, BACKUP_ID);
    let file = temp_file("body.json", &format!("{body}\n"), 0o600);
    for (args, signed) in [
        (vec!["sign", "--body", body.as_str()], body.clone().into_bytes()),
        (
            vec!["sign", "--body-file", file.to_str().expect("utf-8"), "--delivery-id", "msg_fixed"],
            format!("{body}\n").into_bytes(),
        ),
    ] {
        let run = cli(&args, Some(KEY_RUNBOOKS)).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let lines: Vec<(&str, &str)> = run.stdout.lines().filter_map(|l| l.split_once(": ")).collect();
        let names: Vec<&str> = lines.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["webhook-id", "webhook-timestamp", "webhook-signature"]);
        assert!(verifies(KEY_RUNBOOKS, lines[0].1, lines[1].1, lines[2].1, &signed), "{}", run.stdout);
    }
    assert!(
        cli(&["sign", "--body", "{}", "--delivery-id", "msg_fixed"], Some(KEY_RUNBOOKS))
            .await
            .stdout
            .starts_with("webhook-id: msg_fixed\n")
    );
}

#[tokio::test]
async fn sign_event_makes_both_fixtures_acceptable_to_the_handler() {
    for fixture in ["function-url-restore.json", "function-url-restore-base64.json"] {
        let h = Harness::new(ApiVersion::V2).await;
        let path = format!("{}/events/{fixture}", env!("CARGO_MANIFEST_DIR"));
        let run = cli(&["sign-event", &path], Some(KEY_RUNBOOKS)).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let event: Value = serde_json::from_str(&run.stdout).expect("stdout is the event");
        assert_ne!(event["headers"]["webhook-id"], "msg_2pQY8cWzXJ7yHk3fRm9sTq1vBn4");
        let answer = crs_restore::handler::handle_event(&h.state, event).await;
        assert_eq!(answer["statusCode"], 202, "{fixture}: {answer}");
    }
}

#[tokio::test]
async fn sign_event_keep_id_keeps_the_events_delivery_id() {
    let h = Harness::new(ApiVersion::V2).await;
    let path = format!("{}/events/function-url-restore.json", env!("CARGO_MANIFEST_DIR"));
    let run = cli(&["sign-event", "--keep-id", &path], Some(KEY_RUNBOOKS)).await;
    let event: Value = serde_json::from_str(&run.stdout).expect("stdout is the event");
    assert_eq!(event["headers"]["webhook-id"], "msg_2pQY8cWzXJ7yHk3fRm9sTq1vBn4");
    let answer = crs_restore::handler::handle_event(&h.state, event).await;
    assert_eq!(answer["statusCode"], 202, "{answer}");
    let missing = cli(&["sign-event", "/nonexistent/event.json"], Some(KEY_RUNBOOKS)).await;
    assert_eq!(missing.code, 2);
}

/// Runs the built binary with only `key` in its environment from ours.
async fn binary(args: &[&str], key: Option<&str>) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_crs-restore-cli"));
    cmd.args(args).env_remove("CRS_RESTORE_SIGNING_KEY").env_remove("CRS_RESTORE_URL");
    if let Some(key) = key {
        cmd.env("CRS_RESTORE_SIGNING_KEY", key);
    }
    // The function under test runs on this runtime: wait for the child off its thread.
    tokio::task::spawn_blocking(move || cmd.output()).await.expect("join").expect("binary runs")
}

#[tokio::test]
async fn the_binary_restores_and_exits_0() {
    let h = Harness::new(ApiVersion::V2).await;
    let url = serve(&h).await;
    let out =
        binary(&["restore", "--url", &url, "--redis-id", REDIS_ID, "--backup-id", BACKUP_ID], Some(KEY_RUNBOOKS)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("restore started: task "), "{stdout}");
    assert_eq!(h.sandbox.total_restores_started(), 1);
}

#[tokio::test]
async fn the_binary_exits_2_on_usage_errors_and_a_missing_key() {
    let url = closed_port_url();
    let cases: [(&[&str], Option<&str>); 4] = [
        (&["restore", "--url", &url, "--redis-id", REDIS_ID], Some(KEY_RUNBOOKS)),
        (&["restore", "--url", &url, "--redis-id", REDIS_ID, "--backup-id", "latest", "--wait"], Some(KEY_RUNBOOKS)),
        (
            &["restore", "--url", "http://example.com/", "--redis-id", REDIS_ID, "--backup-id", "latest"],
            Some(KEY_RUNBOOKS),
        ),
        (&["restore", "--url", &url, "--redis-id", REDIS_ID, "--backup-id", "latest"], None),
    ];
    for (args, key) in cases {
        let out = binary(args, key).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test]
async fn the_binary_documents_the_exit_codes_in_help() {
    for args in [&["--help"][..], &["restore", "--help"]] {
        let out = binary(args, None).await;
        let help = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0));
        assert!(help.contains("Exit codes:") && help.contains("3  the function could not be reached"), "{help}");
    }
}

#[tokio::test]
async fn the_binary_exits_3_when_the_function_is_unreachable() {
    let url = closed_port_url();
    let out =
        binary(&["restore", "--url", &url, "--redis-id", REDIS_ID, "--backup-id", "latest"], Some(KEY_RUNBOOKS)).await;
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The RUNBOOK's `source .run/local.env && crs-restore-cli ...` line, verbatim.
fn runbook_local_command() -> String {
    let runbook = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/RUNBOOK.md")).expect("runbook");
    let line = runbook.lines().find(|l| l.trim_start().starts_with("`source .run/local.env &&")).expect("the line");
    line.trim().trim_start_matches('`').split('`').next().expect("a command").to_owned()
}

#[tokio::test]
async fn the_runbooks_local_command_works_as_written_with_the_env_file_run_local_writes() {
    let h = Harness::new(ApiVersion::V3).await;
    let url = serve(&h).await;
    let dir = std::env::temp_dir().join(format!("crs-restore-local-env-{}", std::process::id()));
    std::fs::create_dir_all(dir.join(".run")).expect("dir");
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_crs-restore-cli")).parent().expect("bin dir").to_owned();
    // The writer scripts/run-local.sh uses, fed what it feeds it (the parts the CLI reads).
    let write = format!(
        "source scripts/lib.sh && write_env_file {dir}/.run/local.env {bin} CRS_RESTORE_URL={url} \
         SIGNING_KEY='{KEY_RUNBOOKS}' CRS_RESTORE_SIGNING_KEY='{KEY_RUNBOOKS}' AWS_REGION=us-east-1",
        dir = dir.display(),
        bin = bin_dir.display(),
    );
    let wrote = std::process::Command::new("bash")
        .args(["-c", &write])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("bash");
    assert!(wrote.status.success(), "{}", String::from_utf8_lossy(&wrote.stderr));

    let command = runbook_local_command();
    let mut run = std::process::Command::new("bash");
    run.args(["-c", &command])
        .current_dir(&dir)
        .env_remove("CRS_RESTORE_URL")
        .env_remove("CRS_RESTORE_SIGNING_KEY")
        .env_remove("SIGNING_KEY");
    let out = tokio::task::spawn_blocking(move || run.output()).await.expect("join").expect("bash runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{command}\n{stdout}\n{stderr}");
    assert!(stdout.contains("dry run"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_clone_and_a_point_in_time_clone_dry_run_go_through_the_cli() {
    let h = Harness::new(ApiVersion::V3).await;
    let url = serve(&h).await;
    let base = ["restore", "--url", url.as_str(), "--redis-id", CLONE_SOURCE];
    let cloned = cli(&[&base[..], &["--backup-id", CLONE_BACKUP, "--mode", "clone"]].concat(), Some(KEY_CLONERS)).await;
    assert_eq!(cloned.code, 0, "{} {}", cloned.stdout, cloned.stderr);
    assert!(cloned.stdout.contains("clone being created") && cloned.stdout.contains("billed"), "{}", cloned.stdout);
    assert_eq!(h.sandbox.clones_started(CLONE_SOURCE), 1);

    let at = time::OffsetDateTime::from_unix_timestamp(now() - 1800)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats");
    let dry =
        cli(&[&base[..], &["--mode", "clone", "--point-in-time", &at, "--dry-run"]].concat(), Some(KEY_CLONERS)).await;
    assert_eq!(dry.code, 0, "{} {}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("by clone") && dry.stdout.contains("Redis 6.2 standard"), "{}", dry.stdout);
    assert!(dry.stdout.contains("per hour"), "{}", dry.stdout);
    assert_eq!(h.sandbox.clones_started(CLONE_SOURCE), 1, "a dry run buys nothing");

    let no_mode = cli(&[&base[..], &["--point-in-time", &at]].concat(), Some(KEY_CLONERS)).await;
    assert_eq!(no_mode.code, 2, "--point-in-time needs --mode: {}", no_mode.stderr);
    let refused = cli(&[&base[..], &["--backup-id", "latest", "--mode", "clone"]].concat(), Some(KEY_RUNBOOKS)).await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.stdout.contains("CloneNotAllowed") || refused.stderr.contains("CloneNotAllowed"),
        "{}",
        refused.stderr
    );
}
