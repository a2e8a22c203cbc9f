//! The backends on loopback: the CRS sandbox (spawned from its binary with a seed file), moto
//! (started by the script; seeded here), and freshly signed Function URL events.

use std::path::Path;
use std::process::Stdio;

use crs_restore::sandbox::{DEMO_SECRET_ID, DEMO_SECRET_KEY};
use crs_restore::signature::{WebhookSecret, sign};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The webhook key the benchmark signs with (a local, throw-away value).
pub const SIGNING_KEY: &str = "whsec_YmVuY2gta2V5LW5vdC1mb3ItcHJvZHVjdGlvbg==";
pub const PASSWORD: &str = "bench-Passw0rd!";
pub const REGION: &str = "ap-guangzhou";
/// A Redis 6.2 instance (restored by clone only), seeded with the others.
pub const CLONE_INSTANCE: &str = "crs-bench062";

pub use crs_restore::clock::unix_now;

pub fn backup_id(i: usize) -> String {
    format!("e824aecc-ef5e-11e6-a2c7-{i:012x}")
}

/// A running `crs-sandbox` process.
pub struct Sandbox {
    pub url: String,
    child: tokio::process::Child,
}

impl Sandbox {
    /// Seeds `ids` (each with one usable backup, [`backup_id`] of its position) and starts the
    /// sandbox binary on a free loopback port.
    pub async fn start(binary: &Path, dir: &Path, ids: &[String], restore_ms: u64) -> std::io::Result<Self> {
        let instances: Vec<Value> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let edition = if id == CLONE_INSTANCE { 15 } else { 2 };
                json!({"redisId": id, "name": format!("{id}-bench"), "region": REGION, "password": PASSWORD,
                       "type": edition, "backups": [{"backupId": backup_id(i), "startTime": "2026-11-25 03:00:00"}]})
            })
            .collect();
        let seed = dir.join("sandbox-seed.json");
        std::fs::write(&seed, json!({"instances": instances, "restoreDurationMs": restore_ms}).to_string())?;
        let log = std::fs::File::create(dir.join("sandbox.log"))?;
        let mut child = tokio::process::Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--seed"])
            .arg(&seed)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let read = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line()).await;
        let line = match read {
            Ok(Ok(Some(line))) => line,
            other => return Err(std::io::Error::other(format!("crs-sandbox did not start: {other:?}"))),
        };
        let url = line
            .strip_prefix("crs-sandbox listening on ")
            .ok_or_else(|| std::io::Error::other(format!("unexpected sandbox output {line:?}")))?
            .trim()
            .to_owned();
        Ok(Self { url, child })
    }

    /// The control plane's `GET /_sandbox/state`.
    pub async fn state(&self, client: &reqwest::Client) -> Result<Value, String> {
        let resp = client.get(format!("{}/_sandbox/state", self.url)).send().await.map_err(|e| e.to_string())?;
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Names and seeds one run's secrets and idempotency table in moto.
pub struct MotoSeed {
    pub prefix: String,
    pub table: String,
}

impl MotoSeed {
    pub fn new(label: &str) -> Self {
        let run = format!("{label}-{}-{}", std::process::id(), unix_now());
        Self { prefix: format!("bench/{run}/"), table: format!("bench-idem-{run}") }
    }

    /// The function's environment for these secrets and table.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("SIGNING_KEYS_SECRET_ID".into(), format!("{}signing-keys", self.prefix)),
            ("TENCENT_CREDENTIALS_SECRET_ID".into(), format!("{}tencent", self.prefix)),
            ("INSTANCE_PASSWORD_SECRET_PREFIX".into(), format!("{}instances/", self.prefix)),
            ("IDEMPOTENCY_TABLE".into(), self.table.clone()),
        ]
    }

    /// Creates the signing keys, Tencent credentials and one password secret per instance, and
    /// the idempotency table, directly in moto (not through the counting proxy).
    pub async fn seed(&self, moto: &str, ids: &[String]) -> Result<(), String> {
        let sm = crs_restore::state::local_secrets_client(moto);
        let keys = json!({"keys": [{"id": "bench", "secret": SIGNING_KEY, "allow": ["crs-*"], "clone": true}]});
        let creds = json!({"secretId": DEMO_SECRET_ID, "secretKey": DEMO_SECRET_KEY});
        let mut secrets = vec![
            (format!("{}signing-keys", self.prefix), keys.to_string()),
            (format!("{}tencent", self.prefix), creds.to_string()),
        ];
        secrets.extend(ids.iter().map(|id| (format!("{}instances/{id}", self.prefix), PASSWORD.to_owned())));
        for chunk in secrets.chunks(16) {
            let mut tasks = tokio::task::JoinSet::new();
            for (name, value) in chunk.iter().cloned() {
                let sm = sm.clone();
                tasks.spawn(async move {
                    sm.create_secret()
                        .name(&name)
                        .secret_string(value)
                        .send()
                        .await
                        .map(drop)
                        .map_err(|e| format!("create secret {name}: {e:?}"))
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.map_err(|e| e.to_string())??;
            }
        }
        // The table as template.yaml declares it (key `id`, on demand), over moto's JSON API.
        let client = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;
        let body = json!({
            "TableName": self.table,
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        });
        let resp = client
            .post(moto)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", "DynamoDB_20120810.CreateTable")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("create table: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("create table: HTTP {} {}", resp.status(), resp.text().await.unwrap_or_default()));
        }
        Ok(())
    }
}

/// Builds freshly signed Function URL events from the checked-in fixture.
pub struct Events {
    template: Value,
    key: WebhookSecret,
}

impl Events {
    pub fn load(events_dir: &Path) -> Result<Self, String> {
        let path = events_dir.join("function-url-restore.json");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let template = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self { template, key: WebhookSecret::parse(SIGNING_KEY).map_err(str::to_owned)? })
    }

    /// The fixture with `body`, delivery `id`, timestamp `ts` and a signature from `key` (the
    /// benchmark key unless given).
    pub fn event(&self, body: &str, id: &str, ts: i64, key: Option<&WebhookSecret>) -> Value {
        let mut ev = self.template.clone();
        let signature = sign(key.unwrap_or(&self.key), id, ts, body.as_bytes());
        ev["body"] = body.into();
        ev["headers"]["webhook-id"] = id.into();
        ev["headers"]["webhook-timestamp"] = ts.to_string().into();
        ev["headers"]["webhook-signature"] = signature.into();
        ev["headers"]["content-length"] = body.len().to_string().into();
        ev["requestContext"]["requestId"] = format!("req-{id}").into();
        ev["requestContext"]["timeEpoch"] = (ts * 1000).into();
        ev
    }
}

/// A clone dry run of [`CLONE_INSTANCE`] from its backup.
pub fn clone_dry_run_body(backup: &str) -> String {
    json!({"redisId": CLONE_INSTANCE, "backupId": backup, "region": REGION, "mode": "clone", "dryRun": true,
           "reason": "make bench"})
    .to_string()
}

pub fn restore_body(redis_id: &str, backup: &str, dry_run: bool) -> String {
    let mut body = json!({"redisId": redis_id, "backupId": backup, "region": REGION, "reason": "make bench"});
    if dry_run {
        body["dryRun"] = true.into();
    }
    body.to_string()
}
