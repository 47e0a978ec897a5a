//! The template's IAM roles, enforced: `infra/template.yaml` is deployed (by `heimdall-deploy`,
//! as `infra_template.rs` does) to a second moto server of its own
//! ([`heimdall_tests::emulator::enforced_emulator`]), with the data plugins' parameters naming
//! this module's tables, catalog, files, virtual cluster, roles and keys. Then the setup
//! assumes each function's role (the `Role` of the deployed function) and turns enforcement
//! on; from then on the product's own code (the adapters, the plugins, the config reader, the
//! dispatcher's `dispatch_job`) runs with those temporary credentials, so a right the template
//! lacks fails a test, and so does a right it has beyond the code's needs (each test also
//! makes a representative call the role must not have and expects AccessDenied).
//!
//! What moto 5's enforcement (`moto/iam/access_control.py`, `moto/core/authorization.py`)
//! checks: the request's signature and access key (an IAM user's or an assumed role's), then
//! the actions and resources of the caller's policies, inline and attached (`Allow` and
//! `Deny`, `Action`/`NotAction`, `*` wildcards). Resource ARNs: moto works them out for S3
//! (bucket, or bucket/key), SQS (the queue), STS (`AssumeRole`'s role) and IAM; for every
//! other service it checks against `*`, which no statement naming an ARN matches, so the
//! emulator's shim ([`heimdall_tests::emulator::IAM_RESOURCES_SHIM`]) supplies the ARNs of
//! DynamoDB (table, index; PartiQL as `PartiQLSelect`…; a transaction item by item), Glue (catalog, database and table,
//! as AWS authorizes GetTable), Step Functions, EMR on EKS (and `iam:PassRole` of a job run's
//! execution role), SSM and Secrets Manager, and checks S3 `DeleteObjects` per key.
//!
//! What it does not check: conditions, except `StringEquals` on keys it is given, which for
//! identity policies is none (so `s3:prefix` on `ListBucket` and `iam:PassedToService` on
//! `PassRole` are not evaluated); resource policies (bucket and queue policies, KMS key
//! policies; `kms:Decrypt` of a SecureString is not modelled at all); permission boundaries,
//! SCPs and session policies; the trust policies of the function roles (the setup assumes
//! them before enforcement; Lambda's own `sts:AssumeRole` is not something the code does);
//! the Lambda service's calls with a role (the SQS event source mapping's ReceiveMessage,
//! DeleteMessage, GetQueueAttributes; CloudWatch Logs delivery) and the state machine role's
//! (lambda:InvokeFunction, log delivery, X-Ray), which no product code makes: those are
//! checked in the template by `infra_template.rs`. Snowflake itself is outside AWS: only the
//! snowflake plugin's key read (SSM, Secrets Manager) is exercised.

use std::collections::HashMap;
use std::sync::Arc;

use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_dynamodb::types::{AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_glue::types::{DatabaseInput, TableInput};
use aws_sdk_sqs::config::Credentials;
use bytes::Bytes;
use heimdall_adapters_aws::{AwsSettings, DynamoJobStore, S3ArtifactStore, SfnWorkflows, SqsJobQueue, s3_client};
use heimdall_deploy::{DeploySettings, FUNCTIONS, deploy};
use heimdall_domain::{JobId, JobStatus};
use heimdall_functions::FunctionConfig;
use heimdall_ports::{
    Artifact, ArtifactStore, ByteRange, JobQueue, JobQuery, JobStore, Plugin, PluginRun, SortField, StatusChange, Step, Workflows,
};
use heimdall_service::{Catalog, PluginRegistry};
use heimdall_tests::emulator::enforced_emulator;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::support::{create_virtual_cluster, job, unique};

const ACCOUNT: &str = "123456789012";
const EXECUTION_ROLE: &str = "arn:aws:iam::123456789012:role/spark-jobs";
const CLUSTER_ROLE: &str = "arn:aws:iam::210987654321:role/heimdall-reader";

/// Everything the tests need from the setup: names, and each function's role credentials
/// (plain data: every test makes its own clients on its own runtime).
struct Deployed {
    /// Function name (`api`, `plugin-glue`, …) → its role's temporary credentials.
    credentials: HashMap<&'static str, Credentials>,
    /// Function name → its environment in the deployed stack.
    environments: HashMap<&'static str, HashMap<String, String>>,
    code_bucket: String,
    other_bucket: String,
    lake: String,
    orders_table: String,
    private_table: String,
    database: String,
    other_database: String,
    virtual_cluster_id: String,
    virtual_cluster_name: String,
    events_queue_url: String,
    config: String,
    /// A job whose Spark results are already under the results prefix.
    spark_result_job: JobId,
}

const METADATA: &str = r#"{"format-version": 2, "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1", "location": "s3://lake/orders",
  "current-schema-id": 0, "schemas": [{"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "required": true, "type": "long"}]}],
  "default-spec-id": 0, "partition-specs": [{"spec-id": 0, "fields": []}], "properties": {}}"#;

async fn deployed() -> &'static Deployed {
    static DEPLOYED: OnceCell<Deployed> = OnceCell::const_new();
    DEPLOYED.get_or_init(set_up).await
}

/// Deploys the template with parameters naming this module's data, makes that data, assumes
/// every function's role, then turns enforcement on.
async fn set_up() -> Deployed {
    let emulator = enforced_emulator();
    assert!(!emulator.is_enforced(), "the setup runs once, before enforcement");
    let admin = emulator.sdk_config().await;
    let s3 = s3_client(&admin);
    let (lake, other_bucket) = (unique("lake"), unique("other"));
    for bucket in [&lake, &other_bucket] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let put = |bucket: &str, key: &str, body: &str| {
        s3.put_object().bucket(bucket).key(key).body(body.as_bytes().to_vec().into()).send()
    };
    put(&other_bucket, "secret.txt", "not for heimdall").await.unwrap();

    // DynamoDB: a table the dynamodb plugin may read and one it may not.
    let dynamodb = aws_sdk_dynamodb::Client::new(&admin);
    let (orders_table, private_table) = (unique("orders"), unique("private"));
    for table in [&orders_table, &private_table] {
        let attribute = |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap();
        let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap();
        dynamodb
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("customer"))
            .attribute_definitions(attribute("order"))
            .key_schema(key("customer", KeyType::Hash))
            .key_schema(key("order", KeyType::Range))
            .send()
            .await
            .unwrap();
        for order in ["1", "2"] {
            dynamodb
                .put_item()
                .table_name(table)
                .item("customer", AttributeValue::S("c-1".into()))
                .item("order", AttributeValue::S(order.into()))
                .send()
                .await
                .unwrap();
        }
    }

    // Glue: `orders` (metadata under the granted prefix), `hidden` (metadata elsewhere) in the
    // granted database, and `orders` in a database the parameters do not name.
    put(&lake, "warehouse/orders/metadata/00001.metadata.json", METADATA).await.unwrap();
    put(&lake, "elsewhere/hidden/metadata/00001.metadata.json", METADATA).await.unwrap();
    let glue = aws_sdk_glue::Client::new(&admin);
    let (database, other_database) = (unique("sales").replace('-', "_"), unique("hr").replace('-', "_"));
    for (db, table, key) in [
        (&database, "orders", "warehouse/orders/metadata/00001.metadata.json"),
        (&database, "hidden", "elsewhere/hidden/metadata/00001.metadata.json"),
        (&other_database, "orders", "warehouse/orders/metadata/00001.metadata.json"),
    ] {
        if glue.get_database().name(db.as_str()).send().await.is_err() {
            glue.create_database().database_input(DatabaseInput::builder().name(db.as_str()).build().unwrap()).send().await.unwrap();
        }
        let input = TableInput::builder()
            .name(table)
            .table_type("EXTERNAL_TABLE")
            .parameters("table_type", "ICEBERG")
            .parameters("metadata_location", format!("s3://{lake}/{key}"))
            .build()
            .unwrap();
        glue.create_table().database_name(db.as_str()).table_input(input).send().await.unwrap();
    }

    // EMR on EKS: one virtual cluster; Spark results of one job already written.
    let virtual_cluster_name = unique("spark-eks");
    let virtual_cluster_id = create_virtual_cluster(&aws_sdk_emrcontainers::Client::new(&admin), &virtual_cluster_name).await;
    let spark_result_job = JobId::new();
    put(&lake, &format!("spark/results/{spark_result_job}/part-00000.json"), "{\"country\":\"FR\",\"orders\":3}\n").await.unwrap();

    // Snowflake keys: one parameter and one secret granted, one of each not.
    let ssm = aws_sdk_ssm::Client::new(&admin);
    let (key_parameter, other_parameter) = (format!("/heimdall/{}", unique("key")), format!("/heimdall/{}", unique("other-key")));
    for name in [&key_parameter, &other_parameter] {
        ssm.put_parameter().name(name).value("not a key").r#type(aws_sdk_ssm::types::ParameterType::SecureString).send().await.unwrap();
    }
    let secrets = aws_sdk_secretsmanager::Client::new(&admin);
    let (secret, other_secret) = (unique("key"), unique("other-key"));
    let mut secret_arn = String::new();
    for name in [&secret, &other_secret] {
        let created = secrets.create_secret().name(name).secret_string("not a key").send().await.unwrap();
        if name == &secret {
            secret_arn = created.arn().unwrap().to_owned();
        }
    }

    // The stack.
    let stack = unique("iam");
    let code_bucket = unique("code");
    let config = format!(
        r#"commands:
  - {{name: ping, version: "1", plugin: ping, is_sync: true, tags: [type:ping], cluster_tags: [type:ping]}}
  - {{name: dynamodb, version: "1", plugin: dynamodb, is_sync: true, tags: [type:dynamodb], cluster_tags: [type:dynamodb]}}
  - {{name: glue, version: "1", plugin: glue, is_sync: true, tags: [type:glue], cluster_tags: [type:glue]}}
  - name: spark
    version: "1"
    plugin: spark
    is_sync: false
    allowed_modes: [async]
    tags: [type:spark]
    cluster_tags: [type:spark]
    context: {{queries_uri: "s3://{lake}/spark/queries", results_uri: "s3://{lake}/spark/results", wrapper_uri: "s3://{lake}/spark/run_sql.py"}}
  - name: spark-elsewhere
    version: "1"
    plugin: spark
    is_sync: false
    allowed_modes: [async]
    tags: [type:spark-elsewhere]
    cluster_tags: [type:spark]
    context: {{queries_uri: "s3://{other_bucket}/queries", results_uri: "s3://{other_bucket}/results", wrapper_uri: "s3://{lake}/spark/run_sql.py"}}
  - {{name: snowflake, version: "1", plugin: snowflake, is_sync: false, allowed_modes: [async], tags: [type:snowflake], cluster_tags: [type:snowflake]}}
clusters:
  - {{name: ping, version: "1", tags: [type:ping]}}
  - {{name: dynamodb, version: "1", tags: [type:dynamodb]}}
  - {{name: glue, version: "1", tags: [type:glue]}}
  - {{name: spark-by-id, version: "1", tags: [type:spark], context: {{execution_role_arn: "{EXECUTION_ROLE}", emr_release_label: emr-7.2.0-latest, virtual_cluster_id: "{virtual_cluster_id}"}}}}
  - {{name: {virtual_cluster_name}, version: "1", tags: [type:spark], context: {{execution_role_arn: "{EXECUTION_ROLE}", emr_release_label: emr-7.2.0-latest}}}}
  - {{name: spark-admin-role, version: "1", tags: [type:spark], context: {{execution_role_arn: "arn:aws:iam::{ACCOUNT}:role/admin", emr_release_label: emr-7.2.0-latest, virtual_cluster_id: "{virtual_cluster_id}"}}}}
  - {{name: snowflake-ssm, version: "1", tags: [type:snowflake], context: {{account: acct, user: heimdall, private_key: "ssm:{key_parameter}", endpoint: "http://127.0.0.1:9"}}}}
  - {{name: snowflake-secret, version: "1", tags: [type:snowflake], context: {{account: acct, user: heimdall, private_key: "secretsmanager:{secret}", endpoint: "http://127.0.0.1:9"}}}}
  - {{name: snowflake-ssm-other, version: "1", tags: [type:snowflake], context: {{account: acct, user: heimdall, private_key: "ssm:{other_parameter}", endpoint: "http://127.0.0.1:9"}}}}
  - {{name: snowflake-secret-other, version: "1", tags: [type:snowflake], context: {{account: acct, user: heimdall, private_key: "secretsmanager:{other_secret}", endpoint: "http://127.0.0.1:9"}}}}
"#
    );
    let packages = tempfile::tempdir().unwrap();
    for function in FUNCTIONS {
        std::fs::write(packages.path().join(format!("{function}.zip")), b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").unwrap();
    }
    let config_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config_file.path(), &config).unwrap();
    let arn = |service: &str, resource: &str| format!("arn:aws:{service}:us-east-1:{ACCOUNT}:{resource}");
    let settings = DeploySettings {
        stack_name: stack.clone(),
        code_bucket: code_bucket.clone(),
        packages: packages.path().to_owned(),
        version: "v1".into(),
        jwt_issuer: "https://issuer.example".into(),
        jwt_audience: "heimdall-client".into(),
        config: Some(config_file.path().to_owned()),
        parameters: vec![
            ("DynamoDbTableArns".into(), arn("dynamodb", &format!("table/{orders_table}"))),
            (
                "GlueResourceArns".into(),
                [arn("glue", "catalog"), arn("glue", &format!("database/{database}")), arn("glue", &format!("table/{database}/*"))].join(","),
            ),
            ("GlueMetadataS3Arns".into(), format!("arn:aws:s3:::{lake}/warehouse/*")),
            ("EmrVirtualClusterArns".into(), arn("emr-containers", &format!("/virtualclusters/{virtual_cluster_id}"))),
            ("EmrJobExecutionRoleArns".into(), EXECUTION_ROLE.into()),
            ("SparkS3Arns".into(), format!("arn:aws:s3:::{lake}/spark/*")),
            ("SparkS3BucketArns".into(), format!("arn:aws:s3:::{lake}")),
            ("AssumableRoleArns".into(), CLUSTER_ROLE.into()),
            ("SnowflakeKeyArns".into(), format!("{},{secret_arn}", arn("ssm", &format!("parameter{key_parameter}")))),
        ],
    };
    deploy(&admin, &settings).await.unwrap();

    // The emulator's CloudFormation records the state machine without making it: make it in
    // Step Functions under the stack's name, so StartExecution has something to start.
    aws_sdk_sfn::Client::new(&admin)
        .create_state_machine()
        .name(format!("{stack}-async-job"))
        .definition(r#"{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}"#)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/states"))
        .send()
        .await
        .unwrap();

    // Each function's role, as Lambda would assume it.
    let lambda = aws_sdk_lambda::Client::new(&admin);
    let mut credentials = HashMap::new();
    let mut environments = HashMap::new();
    for function in ["api", "dispatcher", "events", "janitor", "plugin-dynamodb", "plugin-glue", "plugin-spark", "plugin-snowflake"] {
        let configuration = lambda.get_function_configuration().function_name(format!("{stack}-{function}")).send().await.unwrap();
        let role = configuration.role().unwrap().to_owned();
        let provider = aws_config::sts::AssumeRoleProvider::builder(&role).session_name(function).configure(&admin).build().await;
        credentials.insert(function, provider.provide_credentials().await.unwrap());
        environments.insert(function, configuration.environment().unwrap().variables().unwrap().clone());
    }
    let events_queue_url = aws_sdk_sqs::Client::new(&admin)
        .list_queues()
        .send()
        .await
        .unwrap()
        .queue_urls()
        .iter()
        .find(|url| url.contains(&stack) && url.contains("EventsQueue"))
        .cloned()
        .expect("the stack's events queue");

    // The api function's first cold start seeds the catalog table from the config.
    heimdall_functions::build_service(&admin, &function_config_of(&environments["api"]), heimdall_functions::every_plugin).await.unwrap();
    emulator.enforce().await;
    Deployed {
        credentials,
        environments,
        code_bucket,
        other_bucket,
        lake,
        orders_table,
        private_table,
        database,
        other_database,
        virtual_cluster_id,
        virtual_cluster_name,
        events_queue_url,
        config,
        spark_result_job,
    }
}

/// A function's config from its deployed environment.
fn function_config_of(env: &HashMap<String, String>) -> FunctionConfig {
    FunctionConfig {
        aws: AwsSettings {
            table: env["HEIMDALL_TABLE"].clone(),
            catalog_table: env["HEIMDALL_CATALOG_TABLE"].clone(),
            bucket: env["HEIMDALL_BUCKET"].clone(),
            queue_url: env["HEIMDALL_QUEUE_URL"].clone(),
            state_machine_arn: env["HEIMDALL_STATE_MACHINE_ARN"].clone(),
        },
        config_location: env.get("HEIMDALL_CONFIG").cloned(),
        plugin_function_template: env.get("HEIMDALL_PLUGIN_FUNCTION").cloned().unwrap_or_default(),
        default_user: None,
        job_retention_days: None,
        max_sync_seconds: heimdall_functions::DEFAULT_FUNCTION_MAX_SYNC_SECONDS,
        emf_metrics: false,
        catalog_refresh: std::time::Duration::from_secs(5),
        seeds_catalog: env.get("HEIMDALL_SEED_CATALOG").is_some_and(|value| value == "true"),
        plugin_log_group: env.get("HEIMDALL_PLUGIN_LOG_GROUP").cloned(),
    }
}

impl Deployed {
    /// The SDK config of `function`'s role.
    async fn sdk(&self, function: &str) -> aws_config::SdkConfig {
        enforced_emulator().sdk_config_as(self.credentials[function].clone()).await
    }

    /// `function`'s environment as the function reads it.
    fn function_config(&self, function: &str) -> FunctionConfig {
        function_config_of(&self.environments[function])
    }

    fn table(&self) -> &str {
        &self.environments["api"]["HEIMDALL_TABLE"]
    }

    fn bucket(&self) -> &str {
        &self.environments["api"]["HEIMDALL_BUCKET"]
    }

    /// A run of `command` on `cluster` (by name) with `context`, its output in the artifacts
    /// bucket, as `function`'s role.
    async fn plugin_run(&self, function: &str, command: &str, cluster: &str, context: Value) -> (Arc<dyn Plugin>, PluginRun) {
        self.plugin_run_of(function, JobId::new(), command, cluster, context).await
    }

    async fn plugin_run_of(&self, function: &str, id: JobId, command: &str, cluster: &str, context: Value) -> (Arc<dyn Plugin>, PluginRun) {
        let sdk = self.sdk(function).await;
        let plugins = heimdall_functions::all_plugins(&sdk, self.table());
        let catalog = Catalog::load(&self.config, "iam.yml", &PluginRegistry::new(plugins.clone())).unwrap();
        let command = catalog.commands().iter().find(|c| c.name == command).unwrap().clone();
        let cluster = catalog.clusters().iter().find(|c| c.name == cluster).unwrap().clone();
        let plugin = plugins.into_iter().find(|p| p.name() == command.plugin).unwrap();
        let mut job = job("iam", "alice", 1_700_000_000);
        job.id = id;
        job.status = JobStatus::Running;
        job.context = context;
        job.command_id = Some(command.id.clone());
        job.cluster_id = Some(cluster.id.clone());
        let artifacts = Arc::new(S3ArtifactStore::new(s3_client(&sdk), self.bucket()));
        let work_dir = std::env::temp_dir().join(format!("heimdall-iam-{}", job.id));
        (plugin, PluginRun::new(job, command, cluster, artifacts, work_dir))
    }
}

/// Whether an error (its text, or its Debug with the raw answer) is moto's AccessDenied.
fn is_denied(error: &impl std::fmt::Debug) -> bool {
    let text = format!("{error:?}");
    text.contains("AccessDenied") || text.contains("is not authorized to perform")
}

macro_rules! assert_denied {
    ($call:expr) => {
        match $call {
            Ok(answer) => panic!("{} was allowed: {answer:?}", stringify!($call)),
            Err(error) => assert!(is_denied(&error), "{} failed, but not with AccessDenied: {error:?}", stringify!($call)),
        }
    };
}

macro_rules! assert_allowed {
    ($call:expr) => {
        match $call {
            Ok(answer) => answer,
            Err(error) => panic!("{} failed: {error:?}", stringify!($call)),
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_role_stores_jobs_and_their_output_and_nothing_more() {
    let deployed = deployed().await;
    let sdk = deployed.sdk("api").await;
    let config = deployed.function_config("api");

    // Its config, at cold start; not the packages beside it.
    let (text, _) = assert_allowed!(heimdall_functions::read_config(&sdk, config.config_location.as_deref()).await);
    assert_eq!(text, deployed.config);
    let s3 = s3_client(&sdk);
    assert_denied!(s3.get_object().bucket(&deployed.code_bucket).key("heimdall/v1/api.zip").send().await);

    // The job store: insert, get, transition, and a listing through each index.
    let store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk), deployed.table());
    let user = unique("user");
    let mut stored = job(&unique("name"), &user, 1_700_000_000);
    stored.status = JobStatus::Accepted;
    assert_allowed!(store.insert(&stored).await);
    assert_eq!(assert_allowed!(store.get(stored.id).await).id, stored.id);
    let change = StatusChange::new(JobStatus::Accepted, JobStatus::Running, 1_700_000_001).unwrap();
    assert_eq!(assert_allowed!(store.transition(stored.id, &change).await).status, JobStatus::Running);
    // A sync job's heartbeat, and the claim of in-step work (the same policy serves the shell
    // function), are UpdateItems of their own attribute.
    assert_allowed!(store.heartbeat(stored.id, 1_700_000_002).await);
    assert!(assert_allowed!(store.claim_work_start(stored.id, 1_700_000_002).await));
    assert_eq!(assert_allowed!(store.count_active(&user, 10).await), 1);
    for (index, query) in [
        ("by_created", JobQuery { limit: 10, ..Default::default() }),
        ("by_user", JobQuery { user: Some(user.clone().into()), limit: 10, ..Default::default() }),
        ("by_status", JobQuery { statuses: vec![JobStatus::Running], limit: 10, ..Default::default() }),
        ("by_name", JobQuery { name: Some(stored.name.clone().into()), limit: 10, ..Default::default() }),
        ("by_updated", JobQuery { order_by: SortField::UpdatedAt, limit: 1000, ..Default::default() }),
    ] {
        let page = store.list(&query).await.unwrap_or_else(|error| panic!("{index}: {error}"));
        assert!(page.jobs.iter().any(|j| j.id == stored.id), "{index}");
    }

    // The artifact store: a log in two multipart parts with a live piece published first,
    // readable while it runs and whole at the end, its piece deleted; a result.
    let artifacts = S3ArtifactStore::new(s3.clone(), deployed.bucket()).with_part_bytes(heimdall_adapters_aws::s3_artifact_store::MIN_PART_BYTES);
    let mut writer = assert_allowed!(artifacts.create(stored.id, Artifact::Stdout).await);
    assert_allowed!(writer.write(Bytes::from_static(b"first line\n")).await);
    assert_allowed!(writer.publish().await);
    let live = assert_allowed!(artifacts.open_range(stored.id, Artifact::Stdout, ByteRange::All).await).expect("the live piece");
    assert_eq!(assert_allowed!(live.read_all().await), b"first line\n");
    let big = vec![b'x'; heimdall_adapters_aws::s3_artifact_store::MIN_PART_BYTES + 10];
    assert_allowed!(writer.write(Bytes::from(big)).await);
    let written = assert_allowed!(writer.finish().await);
    let whole = assert_allowed!(artifacts.open(stored.id, Artifact::Stdout).await).unwrap();
    assert_eq!(assert_allowed!(whole.read_all().await).len() as u64, written);
    let pieces = assert_allowed!(s3.list_objects_v2().bucket(deployed.bucket()).prefix(format!("jobs/{}/", stored.id)).send().await);
    let keys: Vec<&str> = pieces.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.iter().all(|key| !key.contains(".live/")), "the live pieces were not deleted: {keys:?}");
    assert_allowed!(heimdall_ports::artifact_store::write_whole(&artifacts, stored.id, Artifact::Result, Bytes::from_static(b"{}")).await);
    let result = assert_allowed!(artifacts.open(stored.id, Artifact::Result).await).unwrap();
    assert_eq!(assert_allowed!(result.read_all().await), b"{}");

    // Async submits and cancels: the jobs queue, stopping (not starting) executions.
    assert_allowed!(SqsJobQueue::new(aws_sdk_sqs::Client::new(&sdk), &config.aws.queue_url).enqueue(stored.id, "shell").await);
    let workflows = SfnWorkflows::new(aws_sdk_sfn::Client::new(&sdk), &config.aws.state_machine_arn, &config.plugin_function_template);
    assert_allowed!(workflows.stop(stored.id, "canceled by alice").await);
    assert_denied!(workflows.start(JobId::new(), "ping").await);

    // What it must not do.
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    assert_denied!(dynamodb.delete_table().table_name(deployed.table()).send().await);
    assert_denied!(dynamodb.scan().table_name(deployed.table()).send().await);
    assert_denied!(dynamodb.delete_item().table_name(deployed.table()).key("id", AttributeValue::S(stored.id.to_string())).send().await);
    assert_denied!(s3.delete_bucket().bucket(deployed.bucket()).send().await);
    assert_denied!(s3.get_object().bucket(&deployed.other_bucket).key("secret.txt").send().await);
    assert_denied!(s3.put_object().bucket(deployed.bucket()).key("elsewhere/x").body(b"x".to_vec().into()).send().await);
    assert_denied!(aws_sdk_sqs::Client::new(&sdk).delete_queue().queue_url(&config.aws.queue_url).send().await);
    assert_denied!(aws_sdk_sqs::Client::new(&sdk).receive_message().queue_url(&config.aws.queue_url).send().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamodb_plugin_reads_the_tables_its_parameter_names_and_no_others() {
    let deployed = deployed().await;
    let table = &deployed.orders_table;
    for context in [
        json!({"query": format!("SELECT * FROM \"{table}\"")}),
        json!({"table": table, "get": {"key": {"customer": "c-1", "order": "1"}}}),
        json!({"table": table, "key_condition": "customer = :c", "values": {":c": "c-1"}}),
    ] {
        let (plugin, run) = deployed.plugin_run("plugin-dynamodb", "dynamodb", "dynamodb", context.clone()).await;
        assert_allowed!(plugin.run(&run, &mut None).await);
        // Its result went to the artifacts bucket with the same role.
        let result = run.artifacts.open(run.job.id, Artifact::Result).await.unwrap().unwrap();
        let result: Value = serde_json::from_slice(&result.read_all().await.unwrap()).unwrap();
        assert!(!result["data"].as_array().unwrap().is_empty(), "{context}: {result}");
    }

    // A table outside DynamoDbTableArns, by PartiQL and by key.
    let private = &deployed.private_table;
    for context in [json!({"query": format!("SELECT * FROM \"{private}\"")}), json!({"table": private, "get": {"key": {"customer": "c-1", "order": "1"}}})] {
        let (plugin, run) = deployed.plugin_run("plugin-dynamodb", "dynamodb", "dynamodb", context).await;
        assert_denied!(plugin.run(&run, &mut None).await);
    }
    // Another plugin's role lacks the right to the granted table.
    let (plugin, run) = deployed.plugin_run("plugin-glue", "dynamodb", "dynamodb", json!({"query": format!("SELECT * FROM \"{table}\"")})).await;
    assert_denied!(plugin.run(&run, &mut None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_glue_plugin_reads_its_catalog_and_the_iceberg_metadata_in_s3_and_nothing_else() {
    let deployed = deployed().await;
    let database = &deployed.database;

    // GetTable, then the metadata file from S3 (the right this template lacked).
    let (plugin, run) = deployed.plugin_run("plugin-glue", "glue", "glue", json!({"table_name": format!("{database}.orders")})).await;
    assert_allowed!(plugin.run(&run, &mut None).await);
    let result = run.artifacts.open(run.job.id, Artifact::Result).await.unwrap().unwrap();
    let result: Value = serde_json::from_slice(&result.read_all().await.unwrap()).unwrap();
    assert_eq!(result["data"][0][0], "schema", "{result}");

    // Metadata outside GlueMetadataS3Arns: the S3 read is refused.
    let (plugin, run) = deployed.plugin_run("plugin-glue", "glue", "glue", json!({"table_name": format!("{database}.hidden")})).await;
    let refused = plugin.run(&run, &mut None).await.unwrap_err();
    assert_eq!(refused.error_type(), heimdall_ports::PluginError::JOB_FAILED, "a refusal fails the job, it is not retried: {refused}");
    let error = refused.to_string();
    assert!(error.contains("S3 GetObject") && is_denied(&error), "{error}");
    // A database outside GlueResourceArns: GetTable is refused.
    let other = &deployed.other_database;
    let (plugin, run) = deployed.plugin_run("plugin-glue", "glue", "glue", json!({"table_name": format!("{other}.orders")})).await;
    let error = plugin.run(&run, &mut None).await.unwrap_err().to_string();
    assert!(error.contains("Glue GetTable") && is_denied(&error), "{error}");
    // The dynamodb plugin's role has no Glue right.
    let (plugin, run) = deployed.plugin_run("plugin-dynamodb", "glue", "glue", json!({"table_name": format!("{database}.orders")})).await;
    assert_denied!(plugin.run(&run, &mut None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spark_plugin_runs_on_its_virtual_cluster_with_its_files_and_roles_only() {
    let deployed = deployed().await;

    // submit: the query file (S3 PutObject), StartJobRun passing the execution role; poll:
    // DescribeJobRun; cancel: CancelJobRun.
    let (plugin, run) = deployed.plugin_run("plugin-spark", "spark", "spark-by-id", json!({"query": "SELECT 1", "return_result": true})).await;
    let Step::Pending(handle) = assert_allowed!(plugin.submit(&run).await) else { panic!("a job run is pending") };
    let Step::Pending(_) = assert_allowed!(plugin.poll(&run, &handle).await) else { panic!("the emulator's runs keep running") };
    assert_allowed!(plugin.cancel(&run, Some(&handle)).await);
    // A cluster found by name (ListVirtualClusters), its runs found by the job (ListJobRuns).
    let (plugin, run) = deployed.plugin_run("plugin-spark", "spark", &deployed.virtual_cluster_name, json!({"query": "SELECT 2"})).await;
    assert_allowed!(plugin.submit(&run).await);
    assert_allowed!(plugin.cancel(&run, None).await);
    // finalize: the results under results_uri (ListBucket, GetObject) become the job's result.
    let id = deployed.spark_result_job;
    let (plugin, run) = deployed.plugin_run_of("plugin-spark", id, "spark", "spark-by-id", json!({"query": "SELECT 3", "return_result": true})).await;
    let handle = json!({"virtual_cluster_id": deployed.virtual_cluster_id, "job_run_id": "done", "result_uri": format!("s3://{}/spark/results/{id}/", deployed.lake)});
    assert_allowed!(plugin.finalize(&run, &handle).await);
    let result = run.artifacts.open(id, Artifact::Result).await.unwrap().unwrap();
    let result: Value = serde_json::from_slice(&result.read_all().await.unwrap()).unwrap();
    assert_eq!(result["data"], json!([["FR", 3]]));

    // An execution role outside EmrJobExecutionRoleArns (iam:PassRole), files outside SparkS3Arns.
    let (plugin, run) = deployed.plugin_run("plugin-spark", "spark", "spark-admin-role", json!({"query": "SELECT 4"})).await;
    assert_denied!(plugin.submit(&run).await);
    let (plugin, run) = deployed.plugin_run("plugin-spark", "spark-elsewhere", "spark-by-id", json!({"query": "SELECT 5"})).await;
    let refused = plugin.submit(&run).await.unwrap_err();
    assert_eq!(refused.error_type(), heimdall_ports::PluginError::JOB_FAILED, "a refusal fails the job, it is not retried: {refused}");
    let error = refused.to_string();
    assert!(error.contains("S3 PutObject") && is_denied(&error), "{error}");
    // Another plugin's role has no EMR right.
    let (plugin, run) = deployed.plugin_run("plugin-glue", "spark", "spark-by-id", json!({"query": "SELECT 6"})).await;
    let error = plugin.submit(&run).await.unwrap_err().to_string();
    assert!(is_denied(&error), "{error}");

    // A cluster's role_arn: the one AssumableRoleArns names, not another.
    let sdk = deployed.sdk("plugin-spark").await;
    let assume = |role: &str| aws_config::sts::AssumeRoleProvider::builder(role).session_name("heimdall").configure(&sdk).build();
    assert_allowed!(assume(CLUSTER_ROLE).await.provide_credentials().await);
    assert_denied!(assume("arn:aws:iam::210987654321:role/admin").await.provide_credentials().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snowflake_plugin_reads_the_keys_its_parameter_names_and_no_others() {
    let deployed = deployed().await;
    // The key is read before Snowflake is called (here: nobody listens); a key it may read
    // fails later, on the key's text or the connection, never on its read.
    for cluster in ["snowflake-ssm", "snowflake-secret"] {
        let (plugin, run) = deployed.plugin_run("plugin-snowflake", "snowflake", cluster, json!({"query": "SELECT 1"})).await;
        let error = plugin.submit(&run).await.unwrap_err().to_string();
        assert!(!error.contains("refused to read it") && !is_denied(&error), "{cluster}: {error}");
    }
    for (cluster, service) in [("snowflake-ssm-other", "SSM"), ("snowflake-secret-other", "Secrets Manager")] {
        let (plugin, run) = deployed.plugin_run("plugin-snowflake", "snowflake", cluster, json!({"query": "SELECT 1"})).await;
        let error = plugin.submit(&run).await.unwrap_err().to_string();
        assert!(error.contains(&format!("{service} refused to read it")), "{cluster}: {error}");
    }
    // Another plugin's role may read no key.
    let (plugin, run) = deployed.plugin_run("plugin-spark", "snowflake", "snowflake-ssm", json!({"query": "SELECT 1"})).await;
    let error = plugin.submit(&run).await.unwrap_err().to_string();
    assert!(error.contains("SSM refused to read it"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_janitor_reads_quiet_jobs_by_status_asks_after_their_executions_and_settles_them_and_nothing_more() {
    let deployed = deployed().await;
    let api_store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&deployed.sdk("api").await), deployed.table());
    // A sync job a killed api function left RUNNING, and an async one whose execution is gone.
    let mut cut_off = job("cut-off", "alice", 1_700_000_000);
    (cut_off.status, cut_off.is_sync, cut_off.started_at) = (JobStatus::Running, true, Some(1_700_000_000));
    let mut orphan = job("orphan", "alice", 1_700_000_000);
    (orphan.status, orphan.started_at) = (JobStatus::Running, Some(1_700_000_000));
    assert_allowed!(api_store.insert(&cut_off).await);
    assert_allowed!(api_store.insert(&orphan).await);

    let sdk = deployed.sdk("janitor").await;
    let config = deployed.function_config("janitor");
    let service = assert_allowed!(heimdall_functions::build_service(&sdk, &config, heimdall_functions::every_plugin).await);
    let sweep = assert_allowed!(service.sweep_stuck_jobs(heimdall_domain::clock::now_epoch_seconds()).await);
    let settled: Vec<JobId> = sweep.settled.iter().map(|(id, _, _)| *id).collect();
    assert!(settled.contains(&cut_off.id) && settled.contains(&orphan.id), "{sweep:?}");
    assert_eq!(api_store.get(orphan.id).await.unwrap().status, JobStatus::Failed);

    // Nothing more: no listing of every job, no job output, no starting executions, no queueing.
    let store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk), deployed.table());
    assert_denied!(store.list(&JobQuery { limit: 1, ..Default::default() }).await);
    let artifacts = S3ArtifactStore::new(s3_client(&sdk), deployed.bucket());
    assert_denied!(heimdall_ports::artifact_store::write_whole(&artifacts, orphan.id, Artifact::Result, Bytes::from_static(b"{}")).await);
    assert_denied!(SfnWorkflows::new(aws_sdk_sfn::Client::new(&sdk), &config.aws.state_machine_arn, &config.plugin_function_template).start(JobId::new(), "ping").await);
    assert_denied!(SqsJobQueue::new(aws_sdk_sqs::Client::new(&sdk), &config.aws.queue_url).enqueue(orphan.id, "shell").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatcher_starts_executions_and_the_events_function_queues_jobs_and_neither_more() {
    let deployed = deployed().await;

    // A queued job, dispatched by the dispatcher's own code: its config read, the job read,
    // its execution started.
    let api = deployed.sdk("api").await;
    let api_store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&api), deployed.table());
    let sdk = deployed.sdk("dispatcher").await;
    let config = deployed.function_config("dispatcher");
    let service = assert_allowed!(heimdall_functions::build_service(&sdk, &config, heimdall_functions::no_plugin).await);
    let mut queued = job("dispatched", "alice", 1_700_000_000);
    queued.command_id = Some("ping".into());
    queued.cluster_id = Some("ping".into());
    assert_allowed!(api_store.insert(&queued).await);
    // A message that names the plugin starts the workflow without reading the job.
    let dispatched = assert_allowed!(service.dispatch_job(queued.id, Some("ping")).await);
    assert_eq!(format!("{dispatched:?}"), "Started");
    // A message of the earlier form (the bare id) reads the job; a command gone from the config
    // fails the job: the dispatcher writes it.
    let mut orphan = job("orphan", "alice", 1_700_000_000);
    orphan.command_id = Some("no-such-command".into());
    assert_allowed!(api_store.insert(&orphan).await);
    assert_allowed!(service.dispatch_job(orphan.id, None).await);
    assert_eq!(api_store.get(orphan.id).await.unwrap().status, JobStatus::Failed);

    // Nothing else: no listing, no job output, no queueing, no stopping.
    let store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk), deployed.table());
    assert_denied!(store.list(&JobQuery { limit: 1, ..Default::default() }).await);
    let artifacts = S3ArtifactStore::new(s3_client(&sdk), deployed.bucket());
    assert_denied!(heimdall_ports::artifact_store::write_whole(&artifacts, queued.id, Artifact::Result, Bytes::from_static(b"{}")).await);
    assert_denied!(SqsJobQueue::new(aws_sdk_sqs::Client::new(&sdk), &config.aws.queue_url).enqueue(queued.id, "shell").await);
    assert_denied!(SfnWorkflows::new(aws_sdk_sfn::Client::new(&sdk), &config.aws.state_machine_arn, &config.plugin_function_template).stop(queued.id, "no").await);
    let nothing_waits = || heimdall_ports::Resumption::Answer(json!({}));
    assert_denied!(SfnWorkflows::new(aws_sdk_sfn::Client::new(&sdk), &config.aws.state_machine_arn, &config.plugin_function_template).resume(queued.id, None, nothing_waits()).await);

    // The events function queues async jobs on the jobs queue; it does not list, start
    // executions, or send to its own queue.
    let sdk = deployed.sdk("events").await;
    let config = deployed.function_config("events");
    assert_allowed!(SqsJobQueue::new(aws_sdk_sqs::Client::new(&sdk), &config.aws.queue_url).enqueue(queued.id, "shell").await);
    assert_denied!(SqsJobQueue::new(aws_sdk_sqs::Client::new(&sdk), &deployed.events_queue_url).enqueue(queued.id, "shell").await);
    let store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk), deployed.table());
    assert_allowed!(store.get(queued.id).await);
    assert_allowed!(store.count_active("loader", 100).await);
    assert_denied!(store.list(&JobQuery { limit: 1, ..Default::default() }).await);
    assert_denied!(SfnWorkflows::new(aws_sdk_sfn::Client::new(&sdk), &config.aws.state_machine_arn, &config.plugin_function_template).start(JobId::new(), "ping").await);
    // It resumes an execution waiting for its spark run's end: it reads the execution's history
    // for the waiting task (SendTaskSuccess itself names no resource the emulator's IAM checks).
    let workflows = SfnWorkflows::new(aws_sdk_sfn::Client::new(&sdk), &config.aws.state_machine_arn, &config.plugin_function_template);
    assert!(!assert_allowed!(workflows.resume(queued.id, None, nothing_waits()).await), "the ping job's execution waits for no event");
    assert_denied!(workflows.stop(queued.id, "no").await);
}

#[tokio::test]
async fn every_function_reads_the_catalog_table_and_only_the_api_and_the_janitor_write_it() {
    use heimdall_adapters_aws::DynamoCatalogStore;
    use heimdall_domain::health::{HealthCheck, HealthStatus};
    use heimdall_ports::{CatalogKind, CatalogRecord, CatalogStore};
    let deployed = deployed().await;
    let table = deployed.environments["api"]["HEIMDALL_CATALOG_TABLE"].clone();
    let store_of = |sdk: &aws_config::SdkConfig| DynamoCatalogStore::new(aws_sdk_dynamodb::Client::new(sdk), table.clone());
    let record = |id: &str| CatalogRecord {
        kind: CatalogKind::Cluster,
        id: id.into(),
        spec: json!({"name": id, "version": "1"}),
        changed_by: "admin".into(),
        created_at: 1,
        updated_at: 1,
        revision: 1,
        seed: None,
    };
    let check = HealthCheck {
        cluster_id: "c".into(),
        cluster_name: "c".into(),
        command_id: "ping".into(),
        plugin: "ping".into(),
        status: HealthStatus::Ok,
        latency_ms: 1,
        error: None,
        checked_at: 1,
    };

    let api = store_of(&deployed.sdk("api").await);
    assert_allowed!(api.put(&record(&unique("by-api")), None).await);
    let janitor = store_of(&deployed.sdk("janitor").await);
    assert_allowed!(janitor.record_health(&check, true).await);
    assert_allowed!(janitor.load().await);
    for function in ["dispatcher", "events", "plugin-spark", "plugin-snowflake"] {
        let store = store_of(&deployed.sdk(function).await);
        assert_allowed!(store.load().await);
        assert_denied!(store.put(&record(&unique(function)), None).await);
        assert_denied!(store.record_health(&check, false).await);
    }
}
