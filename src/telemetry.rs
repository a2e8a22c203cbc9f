//! Logging set-up: JSON lines on stdout, level from Lambda's log controls or `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. AWS SDK internals stay at `warn` unless asked for: their
/// debug output is noisy and we never want wire dumps near secret values.
pub fn init() {
    let directives = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into())
        .to_lowercase();
    let filter = EnvFilter::try_new(format!("aws_smithy_runtime=warn,aws_config=warn,hyper_util=warn,{directives}"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .init();
}
