use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;
use heimdall_domain::JobId;
use heimdall_ports::{error_chain, JobQueue, QueueError};
use serde::{Deserialize, Serialize};

/// The async jobs queue on SQS: one message per job, its body a [`QueuedJob`] as JSON (the job
/// id also as an attribute, for tracing and filtering). The dispatcher Lambda consumes it.
#[derive(Clone)]
pub struct SqsJobQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsJobQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

/// What a jobs queue message says: the job, and the plugin its workflow runs (absent in
/// messages sent before it was carried, whose body is the bare job id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedJob {
    pub job_id: JobId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
}

impl QueuedJob {
    /// Reads a message body: JSON, or a bare job id.
    pub fn from_body(body: &str) -> Result<Self, String> {
        let body = body.trim();
        if let Ok(job_id) = body.parse::<JobId>() {
            return Ok(Self { job_id, plugin: None });
        }
        serde_json::from_str(body).map_err(|error| format!("the message body is neither a job id nor a queued job: {error}"))
    }
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    #[tracing::instrument(skip(self), fields(job_id = %job))]
    async fn enqueue(&self, job: JobId, plugin: &str) -> Result<(), QueueError> {
        let body = serde_json::to_string(&QueuedJob { job_id: job, plugin: Some(plugin.to_owned()) })
            .map_err(|error| QueueError(format!("could not encode the message: {error}")))?;
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(job.to_string())
            .build()
            .map_err(|error| QueueError(error_chain(&error)))?;
        // Sent, then received and deleted by the dispatcher's event source: three requests.
        heimdall_ports::usage::record(|usage| usage.sqs_requests += 3.0);
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("job_id", attribute)
            .send()
            .await
            .map_err(|error| QueueError(format!("SQS SendMessage: {}", error_chain(&error))))?;
        Ok(())
    }

    /// `ApproximateNumberOfMessages`: visible messages, not those a dispatcher holds.
    #[tracing::instrument(skip(self))]
    async fn depth(&self) -> Result<u64, QueueError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|error| QueueError(format!("SQS GetQueueAttributes: {}", error_chain(&error))))?;
        let count = output.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages));
        count.map_or(Ok(0), |text| text.parse().map_err(|_| QueueError(format!("SQS answered a queue depth `{text}` that is not a number"))))
    }
}
