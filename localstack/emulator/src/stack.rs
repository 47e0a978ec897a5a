use anyhow::Context;
use aws_sdk_sqs::types::QueueAttributeName;
use heimdall_adapters_aws::{AwsSettings, DynamoJobStore, s3_client};

/// The async job state machine, as deployed.
pub const STATE_MACHINE: &str = include_str!("../../../statemachines/async-job.asl.json");
/// How many deliveries a queue message gets before it goes to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// Creates the platform's resources named `<prefix>-…` and answers where they are: the jobs
/// table, the artifacts bucket, the jobs queue with its dead-letter queue, and the state machine
/// (executing as `role_arn`).
pub async fn create_stack(sdk: &aws_config::SdkConfig, prefix: &str, role_arn: &str) -> anyhow::Result<AwsSettings> {
    let table = format!("{prefix}-jobs");
    let bucket = format!("{prefix}-artifacts");
    DynamoJobStore::create_table(&aws_sdk_dynamodb::Client::new(sdk), &table)
        .await
        .with_context(|| format!("Failed to create the table {table}"))?;
    s3_client(sdk)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .with_context(|| format!("Failed to create the bucket {bucket}"))?;

    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dead_letters = sqs
        .create_queue()
        .queue_name(format!("{prefix}-jobs-dlq"))
        .send()
        .await
        .context("Failed to create the dead-letter queue")?
        .queue_url
        .context("no dead-letter queue URL")?;
    let dead_letter_arn = sqs
        .get_queue_attributes()
        .queue_url(&dead_letters)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .context("Failed to read the dead-letter queue's ARN")?
        .attributes
        .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
        .context("no dead-letter queue ARN")?;
    let redrive = serde_json::json!({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVE_COUNT.to_string()});
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("{prefix}-jobs"))
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        // Longer than the dispatcher's own timeout, as Lambda event sources require.
        .attributes(QueueAttributeName::VisibilityTimeout, "180")
        .send()
        .await
        .context("Failed to create the jobs queue")?
        .queue_url
        .context("no jobs queue URL")?;

    let state_machine_arn = aws_sdk_sfn::Client::new(sdk)
        .create_state_machine()
        .name(format!("{prefix}-async-job"))
        .definition(STATE_MACHINE)
        .role_arn(role_arn)
        .send()
        .await
        .context("Failed to create the state machine")?
        .state_machine_arn;
    Ok(AwsSettings { table, bucket, queue_url, state_machine_arn })
}
