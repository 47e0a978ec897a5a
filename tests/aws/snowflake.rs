//! The snowflake plugin on both runtimes against the fake SQL API (it verifies the plugin's
//! key-pair JWT): through the state machine on the emulator, and inside `heimdall serve`.

use std::time::Duration;

use heimdall_domain::{JobId, JobStatus};
use heimdall_fake_snowflake::fake_snowflake::{self, ACCOUNT, FakeSnowflake, USER};
use heimdall_fake_snowflake::key::TestKey;
use heimdall_tests::emulator::emulator;
use heimdall_tests::spawn_app_with;
use serde_json::{Value, json};

use crate::serverless_stack::ServerlessStack;

struct SnowflakeFixture {
    fake: FakeSnowflake,
    key_file: tempfile::NamedTempFile,
}

async fn fixture(pending_polls: u32) -> SnowflakeFixture {
    let key = TestKey::get();
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), &key.private_pem).unwrap();
    SnowflakeFixture { fake: FakeSnowflake::start(key, pending_polls).await, key_file }
}

impl SnowflakeFixture {
    fn replacements(&self) -> Vec<(&'static str, String)> {
        vec![
            ("{{SNOWFLAKE_ACCOUNT}}", ACCOUNT.to_owned()),
            ("{{SNOWFLAKE_USER}}", USER.to_owned()),
            ("{{SNOWFLAKE_KEY}}", self.key_file.path().display().to_string()),
            ("{{SNOWFLAKE_ENDPOINT}}", self.fake.base_url.clone()),
        ]
    }

    async fn stack(&self) -> ServerlessStack {
        let replacements = self.replacements();
        let pairs: Vec<(&str, &str)> = replacements.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ServerlessStack::create_counted_with(&pairs).await
    }
}

fn every_row() -> Value {
    Value::Array(fake_snowflake::partitions().into_iter().flat_map(|p| p.as_array().unwrap().clone()).collect())
}

async fn submit(stack: &ServerlessStack, query: &str) -> JobId {
    let body = json!({"name": "sql", "version": "1", "command_criteria": ["type:snowflake"], "context": {"query": query}});
    let (status, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let id: JobId = answer["id"].as_str().unwrap().parse().unwrap();
    let event = stack.receive_as_sqs_event().await;
    assert!(heimdall_function_dispatcher::handle_batch(&stack.service, event).await.batch_item_failures.is_empty());
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_is_polled_by_the_state_machine_and_every_partition_becomes_the_result() {
    let fixture = fixture(2).await;
    let stack = fixture.stack().await;

    let id = submit(&stack, "SELECT id, name, note FROM items ORDER BY id").await;
    let job = stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;

    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let (_, result) = stack.api_json("alice", "GET", &format!("/api/v1/job/{id}/result"), None).await;
    assert_eq!(result["data"], every_row());
    assert_eq!(result["columns"][0], json!({"name": "ID", "type": "fixed"}));
    // The execution waited and polled while the statement ran (2 pending answers).
    let polls = fixture.fake.seen(|seen| seen.requests.iter().filter(|r| r.starts_with("GET") && !r.contains("partition=")).count());
    assert!(polls >= 3, "{polls} status requests");
    assert_eq!(fixture.fake.seen(|seen| seen.refused), 0, "every request carried a valid JWT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snowflake_error_fails_the_job_with_snowflakes_message() {
    let fixture = fixture(1).await;
    let stack = fixture.stack().await;

    let id = submit(&stack, "SELECT * FROM nope -- error").await;
    let job = stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;

    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.error.as_deref().unwrap().contains("Object 'NOPE' does not exist"), "{job:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_through_the_api_cancels_the_running_statement() {
    let fixture = fixture(1000).await;
    let stack = fixture.stack().await;
    let id = submit(&stack, "SELECT SYSTEM$WAIT(3600)").await;
    // Wait until the statement is submitted and its handle kept on the job.
    let job = stack.wait_for(id, Duration::from_secs(30), |s| s == JobStatus::Running).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut job = job;
    while job.plugin_handle.is_none() {
        assert!(std::time::Instant::now() < deadline, "no handle was kept");
        tokio::time::sleep(Duration::from_millis(100)).await;
        job = stack.service.get(id).await.unwrap();
    }

    let (status, answer) = stack.api_json("alice", "POST", &format!("/api/v1/job/{id}/cancel"), None).await;

    assert_eq!((status, answer["status"].as_str()), (200, Some("CANCELED")), "{answer}");
    let handle = job.plugin_handle.unwrap()["statement_handle"].as_str().unwrap().to_owned();
    assert_eq!(fixture.fake.seen(|seen| seen.canceled.clone()), vec![handle]);
}

/// A `heimdall serve` config whose one Snowflake cluster uses `private_key` against the fake.
fn serve_config(fixture: &SnowflakeFixture, private_key: &str) -> String {
    format!(
        r#"
commands:
  - {{name: snowflake, version: "1", plugin: snowflake, is_sync: false, allowed_modes: [async], tags: [type:snowflake]}}
clusters:
  - name: snowflake-account
    version: "1"
    context: {{account: {ACCOUNT}, user: {USER}, private_key: "{private_key}", endpoint: "{}"}}
"#,
        fixture.fake.base_url
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_kept_in_ssm_or_secrets_manager_sign_the_jwt_and_never_show() {
    let fixture = fixture(0).await;
    let sdk = emulator().sdk_config().await;
    let name = crate::support::unique("snowflake-key");
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(format!("/heimdall/{name}"))
        .value(&TestKey::get().private_pem)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    aws_sdk_secretsmanager::Client::new(&sdk).create_secret().name(&name).secret_string(&TestKey::get().private_pem).send().await.unwrap();

    for reference in [format!("ssm:/heimdall/{name}"), format!("secretsmanager:{name}"), "ssm:/heimdall/missing".to_owned()] {
        let dir = tempfile::tempdir().unwrap();
        let app = spawn_app_with(&serve_config(&fixture, &reference), dir.path().join("data"), Duration::from_secs(5), sdk.clone()).await;
        let answer = app.submit_ok(&json!({"name": "sql", "version": "1", "command_criteria": ["type:snowflake"], "context": {"query": "SELECT 1"}})).await;
        let done = app.wait_until_final(answer["id"].as_str().unwrap()).await;
        if reference.ends_with("missing") {
            assert_eq!(done["status"], "FAILED", "{reference}");
            assert!(done["error"].as_str().unwrap().contains("no such parameter"), "{done}");
        } else {
            assert_eq!(done["status"], "SUCCEEDED", "{reference}: {done}");
        }
        assert!(!done.to_string().contains("PRIVATE KEY"), "the key leaked: {done}");
    }
    assert_eq!(fixture.fake.seen(|seen| seen.refused), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heimdall_serve_runs_a_snowflake_job_to_its_result() {
    let fixture = fixture(1).await;
    let config = serve_config(&fixture, &fixture.key_file.path().display().to_string());
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(&config, dir.path().join("data"), Duration::from_secs(5), emulator().sdk_config().await).await;

    let answer = app.submit_ok(&json!({"name": "sql", "version": "1", "command_criteria": ["type:snowflake"], "context": {"query": "SELECT 1"}})).await;
    assert_eq!(answer["status"], "ACCEPTED");
    let id = answer["id"].as_str().unwrap();
    let done = app.wait_until_final(id).await;

    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(app.get_json(&format!("/api/v1/job/{id}/result")).await["data"], every_row());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_signs_in_and_runs_select_1_and_a_refused_sign_in_fails_it() {
    let fixture = fixture(0).await;
    let config = |endpoint: &str| {
        format!(
            "commands:\n  - {{name: q, version: '1', plugin: snowflake, tags: [type:q], cluster_tags: [type:sf]}}\nclusters:\n  - {{name: acct, version: '1', tags: [type:sf], context: {{account: {ACCOUNT}, user: {USER}, warehouse: COMPUTE_WH, private_key: '{}', endpoint: '{endpoint}'}}}}\n",
            fixture.key_file.path().display()
        )
    };
    let plugins = heimdall_plugins_aws::data_plugins(&emulator().sdk_config().await, None);
    let plugin = plugins.into_iter().find(|p| p.name() == "snowflake").unwrap();
    let check = |text: String| {
        let parsed = heimdall_domain::config::Config::parse(&text, "sf.yml").unwrap();
        let plugin = plugin.clone();
        async move { plugin.check_health(&parsed.commands[0], &parsed.clusters[0]).await }
    };

    assert_eq!(check(config(&fixture.fake.base_url)).await, Ok(()));
    assert!(fixture.fake.seen(|seen| seen.statements.iter().any(|s| s.text == "SELECT 1")), "the check ran SELECT 1");
    let unreachable = check(config("http://127.0.0.1:9")).await.unwrap_err();
    assert!(!unreachable.is_empty());
}
