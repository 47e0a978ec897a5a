//! The janitor of `heimdall serve`: a background task that, every interval, settles jobs whose
//! heartbeat stopped (the local twin of the janitor function on AWS) and deletes jobs that
//! ended more than the retention ago, with their logs and result (the twin of the table's TTL
//! and the bucket's lifecycle rule).

use std::sync::Arc;
use std::time::Duration;

use heimdall_domain::clock::now_epoch_seconds;
use heimdall_service::JobService;
use tokio_util::sync::CancellationToken;

use crate::background::Background;

/// What the janitor does and how often.
#[derive(Debug, Clone, Copy)]
pub struct JanitorSettings {
    /// Jobs that ended longer ago than this are deleted; `None`: kept forever.
    pub retention: Option<Duration>,
    pub interval: Duration,
}

/// Starts the janitor; stop it with [`Background::shutdown`].
pub fn spawn(service: Arc<JobService>, settings: JanitorSettings) -> Background {
    Background::spawn(move |stop| sweep_until_stopped(service, settings, stop))
}

async fn sweep_until_stopped(service: Arc<JobService>, settings: JanitorSettings, stop: CancellationToken) {
    let retention_seconds = settings.retention.map(|retention| i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
    loop {
        // First wait: start-up recovery has just settled what the last run left.
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(settings.interval) => {}
        }
        if let Err(error) = service.sweep_stuck_jobs(now_epoch_seconds()).await {
            tracing::warn!(error.message = %error, "could not look for stuck jobs; trying again later");
        }
        if let Some(retention_seconds) = retention_seconds {
            match service.purge_ended_before(now_epoch_seconds().saturating_sub(retention_seconds)).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, retention_seconds, "deleted jobs past their retention"),
                Err(error) => tracing::warn!(error.message = %error, "could not delete jobs past their retention; trying again later"),
            }
        }
    }
}
