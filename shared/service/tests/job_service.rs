//! The service layer over the real local adapters (SQLite in memory, files in a temp dir).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use heimdall_adapters_local::{FsArtifactStore, SqliteJobStore};
use heimdall_domain::{Caller, JobId, JobRequest, JobStatus};
use heimdall_ports::{JobQueue, JobStore, QueueError};
use heimdall_service::{Catalog, JobService, PluginRegistry, ServiceError, ServiceSettings};
use serde_json::json;
use tokio::sync::Mutex;

const CONFIG: &str = r#"
commands:
  - {name: ping, version: "1", plugin: ping, is_sync: false, tags: [type:ping]}
  - {name: nap, version: "1", plugin: shell, is_sync: false, tags: [type:nap], context: {command: [/bin/sleep, "30"]}}
clusters:
  - {name: local, version: "1"}
"#;

/// A queue that only remembers what was enqueued, so tests deliver messages themselves.
#[derive(Default)]
struct RecordingQueue(Mutex<Vec<JobId>>);

#[async_trait]
impl JobQueue for RecordingQueue {
    async fn enqueue(&self, job: JobId, _plugin: &str) -> Result<(), QueueError> {
        self.0.lock().await.push(job);
        Ok(())
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        Ok(self.0.lock().await.len() as u64)
    }
}

struct Fixture {
    service: Arc<JobService>,
    store: Arc<SqliteJobStore>,
    queue: Arc<RecordingQueue>,
    _dir: tempfile::TempDir,
}

fn fixture_on(store: Arc<SqliteJobStore>, dir: tempfile::TempDir) -> Fixture {
    let plugins = PluginRegistry::new(heimdall_plugins::builtin_plugins());
    let catalog = Catalog::load(CONFIG, "test.yml", &plugins).unwrap();
    let queue = Arc::new(RecordingQueue::default());
    let service = Arc::new(JobService::new(
        Arc::new(catalog),
        plugins,
        store.clone(),
        Arc::new(FsArtifactStore::new(dir.path().join("jobs"))),
        queue.clone(),
        ServiceSettings { work_root: dir.path().join("work"), inline_result_limit: 1 << 20, max_job_seconds: 3600, max_sync_jobs: 2, max_sync_seconds: 600 },
    ));
    Fixture { service, store, queue, _dir: dir }
}

fn fixture() -> Fixture {
    fixture_on(Arc::new(SqliteJobStore::in_memory().unwrap()), tempfile::tempdir().unwrap())
}

fn request(criteria: &str) -> JobRequest {
    serde_json::from_value(json!({"name": "t", "version": "1", "command_criteria": [criteria]})).unwrap()
}

#[tokio::test]
async fn the_same_queue_message_delivered_twice_runs_the_job_once() {
    // GIVEN an async job, queued
    let fixture = fixture();
    let job = fixture.service.submit(&Caller::new("alice"), request("type:ping")).await.unwrap().job;
    assert_eq!(job.status, JobStatus::Accepted);
    assert_eq!(*fixture.queue.0.lock().await, vec![job.id]);

    // WHEN two workers get the same message at once
    let (first, second) = tokio::join!(fixture.service.run_queued(job.id), fixture.service.run_queued(job.id));

    // THEN it ran once: one saw it through, the other found it taken
    let statuses = [first.unwrap().status, second.unwrap().status];
    assert!(statuses.contains(&JobStatus::Succeeded), "{statuses:?}");
    let stored = fixture.store.get(job.id).await.unwrap();
    assert_eq!(stored.status, JobStatus::Succeeded);
    // A late third delivery changes nothing.
    assert_eq!(fixture.service.run_queued(job.id).await.unwrap(), stored);
}

#[tokio::test]
async fn cancel_of_a_running_job_stops_the_plugin_and_ends_canceled() {
    let fixture = fixture();
    let job = fixture.service.submit(&Caller::new("alice"), request("type:nap")).await.unwrap().job;
    let service = Arc::clone(&fixture.service);
    let run = tokio::spawn(async move { service.run_queued(job.id).await });
    while fixture.store.get(job.id).await.unwrap().status != JobStatus::Running {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let answered = fixture.service.cancel(&Caller::new("alice"), job.id).await.unwrap();

    assert_eq!(answered.status, JobStatus::Canceling);
    let ended = tokio::time::timeout(Duration::from_secs(10), run).await.unwrap().unwrap().unwrap();
    assert_eq!(ended.status, JobStatus::Canceled);
    assert_eq!(ended.canceled_by.as_deref(), Some("alice"));
}

#[tokio::test]
async fn cancel_is_refused_to_others_and_for_finished_jobs() {
    let fixture = fixture();
    let job = fixture.service.submit(&Caller::new("alice"), request("type:ping")).await.unwrap().job;
    assert!(matches!(fixture.service.cancel(&Caller::new("bob"), job.id).await, Err(ServiceError::NotFound(_))));
    fixture.service.run_queued(job.id).await.unwrap();
    assert!(matches!(fixture.service.cancel(&Caller::new("alice"), job.id).await, Err(ServiceError::Conflict(_))));
    assert!(matches!(fixture.service.cancel(&Caller::new("alice"), JobId::new()).await, Err(ServiceError::NotFound(_))));
}

#[tokio::test]
async fn recovery_fails_cut_off_jobs_finishes_cancels_and_requeues_waiting_ones_oldest_first() {
    // GIVEN a store left by a stopped server: one job RUNNING, two ACCEPTED
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteJobStore::in_memory().unwrap());
    let before = fixture_on(store.clone(), tempfile::tempdir().unwrap());
    let cut_off = before.service.submit(&Caller::new("alice"), request("type:ping")).await.unwrap().job;
    let waiting_1 = before.service.submit(&Caller::new("alice"), request("type:ping")).await.unwrap().job;
    let waiting_2 = before.service.submit(&Caller::new("alice"), request("type:ping")).await.unwrap().job;
    let change = heimdall_ports::StatusChange::new(JobStatus::Accepted, JobStatus::Running, 1).unwrap();
    store.transition(cut_off.id, &change).await.unwrap();

    // WHEN a new server recovers
    let after = fixture_on(store.clone(), dir);
    let recovery = after.service.recover_after_restart().await.unwrap();

    // THEN
    assert_eq!((recovery.failed, recovery.canceled, recovery.requeued), (1, 0, 2));
    let failed = store.get(cut_off.id).await.unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.error.unwrap().contains("the server stopped while this job was RUNNING"));
    assert_eq!(*after.queue.0.lock().await, vec![waiting_1.id, waiting_2.id]);
}

#[tokio::test]
async fn the_sweep_fails_a_job_no_process_runs_and_leaves_one_this_process_runs() {
    let fixture = fixture();
    // GIVEN a job RUNNING with nobody running it (its process died), and one really running here
    let orphan = fixture.service.submit(&Caller::new("alice"), request("type:ping")).await.unwrap().job;
    let change = heimdall_ports::StatusChange::new(JobStatus::Accepted, JobStatus::Running, heimdall_domain::clock::now_epoch_seconds()).unwrap();
    fixture.store.transition(orphan.id, &change).await.unwrap();
    let live = fixture.service.submit(&Caller::new("alice"), request("type:nap")).await.unwrap().job;
    let service = Arc::clone(&fixture.service);
    tokio::spawn(async move { service.run_queued(live.id).await });
    while fixture.store.get(live.id).await.unwrap().status != JobStatus::Running {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // AND one between attempts, waiting in the queue for a worker (its retry is due)
    let queued_retry = fixture.service.submit(&Caller::new("alice"), request("type:ping")).await.unwrap().job;
    let change = heimdall_ports::StatusChange::new(JobStatus::Accepted, JobStatus::Running, heimdall_domain::clock::now_epoch_seconds()).unwrap();
    let running = fixture.store.transition(queued_retry.id, &change).await.unwrap();
    let next = heimdall_ports::NextAttempt {
        failed: running.attempt_record(running.updated_at, JobStatus::Failed, Some("flaky".into()), Some(1)),
        cluster_id: "local".into(),
        cluster_name: "local".into(),
        starts_at: running.updated_at,
    };
    fixture.store.next_attempt(queued_retry.id, &next).await.unwrap();

    // WHEN the janitor sweeps as if all had been quiet for two minutes
    let now = heimdall_domain::clock::now_epoch_seconds() + 120;
    let sweep = fixture.service.sweep_stuck_jobs(now).await.unwrap();

    // THEN only the orphan is FAILED, saying why
    assert_eq!(sweep.settled.len(), 1, "{sweep:?}");
    assert_eq!(fixture.store.get(queued_retry.id).await.unwrap().status, JobStatus::Running, "a queued retry is not stuck");
    let failed = fixture.store.get(orphan.id).await.unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.error.unwrap().starts_with("no heartbeat for 12"));
    assert_eq!(fixture.store.get(live.id).await.unwrap().status, JobStatus::Running);
    fixture.service.cancel(&Caller::new("alice"), live.id).await.unwrap();
}

#[test]
fn a_command_naming_an_unknown_plugin_is_a_config_error_listing_the_known_ones() {
    let plugins = PluginRegistry::new(heimdall_plugins::builtin_plugins());
    let error = Catalog::load("commands:\n  - {name: q, version: '1', plugin: snowflake}\n", "x.yml", &plugins).unwrap_err();
    assert_eq!(
        error.problems(),
        vec!["commands[0] (id `q`): field `plugin`: unknown plugin `snowflake`; this build has: ping, shell"]
    );
}

#[test]
fn a_process_running_only_some_plugins_keeps_the_other_commands_unchecked_and_checks_its_own() {
    // A plugin Lambda's registry: the ping plugin only, in a deployment that also has shell and snowflake.
    let ping_only = PluginRegistry::running_only(heimdall_plugins::builtin_plugins().into_iter().filter(|plugin| plugin.name() == "ping"));
    let config = "commands:\n  - {name: q, version: '1', plugin: snowflake, context: {anything: 1}}\n  - {name: s, version: '1', plugin: shell, context: {}}\n  - {name: p, version: '1', plugin: ping}\n";
    let catalog = Catalog::load(config, "x.yml", &ping_only).unwrap();
    assert_eq!(catalog.commands().iter().map(|command| command.id.as_str()).collect::<Vec<_>>(), ["q", "s", "p"], "other plugins' commands are kept for routing");

    // Its own plugin's commands are still checked: a sync command of an async-only plugin, say.
    let shell_only = PluginRegistry::running_only(heimdall_plugins::builtin_plugins().into_iter().filter(|plugin| plugin.name() == "shell"));
    let error = Catalog::load(config, "x.yml", &shell_only).unwrap_err();
    assert_eq!(error.problems().len(), 1, "{error}");
    assert!(error.problems()[0].starts_with("commands[1] (id `s`): field `context`: shell command context:"), "{error}");
}

#[test]
fn a_shell_command_without_argv_is_a_config_error_naming_the_context() {
    let plugins = PluginRegistry::new(heimdall_plugins::builtin_plugins());
    let error = Catalog::load("commands:\n  - {name: s, version: '1', plugin: shell, context: {}}\n", "x.yml", &plugins).unwrap_err();
    assert!(error.problems()[0].starts_with("commands[0] (id `s`): field `context`: shell command context:"), "{error}");
}

#[tokio::test]
async fn with_emf_on_each_figure_is_also_an_embedded_metric_format_line() {
    let lines = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink_lines = Arc::clone(&lines);
    let fixture = fixture();
    let service = Arc::try_unwrap(fixture.service).ok().expect("the only reference").with_emf_metrics(Arc::new(move |line| sink_lines.lock().unwrap().push(line)));
    let service = Arc::new(service);
    let job = service.submit(&Caller::new("alice"), request("type:ping")).await.unwrap().job;
    service.run_queued(job.id).await.unwrap();

    let documents: Vec<serde_json::Value> = lines.lock().unwrap().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let named = |metric: &str| documents.iter().find(|d| d.get(metric).is_some()).unwrap_or_else(|| panic!("no {metric} in {documents:?}")).clone();
    let submitted = named("JobsSubmitted");
    assert_eq!((submitted["command"].as_str(), submitted["cluster"].as_str()), (Some("ping"), Some("local")));
    let finished = named("JobsFinished");
    assert_eq!(finished["status"], "SUCCEEDED");
    assert!(finished["JobDuration"].as_f64().is_some(), "{finished}");
    assert_eq!(finished["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["command", "cluster", "status"]]));
}

#[tokio::test]
async fn an_event_delivered_again_for_a_user_at_the_limit_finds_its_job_rather_than_being_refused() {
    // GIVEN a trigger whose user may have one active job, and one event submitted (queued, active)
    let config = r#"
commands:
  - {name: ping, version: "1", plugin: ping, is_sync: false, tags: [type:ping]}
clusters:
  - {name: local, version: "1"}
limits: {active_jobs_per_user: 1}
triggers:
  - {name: nightly, schedule: "0 2 * * *", user: loader, job: {name: nightly, version: "1", command_criteria: [type:ping]}}
"#;
    let dir = tempfile::tempdir().unwrap();
    let plugins = PluginRegistry::new(heimdall_plugins::builtin_plugins());
    let service = Arc::new(JobService::new(
        Arc::new(Catalog::load(config, "t.yml", &plugins).unwrap()),
        plugins,
        Arc::new(SqliteJobStore::in_memory().unwrap()),
        Arc::new(FsArtifactStore::new(dir.path().join("jobs"))),
        Arc::new(RecordingQueue::default()),
        ServiceSettings { work_root: dir.path().join("work"), inline_result_limit: 1 << 20, max_job_seconds: 3600, max_sync_jobs: 2, max_sync_seconds: 600 },
    ));
    let at = |hour: u32| heimdall_domain::trigger_event::TriggerEvent::Scheduled {
        trigger: "nightly".into(),
        time: chrono::DateTime::parse_from_rfc3339(&format!("2026-12-07T{hour:02}:00:00Z")).unwrap().with_timezone(&chrono::Utc),
    };
    let first = service.submit_for_event(&at(2)).await.unwrap();
    assert!(matches!(first[..], [heimdall_service::TriggerOutcome::Submitted { .. }]), "{first:?}");

    // WHEN the same event comes again THEN it is known, not refused (nor retried forever)
    let again = service.submit_for_event(&at(2)).await.unwrap();
    assert!(matches!(again[..], [heimdall_service::TriggerOutcome::AlreadySubmitted { .. }]), "{again:?}");
    // AND another event is refused while the user is at the limit (to be delivered again later)
    assert!(matches!(service.submit_for_event(&at(3)).await, Err(ServiceError::Busy(_))));
}
