use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;
use heimdall_domain::JobId;
use heimdall_ports::{error_chain, JobQueue, QueueError};


/// The async jobs queue on SQS: one message per job, the job id as its body (and as an
/// attribute, for tracing and filtering). The dispatcher Lambda consumes it.
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

#[async_trait]
impl JobQueue for SqsJobQueue {
    #[tracing::instrument(skip(self), fields(job_id = %job))]
    async fn enqueue(&self, job: JobId) -> Result<(), QueueError> {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(job.to_string())
            .build()
            .map_err(|error| QueueError(error_chain(&error)))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(job.to_string())
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
