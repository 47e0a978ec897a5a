use heimdall_domain::{IllegalTransition, JobId, names};
use heimdall_ports::{QueueError, StoreError};

/// What went wrong, in terms a client can act on. The API maps each kind to one status code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed or incomplete.
    #[error("{0}")]
    BadRequest(String),
    /// The job's context does not fit its command.
    #[error("{0}")]
    InvalidJobContext(String),
    /// The job asked for a mode (sync/async) its command does not allow.
    #[error("{0}")]
    ModeNotAllowed(String),
    /// No command (or no cluster) matched; the job was recorded FAILED with this message.
    #[error("{message}")]
    NoMatch { code: &'static str, message: String, job_id: JobId },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The job is not in a status that allows this.
    #[error("{0}")]
    Conflict(String),
    /// The asked part of a log starts past its end.
    #[error("the range starts past the end of the {total} bytes written so far")]
    RangeNotSatisfiable { total: u64 },
    /// The caller's idempotency key was used for another request.
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// A job with this id exists already (an event delivered again).
    #[error("job {0} was submitted already")]
    AlreadySubmitted(JobId),
    /// Too much is running at once; the same request later will likely work.
    #[error("{0}")]
    Busy(String),
    /// A backend is down; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a broken invariant: logged, answered opaquely.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// The machine code answered beside the message.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::BadRequest(_) => names::BAD_REQUEST,
            ServiceError::InvalidJobContext(_) => names::INVALID_JOB_CONTEXT,
            ServiceError::ModeNotAllowed(_) => names::MODE_NOT_ALLOWED,
            ServiceError::NoMatch { code, .. } => code,
            ServiceError::Forbidden(_) => names::FORBIDDEN,
            ServiceError::NotFound(_) => names::NOT_FOUND,
            ServiceError::Conflict(_) => names::ILLEGAL_TRANSITION,
            ServiceError::AlreadySubmitted(_) => names::ALREADY_SUBMITTED,
            ServiceError::IdempotencyKeyReused(_) => names::IDEMPOTENCY_KEY_REUSED,
            ServiceError::RangeNotSatisfiable { .. } => names::RANGE_NOT_SATISFIABLE,
            ServiceError::Busy(_) => names::TOO_MANY_REQUESTS,
            ServiceError::Unavailable(_) => names::UNAVAILABLE,
            ServiceError::Internal(_) => names::INTERNAL,
        }
    }

    pub fn job_not_found(id: JobId) -> Self {
        ServiceError::NotFound(format!("job {id} not found"))
    }

    /// Translates a store error about job `id`.
    pub fn from_store(error: StoreError, id: Option<JobId>) -> Self {
        match error {
            StoreError::NotFound => match id {
                Some(id) => Self::job_not_found(id),
                None => ServiceError::NotFound("not found".into()),
            },
            StoreError::Conflict { current } => ServiceError::Conflict(format!("the job is {current}")),
            StoreError::InvalidCursor(message) => ServiceError::BadRequest(format!(
                "cursor: {message}; pass the next_cursor of the previous page unchanged"
            )),
            StoreError::UnsupportedQuery(message) => ServiceError::BadRequest(message),
            StoreError::AlreadyExists => match id {
                Some(id) => ServiceError::AlreadySubmitted(id),
                None => ServiceError::Internal("a job id was used twice".into()),
            },
            StoreError::Changed => ServiceError::Conflict("it was changed by another request meanwhile; read it again and retry".into()),
            StoreError::KeyTaken { job, .. } => ServiceError::IdempotencyKeyReused(format!("the idempotency key names job {job}")),
            StoreError::RangeNotSatisfiable { total } => ServiceError::RangeNotSatisfiable { total },
            StoreError::Unavailable(message) => ServiceError::Unavailable(message),
        }
    }
}

impl From<IllegalTransition> for ServiceError {
    fn from(error: IllegalTransition) -> Self {
        ServiceError::Conflict(error.to_string())
    }
}

impl From<QueueError> for ServiceError {
    fn from(error: QueueError) -> Self {
        ServiceError::Unavailable(error.to_string())
    }
}
