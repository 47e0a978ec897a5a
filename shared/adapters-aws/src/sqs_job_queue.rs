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
}
