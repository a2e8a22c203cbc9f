//! AWS SDK wiring: the environment's configuration and the service clients, each built on first use.
//!
//! Loading the configuration and building a client is not free: the default credentials chain
//! builds an STS client, and every client builds its HTTPS connector, which reads the system
//! trust store. Done eagerly that was most of our init time (BENCHMARKS.md, "Tuning"). Deferred,
//! it happens once, inside the first invocation that talks to AWS, and never again.

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use tokio::sync::OnceCell;

use crate::state::aws_timeouts;

/// The environment's AWS configuration (region and credentials from Lambda's variables;
/// `AWS_ENDPOINT_URL[_<SERVICE>]` redirects to a local server), loaded at most once.
#[derive(Debug, Clone, Default)]
pub struct AwsConfig(Arc<OnceCell<SdkConfig>>);

impl AwsConfig {
    /// Loads from the environment on first use.
    pub fn from_env() -> Self {
        Self::default()
    }

    /// An already-built configuration (tests, benchmarks, local tooling).
    pub fn ready(config: SdkConfig) -> Self {
        Self(Arc::new(OnceCell::new_with(Some(config))))
    }

    pub async fn get(&self) -> &SdkConfig {
        // Boxed: the loader's future is large, and without the box it would be inlined into the
        // future of every AWS call that might be the first (deep enough to overflow debug stacks).
        self.0
            .get_or_init(|| {
                Box::pin(aws_config::defaults(BehaviorVersion::latest()).timeout_config(aws_timeouts()).load())
            })
            .await
    }
}

/// A service client built from an [`AwsConfig`] on first use; clones share it.
#[derive(Debug, Clone)]
pub struct SdkClient<C> {
    client: Arc<OnceCell<C>>,
    config: AwsConfig,
    build: fn(&SdkConfig) -> C,
}

impl<C> SdkClient<C> {
    /// `build` is the service's `Client::new`.
    pub fn new(config: &AwsConfig, build: fn(&SdkConfig) -> C) -> Self {
        Self { client: Arc::default(), config: config.clone(), build }
    }

    pub async fn get(&self) -> &C {
        self.client.get_or_init(|| Box::pin(async { (self.build)(self.config.get().await) })).await
    }

    /// Whether the client has been built yet (for tests).
    pub fn is_built(&self) -> bool {
        self.client.initialized()
    }
}

/// An already-built client: nothing is deferred.
impl<C> From<C> for SdkClient<C> {
    fn from(client: C) -> Self {
        Self {
            client: Arc::new(OnceCell::new_with(Some(client))),
            config: AwsConfig::default(),
            build: |_| unreachable!("an already-built client is never rebuilt"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::local_aws_config;

    fn endpoint_of(config: &SdkConfig) -> Option<String> {
        config.endpoint_url().map(str::to_owned)
    }

    #[tokio::test]
    async fn a_client_is_built_on_first_use_and_then_reused() {
        let config = AwsConfig::ready(local_aws_config("http://127.0.0.1:9"));
        let client = SdkClient::new(&config, endpoint_of);
        assert!(!client.is_built(), "nothing is built before the first use");
        assert_eq!(client.get().await.as_deref(), Some("http://127.0.0.1:9"));
        assert!(client.is_built());
        let clone = client.clone();
        assert!(clone.is_built(), "clones share the built client");
    }

    #[tokio::test]
    async fn an_already_built_client_is_used_as_is() {
        let client: SdkClient<u32> = 7.into();
        assert!(client.is_built());
        assert_eq!(*client.get().await, 7);
    }
}
