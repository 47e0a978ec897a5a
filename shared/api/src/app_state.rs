use std::sync::Arc;

use heimdall_service::JobService;

use crate::identity::Identity;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<JobService>,
    pub identity: Identity,
}
