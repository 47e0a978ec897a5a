//! The `JobQueue` contract, on `InProcessJobQueue` (local) and `SqsJobQueue` (aws): what is
//! enqueued reaches the consumer, each job once per enqueue, with its id; the depth counts what
//! waits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use heimdall_adapters_aws::{QueuedJob, SqsJobQueue};
use heimdall_adapters_local::InProcessJobQueue;
use heimdall_adapters_local::in_process_queue::QueueReceiver;
use heimdall_domain::JobId;
use heimdall_ports::JobQueue;
use heimdall_tests::emulator::emulator;

use crate::contract;

/// The consumer's end of a queue, as its adapter delivers.
#[async_trait]
trait Consumer: Send {
    /// The next `count` job ids delivered, waiting `wait` at most.
    async fn receive(&mut self, count: usize, wait: Duration) -> Vec<JobId>;
}

type Queue = (Arc<dyn JobQueue>, Box<dyn Consumer>);

#[async_trait]
impl Consumer for QueueReceiver {
    async fn receive(&mut self, count: usize, wait: Duration) -> Vec<JobId> {
        let mut ids = Vec::new();
        while ids.len() < count {
            match tokio::time::timeout(wait, self.next()).await {
                Ok(Some(id)) => ids.push(id),
                _ => break,
            }
        }
        ids
    }
}

struct SqsConsumer {
    client: aws_sdk_sqs::Client,
    url: String,
}

#[async_trait]
impl Consumer for SqsConsumer {
    async fn receive(&mut self, count: usize, wait: Duration) -> Vec<JobId> {
        let mut ids = Vec::new();
        let deadline = std::time::Instant::now() + wait;
        while ids.len() < count && std::time::Instant::now() < deadline {
            let received = self.client.receive_message().queue_url(&self.url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
            for message in received.messages() {
                ids.push(QueuedJob::from_body(message.body().unwrap()).unwrap().job_id);
                self.client.delete_message().queue_url(&self.url).receipt_handle(message.receipt_handle().unwrap()).send().await.unwrap();
            }
        }
        ids
    }
}

async fn local() -> Queue {
    let (queue, receiver) = InProcessJobQueue::new();
    (Arc::new(queue), Box::new(receiver))
}

async fn aws() -> Queue {
    let client = aws_sdk_sqs::Client::new(&emulator().sdk_config().await);
    let url = client.create_queue().queue_name(format!("jobs-{}", JobId::new())).send().await.unwrap().queue_url.unwrap();
    (Arc::new(SqsJobQueue::new(client.clone(), &url)), Box::new(SqsConsumer { client, url }))
}

contract!(every_enqueued_job_reaches_the_consumer_once_with_its_id, the_depth_counts_jobs_enqueued_and_not_yet_taken);

async fn the_depth_counts_jobs_enqueued_and_not_yet_taken((queue, mut consumer): Queue) {
    assert_eq!(queue.depth().await.unwrap(), 0);
    for _ in 0..3 {
        queue.enqueue(JobId::new(), "shell").await.unwrap();
    }
    assert_eq!(queue.depth().await.unwrap(), 3);
    assert_eq!(consumer.receive(3, Duration::from_secs(10)).await.len(), 3);
    assert_eq!(queue.depth().await.unwrap(), 0, "taken jobs no longer wait");
}

async fn every_enqueued_job_reaches_the_consumer_once_with_its_id((queue, mut consumer): Queue) {
    let ids: Vec<JobId> = (0..12).map(|_| JobId::new()).collect();
    for id in &ids {
        queue.enqueue(*id, "shell").await.unwrap();
    }
    let mut received = consumer.receive(ids.len(), Duration::from_secs(10)).await;
    received.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(received, expected);
    assert!(consumer.receive(1, Duration::from_secs(1)).await.is_empty(), "nothing more arrives");
}
