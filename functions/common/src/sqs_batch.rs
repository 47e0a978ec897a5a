//! SQS batches as Lambda gets them: every record is handled on its own, and the answer lists
//! only the records that failed (`batchItemFailures`, which needs `ReportBatchItemFailures` on
//! the event source mapping), so one bad message never replays the others. A failed record
//! returns to the queue and, after the redrive limit, goes to the dead-letter queue.

use std::future::Future;
use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
/// What a jobs queue message says (its body's format belongs to the queue's adapter).
pub use heimdall_adapters_aws::QueuedJob;
use heimdall_service::{JobService, PluginRegistry};
use lambda_runtime::{LambdaEvent, service_fn};
use tracing::Instrument;

/// The `main` of an SQS-triggered Lambda: tracing, the service from the environment with the
/// plugins `plugins` builds, then `handle` on each batch.
pub async fn run_sqs_function<F, Fut>(
    plugins: fn(&aws_config::SdkConfig, &crate::FunctionConfig) -> PluginRegistry,
    handle: F,
) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Arc<JobService>, SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    lambda_runtime::tracing::init_default_subscriber();
    let (service, _) = crate::service_from_env(plugins).await?;
    let handle = &handle;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let batch = handle(service.clone(), event.payload);
        async move { Ok::<_, lambda_runtime::Error>(batch.await) }
    }))
    .await
}

/// Runs `handle` on every record of `event` at once; answers the ones to retry.
pub async fn handle_records<'a, F, Fut>(event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), String>> + 'a,
{
    let outcomes = futures::future::join_all(event.records.into_iter().map(|record| {
        let message_id = record.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("sqs_message", message_id = %message_id, job_id = tracing::field::Empty);
        let outcome = handle(record).instrument(span);
        async move { (message_id, outcome.await) }
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (message_id, outcome) in outcomes {
        if let Err(error) = outcome {
            tracing::error!(%message_id, error.message = %error, "message not handled; it will be retried");
            response.add_failure(message_id);
        }
    }
    response
}
