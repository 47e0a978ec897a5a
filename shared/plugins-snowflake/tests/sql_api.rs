//! The snowflake plugin against a fake SQL API v2 on loopback (see `support/fake_snowflake.rs`),
//! through the `Plugin` trait only, as the service and the state machine use it.


use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use heimdall_domain::config::Config;
use heimdall_domain::{JobRequest, JobResult};
use heimdall_plugins_snowflake::{PrivateKeyPem, SnowflakePlugin};
use heimdall_ports::{Artifact, Plugin, PluginError, PluginRun, Step};
use serde_json::{Value, json};
use heimdall_fake_snowflake::fake_snowflake::{self, ACCOUNT, FakeSnowflake, USER};
use heimdall_fake_snowflake::key::TestKey;

/// A key pair Snowflake was never told about.
fn unregistered_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(TestKey::generate)
}

struct Setup {
    command: Value,
    /// Merged into the fixture's cluster context; a `null` removes the key.
    cluster: Value,
    job: Value,
    /// The key the plugin signs with (the fake always expects [`TestKey::get`]).
    key: &'static TestKey,
    pending_polls: u32,
}

impl Setup {
    fn job(job: Value) -> Self {
        Self { command: json!({}), cluster: json!({}), job, key: TestKey::get(), pending_polls: 1 }
    }
}

struct Fixture {
    plugin: SnowflakePlugin,
    run: PluginRun,
    server: FakeSnowflake,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new(job: Value) -> Self {
        Self::with(Setup::job(job)).await
    }

    async fn with(setup: Setup) -> Self {
        let server = FakeSnowflake::start(TestKey::get(), setup.pending_polls).await;
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("snowflake_key.p8");
        std::fs::write(&key_path, &setup.key.private_pem).unwrap();
        let mut cluster = json!({
            "account": ACCOUNT,
            "user": USER,
            "private_key": key_path,
            "endpoint": server.base_url,
            "warehouse": "REPORTING_WH",
            "database": "ANALYTICS",
            "role": "REPORTER"
        });
        for (key, value) in setup.cluster.as_object().unwrap() {
            match value {
                Value::Null => cluster.as_object_mut().unwrap().remove(key),
                value => cluster.as_object_mut().unwrap().insert(key.clone(), value.clone()),
            };
        }
        let yaml = format!(
            "commands:\n  - {{name: sf, version: '1', plugin: snowflake, is_sync: false, context: {}}}\nclusters:\n  - {{name: sf, version: '1', context: {cluster}}}\n",
            setup.command
        );
        let config = Config::parse(&yaml, "test.yml").unwrap();
        let request: JobRequest = serde_json::from_value(json!({
            "name": "report", "version": "1", "command_criteria": ["_id:sf"], "context": setup.job
        }))
        .unwrap();
        let run = heimdall_adapters_local::local_plugin_run(dir.path(), &config, request, "alice");
        Self { plugin: SnowflakePlugin::new(), run, server, _dir: dir }
    }

    async fn submit(&self) -> Result<Step, PluginError> {
        self.plugin.submit(&self.run).await
    }

    async fn result(&self) -> JobResult {
        let reader = self.run.artifacts.open(self.run.job.id, Artifact::Result).await.unwrap().expect("a result");
        serde_json::from_slice(&reader.read_all().await.unwrap()).unwrap()
    }

    fn requests(&self) -> Vec<String> {
        self.server.seen(|seen| seen.requests.clone())
    }
}

fn handle_of(step: &Step) -> Value {
    match step {
        Step::Pending(handle) | Step::Complete(handle) => handle.clone(),
    }
}

fn expected_rows() -> Vec<Vec<Value>> {
    fake_snowflake::partitions()
        .into_iter()
        .flat_map(|partition| serde_json::from_value::<Vec<Vec<Value>>>(partition).unwrap())
        .collect()
}

#[tokio::test]
async fn a_query_run_to_the_end_stores_every_row_of_every_partition_in_order() {
    // GIVEN a statement Snowflake reports as running twice before it finishes, with a result
    // in three partitions
    let fixture =
        Fixture::with(Setup { pending_polls: 2, ..Setup::job(json!({"query": "select * from reports"})) }).await;
    // WHEN the job runs through `Plugin::run` (submit, polls with backoff, finalize)
    let mut handle = None;
    let outcome = fixture.plugin.run(&fixture.run, &mut handle).await.unwrap();
    // THEN the result has Snowflake's columns and type names, and all six rows in order with
    // values as Snowflake sent them (strings and nulls)
    assert_eq!(outcome.exit_code, None);
    let result = fixture.result().await;
    let columns: Vec<(String, String)> =
        result.columns.iter().map(|c| (c.name.clone(), c.column_type.clone())).collect();
    assert_eq!(
        columns,
        [("ID", "fixed"), ("NAME", "text"), ("NOTE", "text")].map(|(n, t)| (n.to_owned(), t.to_owned()))
    );
    assert_eq!(result.data, expected_rows());
    assert_eq!(result.data[0], vec![json!("1"), json!("alpha"), Value::Null]);
    // AND the requests went: submit, three polls, then the result partition by partition
    let statement = handle.unwrap()["statement_handle"].as_str().unwrap().to_owned();
    let status = format!("GET /api/v2/statements/{statement}");
    let requests = fixture.requests();
    assert_eq!(requests.len(), 7, "{requests:#?}");
    assert!(requests[0].starts_with("POST /api/v2/statements?async=true&requestId="), "{requests:#?}");
    assert_eq!(requests[1..5], [status.clone(), status.clone(), status.clone(), status.clone()], "{requests:#?}");
    assert_eq!(requests[5..], [format!("{status}?partition=1"), format!("{status}?partition=2")], "{requests:#?}");
}

#[tokio::test]
async fn the_statement_carries_the_query_the_cluster_settings_and_the_job_id_as_request_id() {
    // GIVEN a command with its own role and timeout, a cluster without a schema, and a job
    // with bind variables
    let bindings = json!({"1": {"type": "FIXED", "value": "42"}});
    let fixture = Fixture::with(Setup {
        command: json!({"role": "ANALYST", "timeout_seconds": 600}),
        ..Setup::job(json!({"query": "select * from t where id = ?", "bindings": bindings, "timeout_seconds": 120}))
    })
    .await;
    // WHEN it is submitted
    let step = fixture.submit().await.unwrap();
    // THEN Snowflake gets the statement with the job's settings, the command's role over the
    // cluster's, no `schema`, and the job id as the request id of an async, retry-safe request
    assert!(matches!(step, Step::Pending(_)), "{step:?}");
    let (query, body) = fixture.server.seen(|seen| seen.submits[0].clone());
    assert_eq!(
        body,
        json!({
            "statement": "select * from t where id = ?",
            "timeout": 120,
            "warehouse": "REPORTING_WH",
            "database": "ANALYTICS",
            "role": "ANALYST",
            "bindings": bindings
        })
    );
    assert_eq!(query.get("requestId"), Some(&fixture.run.job.id.to_string()));
    assert_eq!(query.get("async").map(String::as_str), Some("true"));
    assert_eq!(query.get("retry").map(String::as_str), Some("true"));
}

#[tokio::test]
async fn a_retried_submit_gets_the_statement_already_started_instead_of_a_second_one() {
    let fixture = Fixture::new(json!({"query": "insert into audit values (1)"})).await;
    let first = fixture.submit().await.unwrap();
    let second = fixture.submit().await.unwrap();
    assert_eq!(handle_of(&first), handle_of(&second));
    assert_eq!(fixture.server.seen(|seen| seen.statements.len()), 1);
}

#[tokio::test]
async fn a_statement_snowflake_rejects_fails_the_job_with_snowflakes_message() {
    // GIVEN a statement Snowflake cannot compile
    let fixture =
        Fixture::with(Setup { pending_polls: 0, ..Setup::job(json!({"query": "select error from nope"})) }).await;
    let step = fixture.submit().await.unwrap();
    // WHEN it is polled
    let error = fixture.plugin.poll(&fixture.run, &handle_of(&step)).await.unwrap_err();
    // THEN the job fails with Snowflake's message, code and SQL state
    assert_eq!(
        error,
        PluginError::JobFailed {
            message: "SQL compilation error: Object 'NOPE' does not exist (Snowflake error 002003, SQL state 42S02)"
                .into(),
            exit_code: None
        }
    );
}

#[tokio::test]
async fn cancel_reaches_snowflake_and_the_statement_then_ends_canceled() {
    // GIVEN a running statement
    let fixture =
        Fixture::with(Setup { pending_polls: 100, ..Setup::job(json!({"query": "select * from big"})) }).await;
    let handle = handle_of(&fixture.submit().await.unwrap());
    assert!(matches!(fixture.plugin.poll(&fixture.run, &handle).await.unwrap(), Step::Pending(_)));
    // WHEN the job is canceled
    fixture.plugin.cancel(&fixture.run, Some(&handle)).await.unwrap();
    // THEN Snowflake got the cancel for that statement, and the statement ends failed
    let statement = handle["statement_handle"].as_str().unwrap().to_owned();
    assert_eq!(fixture.server.seen(|seen| seen.canceled.clone()), vec![statement.clone()]);
    assert!(fixture.requests().contains(&format!("POST /api/v2/statements/{statement}/cancel")));
    let error = fixture.plugin.poll(&fixture.run, &handle).await.unwrap_err();
    assert!(error.to_string().contains("SQL execution canceled"), "{error}");
    // AND canceling again (the statement is over) is still fine
    fixture.plugin.cancel(&fixture.run, Some(&handle)).await.unwrap();
}

#[tokio::test]
async fn canceling_a_job_that_was_never_submitted_asks_nothing_of_snowflake() {
    let fixture = Fixture::new(json!({"query": "select 1"})).await;
    fixture.plugin.cancel(&fixture.run, None).await.unwrap();
    assert!(fixture.requests().is_empty());
}

#[tokio::test]
async fn a_statement_finished_at_once_is_complete_at_submit() {
    let fixture = Fixture::new(json!({"query": "select 'instant'"})).await;
    let step = fixture.submit().await.unwrap();
    assert!(matches!(step, Step::Complete(_)), "{step:?}");
    fixture.plugin.finalize(&fixture.run, &handle_of(&step)).await.unwrap();
    assert_eq!(fixture.result().await.data, expected_rows());
}

#[tokio::test]
async fn a_key_snowflake_does_not_know_is_an_authentication_problem_naming_account_and_user() {
    // GIVEN a cluster whose key is not the one registered for the user
    let fixture = Fixture::with(Setup { key: unregistered_key(), ..Setup::job(json!({"query": "select 1"})) }).await;
    // WHEN a job is submitted
    let error = fixture.submit().await.unwrap_err();
    // THEN it is refused as a context problem (not retried) that says who failed to sign in
    let PluginError::InvalidContext(message) = &error else { panic!("{error:?}") };
    assert!(message.contains("authentication"), "{message}");
    assert!(message.contains(&format!("user `{USER}` on account `{ACCOUNT}`")), "{message}");
    assert!(message.contains(&unregistered_key().fingerprint_base64), "{message}");
    assert_eq!(fixture.server.seen(|seen| (seen.refused, seen.statements.len())), (1, 0));
}

#[tokio::test]
async fn an_overloaded_snowflake_and_an_unreachable_one_are_retryable() {
    let fixture = Fixture::new(json!({"query": "select 'overloaded'"})).await;
    let error = fixture.submit().await.unwrap_err();
    assert_eq!(error.error_type(), PluginError::UNAVAILABLE, "{error:?}");
    assert!(error.to_string().contains("HTTP 503"), "{error}");

    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let fixture = Fixture::with(Setup {
        cluster: json!({"endpoint": format!("http://127.0.0.1:{port}")}),
        ..Setup::job(json!({"query": "select 1"}))
    })
    .await;
    let error = fixture.submit().await.unwrap_err();
    assert_eq!(error.error_type(), PluginError::UNAVAILABLE, "{error:?}");
    assert!(error.to_string().contains("could not reach Snowflake"), "{error}");
}

#[tokio::test]
async fn an_aws_key_reference_is_refused_when_the_config_loads_and_when_a_job_runs() {
    let fixture = Fixture::with(Setup {
        cluster: json!({"private_key": "ssm:/snowflake/heimdall_key"}),
        ..Setup::job(json!({"query": "select 1"}))
    })
    .await;
    let message = fixture.plugin.validate_cluster(&fixture.run.cluster).unwrap_err();
    assert!(message.contains("not supported in this build"), "{message}");
    let error = fixture.submit().await.unwrap_err();
    assert!(matches!(&error, PluginError::InvalidContext(m) if m.contains("not supported in this build")), "{error:?}");
    assert!(fixture.requests().is_empty());
}

#[tokio::test]
async fn contexts_are_checked_through_the_plugin_with_messages_naming_the_field() {
    // GIVEN contexts each missing or misspelling something
    let no_account =
        Fixture::with(Setup { cluster: json!({"account": null}), ..Setup::job(json!({"query": "select 1"})) }).await;
    let typo =
        Fixture::with(Setup { command: json!({"roles": "ANALYST"}), ..Setup::job(json!({"query": "select 1"})) }).await;
    let fine = Fixture::new(json!({"query": "select 1"})).await;
    let plugin = &fine.plugin;
    // THEN each check names the field
    let message = plugin.validate_cluster(&no_account.run.cluster).unwrap_err();
    assert!(message.contains("missing field `account`"), "{message}");
    let message = plugin.validate_command(&typo.run.command).unwrap_err();
    assert!(message.contains("unknown field `roles`"), "{message}");
    let message = plugin.validate_job(&json!({"sql": "select 1"}), &fine.run.command).unwrap_err();
    assert!(message.contains("unknown field `sql`"), "{message}");
    let message = plugin.validate_job(&json!({}), &fine.run.command).unwrap_err();
    assert!(message.contains("missing field `query`"), "{message}");
    // AND good ones pass
    plugin.validate_cluster(&fine.run.cluster).unwrap();
    plugin.validate_command(&fine.run.command).unwrap();
    plugin.validate_job(&fine.run.job.context, &fine.run.command).unwrap();
    // AND a job that skipped the submission check is refused at submit, before any request
    let error = Fixture::new(json!({"query": ""})).await.submit().await.unwrap_err();
    assert!(matches!(&error, PluginError::InvalidContext(m) if m.contains("`query`")), "{error:?}");
}

/// A log sink for one test's thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_private_key_appears_in_no_error_log_result_or_debug_output() {
    // GIVEN every log line of this test captured (its runtime runs on this thread only)
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || sink.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let secret_lines: Vec<String> = [TestKey::get(), unregistered_key()]
        .iter()
        .flat_map(|key| {
            key.private_pem.lines().filter(|l| !l.starts_with("-----")).map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    let mut texts = Vec::new();

    // WHEN jobs succeed, fail, are refused, and meet keys that cannot be used
    let fixture =
        Fixture::with(Setup { pending_polls: 0, ..Setup::job(json!({"query": "select * from reports"})) }).await;
    let mut handle = None;
    fixture.plugin.run(&fixture.run, &mut handle).await.unwrap();
    texts.push(serde_json::to_string(&fixture.result().await).unwrap());
    texts.push(format!("{:?}", fixture.server.seen(|seen| seen.submits.clone())));

    let failing = Fixture::with(Setup { pending_polls: 0, ..Setup::job(json!({"query": "select error"})) }).await;
    let mut handle = None;
    texts.push(failing.plugin.run(&failing.run, &mut handle).await.unwrap_err().to_string());

    let wrong = Fixture::with(Setup { key: unregistered_key(), ..Setup::job(json!({"query": "select 1"})) }).await;
    texts.push(format!("{:?}", wrong.submit().await.unwrap_err()));

    // A key file cut short, and a key pasted where its location belongs.
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.p8");
    let pem = &TestKey::get().private_pem;
    std::fs::write(&cut, &pem[..pem.len() / 2]).unwrap();
    let truncated =
        Fixture::with(Setup { cluster: json!({"private_key": cut}), ..Setup::job(json!({"query": "select 1"})) }).await;
    texts.push(format!("{:?}", truncated.submit().await.unwrap_err()));
    let pasted =
        Fixture::with(Setup { cluster: json!({"private_key": pem}), ..Setup::job(json!({"query": "select 1"})) }).await;
    texts.push(fixture.plugin.validate_cluster(&pasted.run.cluster).unwrap_err());
    texts.push(format!("{:?}", pasted.submit().await.unwrap_err()));

    texts.push(format!("{:?}", PrivateKeyPem::new(pem.clone())));
    texts.push(String::from_utf8(logs.0.lock().unwrap().clone()).unwrap());

    // THEN no line of either private key shows anywhere
    assert!(texts.last().unwrap().contains("snowflake result stored"), "the logs were not captured");
    for text in &texts {
        for line in &secret_lines {
            assert!(!text.contains(line.as_str()), "key material leaked into: {text}");
        }
    }
}
