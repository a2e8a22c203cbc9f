//! Application state: configuration and the outbound clients, built once per execution
//! environment and shared by every invocation.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;

use crate::aws::{AwsConfig, SdkClient};
use crate::callback::CallbackClient;
use crate::config::Config;
use crate::idempotency::Store;
use crate::invoke::Invoker;
use crate::metrics::MetricsSink;
use crate::secrets::{Secrets, SecretsClient};
use crate::tencent::TencentClient;

/// Everything a request needs besides the request itself.
pub struct AppState {
    pub config: Config,
    pub secrets: Secrets,
    pub tencent: TencentClient,
    pub callback: CallbackClient,
    pub invoker: Invoker,
    pub idempotency: Store,
    pub metrics: MetricsSink,
}

impl AppState {
    /// Wiring with a local invoker (background tasks); see [`AppState::with_invoker`].
    pub fn new(
        config: Config,
        secrets_sdk: impl Into<SdkClient<aws_sdk_secretsmanager::Client>>,
        http: reqwest::Client,
    ) -> Result<Self, reqwest::Error> {
        if config.callback_policy.allow_loopback {
            tracing::warn!(
                "CALLBACK_ALLOW_LOOPBACK is on: callbacks may go to http:// and loopback addresses. \
                 This is for local development only and must never be set in a deployment."
            );
        }
        let secrets = Secrets::new(SecretsClient::new(secrets_sdk), config.secret_ids.clone(), config.secrets_ttl);
        let tencent = TencentClient::new(http, config.tencent.clone());
        let callback = CallbackClient::new(config.callback_policy.clone(), config.callback_retry)?;
        let idempotency = Store::memory(config.idempotency_ttl);
        let metrics = MetricsSink::Stdout;
        Ok(Self { config, secrets, tencent, callback, invoker: Invoker::Local, idempotency, metrics })
    }

    pub fn with_invoker(mut self, invoker: Invoker) -> Self {
        self.invoker = invoker;
        self
    }

    pub fn with_metrics(mut self, sink: MetricsSink) -> Self {
        self.metrics = sink;
        self
    }

    pub fn with_idempotency(mut self, store: Store) -> Self {
        self.idempotency = store;
        self
    }

    /// Production wiring: AWS settings from the environment (credentials and region come from
    /// Lambda's variables; `AWS_ENDPOINT_URL[_SECRETS_MANAGER]` redirects to a local server).
    /// Nothing here touches the network or the trust store: the AWS configuration and clients are
    /// built on first use (`aws.rs`), and connections are opened on first use.
    pub fn from_env(config: Config) -> Result<Self, reqwest::Error> {
        let aws = AwsConfig::from_env();
        let state = Self::new(config, SdkClient::new(&aws, aws_sdk_secretsmanager::Client::new), http_client()?)?;
        // On Lambda, continue in a fresh asynchronous invocation of this same function.
        let invoker = match std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
            Ok(name) if !name.is_empty() && std::env::var("CRS_RESTORE_LOCAL_ADDR").is_err() => {
                Invoker::Lambda { client: SdkClient::new(&aws, aws_sdk_lambda::Client::new), function_name: name }
            }
            _ => Invoker::Local,
        };
        let state = state.with_invoker(invoker);
        Ok(match state.config.idempotency_table.clone() {
            Some(table) => {
                let client = SdkClient::new(&aws, aws_sdk_dynamodb::Client::new);
                let ttl = state.config.idempotency_ttl;
                state.with_idempotency(Store::dynamodb(client, table, ttl))
            }
            None => {
                tracing::warn!(
                    "IDEMPOTENCY_TABLE is not set: deliveries are de-duplicated in memory, per process only. \
                     Fine for local runs; a deployment must set it."
                );
                state
            }
        })
    }
}

/// Bounded AWS calls: a stuck Secrets Manager must become a 503, not a Lambda timeout.
pub fn aws_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build()
}

/// The HTTP client for Tencent (callbacks have their own, SSRF-guarded): no redirects, bounded
/// connects, pooled, with the shared TLS configuration (`tls.rs`).
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(crate::tls::client_config())
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("crs-restore/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// AWS settings for a local endpoint (moto) with dummy credentials, shared by every local
/// client: tests, benchmarks and `make run`-style tooling.
pub fn local_aws_config(endpoint: &str) -> aws_config::SdkConfig {
    use aws_config::Region;
    // The SDK crates re-export the shared credential types; any one of them will do.
    use aws_sdk_secretsmanager::config::{Credentials, SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "local")))
        .timeout_config(aws_timeouts())
        .build()
}

/// A DynamoDB client for a local endpoint (moto).
pub fn local_dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&local_aws_config(endpoint))
}

/// A Secrets Manager client for a local endpoint (moto).
pub fn local_secrets_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&local_aws_config(endpoint))
}
