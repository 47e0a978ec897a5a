//! The dispatcher: consumes the SQS jobs queue and starts one Step Functions execution per job.
//!
//! A job whose execution already exists, or that left ACCEPTED, counts as done: SQS delivers at
//! least once. A record that fails is retried on its own (`heimdall_functions::sqs_batch`).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use heimdall_functions::sqs_batch::{QueuedJob, handle_records};
use heimdall_service::JobService;

/// Dispatches every record of `event`; answers the ones to retry.
pub async fn handle_batch(service: &JobService, event: SqsEvent) -> SqsBatchResponse {
    handle_records(event, |record| dispatch_record(service, record)).await
}

async fn dispatch_record(service: &JobService, record: SqsMessage) -> Result<(), String> {
    let body = record.body.as_deref().ok_or("the message has no body")?;
    let queued = QueuedJob::from_body(body)?;
    tracing::Span::current().record("job_id", tracing::field::display(queued.job_id));
    let dispatched = service.dispatch_job(queued.job_id, queued.plugin.as_deref()).await.map_err(|error| error.to_string())?;
    tracing::info!(?dispatched, "job dispatched");
    Ok(())
}
