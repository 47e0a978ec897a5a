use std::sync::Arc;

use heimdall_service::JobService;

/// How the API learns who is calling.
#[derive(Debug, Clone)]
pub enum Identity {
    /// From the `X-Heimdall-User` header (local mode, behind a trusted proxy); requests without
    /// it are refused unless a default user is set for local development.
    Header { default_user: Option<String> },
}

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<JobService>,
    pub identity: Identity,
}
