//! Logging set-up: JSON lines on stdout, level from Lambda's log controls or `RUST_LOG`.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt, Targets};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber. AWS SDK internals stay at `warn` unless asked for: their
/// debug output is noisy and we never want wire dumps near secret values.
pub fn init() {
    let directives = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into())
        .to_lowercase();
    let filter = EnvFilter::try_new(format!("aws_smithy_runtime=warn,aws_config=warn,hyper_util=warn,{directives}"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true)
        .with_writer(std::io::stdout)
        .with_filter(filter.and(ceiling()));
    tracing_subscriber::registry().with(layer).init();
}

/// The most any crate but ours may log, whatever `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` asks for
/// (a second filter that every line must also pass, so no directive can lift it). Libraries
/// log raw payloads at TRACE: `lambda_runtime` logs every invocation event whole (Slack tokens,
/// `response_url`s, callback URLs, request bodies), the AWS SDK its wire bodies (secret values).
/// Only our own crate, which never logs a secret or a body, may log at TRACE.
pub fn ceiling() -> Targets {
    Targets::new().with_default(LevelFilter::DEBUG).with_target(env!("CARGO_CRATE_NAME"), LevelFilter::TRACE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn only_our_own_crate_may_log_at_trace() {
        let ceiling = ceiling();
        assert!(ceiling.would_enable("crs_restore::handler", &Level::TRACE));
        for library in ["lambda_runtime::layers::api_response", "aws_smithy_runtime", "hyper", "reqwest"] {
            assert!(!ceiling.would_enable(library, &Level::TRACE), "{library}");
            assert!(ceiling.would_enable(library, &Level::DEBUG), "{library}");
        }
    }
}
