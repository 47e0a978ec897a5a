use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use heimdall_domain::JobId;
use heimdall_ports::{JobQueue, QueueError};
use heimdall_service::JobService;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The queue of `heimdall serve`: a channel to the local workers. It holds only ids; a job
/// waiting in it is an `ACCEPTED` row in the job store, which is what survives a restart
/// (start-up recovery puts those back on the queue).
#[derive(Clone)]
pub struct InProcessJobQueue {
    sender: mpsc::UnboundedSender<JobId>,
    /// Jobs sent and not yet taken by a worker.
    waiting: Arc<AtomicU64>,
}

/// The receiving end, handed to [`LocalWorkers::spawn`].
pub struct QueueReceiver {
    receiver: mpsc::UnboundedReceiver<JobId>,
    waiting: Arc<AtomicU64>,
}

impl QueueReceiver {
    /// The next job queued, waiting for one; `None` once every sender is gone.
    pub async fn next(&mut self) -> Option<JobId> {
        let job = self.receiver.recv().await;
        if job.is_some() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        job
    }
}

impl InProcessJobQueue {
    pub fn new() -> (Self, QueueReceiver) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let waiting = Arc::new(AtomicU64::new(0));
        (Self { sender, waiting: Arc::clone(&waiting) }, QueueReceiver { receiver, waiting })
    }
}

#[async_trait]
impl JobQueue for InProcessJobQueue {
    /// The workers read the job to run it: the plugin is not carried.
    async fn enqueue(&self, job: JobId, _plugin: &str) -> Result<(), QueueError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.sender.send(job).map_err(|_| {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            QueueError("the local workers have stopped (the server is shutting down)".into())
        })
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        Ok(self.waiting.load(Ordering::Relaxed))
    }
}

/// A pool of at most `size` async jobs running at once in this process.
pub struct LocalWorkers {
    stop: CancellationToken,
    dispatcher: tokio::task::JoinHandle<()>,
}

impl LocalWorkers {
    /// Starts taking jobs. On shutdown, running jobs get `grace` to finish.
    pub fn spawn(service: Arc<JobService>, receiver: QueueReceiver, size: usize, grace: Duration) -> Self {
        let stop = CancellationToken::new();
        let dispatcher = tokio::spawn(dispatch(service, receiver, size.max(1), stop.clone(), grace));
        Self { stop, dispatcher }
    }

    /// Stops taking jobs, gives running ones their grace to finish, then stops them (their
    /// processes are killed; start-up recovery records them FAILED).
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.dispatcher.await;
    }
}

async fn dispatch(
    service: Arc<JobService>,
    mut receiver: QueueReceiver,
    size: usize,
    stop: CancellationToken,
    grace: Duration,
) {
    let permits = Arc::new(Semaphore::new(size));
    let mut running = JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let job = tokio::select! {
            () = stop.cancelled() => break,
            job = receiver.next() => match job {
                Some(job) => job,
                None => break,
            },
        };
        let service = Arc::clone(&service);
        running.spawn(async move {
            if let Err(error) = service.run_queued(job).await {
                tracing::error!(job_id = %job, error.message = %error, "queued job could not run");
            }
            drop(permit);
        });
        while running.try_join_next().is_some() {}
    }
    if tokio::time::timeout(grace, async { while running.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!(still_running = running.len(), "stopping async jobs that did not finish in time");
        running.shutdown().await;
    }
}
