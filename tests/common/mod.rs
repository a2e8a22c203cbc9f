//! Integration harness: a real CRS sandbox on loopback, moto's Secrets Manager (started by
//! `make test`, address in `MOTO_ENDPOINT`), the real handler, and the real `events/` fixtures.
//!
//! Every harness gets its own sandbox and its own secret names in moto, so tests run in
//! parallel without seeing each other's state.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod emf;
pub mod logs;
pub mod receiver;
pub mod runtime_api;
pub mod slack;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crs_restore::config::Config;
use crs_restore::handler::handle_event;
use crs_restore::idempotency::Store;
use crs_restore::metrics::MetricsSink;
use crs_restore::sandbox::{
    self, Sandbox, SandboxConfig, SandboxCredential, SecondLevelSeed, SeedBackup, SeedGap, SeedInstance,
};
use crs_restore::signature::{self, WebhookSecret};
use crs_restore::state::{AppState, http_client, local_dynamodb_client, local_secrets_client};
use crs_restore::tencent::ApiVersion;
use serde_json::{Value, json};

pub const KEY_RUNBOOKS: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const KEY_DRILLS: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
pub const TENCENT_SECRET_ID: &str = "AKIDtestEXAMPLE000000000000000000000";
pub const TENCENT_SECRET_KEY: &str = "test-tencent-secret-key-0000000001";
pub const REDIS_ID: &str = "crs-izbob1wh";
pub const PASSWORD: &str = "12D3E@!r5ed";
pub const BACKUP_ID: &str = "e824aecc-ef5e-11e6-a2c7-525400082493";
pub const EXPIRED_BACKUP: &str = "11111111-1111-4111-8111-111111111111";
pub const LOCKED_BACKUP: &str = "22222222-2222-4222-8222-222222222222";
/// A key allowed to clone (`"clone": true`), and the Redis 6.2 instance clones are made of:
/// second-level backup for 3 days, with a gap from 2 h to 1 h ago.
pub const KEY_CLONERS: &str = "whsec_Y2xvbmUtc2lnbmluZy1rZXktZm9yLXRlc3RzLTAwMDE=";
pub const CLONE_SOURCE: &str = "crs-redis62a";
pub const CLONE_PASSWORD: &str = "Clone-Source-62!";
pub const CLONE_BACKUP: &str = "1795600001-1165734322-153731238";
pub const CALLBACK_KEY: &str = "whsec_Y2FsbGJhY2stc2lnbmluZy1rZXktMDAwMDAwMDE=";
/// The Slack app of the `events/slack-*.json` fixtures: its signing secret, workspace, the
/// requester (alice), a second allowed user (bob) and the channel.
pub const SLACK_SIGNING_SECRET: &str = "e6b19c573432dcc6b075501d51b51bb8";
pub const SLACK_TEAM: &str = "T024BE7LD";
pub const SLACK_USER: &str = "U0G9QF9C6";
pub const SLACK_OTHER_USER: &str = "U0H4KZ7B2";
pub const SLACK_CHANNEL: &str = "C0KAS8R9N";

/// Generates each scenario once per Tencent API generation, in modules `v2` and `v3`.
#[macro_export]
macro_rules! for_both_apis {
    ($(async fn $name:ident($api:ident: ApiVersion) $body:block)*) => {
        mod v2 {
            use super::*;
            $( #[tokio::test] async fn $name() { let $api = ApiVersion::V2; $body } )*
        }
        mod v3 {
            use super::*;
            $( #[tokio::test] async fn $name() { let $api = ApiVersion::V3; $body } )*
        }
    };
}

pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT is not set: run the integration tests with `make test`, which starts moto on loopback")
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Settings a test can change before the function is built.
pub struct Builder {
    api: ApiVersion,
    env: HashMap<&'static str, String>,
    sandbox: SandboxConfig,
    secrets_endpoint: Option<String>,
    seed_secrets: bool,
    dynamodb: Option<Option<String>>,
}

impl Builder {
    pub fn env(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.env.insert(name, value.into());
        self
    }

    /// Points the function's Secrets Manager client somewhere else (e.g. a closed port).
    pub fn secrets_endpoint(mut self, url: impl Into<String>) -> Self {
        self.secrets_endpoint = Some(url.into());
        self
    }

    pub fn sandbox(mut self, f: impl FnOnce(&mut SandboxConfig)) -> Self {
        f(&mut self.sandbox);
        self
    }

    /// Leaves moto empty: no secret exists.
    /// Loopback callbacks allowed, fast polls and retries: for callback and wait tests.
    pub fn for_callbacks(self) -> Self {
        self.env("CALLBACK_ALLOW_LOOPBACK", "true")
            .env("CALLBACK_RETRY_BASE_MS", "10")
            .env("WAIT_POLL_INITIAL_MS", "30")
            .env("WAIT_POLL_MAX_MS", "100")
            .sandbox(|s| s.restore_duration = std::time::Duration::from_millis(400))
    }

    /// Uses a fresh DynamoDB table in moto as the idempotency store.
    pub fn with_dynamodb(mut self) -> Self {
        self.dynamodb = Some(None);
        self
    }

    /// Points the idempotency store at a DynamoDB endpoint with nothing behind it.
    pub fn with_dynamodb_at(mut self, endpoint: impl Into<String>) -> Self {
        self.dynamodb = Some(Some(endpoint.into()));
        self
    }

    pub fn without_secrets(mut self) -> Self {
        self.seed_secrets = false;
        self
    }

    pub async fn build(self) -> Harness {
        let moto = moto_endpoint();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("it-{}-{n}-{}/", std::process::id(), self.api.as_str());
        let sandbox = sandbox::spawn(self.sandbox, "127.0.0.1:0".parse().expect("addr")).await.expect("sandbox starts");
        let endpoint = match self.api {
            ApiVersion::V2 => sandbox.endpoint_v2(),
            ApiVersion::V3 => sandbox.endpoint_v3(),
        };
        let mut env: HashMap<&'static str, String> = HashMap::from([
            ("SIGNING_KEYS_SECRET_ID", format!("{prefix}signing-keys")),
            ("TENCENT_CREDENTIALS_SECRET_ID", format!("{prefix}tencent")),
            ("INSTANCE_PASSWORD_SECRET_PREFIX", format!("{prefix}instances/")),
            ("TENCENT_REGION", "ap-guangzhou".into()),
            ("TENCENT_API_VERSION", self.api.as_str().into()),
            ("TENCENT_ENDPOINT", endpoint),
        ]);
        env.extend(self.env);
        let config = Config::from_lookup(|name| env.get(name).cloned()).expect("valid test configuration");
        let seed = local_secrets_client(&moto);
        let function_sm = local_secrets_client(self.secrets_endpoint.as_deref().unwrap_or(&moto));
        let mut state = AppState::new(config, function_sm, http_client().expect("http client")).expect("state");
        let mut table = None;
        if let Some(endpoint) = self.dynamodb {
            let name = format!("idem-{}", prefix.trim_end_matches('/'));
            let client = local_dynamodb_client(endpoint.as_deref().unwrap_or(&moto));
            if endpoint.is_none() {
                create_idempotency_table(&client, &name).await;
            }
            table = Some((client.clone(), name.clone()));
            state = state.with_idempotency(Store::dynamodb(client, name, std::time::Duration::from_secs(86_400)));
        }
        let metrics = Arc::new(std::sync::Mutex::new(Vec::new()));
        let state = Arc::new(state.with_metrics(MetricsSink::Capture(Arc::clone(&metrics))));
        let h = Harness { api: self.api, sandbox, state, seed, prefix, env, table, metrics };
        if self.seed_secrets {
            h.put_secret("signing-keys", &default_signing_keys().to_string()).await;
            h.put_secret(
                "tencent",
                &json!({"secretId": TENCENT_SECRET_ID, "secretKey": TENCENT_SECRET_KEY}).to_string(),
            )
            .await;
            h.put_secret(&format!("instances/{REDIS_ID}"), PASSWORD).await;
            h.put_secret(&format!("instances/{CLONE_SOURCE}"), CLONE_PASSWORD).await;
        }
        h
    }
}

pub fn default_signing_keys() -> Value {
    json!({"keys": [
        {"id": "runbooks", "secret": KEY_RUNBOOKS, "allow": ["crs-*"]},
        {"id": "drills", "secret": KEY_DRILLS, "allow": ["crs-drill*"]},
        {"id": "cloners", "secret": KEY_CLONERS, "allow": ["crs-*"], "clone": true},
    ], "callbackSecret": CALLBACK_KEY,
    "slack": {"signingSecret": SLACK_SIGNING_SECRET, "teamId": SLACK_TEAM, "allowedUsers": [SLACK_USER, SLACK_OTHER_USER],
              "allowedChannels": [SLACK_CHANNEL], "allow": [REDIS_ID, CLONE_SOURCE], "clone": true}})
}

/// The sandbox every test starts from: one healthy instance with usable, expired and locked
/// backups, the drill instance, and one password-free instance.
pub fn sandbox_config() -> SandboxConfig {
    let backup = |id: &str, status, locked| SeedBackup {
        backup_id: id.into(),
        start_time: "2026-11-25 03:00:00".into(),
        status,
        locked,
        backup_type: "systemBackupInstance".into(),
    };
    let instance = |id: &str, password: Option<&str>, backups| SeedInstance {
        redis_id: id.into(),
        name: format!("{id}-name"),
        region: "ap-guangzhou".into(),
        password: password.map(str::to_owned),
        status: 2,
        backups,
        ..SeedInstance::default()
    };
    SandboxConfig {
        credentials: vec![SandboxCredential {
            secret_id: TENCENT_SECRET_ID.into(),
            secret_key: TENCENT_SECRET_KEY.into(),
            token: None,
        }],
        instances: vec![
            instance(
                REDIS_ID,
                Some(PASSWORD),
                vec![backup(BACKUP_ID, 2, 0), backup(EXPIRED_BACKUP, -1, 0), backup(LOCKED_BACKUP, 1, 1)],
            ),
            instance(
                "crs-drill001",
                Some("drill-password-1"),
                vec![backup("33333333-3333-4333-8333-333333333333", 2, 0)],
            ),
            instance("crs-pwfree01", None, vec![backup("44444444-4444-4444-8444-444444444444", 2, 0)]),
            SeedInstance {
                type_id: 15,
                second_level_backup: Some(SecondLevelSeed {
                    started_secs_ago: 3 * 86_400,
                    missing: vec![SeedGap { from_secs_ago: 7200, to_secs_ago: 3600 }],
                }),
                ..instance(CLONE_SOURCE, Some(CLONE_PASSWORD), vec![backup(CLONE_BACKUP, 2, 0)])
            },
        ],
        restore_duration: std::time::Duration::from_secs(30),
        clone_duration: std::time::Duration::from_millis(600),
        timestamp_tolerance_secs: 300,
    }
}

pub struct Harness {
    pub api: ApiVersion,
    pub sandbox: Sandbox,
    pub state: Arc<AppState>,
    seed: aws_sdk_secretsmanager::Client,
    pub prefix: String,
    pub env: HashMap<&'static str, String>,
    /// The idempotency table in moto, when the harness uses one.
    pub table: Option<(aws_sdk_dynamodb::Client, String)>,
    /// Embedded Metric Format records the function wrote.
    pub metrics: Arc<std::sync::Mutex<Vec<Value>>>,
}

/// A decoded Function URL answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Harness {
    pub fn builder(api: ApiVersion) -> Builder {
        Builder {
            api,
            env: HashMap::new(),
            sandbox: sandbox_config(),
            secrets_endpoint: None,
            seed_secrets: true,
            dynamodb: None,
        }
    }

    pub async fn new(api: ApiVersion) -> Self {
        Self::builder(api).build().await
    }

    /// Creates or overwrites `{prefix}{name}` in moto.
    pub async fn put_secret(&self, name: &str, value: &str) {
        let id = format!("{}{name}", self.prefix);
        let created = self.seed.create_secret().name(&id).secret_string(value).send().await;
        if created.is_err() {
            self.seed.put_secret_value().secret_id(&id).secret_string(value).send().await.expect("secret updated");
        }
    }

    pub async fn delete_secret(&self, name: &str) {
        let id = format!("{}{name}", self.prefix);
        self.seed.delete_secret().secret_id(&id).force_delete_without_recovery(true).send().await.expect("deleted");
    }

    /// The EMF records emitted so far, each checked against the published specification.
    pub fn metric_records(&self) -> Vec<Value> {
        let records = self.metrics.lock().expect("metrics lock").clone();
        for record in &records {
            let bad = emf::violations(record);
            assert!(bad.is_empty(), "not a valid EMF record ({bad:?}): {record}");
        }
        records
    }

    pub fn secrets_fetched(&self) -> usize {
        self.state.secrets.client().fetch_count()
    }

    /// Sends an event through the real Lambda entry point.
    pub async fn invoke(&self, event: Value) -> Reply {
        to_reply(handle_event(&self.state, event).await)
    }

    /// Signs and sends `body` with the runbooks key.
    pub async fn restore(&self, body: &str) -> Reply {
        self.invoke(signed_event(body, KEY_RUNBOOKS)).await
    }

    pub fn restores(&self) -> usize {
        self.sandbox.total_restores_started()
    }
}

/// Decodes a Function URL answer envelope.
pub fn to_reply(answer: Value) -> Reply {
    let status = answer["statusCode"].as_u64().and_then(|s| u16::try_from(s).ok()).expect("statusCode");
    let body = serde_json::from_str(answer["body"].as_str().expect("body is a string")).expect("body is JSON");
    Reply { status, body }
}

pub fn restore_body(redis_id: &str, backup_id: &str) -> String {
    json!({"redisId": redis_id, "backupId": backup_id, "reason": "integration test"}).to_string()
}

/// The checked-in Function URL fixture with a new body, id and signature.
pub fn signed_event(body: &str, key: &str) -> Value {
    let id = format!("msg_it{}", NEXT.fetch_add(1, Ordering::Relaxed));
    event_with(body, key, &id, now())
}

pub fn event_with(body: &str, key: &str, id: &str, timestamp: i64) -> Value {
    let mut ev = fixture("function-url-restore.json");
    let sig = signature::sign(&WebhookSecret::parse(key).expect("test key"), id, timestamp, body.as_bytes());
    ev["body"] = body.into();
    ev["headers"]["webhook-id"] = id.into();
    ev["headers"]["webhook-timestamp"] = timestamp.to_string().into();
    ev["headers"]["webhook-signature"] = sig.into();
    ev["headers"]["content-length"] = body.len().to_string().into();
    ev
}

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture exists")).expect("fixture is JSON")
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The table as template.yaml creates it: key `id`, on-demand. Names are unique per harness, so
/// "already exists" means the SDK retried a CreateTable whose first answer was slow (a loaded
/// moto) after it had succeeded: the table is there, which is all a test needs.
pub async fn create_idempotency_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let created = client
        .create_table()
        .table_name(name)
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().expect("key"))
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    if let Err(e) = created {
        let retried = e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception());
        assert!(retried, "table {name} not created: {e:?}");
    }
}
