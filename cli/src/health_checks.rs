//! The health checker of `heimdall serve`: every second it runs the clusters' health checks that
//! are due (each cluster's `health_interval`), the local twin of the janitor function's.

use std::sync::Arc;
use std::time::Duration;

use heimdall_service::JobService;
use tokio_util::sync::CancellationToken;

/// How often the checker looks for checks that are due (each runs at its cluster's interval).
const TICK: Duration = Duration::from_secs(1);

/// The running checker; stop it with [`HealthChecks::shutdown`].
pub struct HealthChecks {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl HealthChecks {
    pub fn spawn(service: Arc<JobService>) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(check_until_stopped(service, stop.clone()));
        Self { stop, task }
    }

    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
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
