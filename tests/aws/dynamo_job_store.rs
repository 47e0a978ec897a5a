use heimdall_adapters_aws::DynamoJobStore;
use heimdall_domain::{JobId, JobStatus};
use heimdall_ports::{JobQuery, JobStore, StatusChange, StoreError};
use heimdall_tests::emulator::emulator;

use crate::support::{job, unique};

async fn store() -> DynamoJobStore {
    let config = emulator().sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("jobs");
    DynamoJobStore::create_table(&client, &table).await.unwrap();
    DynamoJobStore::new(client, table)
}

#[tokio::test]
async fn a_job_round_trips_and_ids_are_unique() {
    let store = store().await;
    let job = job("a", "alice", 100);
    store.insert(&job).await.unwrap();
    assert_eq!(store.get(job.id).await.unwrap(), job);
    assert!(matches!(store.insert(&job).await, Err(StoreError::AlreadyExists)));
    assert!(matches!(store.get(JobId::new()).await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn of_many_racing_status_changes_exactly_one_wins_and_the_others_see_the_status() {
    let store = store().await;
    let job = job("a", "alice", 100);
    store.insert(&job).await.unwrap();

    let claims = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let change = StatusChange::new(JobStatus::Accepted, JobStatus::Running, 101).unwrap();
            store.transition(job.id, &change).await
        })
    });
    let results = futures::future::join_all(claims).await;

    let wins = results.iter().filter(|r| r.as_ref().unwrap().is_ok()).count();
    assert_eq!(wins, 1);
    for result in results {
        if let Err(error) = result.unwrap() {
            assert!(matches!(error, StoreError::Conflict { current: JobStatus::Running }), "{error}");
        }
    }
    let stored = store.get(job.id).await.unwrap();
    assert_eq!((stored.status, stored.started_at), (JobStatus::Running, Some(101)));
}

#[tokio::test]
async fn listings_page_newest_first_over_several_pages_through_every_index() {
    // GIVEN 9 jobs of alice (several per second) and 3 of bob; DynamoDB reads 2 items per call,
    // so every page spans several Query calls and LastEvaluatedKey continuations.
    let store = store().await.with_query_batch(2);
    let mut alice = Vec::new();
    for i in 0..9 {
        let job = job(if i % 3 == 0 { "report" } else { "etl" }, "alice", 1_000 + i / 2);
        store.insert(&job).await.unwrap();
        alice.push(job.id);
    }
    for i in 0..3 {
        store.insert(&job("etl", "bob", 2_000 + i)).await.unwrap();
    }

    // WHEN alice's jobs are read 4 at a time
    let mut query = JobQuery { user: Some("alice".into()), limit: 4, ..JobQuery::default() };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.list(&query).await.unwrap();
        pages += 1;
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }

    // THEN each once, newest first, in 3 pages
    alice.reverse();
    assert_eq!(seen, alice);
    assert_eq!(pages, 3);

    let all = store.list(&JobQuery { limit: 50, ..JobQuery::default() }).await.unwrap();
    assert_eq!(all.jobs.len(), 12);
    assert!(all.jobs.windows(2).all(|w| w[0].created_at >= w[1].created_at));
    let reports = store.list(&JobQuery { name: Some("report".into()), limit: 50, ..JobQuery::default() }).await.unwrap();
    assert_eq!(reports.jobs.len(), 3);
    let accepted = store
        .list(&JobQuery { statuses: vec![JobStatus::Accepted], user: Some("bob".into()), limit: 50, ..JobQuery::default() })
        .await
        .unwrap();
    assert_eq!(accepted.jobs.len(), 3);
    let filtered = store
        .list(&JobQuery {
            statuses: vec![JobStatus::Accepted, JobStatus::Running],
            tags: vec!["team:data".into()],
            command: Some("ping-0.0.1".into()),
            created_after: Some(1_001),
            created_before: Some(2_001),
            limit: 50,
            ..JobQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(filtered.jobs.len(), 8, "alice's jobs from second 1001 on (7) and bob's first (1)");
}

#[tokio::test]
async fn a_forged_cursor_and_an_unsupported_order_are_client_errors() {
    let store = store().await;
    let forged = JobQuery { cursor: Some("nonsense".into()), limit: 5, ..JobQuery::default() };
    assert!(matches!(store.list(&forged).await, Err(StoreError::InvalidCursor(_))));
    let by_id = JobQuery { order_by: heimdall_ports::SortField::Id, limit: 5, ..JobQuery::default() };
    assert!(matches!(store.list(&by_id).await, Err(StoreError::UnsupportedQuery(_))));
}

#[tokio::test]
async fn jobs_list_by_when_they_last_changed_filtered_and_paged() {
    let store = store().await;
    // Created at 100..105; the oldest changes last, at 500.
    let jobs: Vec<_> = (0..6).map(|i| job("a", if i % 2 == 0 { "alice" } else { "bob" }, 100 + i)).collect();
    for job in &jobs {
        store.insert(job).await.unwrap();
    }
    let change = StatusChange::new(JobStatus::Accepted, JobStatus::Running, 500).unwrap();
    store.transition(jobs[0].id, &change).await.unwrap();

    let query = |cursor: Option<String>, user: Option<&str>| JobQuery {
        order_by: heimdall_ports::SortField::UpdatedAt,
        user: user.map(str::to_owned),
        limit: 2,
        cursor,
        ..JobQuery::default()
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list(&query(cursor.clone(), None)).await.unwrap();
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    // Newest change first: the job changed at 500, then the others newest created first.
    let expected: Vec<_> = [0, 5, 4, 3, 2, 1].iter().map(|&i| jobs[i].id).collect();
    assert_eq!(seen, expected);
    // Filters apply on this index too: alice's jobs, and a creation time range.
    let alice = store.list(&JobQuery { limit: 10, ..query(None, Some("alice")) }).await.unwrap();
    assert_eq!(alice.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [0, 4, 2].map(|i| jobs[i].id));
    let created = JobQuery { created_after: Some(102), created_before: Some(104), limit: 10, ..query(None, None) };
    assert_eq!(store.list(&created).await.unwrap().jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [3, 2].map(|i| jobs[i].id));
}

#[tokio::test]
async fn a_lookup_by_id_honours_the_other_filters() {
    let store = store().await;
    let job = job("a", "alice", 100);
    store.insert(&job).await.unwrap();
    let by_id = |user: &str| JobQuery { id: Some(job.id), user: Some(user.into()), limit: 5, ..JobQuery::default() };
    assert_eq!(store.list(&by_id("alice")).await.unwrap().jobs.len(), 1);
    assert!(store.list(&by_id("bob")).await.unwrap().jobs.is_empty());
}

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
