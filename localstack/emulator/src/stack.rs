use anyhow::Context;
use aws_sdk_sqs::types::QueueAttributeName;
use heimdall_adapters_aws::{AwsSettings, DynamoCatalogStore, DynamoJobStore, s3_client};

/// The async job state machine, as deployed.
pub const STATE_MACHINE: &str = include_str!("../../../statemachines/async-job.asl.json");
/// How many deliveries a queue message gets before it goes to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// Creates the platform's resources named `<prefix>-…` and answers where they are: the jobs
/// and catalog tables, the artifacts bucket, the jobs queue with its dead-letter queue, and the state machine
/// (executing as `role_arn`).
pub async fn create_stack(sdk: &aws_config::SdkConfig, prefix: &str, role_arn: &str) -> anyhow::Result<AwsSettings> {
    let table = format!("{prefix}-jobs");
    let catalog_table = format!("{prefix}-catalog");
    let bucket = format!("{prefix}-artifacts");
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    DynamoJobStore::create_table(&dynamodb, &table).await.with_context(|| format!("Failed to create the table {table}"))?;
    DynamoCatalogStore::create_table(&dynamodb, &catalog_table).await.with_context(|| format!("Failed to create the table {catalog_table}"))?;
    s3_client(sdk)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .with_context(|| format!("Failed to create the bucket {bucket}"))?;
    // Longer than the dispatcher's own timeout, as Lambda event sources require.
    let jobs_queue = create_queue_with_dead_letters(sdk, &format!("{prefix}-jobs"), 180).await?;
    let state_machine_arn = aws_sdk_sfn::Client::new(sdk)
        .create_state_machine()
        .name(format!("{prefix}-async-job"))
        .definition(STATE_MACHINE)
        .role_arn(role_arn)
        .send()
        .await
        .context("Failed to create the state machine")?
        .state_machine_arn;
    Ok(AwsSettings { table, catalog_table, bucket, queue_url: jobs_queue.url, state_machine_arn })
}

/// A queue's address.
#[derive(Debug, Clone)]
pub struct Queue {
    pub url: String,
    pub arn: String,
}

/// The events queue (`<prefix>-events`, with its dead-letter queue): where EventBridge rules,
/// S3 notifications and schedules send what fires triggers, for the events function.
pub async fn create_events_queue(sdk: &aws_config::SdkConfig, prefix: &str) -> anyhow::Result<Queue> {
    create_queue_with_dead_letters(sdk, &format!("{prefix}-events"), 720).await
}

/// The dead-letter queue of the queue `name`.
pub fn dead_letter_queue_name(name: &str) -> String {
    format!("{name}-dlq")
}

/// `name` with a redrive to its dead-letter queue after `MAX_RECEIVE_COUNT` deliveries.
async fn create_queue_with_dead_letters(sdk: &aws_config::SdkConfig, name: &str, visibility_seconds: u32) -> anyhow::Result<Queue> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dead_letters = sqs
        .create_queue()
        .queue_name(dead_letter_queue_name(name))
        .send()
        .await
        .with_context(|| format!("Failed to create the dead-letter queue of {name}"))?
        .queue_url
        .context("no dead-letter queue URL")?;
    let dead_letter_arn = queue_arn(&sqs, &dead_letters).await?;
    let redrive = serde_json::json!({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVE_COUNT.to_string()});
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_seconds.to_string())
        .send()
        .await
        .with_context(|| format!("Failed to create the queue {name}"))?
        .queue_url
        .with_context(|| format!("no URL for the queue {name}"))?;
    let arn = queue_arn(&sqs, &url).await?;
    Ok(Queue { url, arn })
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("Failed to read the ARN of {url}"))?
        .attributes
        .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
        .with_context(|| format!("no ARN for {url}"))
}

#[cfg(test)]
mod tests {
    use super::STATE_MACHINE;

    #[test]
    fn every_task_state_of_the_state_machine_has_a_catch_so_no_failure_leaves_the_job_unsettled() {
        let definition: serde_json::Value = serde_json::from_str(STATE_MACHINE).unwrap();
        let states = definition["States"].as_object().unwrap();
        let tasks: Vec<&String> = states.iter().filter(|(_, state)| state["Type"] == "Task").map(|(name, _)| name).collect();
        assert!(tasks.len() >= 4, "Submit, Poll, Finalize, Fail: {tasks:?}");
        for name in tasks {
            let catches = states[name]["Catch"].as_array().unwrap_or_else(|| panic!("Task `{name}` has no Catch"));
            assert!(catches.iter().any(|c| c["ErrorEquals"] == serde_json::json!(["States.ALL"])), "Task `{name}` does not catch States.ALL");
            for catch in catches {
                let next = catch["Next"].as_str().unwrap();
                assert!(states.contains_key(next), "`{name}` catches into `{next}`, which is not a state");
            }
        }
    }
}
