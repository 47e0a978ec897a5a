//! A task of `heimdall serve` that runs beside the server until it stops (the janitor, the
//! health checker): started with a stop token, stopped by cancelling it and waiting.

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// A running background task; stop it with [`Background::shutdown`].
pub struct Background {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Background {
    /// Runs `work` with the token that says when to stop.
    pub fn spawn<F>(work: impl FnOnce(CancellationToken) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let task = tokio::spawn(work(stop.clone()));
        Self { stop, task }
    }

    /// Asks the task to stop and waits for it.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
