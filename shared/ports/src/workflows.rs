use async_trait::async_trait;
use heimdall_domain::JobId;
use serde_json::Value;

/// A workflow engine failure.
#[derive(Debug, thiserror::Error)]
#[error("workflow engine unavailable: {0}")]
pub struct WorkflowError(pub String);

/// Where async jobs are driven through their plugin's steps outside this process (Step
/// Functions on AWS). `heimdall serve` has none: its workers drive jobs in-process.
#[async_trait]
pub trait Workflows: Send + Sync {
    /// Starts the job's workflow with `input`. `Ok(false)` when it had been started already
    /// (a queue message delivered twice): not an error.
    async fn start(&self, job: JobId, input: &Value) -> Result<bool, WorkflowError>;

    /// Stops the job's workflow; a workflow that never started or already ended is fine.
    async fn stop(&self, job: JobId, reason: &str) -> Result<(), WorkflowError>;
}
