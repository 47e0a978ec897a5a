use heimdall_domain::{JobId, JobStatus};

/// An error's message followed by its causes (`outer: inner: root`): SDK and HTTP client
/// errors keep the useful part (a refused connection, a service's message) in their sources.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A job store or artifact store failure, already translated from the backend's own errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A conditional status change found the job in another status.
    #[error("the job is {current}, not in the status this change expects")]
    Conflict { current: JobStatus },
    #[error("already exists")]
    AlreadyExists,
    /// A conditional write found the record changed by another writer since it was read.
    #[error("changed by another writer since it was read")]
    Changed,
    /// The caller's idempotency key names job `job`, claimed with a request of `fingerprint`.
    #[error("the idempotency key names job {job}")]
    KeyTaken { job: JobId, fingerprint: String },
    /// The cursor a client sent cannot be read.
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// A listing this store cannot answer (the message says what it can).
    #[error("{0}")]
    UnsupportedQuery(String),
    /// The asked bytes lie past the artifact's end (`total` bytes long).
    #[error("the range starts past the end of the {total} bytes written")]
    RangeNotSatisfiable { total: u64 },
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// A queue failure.
#[derive(Debug, thiserror::Error)]
#[error("queue unavailable: {0}")]
pub struct QueueError(pub String);

/// Why a plugin step did not succeed. [`PluginError::error_type`] gives the stable names that
/// state machine Retry/Catch clauses match on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    /// The job's context (or the command's settings) cannot be used; retrying will not help.
    #[error("{0}")]
    InvalidContext(String),
    /// The job ran and failed (a non-zero exit, a failed query).
    #[error("{message}")]
    JobFailed { message: String, exit_code: Option<i32> },
    /// The job ran longer than allowed and was stopped.
    #[error("the job ran longer than its timeout of {seconds} s and was stopped")]
    TimedOut { seconds: u64 },
    /// Something the plugin depends on failed in a way that may pass on a retry.
    #[error("{0}")]
    Unavailable(String),
}

impl PluginError {
    pub const INVALID_CONTEXT: &'static str = "InvalidContext";
    pub const JOB_FAILED: &'static str = "JobFailed";
    pub const TIMED_OUT: &'static str = "TimedOut";
    pub const UNAVAILABLE: &'static str = "Unavailable";

    /// The stable name of this kind of error.
    pub fn error_type(&self) -> &'static str {
        match self {
            PluginError::InvalidContext(_) => Self::INVALID_CONTEXT,
            PluginError::JobFailed { .. } => Self::JOB_FAILED,
            PluginError::TimedOut { .. } => Self::TIMED_OUT,
            PluginError::Unavailable(_) => Self::UNAVAILABLE,
        }
    }

    /// The message of a failed workflow step: JSON `{"message", "exit_code"}`, which the fail
    /// step reads back (the text and the code both survive the workflow engine).
    pub fn step_message(&self) -> String {
        serde_json::json!({"message": self.to_string(), "exit_code": self.exit_code()}).to_string()
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self {
            PluginError::JobFailed { exit_code, .. } => *exit_code,
            _ => None,
        }
    }
}

impl From<StoreError> for PluginError {
    fn from(error: StoreError) -> Self {
        PluginError::Unavailable(format!("could not store the job's output: {error}"))
    }
}
