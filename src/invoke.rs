//! Asynchronous continuation: hands a job to a fresh invocation of this same function.
//!
//! On Lambda that is `Invoke` with `InvocationType=Event` on the function's own name: the event
//! is delivered only because IAM allowed the call, and it never passes through the Function URL
//! (whose events always carry an HTTP request context; see `event.rs`). Locally it is a
//! background task on the same runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use crate::aws::SdkClient;
use crate::job::{self, Job};
use crate::slack::PromptJob;
use crate::state::AppState;

/// How jobs are handed on.
#[derive(Debug, Clone)]
pub enum Invoker {
    Lambda {
        client: SdkClient<aws_sdk_lambda::Client>,
        function_name: String,
    },
    /// `make run` and tests: a task on the current runtime.
    Local,
}

/// The hand-off did not happen: nothing was started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not start the asynchronous invocation: {0}")]
pub struct InvokeError(pub String);

/// Boxed so the job → hand-off → job cycle has a nameable, `Send` type.
pub type Dispatch<'a> = Pin<Box<dyn Future<Output = Result<(), InvokeError>> + Send + 'a>>;

impl Invoker {
    pub fn dispatch<'a>(&'a self, state: &'a Arc<AppState>, job: Job) -> Dispatch<'a> {
        Box::pin(self.dispatch_inner(state, job))
    }

    async fn dispatch_inner(&self, state: &Arc<AppState>, job: Job) -> Result<(), InvokeError> {
        match self {
            Self::Local => {
                // Through the handler, as Lambda would deliver it: the event is classified and
                // validated the same way, and a drill's continuation still ends as a drill.
                let state = Arc::clone(state);
                let event = job::envelope(&job);
                let task: Pin<Box<dyn Future<Output = serde_json::Value> + Send>> =
                    Box::pin(async move { crate::handler::handle_invocation(&state, event, None).await });
                tokio::spawn(task);
                Ok(())
            }
            Self::Lambda { client, function_name } => {
                invoke_event(client.get().await, function_name, &job::envelope(&job)).await
            }
        }
    }

    /// Hands a deferred Slack prompt (`{"crsSlackPrompt": ...}`) on, the same way as a job.
    pub async fn dispatch_slack_prompt(&self, state: &Arc<AppState>, prompt: PromptJob) -> Result<(), InvokeError> {
        match self {
            Self::Local => {
                let state = Arc::clone(state);
                tokio::spawn(async move { crate::slack::run_prompt(&state, prompt, None).await });
                Ok(())
            }
            Self::Lambda { client, function_name } => {
                invoke_event(client.get().await, function_name, &crate::slack::prompt::envelope(&prompt)).await
            }
        }
    }
}

/// `Invoke` with `InvocationType=Event`: Lambda queues the event and answers 202.
async fn invoke_event(
    client: &aws_sdk_lambda::Client,
    function_name: &str,
    event: &serde_json::Value,
) -> Result<(), InvokeError> {
    let payload = serde_json::to_vec(event).map_err(|e| InvokeError(e.to_string()))?;
    let out = client
        .invoke()
        .function_name(function_name)
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|e| InvokeError(aws_sdk_lambda::error::DisplayErrorContext(e).to_string()))?;
    // An accepted asynchronous invocation answers 202.
    if out.status_code() == 202 { Ok(()) } else { Err(InvokeError(format!("Lambda answered {}", out.status_code()))) }
}
