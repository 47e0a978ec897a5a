//! The health checker of `heimdall serve`: every second it runs the clusters' health checks that
//! are due (each cluster's `health_interval`), the local twin of the janitor function's.

use std::sync::Arc;
use std::time::Duration;

use heimdall_service::JobService;
use tokio_util::sync::CancellationToken;

use crate::background::Background;

/// How often the checker looks for checks that are due (each runs at its cluster's interval).
const TICK: Duration = Duration::from_secs(1);

/// Starts the checker; stop it with [`Background::shutdown`].
pub fn spawn(service: Arc<JobService>) -> Background {
    Background::spawn(move |stop| check_until_stopped(service, stop))
}

async fn check_until_stopped(service: Arc<JobService>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            checked = service.check_cluster_health() => {
                if let Err(error) = checked {
                    tracing::warn!(error.message = %error, "could not run or store health checks; trying again later");
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(TICK) => {}
        }
    }
}
