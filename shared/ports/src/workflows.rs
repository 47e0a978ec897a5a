use async_trait::async_trait;
use heimdall_domain::JobId;

/// A workflow engine failure.
#[derive(Debug, thiserror::Error)]
#[error("workflow engine unavailable: {0}")]
pub struct WorkflowError(pub String);

/// Where async jobs are driven through their plugin's steps outside this process (Step
/// Functions on AWS). `heimdall serve` has none: its workers drive jobs in-process.
#[async_trait]
pub trait Workflows: Send + Sync {
    /// Starts the workflow driving `job` through the steps of `plugin` (the adapter owns what
    /// the engine is given). `Ok(false)` when it had been started already (a queue message
    /// delivered twice): not an error.
    async fn start(&self, job: JobId, plugin: &str) -> Result<bool, WorkflowError>;

    /// Stops the job's workflow; a workflow that never started or already ended is fine.
    async fn stop(&self, job: JobId, reason: &str) -> Result<(), WorkflowError>;

    /// Where the job's workflow is: what a janitor asks of a job that has been quiet.
    async fn state(&self, job: JobId) -> Result<WorkflowState, WorkflowError>;

    /// Where a person sees the job's workflow, by name: its execution in the Step Functions
    /// console, and its steps' logs.
    fn console_links(&self, job: JobId) -> Vec<(&'static str, String)>;

    /// Hands `outcome` to the job's workflow where it waits for its work's end (the await step
    /// of a plugin whose work announces its end as an event): `token` is the waiting task's
    /// when the caller has it (the await step itself), otherwise the engine finds it.
    /// `Ok(false)` when the workflow was not waiting (not yet, or no more): not an error.
    async fn resume(&self, job: JobId, token: Option<&str>, outcome: Resumption) -> Result<bool, WorkflowError>;
}

/// What a waiting workflow is handed: the step's answer (as the step would have answered, JSON),
/// or the step's failure (as a failed step would have raised it).
#[derive(Debug, Clone, PartialEq)]
pub enum Resumption {
    Answer(serde_json::Value),
    Failure { error_type: String, error_message: String },
}

impl Resumption {
    /// A step's failure in the shape the workflow's Catch and fail step read: the error's
    /// stable type, and a JSON message with the text and the exit code.
    pub fn failure(error: &crate::PluginError) -> Self {
        Self::Failure { error_type: error.error_type().to_owned(), error_message: error.step_message() }
    }
}

/// Where a job's workflow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowState {
    Running,
    Ended(WorkflowEnd),
    /// No workflow was ever started for the job (or the engine forgot it).
    NotStarted,
}

/// How a workflow ended, in Step Functions' words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowEnd {
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl WorkflowEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowEnd::Succeeded => "SUCCEEDED",
            WorkflowEnd::Failed => "FAILED",
            WorkflowEnd::TimedOut => "TIMED_OUT",
            WorkflowEnd::Aborted => "ABORTED",
        }
    }

    /// An execution status that is an end (`RUNNING` and anything unknown are not).
    pub fn parse(status: &str) -> Option<Self> {
        [WorkflowEnd::Succeeded, WorkflowEnd::Failed, WorkflowEnd::TimedOut, WorkflowEnd::Aborted]
            .into_iter()
            .find(|end| end.as_str() == status)
    }
}
