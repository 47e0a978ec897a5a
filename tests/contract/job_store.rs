//! The `JobStore` contract, on `SqliteJobStore` (local) and `DynamoJobStore` (aws): what the
//! service relies on. What one adapter alone does (SQLite's file surviving a reopen, DynamoDB's
//! TTL attribute) is tested beside that adapter.

use std::sync::Arc;

use heimdall_adapters_aws::DynamoJobStore;
use heimdall_adapters_local::SqliteJobStore;
use heimdall_domain::clock::now_epoch_seconds;
use heimdall_domain::idempotency::IdempotencyClaim;
use heimdall_domain::{Job, JobId, JobRequest, JobStatus};
use heimdall_ports::{JobQuery, JobStore, SortDirection, SortField, StatusChange, StoreError, TextFilter};
use heimdall_tests::emulator::emulator;
use serde_json::json;

use crate::contract;

type Store = Arc<dyn JobStore>;

async fn local() -> Store {
    Arc::new(SqliteJobStore::in_memory().unwrap())
}

async fn aws() -> Store {
    let config = emulator().sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("jobs-{}", JobId::new());
    DynamoJobStore::create_table(&client, &table).await.unwrap();
    // Two items per Query call: every listing spans several calls and continuations.
    Arc::new(DynamoJobStore::new(client, table).with_query_batch(2))
}

contract!(
    a_job_round_trips_and_its_id_is_taken_once,
    of_racing_status_changes_exactly_one_wins_and_the_others_see_the_status,
    listings_page_newest_first_and_every_filter_narrows_them_alike,
    jobs_list_by_when_they_last_changed_filtered_and_paged,
    ordered_by_id_jobs_come_in_creation_order_and_page,
    a_forged_cursor_is_a_client_error,
    a_lookup_by_id_honours_the_other_filters,
    a_keyed_insert_stores_the_job_and_its_key_names_it_until_it_expires,
    an_expired_key_names_nothing_and_may_be_claimed_again,
    of_racing_inserts_under_one_key_one_job_is_stored,
    active_jobs_are_counted_per_user_up_to_the_limit_asked,
    ended_jobs_are_found_longest_ended_first_and_deleted,
    a_running_job_takes_heartbeats_and_one_claim_of_its_work,
    text_filters_take_heimdalls_like_patterns_and_exact_ones_stay_exact,
    a_held_job_is_ended_without_a_read_unless_another_writer_moved_it,
    a_small_result_is_recorded_with_the_end_and_read_back_with_the_job,
    what_a_job_cost_is_recorded_with_its_end_whichever_way_it_is_written,
);

fn request(name: &str) -> JobRequest {
    serde_json::from_value(json!({"name": name, "version": "1", "command_criteria": ["type:ping"]})).unwrap()
}

/// A job of `user` in `status`, created at `created_at`.
fn job(user: &str, status: JobStatus, created_at: i64) -> Job {
    let mut job = Job::from_request(request("contract"), user, created_at);
    job.status = status;
    job.command_id = Some("ping-0.0.1".into());
    job
}

/// An ACCEPTED job named `name` of `user`, created at `created_at`, tagged `team:data`.
fn named(name: &str, user: &str, created_at: i64) -> Job {
    let request: JobRequest = serde_json::from_value(json!({"name": name, "version": "1", "command_criteria": ["type:ping"], "tags": ["team:data"]})).unwrap();
    let mut job = Job::from_request(request, user, created_at);
    job.status = JobStatus::Accepted;
    job.command_id = Some("ping-0.0.1".into());
    job
}

async fn all_pages(store: &Store, mut query: JobQuery) -> (Vec<JobId>, usize) {
    let (mut seen, mut pages) = (Vec::new(), 0);
    loop {
        let page = store.list(&query).await.unwrap();
        assert!(page.jobs.len() <= query.limit, "a page holds at most its limit");
        pages += 1;
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return (seen, pages),
        }
    }
}

async fn a_job_round_trips_and_its_id_is_taken_once(store: Store) {
    let job = named("a", "alice", 100);
    store.insert(&job).await.unwrap();
    assert_eq!(store.get(job.id).await.unwrap(), job);
    assert!(matches!(store.insert(&job).await, Err(StoreError::AlreadyExists)));
    assert!(matches!(store.get(JobId::new()).await, Err(StoreError::NotFound)));
}

async fn of_racing_status_changes_exactly_one_wins_and_the_others_see_the_status(store: Store) {
    let job = named("a", "alice", 100);
    store.insert(&job).await.unwrap();
    let claims = (0..8).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.transition(job.id, &StatusChange::new(JobStatus::Accepted, JobStatus::Running, 101).unwrap()).await })
    });
    let results = futures::future::join_all(claims).await;
    assert_eq!(results.iter().filter(|r| r.as_ref().unwrap().is_ok()).count(), 1);
    for result in results {
        if let Err(error) = result.unwrap() {
            assert!(matches!(error, StoreError::Conflict { current: JobStatus::Running }), "{error}");
        }
    }
    let stored = store.get(job.id).await.unwrap();
    assert_eq!((stored.status, stored.started_at), (JobStatus::Running, Some(101)));
}

async fn listings_page_newest_first_and_every_filter_narrows_them_alike(store: Store) {
    // GIVEN 9 jobs of alice (several per second) and 3 of bob
    let mut alice = Vec::new();
    for i in 0..9 {
        let job = named(if i % 3 == 0 { "report" } else { "etl" }, "alice", 1_000 + i / 2);
        store.insert(&job).await.unwrap();
        alice.push(job.id);
    }
    for i in 0..3 {
        store.insert(&named("etl", "bob", 2_000 + i)).await.unwrap();
    }
    // WHEN alice's jobs are read 4 at a time THEN each comes once, newest first, in 3 pages
    let (seen, pages) = all_pages(&store, JobQuery { user: Some("alice".into()), limit: 4, ..JobQuery::default() }).await;
    alice.reverse();
    assert_eq!((seen, pages), (alice, 3));
    let (oldest_first, _) = all_pages(&store, JobQuery { user: Some("bob".into()), direction: SortDirection::Asc, limit: 2, ..JobQuery::default() }).await;
    assert_eq!(oldest_first.len(), 3);

    let all = store.list(&JobQuery { limit: 50, ..JobQuery::default() }).await.unwrap();
    assert_eq!(all.jobs.len(), 12);
    assert!(all.jobs.windows(2).all(|w| w[0].created_at >= w[1].created_at));
    let count = |query: JobQuery| {
        let store = Arc::clone(&store);
        async move { store.list(&JobQuery { limit: 50, ..query }).await.unwrap().jobs.len() }
    };
    assert_eq!(count(JobQuery { name: Some("report".into()), ..JobQuery::default() }).await, 3);
    assert_eq!(count(JobQuery { statuses: vec![JobStatus::Accepted], user: Some("bob".into()), ..JobQuery::default() }).await, 3);
    assert_eq!(count(JobQuery { name: Some("etl".into()), statuses: vec![JobStatus::Accepted], ..JobQuery::default() }).await, 9);
    let narrowed = JobQuery {
        statuses: vec![JobStatus::Accepted, JobStatus::Running],
        tags: vec!["team:data".into()],
        command: Some("ping-0.0.1".into()),
        created_after: Some(1_001),
        created_before: Some(2_001),
        ..JobQuery::default()
    };
    assert_eq!(count(narrowed).await, 8, "alice's jobs from second 1001 on (7) and bob's first (1)");
    assert_eq!(count(JobQuery { tags: vec!["team:web".into()], ..JobQuery::default() }).await, 0);
}

async fn jobs_list_by_when_they_last_changed_filtered_and_paged(store: Store) {
    // Created at 100..105; the oldest changes last, at 500.
    let jobs: Vec<_> = (0..6).map(|i| named("a", if i % 2 == 0 { "alice" } else { "bob" }, 100 + i)).collect();
    for job in &jobs {
        store.insert(job).await.unwrap();
    }
    store.transition(jobs[0].id, &StatusChange::new(JobStatus::Accepted, JobStatus::Running, 500).unwrap()).await.unwrap();
    let by_change = |user: Option<&str>| JobQuery { order_by: SortField::UpdatedAt, user: user.map(TextFilter::from), limit: 2, ..JobQuery::default() };

    // Newest change first: the job changed at 500, then the others newest created first.
    let (seen, _) = all_pages(&store, by_change(None)).await;
    assert_eq!(seen, [0, 5, 4, 3, 2, 1].map(|i| jobs[i].id));
    // Filters apply on this order too: alice's jobs, and a creation time range.
    let (alice, _) = all_pages(&store, by_change(Some("alice"))).await;
    assert_eq!(alice, [0, 4, 2].map(|i| jobs[i].id));
    let created = JobQuery { created_after: Some(102), created_before: Some(104), limit: 10, ..by_change(None) };
    assert_eq!(store.list(&created).await.unwrap().jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [3, 2].map(|i| jobs[i].id));
}

async fn ordered_by_id_jobs_come_in_creation_order_and_page(store: Store) {
    // Ids are UUIDv7, made in the order the jobs are created.
    let jobs: Vec<Job> = (0..5).map(|i| named("a", "alice", 100 + i)).collect();
    for job in &jobs {
        store.insert(job).await.unwrap();
    }
    let newest_first = JobQuery { order_by: SortField::Id, limit: 2, ..JobQuery::default() };
    let (seen, pages) = all_pages(&store, newest_first.clone()).await;
    assert_eq!((seen, pages), (jobs.iter().rev().map(|j| j.id).collect::<Vec<_>>(), 3));
    let (oldest_first, _) = all_pages(&store, JobQuery { direction: SortDirection::Asc, ..newest_first }).await;
    assert_eq!(oldest_first, jobs.iter().map(|j| j.id).collect::<Vec<_>>());
}

async fn a_forged_cursor_is_a_client_error(store: Store) {
    store.insert(&named("a", "alice", 100)).await.unwrap();
    for order_by in [SortField::CreatedAt, SortField::UpdatedAt, SortField::Id] {
        let forged = JobQuery { cursor: Some("nonsense".into()), order_by, limit: 5, ..JobQuery::default() };
        assert!(matches!(store.list(&forged).await, Err(StoreError::InvalidCursor(_))), "{order_by:?}");
    }
}

async fn a_lookup_by_id_honours_the_other_filters(store: Store) {
    let job = named("a", "alice", 100);
    store.insert(&job).await.unwrap();
    let by_id = |user: &str| JobQuery { id: Some(job.id), user: Some(user.into()), limit: 5, ..JobQuery::default() };
    assert_eq!(store.list(&by_id("alice")).await.unwrap().jobs.len(), 1);
    assert!(store.list(&by_id("bob")).await.unwrap().jobs.is_empty());
}

fn claim(user: &str, key: &str, name: &str) -> IdempotencyClaim {
    IdempotencyClaim::new(user, key, &request(name), now_epoch_seconds()).unwrap()
}

async fn a_keyed_insert_stores_the_job_and_its_key_names_it_until_it_expires(store: Store) {
    let first = job("alice", JobStatus::Accepted, 100);
    let key = claim("alice", "k-1", "a");
    assert_eq!(store.find_key(&key).await.unwrap(), None);
    store.insert_keyed(&first, &key).await.unwrap();
    assert_eq!(store.get(first.id).await.unwrap(), first);
    assert_eq!(store.find_key(&key).await.unwrap(), Some((first.id, key.fingerprint.clone())));

    // The same key again, whatever the job: refused, naming the first job and its fingerprint.
    let second = job("alice", JobStatus::Accepted, 101);
    let again = store.insert_keyed(&second, &claim("alice", "k-1", "b")).await.unwrap_err();
    assert!(matches!(&again, StoreError::KeyTaken { job, fingerprint } if *job == first.id && *fingerprint == key.fingerprint), "{again:?}");
    assert!(matches!(store.get(second.id).await, Err(StoreError::NotFound)), "nothing is stored under a taken key");

    // Keys are per user.
    let bobs = job("bob", JobStatus::Accepted, 102);
    store.insert_keyed(&bobs, &claim("bob", "k-1", "a")).await.unwrap();
    assert_eq!(store.find_key(&claim("bob", "k-1", "a")).await.unwrap().map(|(id, _)| id), Some(bobs.id));
}

async fn an_expired_key_names_nothing_and_may_be_claimed_again(store: Store) {
    let mut expired = claim("alice", "k-old", "a");
    expired.expires_at = now_epoch_seconds() - 1;
    let first = job("alice", JobStatus::Accepted, 100);
    store.insert_keyed(&first, &expired).await.unwrap();
    assert_eq!(store.find_key(&expired).await.unwrap(), None);
    let fresh = claim("alice", "k-old", "b");
    let second = job("alice", JobStatus::Accepted, 101);
    store.insert_keyed(&second, &fresh).await.unwrap();
    assert_eq!(store.find_key(&fresh).await.unwrap(), Some((second.id, fresh.fingerprint.clone())));
}

async fn of_racing_inserts_under_one_key_one_job_is_stored(store: Store) {
    let key = claim("alice", "k-race", "a");
    let attempts = (0..8).map(|i| {
        let (store, key) = (Arc::clone(&store), key.clone());
        tokio::spawn(async move {
            let job = job("alice", JobStatus::Accepted, 100 + i);
            (job.id, store.insert_keyed(&job, &key).await)
        })
    });
    let results: Vec<(JobId, Result<(), StoreError>)> = futures::future::join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    let winners: Vec<JobId> = results.iter().filter(|(_, r)| r.is_ok()).map(|(id, _)| *id).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (id, result) in &results {
        match result {
            Ok(()) => assert!(store.get(*id).await.is_ok()),
            Err(StoreError::KeyTaken { job, .. }) => {
                assert_eq!(*job, winners[0]);
                assert!(matches!(store.get(*id).await, Err(StoreError::NotFound)));
            }
            Err(other) => panic!("a racing insert failed otherwise: {other}"),
        }
    }
}

async fn active_jobs_are_counted_per_user_up_to_the_limit_asked(store: Store) {
    let mut alices = Vec::new();
    for (i, status) in [JobStatus::New, JobStatus::Accepted, JobStatus::Accepted].into_iter().enumerate() {
        let job = job("alice", status, 100 + i as i64);
        store.insert(&job).await.unwrap();
        alices.push(job);
    }
    store.insert(&job("alice", JobStatus::Failed, 90)).await.unwrap();
    store.insert(&job("bob", JobStatus::Accepted, 100)).await.unwrap();
    assert_eq!(store.count_active("alice", 10).await.unwrap(), 3);
    assert_eq!(store.count_active("alice", 2).await.unwrap(), 2, "counted no further than asked");
    assert_eq!(store.count_active("bob", 10).await.unwrap(), 1);
    assert_eq!(store.count_active("carol", 10).await.unwrap(), 0);

    // Running and canceling jobs count; an ended one no longer does.
    let running = store.transition(alices[1].id, &StatusChange::new(JobStatus::Accepted, JobStatus::Running, 110).unwrap()).await.unwrap();
    let canceling = store.transition(running.id, &StatusChange::new(JobStatus::Running, JobStatus::Canceling, 111).unwrap()).await.unwrap();
    assert_eq!(store.count_active("alice", 10).await.unwrap(), 3);
    store.transition(canceling.id, &StatusChange::new(JobStatus::Canceling, JobStatus::Canceled, 112).unwrap()).await.unwrap();
    store.transition(alices[2].id, &StatusChange::new(JobStatus::Accepted, JobStatus::Failed, 112).unwrap()).await.unwrap();
    assert_eq!(store.count_active("alice", 10).await.unwrap(), 1);
}

async fn ended_jobs_are_found_longest_ended_first_and_deleted(store: Store) {
    let end = |job: &Job, at: i64| StatusChange::new(job.status, JobStatus::Succeeded, at).unwrap();
    let mut ids = Vec::new();
    for ended_at in [300, 100, 200] {
        let mut running = job("alice", JobStatus::Running, 50);
        running.started_at = Some(50);
        store.insert(&running).await.unwrap();
        store.transition(running.id, &end(&running, ended_at)).await.unwrap();
        ids.push(running.id);
    }
    let (ended_300, ended_100, ended_200) = (ids[0], ids[1], ids[2]);
    let still_running = job("alice", JobStatus::Running, 10);
    store.insert(&still_running).await.unwrap();

    assert_eq!(store.ended_before(250, 10).await.unwrap(), vec![ended_100, ended_200]);
    assert_eq!(store.ended_before(1_000, 1).await.unwrap(), vec![ended_100], "at most the limit, longest ended first");
    assert_eq!(store.ended_before(100, 10).await.unwrap(), Vec::<JobId>::new(), "before, not at");

    store.delete(ended_100).await.unwrap();
    assert!(matches!(store.get(ended_100).await, Err(StoreError::NotFound)));
    store.delete(ended_100).await.unwrap();
    store.delete(JobId::new()).await.unwrap();
    assert_eq!(store.ended_before(1_000, 10).await.unwrap(), vec![ended_200, ended_300]);
    assert!(store.get(still_running.id).await.is_ok());
}

async fn a_running_job_takes_heartbeats_and_one_claim_of_its_work(store: Store) {
    let queued = job("alice", JobStatus::Accepted, 100);
    store.insert(&queued).await.unwrap();
    assert!(matches!(store.heartbeat(queued.id, 101).await, Err(StoreError::Conflict { current: JobStatus::Accepted })));
    assert!(matches!(store.claim_work_start(queued.id, 101).await, Err(StoreError::Conflict { current: JobStatus::Accepted })));
    assert!(matches!(store.heartbeat(JobId::new(), 101).await, Err(StoreError::NotFound)));

    store.transition(queued.id, &StatusChange::new(JobStatus::Accepted, JobStatus::Running, 102).unwrap()).await.unwrap();
    store.heartbeat(queued.id, 110).await.unwrap();
    assert!(store.claim_work_start(queued.id, 111).await.unwrap(), "the first claim wins");
    assert!(!store.claim_work_start(queued.id, 112).await.unwrap(), "a retried step finds it claimed");
    store.heartbeat(queued.id, 120).await.unwrap();
    let running = store.get(queued.id).await.unwrap();
    assert_eq!((running.heartbeat_at, running.work_started_at), (Some(120), Some(111)));

    // Both survive the next status change, and an ended job takes no more beats.
    let ended = store.transition(queued.id, &StatusChange::new(JobStatus::Running, JobStatus::Succeeded, 130).unwrap()).await.unwrap();
    assert_eq!((ended.heartbeat_at, ended.work_started_at), (Some(120), Some(111)));
    assert_eq!(store.get(queued.id).await.unwrap(), ended);
    assert!(matches!(store.heartbeat(queued.id, 131).await, Err(StoreError::Conflict { current: JobStatus::Succeeded })));
}

async fn text_filters_take_heimdalls_like_patterns_and_exact_ones_stay_exact(store: Store) {
    let jobs = [
        named("ping-1", "test_user", 1_000),
        named("ping-22", "test_user", 1_001),
        named("Ping-3", "testXuser", 1_002),
        named("nightly-ping", "alice", 1_003),
        named("star*ping", "alice", 1_004),
    ];
    for job in &jobs {
        store.insert(job).await.unwrap();
    }
    let names = |page: &[JobId]| -> Vec<String> {
        let mut names: Vec<String> = page.iter().map(|id| jobs.iter().find(|j| j.id == *id).unwrap().name.clone()).collect();
        names.sort();
        names
    };
    let listed = |query: JobQuery| {
        let store = store.clone();
        async move { all_pages(&store, JobQuery { limit: 2, ..query }).await.0 }
    };

    let prefix = listed(JobQuery { name: Some(TextFilter::from_client("ping%")), ..Default::default() }).await;
    assert_eq!(names(&prefix), ["ping-1", "ping-22"], "`%` any run; case counts, as in Heimdall's SQL like");
    let inside = listed(JobQuery { name: Some(TextFilter::from_client("%ping%")), ..Default::default() }).await;
    assert_eq!(names(&inside), ["nightly-ping", "ping-1", "ping-22", "star*ping"]);
    let one = listed(JobQuery { name: Some(TextFilter::from_client("ping-_")), ..Default::default() }).await;
    assert_eq!(names(&one), ["ping-1"], "`_` exactly one character");
    let literal_star = listed(JobQuery { name: Some(TextFilter::from_client("star*%")), ..Default::default() }).await;
    assert_eq!(names(&literal_star), ["star*ping"], "other characters match themselves");
    let user_pattern = listed(JobQuery { user: Some(TextFilter::from_client("test_user")), ..Default::default() }).await;
    assert_eq!(names(&user_pattern), ["Ping-3", "ping-1", "ping-22"], "a client's `_` is a wildcard");
    let user_exact = listed(JobQuery { user: Some(TextFilter::Exact("test_user".into())), name: Some(TextFilter::from_client("%2%")), ..Default::default() }).await;
    assert_eq!(names(&user_exact), ["ping-22"], "the platform's own user filter is exact, with a pattern beside it");
    let command = listed(JobQuery { command: Some(TextFilter::from_client("ping-%")), name: Some(TextFilter::from_client("n%")), ..Default::default() }).await;
    assert_eq!(names(&command), ["nightly-ping"], "command id or name, by pattern");
}

async fn a_held_job_is_ended_without_a_read_unless_another_writer_moved_it(store: Store) {
    let held = job("alice", JobStatus::Running, 1_000);
    store.insert(&held).await.unwrap();
    let succeeded = StatusChange::new(JobStatus::Running, JobStatus::Succeeded, 1_005).unwrap().with_exit_code(Some(0));

    let ended = store.transition_held(&held, &succeeded).await.unwrap();

    assert_eq!((ended.status, ended.finished_at, ended.exit_code), (JobStatus::Succeeded, Some(1_005), Some(0)));
    assert_eq!(store.get(held.id).await.unwrap(), ended, "stored as answered");
    assert!(matches!(store.transition_held(&held, &succeeded).await, Err(StoreError::Conflict { current: JobStatus::Succeeded })), "written once");

    // Another writer moved it (a cancel): the held job's end is refused, the cancel stands.
    let canceled = job("alice", JobStatus::Running, 1_010);
    store.insert(&canceled).await.unwrap();
    let cancel = StatusChange::new(JobStatus::Running, JobStatus::Canceling, 1_011).unwrap();
    store.transition(canceled.id, &cancel).await.unwrap();
    assert!(matches!(store.transition_held(&canceled, &succeeded).await, Err(StoreError::Conflict { current: JobStatus::Canceling })));
    assert_eq!(store.get(canceled.id).await.unwrap().status, JobStatus::Canceling);
}

async fn what_a_job_cost_is_recorded_with_its_end_whichever_way_it_is_written(store: Store) {
    let held = job("alice", JobStatus::Running, 1_000);
    store.insert(&held).await.unwrap();
    assert_eq!(store.get(held.id).await.unwrap().cost_usd, None);
    let priced = StatusChange::new(JobStatus::Running, JobStatus::Succeeded, 1_001).unwrap().with_cost_usd(Some(0.000_012_73));
    let ended = store.transition_held(&held, &priced).await.unwrap();
    assert_eq!(ended.cost_usd, Some(0.000_012_73));
    assert_eq!(store.get(held.id).await.unwrap(), ended);

    let read = job("alice", JobStatus::Running, 1_002);
    store.insert(&read).await.unwrap();
    assert_eq!(store.transition(read.id, &priced).await.unwrap().cost_usd, Some(0.000_012_73));
    assert_eq!(store.get(read.id).await.unwrap().cost_usd, Some(0.000_012_73));
}

async fn a_small_result_is_recorded_with_the_end_and_read_back_with_the_job(store: Store) {
    let result = r#"{"columns":[{"name":"message","type":"string"}],"data":[["Hello, alice!"]]}"#;
    let held = job("alice", JobStatus::Running, 1_000);
    store.insert(&held).await.unwrap();
    assert_eq!(store.get_with_result(held.id).await.unwrap(), (held.clone(), None), "none before the end");
    let succeeded = StatusChange::new(JobStatus::Running, JobStatus::Succeeded, 1_005).unwrap().with_result(Some(result.into()));
    let ended = store.transition_held(&held, &succeeded).await.unwrap();
    assert_eq!(store.get_with_result(held.id).await.unwrap(), (ended.clone(), Some(result.to_owned())));
    assert_eq!(store.get(held.id).await.unwrap(), ended, "the job itself is unchanged by its result");

    // The same through a change written after reading the job.
    let read = job("alice", JobStatus::Running, 1_010);
    store.insert(&read).await.unwrap();
    store.transition(read.id, &succeeded).await.unwrap();
    assert_eq!(store.get_with_result(read.id).await.unwrap().1.as_deref(), Some(result));

    // The largest the store says it keeps is kept whole.
    let limit = store.recorded_result_limit();
    assert!((1..=heimdall_domain::job::MAX_RECORDED_RESULT_BYTES).contains(&limit), "{limit}");
    let largest = format!(r#"{{"columns":[{{"name":"s","type":"string"}}],"data":[["{}"]]}}"#, "x".repeat(limit - 56));
    assert_eq!(largest.len(), limit);
    let big = job("alice", JobStatus::Running, 1_015);
    store.insert(&big).await.unwrap();
    let ended_big = StatusChange::new(JobStatus::Running, JobStatus::Succeeded, 1_016).unwrap().with_result(Some(largest.as_str().into()));
    store.transition_held(&big, &ended_big).await.unwrap();
    assert_eq!(store.get_with_result(big.id).await.unwrap().1, Some(largest));

    // An end without a result records none; a missing job is NotFound; deleting takes it away.
    let failed = job("alice", JobStatus::Running, 1_020);
    store.insert(&failed).await.unwrap();
    store.transition(failed.id, &StatusChange::new(JobStatus::Running, JobStatus::Failed, 1_021).unwrap()).await.unwrap();
    assert_eq!(store.get_with_result(failed.id).await.unwrap().1, None);
    store.delete(held.id).await.unwrap();
    assert!(matches!(store.get_with_result(held.id).await, Err(StoreError::NotFound)));
}
