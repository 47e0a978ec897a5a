//! The dispatcher: consumes the SQS jobs queue and starts one Step Functions execution per job.
//!
//! Every record of a batch is handled on its own; the answer lists only the records that
//! failed (`batchItemFailures`, which needs `ReportBatchItemFailures` on the event source
//! mapping), so one bad message never replays the others. A failed record returns to the queue
//! and, after the redrive limit, to the dead-letter queue. A job whose execution already exists,
//! or that left ACCEPTED, counts as done: SQS delivers at least once.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use heimdall_domain::JobId;
use heimdall_service::JobService;
use tracing::Instrument;

/// Dispatches every record of `event`; answers the ones to retry.
pub async fn handle_batch(service: &JobService, event: SqsEvent) -> SqsBatchResponse {
    let outcomes = futures::future::join_all(event.records.into_iter().map(|record| async move {
        let message_id = record.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("sqs_message", message_id = %message_id, job_id = tracing::field::Empty);
        let outcome = dispatch_record(service, &record).instrument(span).await;
        (message_id, outcome)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (message_id, outcome) in outcomes {
        if let Err(error) = outcome {
            tracing::error!(%message_id, error.message = %error, "message not dispatched; it will be retried");
            response.add_failure(message_id);
        }
    }
    response
}

async fn dispatch_record(service: &JobService, record: &SqsMessage) -> Result<(), String> {
    let body = record.body.as_deref().ok_or("the message has no body")?;
    let job: JobId = body.trim().parse().map_err(|error| format!("the message body is not a job id: {error}"))?;
    tracing::Span::current().record("job_id", tracing::field::display(job));
    let dispatched = service.dispatch_job(job).await.map_err(|error| error.to_string())?;
    tracing::info!(?dispatched, "job dispatched");
    Ok(())
}
