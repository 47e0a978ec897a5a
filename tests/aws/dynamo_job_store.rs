//! What only the DynamoDB job store does; what every job store does is the contract in
//! `tests/contract/job_store.rs`.

use heimdall_adapters_aws::DynamoJobStore;
use heimdall_domain::JobStatus;
use heimdall_ports::{JobStore, StatusChange};
use heimdall_tests::emulator::emulator;

use crate::support::{job, unique};

#[tokio::test]
async fn a_finished_job_gets_an_expiry_for_the_tables_ttl_and_a_running_one_none() {
    let config = emulator().sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("jobs");
    DynamoJobStore::create_table(&client, &table).await.unwrap();
    let store = DynamoJobStore::new(client.clone(), &table).with_retention_days(30);
    let job = job("a", "alice", 100);
    store.insert(&job).await.unwrap();
    let expiry = |item: Option<&std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>| {
        item.and_then(|i| i.get("expires_at")).map(|v| v.as_n().unwrap().parse::<i64>().unwrap())
    };
    let key = aws_sdk_dynamodb::types::AttributeValue::S(job.id.to_string());
    let stored = client.get_item().table_name(&table).key("id", key.clone()).send().await.unwrap();
    assert_eq!(expiry(stored.item()), None);

    store.transition(job.id, &StatusChange::new(JobStatus::Accepted, JobStatus::Failed, 1_000).unwrap()).await.unwrap();

    let stored = client.get_item().table_name(&table).key("id", key).send().await.unwrap();
    assert_eq!(expiry(stored.item()), Some(1_000 + 30 * 86_400));
}
