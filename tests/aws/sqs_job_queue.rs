use heimdall_adapters_aws::{QueuedJob, SqsJobQueue};
use heimdall_domain::JobId;
use heimdall_ports::JobQueue;
use heimdall_tests::emulator::emulator;

use crate::support::unique;

#[tokio::test]
async fn an_enqueued_job_arrives_with_its_id_and_plugin_in_its_body_and_its_id_as_attribute() {
    let config = emulator().sdk_config().await;
    let client = aws_sdk_sqs::Client::new(&config);
    let queue_url = client.create_queue().queue_name(unique("jobs")).send().await.unwrap().queue_url.unwrap();
    let queue = SqsJobQueue::new(client.clone(), &queue_url);
    let job = JobId::new();

    queue.enqueue(job, "spark").await.unwrap();

    let received = client
        .receive_message()
        .queue_url(&queue_url)
        .message_attribute_names("All")
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let message = &received.messages()[0];
    let queued = QueuedJob::from_body(message.body().unwrap()).unwrap();
    assert_eq!(queued, QueuedJob { job_id: job, plugin: Some("spark".into()) });
    // A message of the earlier form, the bare id, still reads.
    assert_eq!(QueuedJob::from_body(&format!(" {job}\n")).unwrap(), QueuedJob { job_id: job, plugin: None });
    assert!(QueuedJob::from_body("not a job").is_err());
    let attribute = message.message_attributes().unwrap().get("job_id").unwrap();
    assert_eq!(attribute.string_value(), Some(job.to_string().as_str()));
}

#[tokio::test]
async fn a_missing_queue_is_an_error_not_a_panic() {
    let config = emulator().sdk_config().await;
    let queue = SqsJobQueue::new(aws_sdk_sqs::Client::new(&config), format!("{}/123456789012/no-such-queue", emulator().endpoint));
    let error = queue.enqueue(JobId::new(), "shell").await.unwrap_err();
    assert!(error.to_string().contains("SendMessage"), "{error}");
}
