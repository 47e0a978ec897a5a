//! The spark plugin through the state machine, on the emulator's EMR on EKS. The emulator's job
//! runs stay RUNNING forever, so the tests answer `DescribeJobRun` for their run with the
//! terminal state in the real API's shape (the router stands in for moto there), send the
//! "EMR Job Run State Change" event EMR would send through an events queue to the events
//! function, as the EventBridge rule does, and write the job's output to S3 themselves, as the
//! Spark job would.

use std::time::{Duration, Instant};

use heimdall_adapters_aws::s3_client;
use heimdall_domain::{JobId, JobStatus};
use heimdall_tests::emulator::emulator;
use serde_json::{Value, json};

use crate::serverless_stack::ServerlessStack;
use crate::support::{create_virtual_cluster, unique};

struct SparkFixture {
    stack: ServerlessStack,
    emr: aws_sdk_emrcontainers::Client,
    virtual_cluster_id: String,
    /// Where the EventBridge rule sends EMR's job run events, read by the events function.
    events_queue_url: String,
}

async fn fixture() -> SparkFixture {
    let sdk = emulator().sdk_config().await;
    let emr = aws_sdk_emrcontainers::Client::new(&sdk);
    let name = unique("spark-eks");
    let virtual_cluster_id = create_virtual_cluster(&emr, &name).await;
    let stack = ServerlessStack::create_counted_with(&[("{{SPARK_CLUSTER}}", &name)]).await;
    let events_queue_url = heimdall_emulator::stack::create_events_queue(&sdk, &unique("hd")).await.unwrap().url;
    SparkFixture { stack, emr, virtual_cluster_id, events_queue_url }
}

impl SparkFixture {
    /// Submits a spark job through the api function and dispatches it; answers its id.
    async fn submit(&self, context: Value) -> JobId {
        let body = json!({"name": "spark", "version": "1", "command_criteria": ["type:spark"], "cluster_criteria": ["type:spark"], "context": context});
        let (status, answer) = self.stack.api_json("alice", "POST", "/api/v1/job", Some(body)).await;
        assert_eq!(status, 200, "{answer}");
        let id: JobId = answer["id"].as_str().unwrap().parse().unwrap();
        let event = self.stack.receive_as_sqs_event().await;
        assert!(heimdall_function_dispatcher::handle_batch(&self.stack.service, event).await.batch_item_failures.is_empty());
        id
    }

    /// The job run the plugin started for `job` (named after it), once it exists.
    async fn job_run_of(&self, job: JobId) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let runs = self.emr.list_job_runs().virtual_cluster_id(&self.virtual_cluster_id).send().await.unwrap();
            if let Some(run) = runs.job_runs().iter().find(|r| r.name() == Some(format!("heimdall-{job}").as_str())) {
                return run.id().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "no job run was started for {job}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The run ends in `state`: from now on `DescribeJobRun` says so, and EMR's event for it goes
    /// through the events queue to the events function.
    async fn end_run(&self, job_run: &str, state: &str, failure_reason: Option<&str>, details: Option<&str>) {
        let mut run = json!({"id": job_run, "virtualClusterId": self.virtual_cluster_id, "state": state, "name": "heimdall"});
        if let Some(reason) = failure_reason {
            run["failureReason"] = json!(reason);
        }
        if let Some(details) = details {
            run["stateDetails"] = json!(details);
        }
        emulator().override_answer("GET", &format!("/virtualclusters/{}/jobruns/{job_run}", self.virtual_cluster_id), json!({"jobRun": run}));
        self.send_run_event(job_run, state).await;
    }

    /// EMR's "EMR Job Run State Change" event for `job_run`, as the rule delivers it to the
    /// events queue, handled by the events function.
    async fn send_run_event(&self, job_run: &str, state: &str) {
        let runs = self.emr.list_job_runs().virtual_cluster_id(&self.virtual_cluster_id).send().await.unwrap();
        let name = runs.job_runs().iter().find(|r| r.id() == Some(job_run)).and_then(|r| r.name()).unwrap().to_owned();
        let event = json!({
            "version": "0", "id": unique("event"), "detail-type": "EMR Job Run State Change", "source": "aws.emr-containers",
            "account": "123456789012", "time": "2026-12-08T02:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"severity": "INFO", "name": name, "id": job_run, "arn": format!("arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/{}/jobruns/{job_run}", self.virtual_cluster_id),
                       "virtualClusterId": self.virtual_cluster_id, "state": state, "createdBy": "heimdall", "releaseLabel": "emr-7.2.0-latest"}
        });
        let sqs = aws_sdk_sqs::Client::new(&emulator().sdk_config().await);
        sqs.send_message().queue_url(&self.events_queue_url).message_body(event.to_string()).send().await.unwrap();
        let batch = self.stack.receive_from(&self.events_queue_url).await;
        assert_eq!(batch.records.len(), 1);
        assert!(heimdall_function_events::handle_batch(&self.stack.service, batch).await.batch_item_failures.is_empty());
    }

    /// Waits until the job's execution has entered `state`.
    async fn wait_for_state(&self, job: JobId, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.states_entered(job).await.iter().any(|entered| entered == state) {
            assert!(Instant::now() < deadline, "the execution of {job} never entered {state}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The states the job's execution entered, in order.
    async fn states_entered(&self, job: JobId) -> Vec<String> {
        let arn = format!("{}:{job}", self.stack.settings.state_machine_arn.replacen(":stateMachine:", ":execution:", 1));
        let history = self.stack.sfn.get_execution_history().execution_arn(arn).send().await.unwrap();
        let mut events: Vec<_> = history.events().iter().collect();
        events.sort_by_key(|event| event.id());
        events
            .iter()
            .filter(|event| event.r#type().as_str().ends_with("StateEntered"))
            .filter_map(|event| event.state_entered_event_details().map(|details| details.name().to_owned()))
            .collect()
    }

    async fn put(&self, key: &str, body: &str) {
        let s3 = s3_client(&emulator().sdk_config().await);
        s3.put_object().bucket(&self.stack.settings.bucket).key(key).body(body.as_bytes().to_vec().into()).send().await.unwrap();
    }

    async fn get(&self, key: &str) -> String {
        let s3 = s3_client(&emulator().sdk_config().await);
        let object = s3.get_object().bucket(&self.stack.settings.bucket).key(key).send().await.unwrap();
        String::from_utf8(object.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
    }
}

/// The `spark-defaults` properties of a described run (moto keeps `configurationOverrides` as sent).
fn spark_defaults(described: &aws_sdk_emrcontainers::operation::describe_job_run::DescribeJobRunOutput) -> std::collections::HashMap<String, String> {
    let overrides = described.job_run().unwrap().configuration_overrides().expect("the run's configuration overrides");
    let defaults: Vec<_> = overrides.application_configuration().iter().filter(|c| c.classification() == "spark-defaults").collect();
    assert_eq!(defaults.len(), 1, "{overrides:?}");
    defaults[0].properties().cloned().unwrap_or_default()
}

impl SparkFixture {
    /// Submits through the api function a job the plugin should refuse; answers the error.
    async fn refused(&self, context: Value) -> String {
        let body = json!({"name": "spark", "version": "1", "command_criteria": ["type:spark"], "cluster_criteria": ["type:spark"], "context": context});
        let (status, answer) = self.stack.api_json("alice", "POST", "/api/v1/job", Some(body)).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_JOB_CONTEXT")), "{answer}");
        // Nothing was queued and no job run was started on the virtual cluster.
        assert!(self.stack.receive_as_sqs_event().await.records.is_empty(), "a refused job was queued");
        let runs = self.emr.list_job_runs().virtual_cluster_id(&self.virtual_cluster_id).send().await.unwrap();
        assert!(runs.job_runs().is_empty(), "{:?}", runs.job_runs());
        answer["error"].as_str().unwrap().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_property_value_with_spaces_stays_one_value_and_adds_no_option() {
    let fixture = fixture().await;
    let injected = "1 --conf spark.driver.extraJavaOptions=-Dlog4j.configurationFile=http://evil/x";

    let id = fixture.submit(json!({"query": "SELECT 1", "parameters": {"properties": {"spark.sql.shuffle.partitions": injected}}})).await;
    let job_run = fixture.job_run_of(id).await;

    let described = fixture.emr.describe_job_run().id(&job_run).virtual_cluster_id(&fixture.virtual_cluster_id).send().await.unwrap();
    let properties = spark_defaults(&described);
    assert_eq!(properties.get("spark.sql.shuffle.partitions").map(String::as_str), Some(injected));
    assert!(!properties.contains_key("spark.driver.extraJavaOptions"), "{properties:?}");
    assert_eq!(properties.len(), 2, "the command's spark.executor.memory and the job's one property: {properties:?}");
    let driver = described.job_run().unwrap().job_driver().unwrap().spark_submit_job_driver().unwrap();
    assert_eq!(driver.spark_submit_parameters(), None, "nothing reaches spark-submit as text");
    assert_eq!(driver.entry_point(), format!("s3://{}/spark/run_sql.py", fixture.stack.settings.bucket));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_setting_a_property_its_command_does_not_allow_is_refused_and_starts_no_run() {
    let fixture = fixture().await;

    let error = fixture.refused(json!({"query": "SELECT 1", "parameters": {"properties": {"spark.driver.extraJavaOptions": "-Dx=y"}}})).await;

    assert!(error.contains("property `spark.driver.extraJavaOptions` may not be set by a job"), "{error}");
    assert!(error.contains("allows only `spark.sql.*`"), "{error}");
    let error = fixture.refused(json!({"query": "SELECT 1", "parameters": {"properties": {"spark.sql.x\nspark.jars": "1"}}})).await;
    assert!(error.contains("is not a property name"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_setting_an_entry_point_is_refused_and_starts_no_run() {
    let fixture = fixture().await;

    let error = fixture.refused(json!({"query": "SELECT 1", "parameters": {"entry_point": "s3://attacker/own.py"}})).await;

    assert!(error.contains("`parameters.entry_point` is refused: the command fixes its entry point"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spark_query_runs_to_completed_and_its_output_is_the_result() {
    let fixture = fixture().await;
    let query = "SELECT country, count(*) AS orders FROM sales.orders GROUP BY country";

    let id = fixture.submit(json!({"query": query, "return_result": true, "parameters": {"properties": {"spark.sql.shuffle.partitions": "8"}}})).await;
    let job_run = fixture.job_run_of(id).await;

    // The plugin wrote the query where the wrapper reads it, and the run is RUNNING.
    assert_eq!(fixture.get(&format!("spark/queries/{id}.sql")).await, query);
    assert_eq!(fixture.stack.service.get(id).await.unwrap().status, JobStatus::Running);
    let described = fixture.emr.describe_job_run().id(&job_run).virtual_cluster_id(&fixture.virtual_cluster_id).send().await.unwrap();
    let driver = described.job_run().unwrap().job_driver().unwrap().spark_submit_job_driver().unwrap().clone();
    assert_eq!(driver.entry_point(), format!("s3://{}/spark/run_sql.py", fixture.stack.settings.bucket));
    assert_eq!(driver.entry_point_arguments()[1], format!("s3://{}/spark/results/{id}/", fixture.stack.settings.bucket));
    // The properties are map entries of spark-defaults (cluster, command, job), not spark-submit text.
    assert_eq!(driver.spark_submit_parameters(), None);
    let properties = spark_defaults(&described);
    assert_eq!(properties.get("spark.executor.memory").map(String::as_str), Some("2g"), "{properties:?}");
    assert_eq!(properties.get("spark.sql.shuffle.partitions").map(String::as_str), Some("8"), "{properties:?}");

    // WHEN, its execution waiting for the run's end, the job writes its output and completes
    fixture.wait_for_state(id, "AwaitEnd").await;
    fixture.put(&format!("spark/results/{id}/part-00000.json"), "{\"country\":\"FR\",\"orders\":3}\n{\"country\":\"NL\",\"orders\":5}\n").await;
    fixture.put(&format!("spark/results/{id}/_SUCCESS"), "").await;
    fixture.end_run(&job_run, "COMPLETED", None, None).await;

    // THEN the job is SUCCEEDED with the output as its result
    let job = fixture.stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let (_, result) = fixture.stack.api_json("alice", "GET", &format!("/api/v1/job/{id}/result"), None).await;
    assert_eq!(result["data"], json!([["FR", 3], ["NL", 5]]));
    assert_eq!(result["columns"][1], json!({"name": "orders", "type": "bigint"}));
    // Not polled: the execution waited for EMR's event, whatever the run's length.
    let states = fixture.states_entered(id).await;
    assert_eq!(states, ["Submit", "Done?", "AwaitEnd", "Done?", "Finalize"], "{states:?}");
    // The event delivered again (EventBridge delivers at least once): nothing waits, nothing changes.
    fixture.send_run_event(&job_run, "COMPLETED").await;
    assert_eq!(fixture.stack.service.get(id).await.unwrap().status, JobStatus::Succeeded);
    assert_eq!(fixture.states_entered(id).await, states);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_spark_run_fails_the_job_with_its_reason_and_details() {
    let fixture = fixture().await;
    let id = fixture.submit(json!({"query": "SELECT * FROM nope"})).await;
    let job_run = fixture.job_run_of(id).await;
    // Ended as soon as it started: the await step, or the event, finds it over (whichever
    // comes after the other).

    fixture.end_run(&job_run, "FAILED", Some("USER_ERROR"), Some("Table or view not found: nope")).await;

    let job = fixture.stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;
    assert_eq!(job.status, JobStatus::Failed);
    let error = job.error.unwrap();
    assert!(error.contains("ended FAILED") && error.contains("USER_ERROR") && error.contains("Table or view not found: nope"), "{error}");
    let states = fixture.states_entered(id).await;
    assert_eq!(states, ["Submit", "Done?", "AwaitEnd", "Done?", "AwaitFailed", "Fail", "Retry?", "JobFailed"], "{states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_a_spark_job_cancels_its_job_run() {
    let fixture = fixture().await;
    let id = fixture.submit(json!({"query": "SELECT 1"})).await;
    let job_run = fixture.job_run_of(id).await;

    let (status, answer) = fixture.stack.api_json("alice", "POST", &format!("/api/v1/job/{id}/cancel"), None).await;

    assert_eq!((status, answer["status"].as_str()), (200, Some("CANCELED")), "{answer}");
    let described = fixture.emr.describe_job_run().id(&job_run).virtual_cluster_id(&fixture.virtual_cluster_id).send().await.unwrap();
    assert_eq!(described.job_run().unwrap().state().unwrap().as_str(), "CANCELLED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heimdall_serve_drives_a_spark_run_to_completed() {
    let fixture = fixture().await;
    let bucket = fixture.stack.settings.bucket.clone();
    let config = format!(
        r#"
commands:
  - name: spark
    version: "1"
    plugin: spark
    is_sync: false
    allowed_modes: [async]
    tags: [type:spark]
    context: {{queries_uri: "s3://{bucket}/local/queries", results_uri: "s3://{bucket}/local/results", wrapper_uri: "s3://{bucket}/run_sql.py"}}
clusters:
  - name: local-spark
    version: "1"
    context: {{execution_role_arn: "arn:aws:iam::123456789012:role/emr", emr_release_label: emr-7.2.0-latest, virtual_cluster_id: "{}", role_arn: "arn:aws:iam::123456789012:role/emr-submitter"}}
"#,
        fixture.virtual_cluster_id
    );
    let dir = tempfile::tempdir().unwrap();
    // Through the router, so the test can end the run.
    let (aws, counter) = emulator().counted_sdk_config().await;
    let app = heimdall_tests::spawn_app_with(&config, dir.path().join("data"), Duration::from_secs(5), aws).await;
    let start = counter.calls().len();

    // This command lists no allowed_properties: a job may set none.
    let refused = app
        .submit_job(&json!({"name": "spark", "version": "1", "command_criteria": ["type:spark"], "context": {"query": "SELECT 1", "parameters": {"properties": {"spark.sql.shuffle.partitions": "8"}}}}))
        .await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("this command allows none"), "{body}");

    let answer = app.submit_ok(&json!({"name": "spark", "version": "1", "command_criteria": ["type:spark"], "context": {"query": "SELECT 1 AS one", "return_result": true}})).await;
    let id: JobId = answer["id"].as_str().unwrap().parse().unwrap();
    let job_run = fixture.job_run_of(id).await;
    fixture.put(&format!("local/results/{id}/part-00000.json"), "{\"one\":1}\n").await;
    fixture.end_run(&job_run, "COMPLETED", None, None).await;

    let done = app.wait_until_final(&id.to_string()).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(app.get_json(&format!("/api/v1/job/{id}/result")).await["data"], json!([[1]]));
    // The cluster's role_arn was assumed (STS's query-protocol POST) for the EMR calls.
    let calls = counter.calls()[start..].to_vec();
    let assume = calls.iter().position(|c| c == "sts:POST").unwrap_or_else(|| panic!("no AssumeRole: {calls:?}"));
    assert!(calls[assume..].iter().any(|c| c == "emr-containers:POST"), "{calls:?}");
}
