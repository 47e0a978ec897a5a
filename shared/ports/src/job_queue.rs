use async_trait::async_trait;
use heimdall_domain::JobId;

use crate::errors::QueueError;

/// Where async jobs wait for a worker. Delivery is at least once: consumers must treat a job
/// that already left `ACCEPTED` as done, not as an error.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Queues `job`, whose command runs on `plugin`: what a consumer that starts the job's
    /// workflow needs, so it need not read the job first. Consumers that read the job anyway
    /// (the local workers) may leave it.
    async fn enqueue(&self, job: JobId, plugin: &str) -> Result<(), QueueError>;

    /// How many jobs wait in the queue now (approximate where the queue says so: SQS).
    async fn depth(&self) -> Result<u64, QueueError>;
}
