//! The dynamodb and glue plugins on both runtimes: `heimdall serve` (real HTTP, jobs run in
//! the submit call) and the serverless stack (the state machine runs the plugin's function),
//! against data the tests put into the emulator.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_glue::types::{DatabaseInput, TableInput};
use heimdall_adapters_aws::s3_client;
use heimdall_domain::{JobId, JobStatus};
use heimdall_tests::emulator::emulator;
use heimdall_tests::{TestApp, spawn_app_with};
use serde_json::{Value, json};

use crate::serverless_stack::ServerlessStack;
use crate::support::unique;

const LOCAL_CONFIG: &str = r#"
commands:
  - {name: dynamodb, version: "1", plugin: dynamodb, is_sync: true, tags: [type:dynamodb], cluster_tags: [type:dynamodb], context: {max_rows: 100}}
  - {name: glue, version: "1", plugin: glue, is_sync: true, tags: [type:glue], cluster_tags: [type:glue]}
clusters:
  - {name: dynamodb, version: "1", tags: [type:dynamodb]}
  - {name: glue-catalog, version: "1", tags: [type:glue]}
"#;

/// A table `orders` (customer, order) with three orders of two customers, and a fourth item
/// with an extra attribute.
async fn orders_table() -> String {
    orders_table_in(&emulator().sdk_config().await).await
}

/// The orders table in the account `sdk` acts in.
async fn orders_table_in(sdk: &aws_config::SdkConfig) -> String {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let table = unique("orders");
    let attribute = |name: &str, kind| AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build().unwrap();
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap();
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("customer", ScalarAttributeType::S))
        .attribute_definitions(attribute("order", ScalarAttributeType::N))
        .key_schema(key("customer", KeyType::Hash))
        .key_schema(key("order", KeyType::Range))
        .send()
        .await
        .unwrap();
    for (customer, order, total) in [("c-1", "1", "10.5"), ("c-1", "2", "20"), ("c-1", "3", "7"), ("c-2", "1", "99")] {
        let mut put = client
            .put_item()
            .table_name(&table)
            .item("customer", AttributeValue::S(customer.into()))
            .item("order", AttributeValue::N(order.into()))
            .item("total", AttributeValue::N(total.into()));
        if customer == "c-2" {
            put = put.item("gift", AttributeValue::Bool(true));
        }
        put.send().await.unwrap();
    }
    table
}

const METADATA: &str = r#"{
  "format-version": 2,
  "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1",
  "location": "s3://lake/sales/orders",
  "current-schema-id": 1,
  "schemas": [
    {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "required": true, "type": "long"}]},
    {"type": "struct", "schema-id": 1, "fields": [
      {"id": 1, "name": "id", "required": true, "type": "long"},
      {"id": 2, "name": "placed_at", "required": false, "type": "timestamptz"},
      {"id": 3, "name": "lines", "required": false, "type": {"type": "list", "element-id": 4, "element": "string", "element-required": false}}
    ]}
  ],
  "default-spec-id": 0,
  "partition-specs": [{"spec-id": 0, "fields": [{"name": "placed_at_day", "transform": "day", "source-id": 2, "field-id": 1000}]}],
  "current-snapshot-id": 2,
  "snapshots": [
    {"snapshot-id": 1, "timestamp-ms": 1700000000000, "summary": {"operation": "append", "added-records": "10"}},
    {"snapshot-id": 2, "parent-snapshot-id": 1, "timestamp-ms": 1700000100000, "summary": {"operation": "overwrite", "added-records": "3"}}
  ],
  "properties": {"write.format.default": "parquet", "owner": "sales"}
}"#;

/// A Glue database with an Iceberg table `orders` (its metadata in S3) and a Hive table
/// `legacy`; answers the database name.
async fn glue_catalog() -> String {
    let sdk = emulator().sdk_config().await;
    let bucket = unique("lake");
    let s3 = s3_client(&sdk);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let key = "sales/orders/metadata/00002.metadata.json";
    s3.put_object().bucket(&bucket).key(key).body(METADATA.as_bytes().to_vec().into()).send().await.unwrap();
    let glue = aws_sdk_glue::Client::new(&sdk);
    let database = unique("sales").replace('-', "_");
    glue.create_database().database_input(DatabaseInput::builder().name(&database).build().unwrap()).send().await.unwrap();
    let iceberg = TableInput::builder()
        .name("orders")
        .table_type("EXTERNAL_TABLE")
        .parameters("table_type", "ICEBERG")
        .parameters("metadata_location", format!("s3://{bucket}/{key}"))
        .build()
        .unwrap();
    glue.create_table().database_name(&database).table_input(iceberg).send().await.unwrap();
    let hive = TableInput::builder().name("legacy").table_type("EXTERNAL_TABLE").parameters("classification", "csv").build().unwrap();
    glue.create_table().database_name(&database).table_input(hive).send().await.unwrap();
    database
}

async fn local_app() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(LOCAL_CONFIG, dir.path().join("data"), Duration::from_secs(5), emulator().sdk_config().await).await;
    (app, dir)
}

fn request(criteria: &str, context: Value) -> Value {
    json!({"name": "data", "version": "1", "command_criteria": [criteria], "context": context})
}

fn column_names(result: &Value) -> Vec<String> {
    result["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_reads_by_partiql_by_key_and_by_key_condition_in_heimdall_serve() {
    let table = orders_table().await;
    let (app, _dir) = local_app().await;

    // PartiQL SELECT: every item, columns the union of their attributes.
    let answer = app.submit_ok(&request("type:dynamodb", json!({"query": format!("SELECT * FROM \"{table}\"")}))).await;
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    let result = &answer["result"];
    assert_eq!(result["data"].as_array().unwrap().len(), 4);
    let mut names = column_names(result);
    names.sort();
    assert_eq!(names, ["customer", "gift", "order", "total"]);

    // Get one item by key: numbers come back as JSON numbers.
    let answer = app
        .submit_ok(&request("type:dynamodb", json!({"table": table, "get": {"key": {"customer": "c-1", "order": 2}}})))
        .await;
    let result = &answer["result"];
    let total = column_names(result).iter().position(|c| c == "total").unwrap();
    assert_eq!(result["data"], json!([result["data"][0].clone()]));
    assert_eq!(result["data"][0][total], json!(20));

    // Query by key condition, capped by the job's limit (the pages are followed).
    let answer = app
        .submit_ok(&request(
            "type:dynamodb",
            json!({"table": table, "key_condition": "customer = :c", "values": {":c": "c-1"}, "limit": 2}),
        ))
        .await;
    assert_eq!(answer["result"]["data"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamodb_cluster_with_a_role_arn_reads_as_that_role() {
    // The emulator keeps one backend per account and tells them apart by the credentials: the
    // table exists only in the other account, so only a read as the assumed role finds it.
    let role_arn = "arn:aws:iam::210987654321:role/heimdall-reader";
    let own = emulator().sdk_config().await;
    let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn).session_name("test").configure(&own).build().await;
    let other_account = own.to_builder().credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider)).build();
    let table = orders_table_in(&other_account).await;
    assert!(aws_sdk_dynamodb::Client::new(&own).describe_table().table_name(&table).send().await.is_err(), "the table is not in the platform's account");
    let config = r#"
commands:
  - {name: dynamodb, version: "1", plugin: dynamodb, is_sync: true, tags: [type:dynamodb], cluster_tags: [type:dynamodb]}
clusters:
  - {name: other-account, version: "1", tags: [type:dynamodb], context: {role_arn: "arn:aws:iam::210987654321:role/heimdall-reader"}}
"#;
    let dir = tempfile::tempdir().unwrap();
    // Through the router, which counts the calls.
    let (app, counter) = {
        let (aws, counter) = emulator().counted_sdk_config().await;
        (spawn_app_with(config, dir.path().join("data"), Duration::from_secs(5), aws).await, counter)
    };
    let start = counter.calls().len();

    let answer = app.submit_ok(&request("type:dynamodb", json!({"query": format!("SELECT * FROM \"{table}\"")}))).await;

    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_eq!(answer["result"]["data"].as_array().unwrap().len(), 4);
    let calls = counter.calls()[start..].to_vec();
    // STS answers AssumeRole (a query-protocol POST) before the read, once for the role.
    let assume = calls.iter().position(|c| c == "sts:POST").unwrap_or_else(|| panic!("no AssumeRole: {calls:?}"));
    let read = calls.iter().position(|c| c == "dynamodb:ExecuteStatement").unwrap();
    assert!(assume < read, "{calls:?}");
    let again = app.submit_ok(&request("type:dynamodb", json!({"query": format!("SELECT * FROM \"{table}\"")}))).await;
    assert_eq!(again["status"], "SUCCEEDED");
    assert_eq!(counter.calls()[start..].iter().filter(|c| *c == "sts:POST").count(), 1, "the role's credentials are kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_role_arn_stops_start_up_naming_the_cluster() {
    let config = LOCAL_CONFIG.replace("{name: dynamodb, version: \"1\", tags: [type:dynamodb]}", "{name: dynamodb, version: \"1\", tags: [type:dynamodb], context: {role_arn: reader}}");
    assert!(config.contains("role_arn: reader"));
    let catalog = heimdall_service::Catalog::load(&config, "test.yml", &heimdall_service::PluginRegistry::new(heimdall_plugins_aws::data_plugins(&emulator().sdk_config().await, None)));
    let message = catalog.err().unwrap().to_string();
    assert!(message.contains("clusters[0] (id `dynamodb`)") && message.contains("`role_arn` `reader` is not an IAM role ARN"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_refuses_writes_and_names_a_missing_table() {
    let (app, _dir) = local_app().await;

    let response = app.submit_job(&request("type:dynamodb", json!({"query": "DELETE FROM orders WHERE customer = 'c-1'"}))).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "INVALID_JOB_CONTEXT");
    assert!(body["error"].as_str().unwrap().contains("DELETE statements are refused"), "{body}");

    let answer = app.submit_ok(&request("type:dynamodb", json!({"table": "no-such-table", "get": {"key": {"id": "x"}}}))).await;
    assert_eq!(answer["status"], "FAILED");
    assert!(answer["error"].as_str().unwrap().contains("no-such-table not found"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glue_describes_an_iceberg_tables_schema_spec_snapshots_and_properties_in_heimdall_serve() {
    let database = glue_catalog().await;
    let (app, _dir) = local_app().await;

    let answer = app.submit_ok(&request("type:glue", json!({"table_name": format!("{database}.orders")}))).await;

    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    let rows = answer["result"]["data"].as_array().unwrap().clone();
    let of = |section: &str| rows.iter().filter(|r| r[0] == section).cloned().collect::<Vec<_>>();
    let schema: Vec<Value> = of("schema").iter().map(|r| json!([r[1], r[2]])).collect();
    assert_eq!(schema, [json!(["id", "long"]), json!(["placed_at", "timestamptz"]), json!(["lines", "list"])]);
    assert_eq!(of("partition")[0][1], "placed_at_day");
    assert_eq!(of("partition")[0][2], "day");
    let snapshots = of("snapshot");
    assert_eq!(snapshots.len(), 2);
    assert_eq!(snapshots[1][2], "overwrite");
    assert_eq!(snapshots[1][3]["current"], true);
    assert_eq!(snapshots[1][3]["timestamp_ms"], 1_700_000_100_000i64);
    assert_eq!(of("property").len(), 2);

    let missing = app.submit_ok(&request("type:glue", json!({"table_name": format!("{database}.nope")}))).await;
    assert_eq!(missing["status"], "FAILED");
    assert!(missing["error"].as_str().unwrap().contains("not found in the Glue catalog"), "{missing}");
    let hive = app.submit_ok(&request("type:glue", json!({"table_name": format!("{database}.legacy")}))).await;
    assert_eq!(hive["status"], "FAILED");
    assert!(hive["error"].as_str().unwrap().contains("is not an Iceberg table"), "{hive}");
}

/// Submits through the api function, dispatches, waits for the end; answers the job and result.
async fn run_serverless(stack: &ServerlessStack, criteria: &str, cluster: &str, context: Value) -> (heimdall_domain::Job, Value) {
    let body = json!({"name": "data", "version": "1", "command_criteria": [criteria], "cluster_criteria": [cluster], "context": context});
    let (status, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let id: JobId = answer["id"].as_str().unwrap().parse().unwrap();
    let event = stack.receive_as_sqs_event().await;
    assert!(heimdall_function_dispatcher::handle_batch(&stack.service, event).await.batch_item_failures.is_empty());
    let job = stack.wait_for(id, Duration::from_secs(60), |s| s.is_terminal()).await;
    let (_, result) = stack.api_json("alice", "GET", &format!("/api/v1/job/{id}/result"), None).await;
    (job, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_and_glue_jobs_run_through_the_state_machine() {
    let table = orders_table().await;
    let database = glue_catalog().await;
    let stack = ServerlessStack::create().await;

    let (job, result) = run_serverless(&stack, "type:dynamodb", "type:dynamodb", json!({"query": format!("SELECT * FROM \"{table}\" WHERE customer = 'c-1'")})).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(result["data"].as_array().unwrap().len(), 3);

    let (job, result) = run_serverless(&stack, "type:glue", "type:glue", json!({"table_name": format!("{database}.orders")})).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert!(result["data"].as_array().unwrap().iter().any(|row| row[0] == "snapshot"));
}

const SYNC_DYNAMODB_CONFIG: &str = r#"
commands:
  - {name: dynamodb, version: "1", plugin: dynamodb, is_sync: true, tags: [type:dynamodb], cluster_tags: [type:dynamodb]}
clusters:
  - {name: dynamodb, version: "1", tags: [type:dynamodb]}
"#;

/// The api function's app over a stack's table, bucket and queue (as `build_service` wires it,
/// its plugins forbidden to read `forbidden_table`); callers are `alice`.
fn api_with(sdk: &aws_config::SdkConfig, settings: &heimdall_adapters_aws::AwsSettings, forbidden_table: &str) -> axum::Router {
    let registry = heimdall_service::PluginRegistry::new(heimdall_functions::all_plugins(sdk, forbidden_table));
    let catalog = heimdall_service::Catalog::load(SYNC_DYNAMODB_CONFIG, "test.yml", &registry).unwrap_or_else(|e| panic!("{e}"));
    let service = heimdall_service::JobService::new(
        std::sync::Arc::new(catalog),
        registry,
        std::sync::Arc::new(heimdall_adapters_aws::DynamoJobStore::new(aws_sdk_dynamodb::Client::new(sdk), &settings.table)),
        std::sync::Arc::new(heimdall_adapters_aws::S3ArtifactStore::new(s3_client(sdk), &settings.bucket)),
        std::sync::Arc::new(heimdall_adapters_aws::SqsJobQueue::new(aws_sdk_sqs::Client::new(sdk), &settings.queue_url)),
        heimdall_service::ServiceSettings {
            work_root: std::env::temp_dir().join("heimdall-work"),
            inline_result_limit: 4 * 1024 * 1024,
            max_job_seconds: heimdall_service::ServiceSettings::DEFAULT_MAX_JOB_SECONDS,
            max_sync_jobs: heimdall_service::ServiceSettings::DEFAULT_MAX_SYNC_JOBS,
            max_sync_seconds: heimdall_service::ServiceSettings::DEFAULT_MAX_SYNC_SECONDS,
        },
    );
    heimdall_function_api::app(std::sync::Arc::new(service), Some("alice".into()))
}

async fn post_job(api: &axum::Router, context: Value) -> (u16, Value) {
    use tower::ServiceExt;
    let body = request("type:dynamodb", context).to_string();
    let request = axum::http::Request::post("/api/v1/job").header("content-type", "application/json").body(axum::body::Body::from(body)).unwrap();
    let response = api.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamodb_job_on_the_platforms_jobs_table_is_refused_and_other_tables_still_read() {
    let sdk = emulator().sdk_config().await;
    let settings = heimdall_emulator::stack::create_stack(&sdk, &unique("hd"), "arn:aws:iam::123456789012:role/heimdall-state-machine").await.unwrap();
    let jobs_table = settings.table.clone();
    let orders = orders_table().await;
    // As build_service wires a function over the stack's jobs table.
    let guarded = api_with(&sdk, &settings, &jobs_table);

    // Another table still reads (and the job is kept in the jobs table).
    let (status, answer) = post_job(&guarded, json!({"query": format!("SELECT * FROM \"{orders}\"")})).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCEEDED")), "{answer}");
    assert_eq!(answer["result"]["data"].as_array().unwrap().len(), 4);

    // Every way of reading the jobs table is a 400 saying why.
    let jobs_arn = format!("arn:aws:dynamodb:us-east-1:123456789012:table/{jobs_table}");
    for context in [
        json!({"query": format!("SELECT * FROM \"{jobs_table}\"")}),
        json!({"query": format!("select * from \"{}\".\"by_user\"", jobs_table.to_uppercase())}),
        json!({"query": format!("SELECT * FROM {jobs_table}")}),
        json!({"table": jobs_table, "get": {"key": {"pk": "x"}}}),
        json!({"table": jobs_arn, "key_condition": "pk = :p", "values": {":p": "x"}}),
    ] {
        let (status, answer) = post_job(&guarded, context.clone()).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_JOB_CONTEXT")), "{context}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(&format!("table `{jobs_table}` is the platform's own")) && error.contains("cannot be read by jobs"), "{error}");
    }

    // Without the rule the same read would have handed over the stored jobs: the refusal is
    // what keeps them in.
    let unguarded = api_with(&sdk, &settings, "some-other-table");
    let (status, answer) = post_job(&unguarded, json!({"query": format!("SELECT * FROM \"{jobs_table}\"")})).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCEEDED")), "{answer}");
    assert!(!answer["result"]["data"].as_array().unwrap().is_empty(), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_and_glue_health_checks_find_the_table_and_the_database_their_clusters_name() {
    let (table, database) = (orders_table().await, glue_catalog().await);
    let config = format!(
        r#"
commands:
  - {{name: dynamodb, version: "1", plugin: dynamodb, tags: [type:dynamodb], cluster_tags: [type:dynamodb]}}
  - {{name: glue, version: "1", plugin: glue, tags: [type:glue], cluster_tags: [type:glue]}}
clusters:
  - {{name: orders, version: "1", tags: [type:dynamodb], context: {{table: {table}}}}}
  - {{name: gone, version: "1", tags: [type:dynamodb], context: {{table: no-such-table}}}}
  - {{name: lake, version: "1", tags: [type:glue], context: {{database: {database}}}}}
  - {{name: no-lake, version: "1", tags: [type:glue], context: {{database: no_such_database}}}}
"#
    );
    let parsed = heimdall_domain::config::Config::parse(&config, "health.yml").unwrap();
    let plugins = heimdall_plugins_aws::data_plugins(&emulator().sdk_config().await, None);
    let check = |command: usize, cluster: usize| {
        let plugin = plugins.iter().find(|p| p.name() == parsed.commands[command].plugin).unwrap().clone();
        let (command, cluster) = (parsed.commands[command].clone(), parsed.clusters[cluster].clone());
        async move { plugin.check_health(&command, &cluster).await }
    };

    assert_eq!(check(0, 0).await, Ok(()));
    let missing = check(0, 1).await.unwrap_err();
    assert!(missing.contains("DescribeTable no-such-table") && missing.contains("ResourceNotFound"), "{missing}");
    assert_eq!(check(1, 2).await, Ok(()));
    let missing = check(1, 3).await.unwrap_err();
    assert!(missing.contains("GetDatabase no_such_database"), "{missing}");
}
