//! The janitor: the serverless twin of `heimdall serve`'s janitor task. Every job ends.
//!
//! Two event sources, told apart by shape:
//! - EventBridge Scheduler, every minute (any payload but an SQS batch): one sweep for jobs
//!   whose process stopped (no heartbeat: a sync job cut off by the api function's timeout) or
//!   whose execution ended without recording the job's end (`JobService::sweep_stuck_jobs`);
//!   then the clusters' health checks that are due (`JobService::check_cluster_health`), and
//!   the jobs queue's depth as a metric.
//! - The jobs dead-letter queue (an SQS batch): each message is a job every dispatch of which
//!   failed; the job is failed saying it was never dispatched.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use heimdall_domain::clock::now_epoch_seconds;
use heimdall_functions::sqs_batch::{QueuedJob, handle_records};
use heimdall_service::JobService;
use serde_json::{Value, json};

/// Handles one invocation: a dead-letter batch or a scheduled sweep; answers what it did (a
/// batch: the records to retry).
pub async fn handle(service: &JobService, event: Value) -> Result<Value, String> {
    if is_sqs_batch(&event) {
        let batch: SqsEvent = serde_json::from_value(event).map_err(|error| format!("an SQS batch that cannot be read: {error}"))?;
        let response = handle_dead_letters(service, batch).await;
        return serde_json::to_value(response).map_err(|error| error.to_string());
    }
    let sweep = service.sweep_stuck_jobs(now_epoch_seconds()).await.map_err(|error| error.to_string())?;
    tracing::info!(settled = sweep.settled.len(), still_running = sweep.still_running, "janitor sweep done");
    let queued = service.observe_queue_depth().await.map_err(|error| error.to_string())?;
    let checks = service.check_cluster_health().await.map_err(|error| error.to_string())?;
    let failing = checks.iter().filter(|check| !check.is_ok()).count();
    tracing::info!(checked = checks.len(), failing, "health checks done");
    Ok(json!({"settled": sweep.settled.len(), "still_running": sweep.still_running, "queued": queued, "health_checked": checks.len(), "health_failing": failing}))
}

fn is_sqs_batch(event: &Value) -> bool {
    event["Records"].as_array().is_some_and(|records| records.iter().all(|r| r["eventSource"] == "aws:sqs"))
}

/// Settles the job of every dead-lettered message; answers the ones to retry.
pub async fn handle_dead_letters(service: &JobService, batch: SqsEvent) -> SqsBatchResponse {
    handle_records(batch, |record| settle_dead_letter(service, record)).await
}

async fn settle_dead_letter(service: &JobService, record: SqsMessage) -> Result<(), String> {
    let body = record.body.as_deref().ok_or("the message has no body")?;
    let Ok(QueuedJob { job_id: job, .. }) = QueuedJob::from_body(body) else {
        // Not ours to settle, and retrying will not make it a job id: drop it, loudly.
        tracing::error!(body, "a dead-lettered message that is not a queued job; dropped");
        return Ok(());
    };
    tracing::Span::current().record("job_id", tracing::field::display(job));
    match service.settle_dead_letter(job).await.map_err(|error| error.to_string())? {
        Some(settled) => tracing::warn!(status = %settled.status, "dead-lettered job settled"),
        None => tracing::info!("dead-lettered job had already left the queue"),
    }
    Ok(())
}
