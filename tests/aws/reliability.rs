//! Reliability on the serverless path, through the api function over DynamoDB, S3 and SQS on
//! the emulator: idempotent submit, the active-jobs limit, a sync job's time limit, and jobs
//! whose function, execution or queue message was lost settled by the janitor and by events.

use std::time::{Duration, Instant};

use heimdall_domain::{JobId, JobStatus};
use heimdall_tests::emulator::emulator;
use serde_json::{Value, json};

use crate::serverless_stack::ServerlessStack;

fn request(name: &str, criteria: &str, is_sync: bool) -> Value {
    json!({"name": name, "version": "1", "is_sync": is_sync, "command_criteria": [criteria], "context": {}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sent_again_with_its_key_answers_the_first_job_and_queues_once() {
    let stack = ServerlessStack::create().await;
    let key = [("Idempotency-Key", "orders-2026-12-07")];
    let body = json!({"name": "load", "version": "1", "command_criteria": ["shell:echo"], "context": {"arguments": ["x"]}});

    let (status, headers, first) = stack.api_call_with_headers("alice", "POST", "/api/v1/job", Some(body.clone()), &key).await;
    assert_eq!(status, 200, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    let (status, headers, again) = stack.api_call_with_headers("alice", "POST", "/api/v1/job", Some(body.clone()), &key).await;

    assert_eq!(status, 200, "{again}");
    assert_eq!(headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(again["id"], first["id"]);
    let queued = stack.receive_as_sqs_event().await;
    assert_eq!(queued.records.len(), 1, "one job, queued once");
    let (_, listed) = stack.api_json("alice", "GET", "/api/v1/jobs?name=load", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");

    // The same key with another request: 409 naming the code; bob's key of the same name is his.
    let other = json!({"name": "load", "version": "2", "command_criteria": ["shell:echo"]});
    let (status, _, conflict) = stack.api_call_with_headers("alice", "POST", "/api/v1/job", Some(other), &key).await;
    assert_eq!((status, conflict["code"].as_str()), (409, Some("IDEMPOTENCY_KEY_REUSED")), "{conflict}");
    let (status, _, bobs) = stack.api_call_with_headers("bob", "POST", "/api/v1/job", Some(body), &key).await;
    assert_eq!(status, 200);
    assert_ne!(bobs["id"], first["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_active_jobs_limit_a_submit_is_429_and_records_nothing() {
    let stack = ServerlessStack::create_replacing(&[("{{ACTIVE_JOBS_PER_USER}}", "2")]).await;
    for _ in 0..2 {
        let (status, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(request("nap", "shell:sleep", false))).await;
        assert_eq!(status, 200, "{answer}");
    }

    let (status, headers, answer) = stack.api_call_with_headers("alice", "POST", "/api/v1/job", Some(request("nap", "shell:sleep", false)), &[]).await;

    assert_eq!(status, 429, "{answer}");
    assert!(headers.get("retry-after").is_some());
    assert!(answer["error"].as_str().unwrap().contains("active_jobs_per_user"), "{answer}");
    let (_, listed) = stack.api_json("alice", "GET", "/api/v1/jobs", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    // A sync job that ends within the call is new work too, and bob has his own room.
    let (status, _) = stack.api_json("alice", "POST", "/api/v1/job", Some(request("p", "type:ping", true))).await;
    assert_eq!(status, 429);
    let (status, _) = stack.api_json("bob", "POST", "/api/v1/job", Some(request("p", "type:ping", true))).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_job_past_its_sync_limit_in_the_api_function_is_stopped_and_failed() {
    let stack = ServerlessStack::create().await;
    let started = Instant::now();

    let (status, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(request("late", "shell:late-sync", true))).await;

    assert_eq!(status, 200, "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3), "answered at the 1 s limit: {:?}", started.elapsed());
    assert_eq!(answer["status"], "FAILED");
    assert!(answer["error"].as_str().unwrap().contains("sync limit of 1 s"), "{answer}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(std::fs::read_to_string(&stack.runs_log).unwrap_or_default(), "", "the stopped process never wrote");
    let (_, stored) = stack.api_json("alice", "GET", &format!("/api/v1/job/{}", answer["id"].as_str().unwrap()), None).await;
    assert_eq!(stored["status"], "FAILED");
}

/// A RUNNING sync job as a killed api function leaves it: started `ago` seconds ago, no
/// heartbeat since, never ended.
async fn job_left_running(stack: &ServerlessStack, ago: i64) -> JobId {
    let request: heimdall_domain::JobRequest = serde_json::from_value(request("cut-off", "shell:late-sync", true)).unwrap();
    let started = heimdall_domain::clock::now_epoch_seconds() - ago;
    let mut job = heimdall_domain::Job::from_request(request, "alice", started);
    job.is_sync = true;
    job.status = JobStatus::Running;
    job.started_at = Some(started);
    job.command_id = Some("late-sync".into());
    job.cluster_id = Some("localhost-0.0.1".into());
    let store = heimdall_adapters_aws::DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&emulator().sdk_config().await), &stack.settings.table);
    heimdall_ports::JobStore::insert(&store, &job).await.unwrap();
    job.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_job_cut_off_with_its_function_is_failed_by_the_janitor_and_a_live_one_is_not() {
    let stack = ServerlessStack::create().await;
    let cut_off = job_left_running(&stack, 120).await;
    let recent = job_left_running(&stack, 5).await;

    // WHEN EventBridge Scheduler invokes the janitor function
    let answer = heimdall_function_janitor::handle(&stack.service, json!({"source": "heimdall.janitor"})).await.unwrap();

    // THEN the silent job is FAILED saying why, and the one that may still be running is left
    assert_eq!(answer["settled"], 1, "{answer}");
    let job = stack.service.get(cut_off).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.error.as_deref().unwrap().starts_with("no heartbeat for 1"), "{:?}", job.error);
    assert_eq!(stack.service.get(recent).await.unwrap().status, JobStatus::Running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_stopped_from_outside_settles_its_job_by_event_or_by_the_janitor() {
    // GIVEN two long Spark jobs (the emulator's EMR runs never end), their executions polling
    // (their cluster's job run events do not reach the deployment)
    let emr = aws_sdk_emrcontainers::Client::new(&emulator().sdk_config().await);
    let cluster = crate::support::unique("spark-eks");
    let virtual_cluster = crate::support::create_virtual_cluster(&emr, &cluster).await;
    let stack = ServerlessStack::create_replacing(&[("{{SPARK_CLUSTER}}", &cluster), ("{{SPARK_JOB_RUN_EVENTS}}", "false")]).await;
    let spark = json!({"name": "long", "version": "1", "command_criteria": ["type:spark"], "cluster_criteria": ["type:spark"], "context": {"query": "SELECT 1"}});
    let by_event = stack.submit_and_dispatch(spark.clone()).await;
    let by_sweep = stack.submit_and_dispatch(spark).await;
    for id in [by_event, by_sweep] {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while stack.service.get(id).await.unwrap().plugin_handle.is_none() {
            assert!(std::time::Instant::now() < deadline, "job {id} never submitted its run");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Someone stops the execution in the console: the job's own steps never record its end.
        stack.sfn.stop_execution().execution_arn(stack.execution_arn(id)).send().await.unwrap();
        assert_eq!(stack.wait_for_execution_end(id, Duration::from_secs(30)).await, "ABORTED");
        assert_eq!(stack.service.get(id).await.unwrap().status, JobStatus::Running, "left running by the stop");
    }

    // The status-change event EventBridge sends (the rule routes it to the events queue).
    let event = json!({
        "version": "0", "id": "e-1", "source": "aws.states", "detail-type": "Step Functions Execution Status Change",
        "account": "123456789012", "time": "2026-12-07T10:00:00Z", "region": "us-east-1", "resources": [stack.execution_arn(by_event)],
        "detail": {"executionArn": stack.execution_arn(by_event), "stateMachineArn": stack.settings.state_machine_arn,
                   "name": by_event.to_string(), "status": "ABORTED", "startDate": 1, "stopDate": 2}
    });
    let response = heimdall_function_events::handle_batch(&stack.service, ServerlessStack::sqs_batch(&[event.to_string()])).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let settled = stack.service.get(by_event).await.unwrap();
    assert_eq!(settled.status, JobStatus::Failed);
    assert_eq!(settled.error.as_deref(), Some("its execution ended ABORTED before the job's end was recorded"));

    // Without the event, the janitor's sweep finds it once it has been quiet a minute.
    let sweep = stack.service.sweep_stuck_jobs(heimdall_domain::clock::now_epoch_seconds() + 120).await.unwrap();
    assert_eq!(sweep.settled.iter().map(|(id, status, _)| (*id, *status)).collect::<Vec<_>>(), vec![(by_sweep, JobStatus::Failed)]);
    // A redelivered event changes nothing, and each job's Spark run was started once.
    heimdall_function_events::handle_batch(&stack.service, ServerlessStack::sqs_batch(&[event.to_string()])).await;
    assert_eq!(stack.service.get(by_event).await.unwrap().status, JobStatus::Failed);
    let runs = emr.list_job_runs().virtual_cluster_id(&virtual_cluster).send().await.unwrap();
    let mut names: Vec<&str> = runs.job_runs().iter().filter_map(|run| run.name()).collect();
    names.sort();
    let mut expected = [format!("heimdall-{by_event}"), format!("heimdall-{by_sweep}")];
    expected.sort();
    assert_eq!(names, expected, "one run per job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_message_fails_its_job_saying_it_was_never_dispatched() {
    let stack = ServerlessStack::create().await;
    let (_, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(request("never", "shell:echo", false))).await;
    let id: JobId = answer["id"].as_str().unwrap().parse().unwrap();
    let queued = stack.receive_as_sqs_event().await;
    let body = queued.records[0].body.clone().unwrap();

    // WHEN the message reaches the dead-letter queue (every dispatch failed) and its event
    // source hands it to the janitor
    let batch = serde_json::to_value(ServerlessStack::sqs_batch(&[body.clone(), "not-a-job".into()])).unwrap();
    let answer = heimdall_function_janitor::handle(&stack.service, batch).await.unwrap();

    // THEN the job is FAILED saying so, and nothing is retried
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let job = stack.service.get(id).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.error.as_deref().unwrap().starts_with("never dispatched"), "{:?}", job.error);
    assert_eq!(stack.execution_status_or_none(id).await, None, "no execution was ever started");
}

/// Waits until the step running `id`'s shell work has claimed it.
async fn wait_for_work_start(stack: &ServerlessStack, id: JobId) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stack.service.get(id).await.unwrap().work_started_at.is_none() {
        assert!(std::time::Instant::now() < deadline, "job {id}'s work never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_a_running_shell_step_stops_its_process_before_the_job_is_canceled() {
    let stack = ServerlessStack::create().await;
    let id = stack.submit_and_dispatch(request("late", "shell:record-late", false)).await;
    wait_for_work_start(&stack, id).await;

    let (status, answer) = stack.api_json("alice", "POST", &format!("/api/v1/job/{id}/cancel"), None).await;

    // The answer: CANCELING, the process still running in the plugin function's step.
    assert_eq!((status, answer["status"].as_str()), (200, Some("CANCELING")), "{answer}");
    // The step sees it within seconds, kills the process, and only then records CANCELED.
    let job = stack.wait_for(id, Duration::from_secs(10), |s| s.is_terminal()).await;
    assert_eq!((job.status, job.canceled_by.as_deref()), (JobStatus::Canceled, Some("alice")));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(std::fs::read_to_string(&stack.runs_log).unwrap_or_default(), "", "the process outlived its cancel");
    // (On AWS the execution is ABORTED at once; the emulator applies the stop only after the
    // Task in flight, so it may end through the Catch instead.)
    assert_ne!(stack.wait_for_execution_end(id, Duration::from_secs(20)).await, "RUNNING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_retried_after_its_function_died_never_starts_the_work_twice() {
    let stack = ServerlessStack::create().await;
    // The shell function dies on its first submit after starting the work: the work goes on
    // (here, in the background), the state machine sees a Lambda service error and retries.
    let service = stack.service.clone();
    let crashed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runtime = tokio::runtime::Handle::current();
    let handler: heimdall_tests::emulator::LambdaHandler = std::sync::Arc::new(move |payload: Value| {
        let (service, crashed, runtime) = (service.clone(), crashed.clone(), runtime.clone());
        Box::pin(async move {
            let request: heimdall_functions::plugin_step::StepRequest = serde_json::from_value(payload).unwrap();
            let is_submit = matches!(request, heimdall_functions::plugin_step::StepRequest::Submit { .. });
            let step = runtime.spawn(async move { heimdall_functions::plugin_step::handle(&service, "shell", request).await });
            if is_submit && !crashed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return Err(("Lambda.ServiceException".to_owned(), "the function's sandbox died".to_owned()));
            }
            step.await.unwrap().map_err(|failure| (failure.error_type, failure.error_message))
        })
    });
    emulator().register_function(&stack.plugin_function_template.replace("{plugin}", "shell"), handler);

    // The work outlasts the state machine's retry (a work that ended first would have recorded
    // its own end, and the retry would find the job ended).
    let id = stack.submit_and_dispatch(request("once", "shell:record-slow", false)).await;

    // THEN the retried submit refuses to start the work again: the job fails saying why, and
    // the ledger the work appends to holds one run.
    let job = stack.wait_for(id, Duration::from_secs(30), |s| s.is_terminal()).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert!(job.error.as_deref().unwrap().contains("not started again"), "{:?}", job.error);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(std::fs::read_to_string(&stack.runs_log).unwrap(), format!("{id}\n"), "the work ran exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_is_retried_by_the_state_machine_on_another_cluster_after_its_wait() {
    let stack = ServerlessStack::create().await;
    let body = json!({"name": "retried", "version": "1", "command_criteria": ["shell:flaky"], "cluster_criteria": ["type:pool"]});
    let id = stack.submit_and_dispatch(body).await;

    let job = stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;

    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.attempt, 2);
    let attempts: Vec<(u32, JobStatus, Option<i32>)> = job.attempts.iter().map(|a| (a.attempt, a.status, a.exit_code)).collect();
    assert_eq!(attempts, vec![(1, JobStatus::Failed, Some(1)), (2, JobStatus::Succeeded, Some(0))]);
    assert_ne!(job.attempts[0].cluster_id, job.attempts[1].cluster_id, "the retry ran on the other cluster");
    let (_, first) = stack.api_call("alice", "GET", &format!("/api/v1/job/{id}/stdout?attempt=1"), None).await;
    assert_eq!(String::from_utf8(first).unwrap(), "attempt 1\n");
    let (_, latest) = stack.api_call("alice", "GET", &format!("/api/v1/job/{id}/stdout"), None).await;
    assert_eq!(String::from_utf8(latest).unwrap(), "attempt 2\n");

    // The wait between attempts was a state of the execution (no Lambda ran meanwhile).
    assert_eq!(stack.wait_for_execution_end(id, Duration::from_secs(20)).await, "SUCCEEDED");
    let history = stack.sfn.get_execution_history().execution_arn(stack.execution_arn(id)).send().await.unwrap();
    let entered: Vec<String> = history
        .events()
        .iter()
        .filter_map(|e| e.state_entered_event_details().map(|d| d.name().to_owned()))
        .collect();
    eprintln!("retried job: {} state transitions {entered:?}", entered.len());
    assert!(entered.iter().any(|name| name == "RetryWait"), "{entered:?}");
    assert_eq!(entered.iter().filter(|name| *name == "Submit").count(), 2, "{entered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_machine_gives_up_after_max_attempts_with_every_attempt_recorded_and_readable() {
    let stack = ServerlessStack::create().await;
    let body = json!({"name": "hopeless", "version": "1", "command_criteria": ["shell:always-fails"], "cluster_criteria": ["type:pool"]});
    let id = stack.submit_and_dispatch(body).await;

    let job = stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;

    assert_eq!((job.status, job.attempt, job.exit_code), (JobStatus::Failed, 3, Some(1)), "{job:?}");
    let attempts: Vec<(u32, JobStatus, Option<i32>)> = job.attempts.iter().map(|a| (a.attempt, a.status, a.exit_code)).collect();
    assert_eq!(attempts, vec![(1, JobStatus::Failed, Some(1)), (2, JobStatus::Failed, Some(1)), (3, JobStatus::Failed, Some(1))]);
    for n in 1..=3 {
        let (status, stdout) = stack.api_call("alice", "GET", &format!("/api/v1/job/{id}/stdout?attempt={n}"), None).await;
        assert_eq!((status, String::from_utf8(stdout).unwrap()), (200, format!("try {n}\n")));
    }
    assert_eq!(stack.wait_for_execution_end(id, Duration::from_secs(20)).await, "FAILED");
}
