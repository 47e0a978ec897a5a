//! Lambda's SQS event source mapping, for the local stack: receives the jobs queue's messages,
//! hands them to the dispatcher function's handler as an SQS event, and deletes those it did
//! not report as failed (failed ones come back after their visibility timeout).

use std::time::Duration;

use heimdall_service::JobService;
use serde_json::{Value, json};

/// Polls `queue_url` until the process ends.
pub async fn run(sqs: aws_sdk_sqs::Client, queue_url: String, service: std::sync::Arc<JobService>) {
    loop {
        let received = match sqs.receive_message().queue_url(&queue_url).max_number_of_messages(10).wait_time_seconds(5).send().await {
            Ok(received) => received,
            Err(error) => {
                tracing::warn!(error = %heimdall_ports::error_chain(&error), "queue poll failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let messages = received.messages();
        if messages.is_empty() {
            continue;
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(), "eventSource": "aws:sqs"}))
            .collect();
        let event = match serde_json::from_value(json!({"Records": records})) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(%error, "could not build an SQS event");
                continue;
            }
        };
        let response = heimdall_function_dispatcher::handle_batch(&service, event).await;
        for message in messages {
            let failed = response.batch_item_failures.iter().any(|f| Some(f.item_identifier.as_str()) == message.message_id());
            if let (false, Some(receipt)) = (failed, message.receipt_handle()) {
                let _ = sqs.delete_message().queue_url(&queue_url).receipt_handle(receipt).send().await;
            }
        }
    }
}
