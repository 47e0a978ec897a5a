//! Retention: jobs that ended long ago leave the store with their logs and result, so a
//! long-lived `heimdall serve` does not fill its disk. (On AWS the table's TTL and the bucket's
//! lifecycle rule do the same.)

use heimdall_ports::StoreError;

use crate::job_service::JobService;
use crate::service_error::ServiceError;

/// Jobs read per store call while purging.
const PURGE_BATCH: usize = 100;

impl JobService {
    /// Deletes every job that ended before `cutoff` (epoch seconds), its artifacts first, so a
    /// stop half-way leaves the job to be found again next time. Answers how many went.
    pub async fn purge_ended_before(&self, cutoff: i64) -> Result<usize, ServiceError> {
        let store_error = |error: StoreError| ServiceError::from_store(error, None);
        let mut purged = 0;
        loop {
            let ids = self.jobs.ended_before(cutoff, PURGE_BATCH).await.map_err(store_error)?;
            if ids.is_empty() {
                return Ok(purged);
            }
            for id in ids {
                self.artifacts.delete_all(id).await.map_err(store_error)?;
                self.jobs.delete(id).await.map_err(store_error)?;
                purged += 1;
            }
        }
    }
}
