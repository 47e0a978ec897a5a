//! Lambda's SQS event source mapping, for the local stack: receives a queue's messages, hands
//! them to a function's handler as an SQS event, and deletes those it did not report as failed
//! (failed ones come back after their visibility timeout).

use std::future::Future;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::{Value, json};

/// Polls `queue_url` into `handler` until the process ends.
pub async fn run<F, Fut>(sqs: aws_sdk_sqs::Client, queue_url: String, handler: F)
where
    F: Fn(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
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
        let response = handler(event).await;
        for message in messages {
            let failed = response.batch_item_failures.iter().any(|f| Some(f.item_identifier.as_str()) == message.message_id());
            if let (false, Some(receipt)) = (failed, message.receipt_handle()) {
                let _ = sqs.delete_message().queue_url(&queue_url).receipt_handle(receipt).send().await;
            }
        }
    }
}
