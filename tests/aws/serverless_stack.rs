//! A whole serverless stack per test on the emulator: table, bucket, queue, the real state
//! machine from `statemachines/`, and the plugin functions registered on the Lambda router.
//! The service is built by the functions' own wiring (`heimdall_functions::build_service`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use heimdall_adapters_aws::AwsSettings;
use heimdall_emulator::stack::create_stack;
use heimdall_domain::{Job, JobId, JobStatus};
use heimdall_functions::{FunctionConfig, build_service, plugin_step};
use heimdall_service::JobService;
use heimdall_tests::emulator::{LambdaHandler, emulator};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::unique;

const CONFIG: &str = include_str!("../fixtures/serverless-config.yml");
/// How often a stack's service reads the catalog store's version (short: tests wait for it).
pub const CATALOG_REFRESH: Duration = Duration::from_secs(1);

pub struct ServerlessStack {
    pub service: Arc<JobService>,
    pub settings: AwsSettings,
    pub sfn: aws_sdk_sfn::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub runs_log: PathBuf,
    /// A plugin function's name, `{plugin}` for the plugin.
    pub plugin_function_template: String,
    /// The service's AWS calls, for a counted stack.
    pub calls: Option<heimdall_tests::emulator::CallCounter>,
    /// The functions' environment, as the stack's functions read it.
    pub config: FunctionConfig,
    api: axum::Router,
    _dir: tempfile::TempDir,
}

impl ServerlessStack {
    pub async fn create() -> Self {
        Self::create_with(false, &[]).await
    }

    /// A stack whose service sends every AWS call through the router, which counts them (and
    /// can answer some in moto's place: `Emulator::override_answer`).
    pub async fn create_counted() -> Self {
        Self::create_with(true, &[]).await
    }

    /// A stack whose config has `{{NAME}}` placeholders replaced (not counted).
    pub async fn create_replacing(replacements: &[(&str, &str)]) -> Self {
        Self::create_with(false, replacements).await
    }

    /// A counted stack whose config has `{{NAME}}` placeholders replaced; `{{BUCKET}}` is the
    /// stack's own bucket.
    pub async fn create_counted_with(replacements: &[(&str, &str)]) -> Self {
        Self::create_with(true, replacements).await
    }

    async fn create_with(counted: bool, replacements: &[(&str, &str)]) -> Self {
        let emulator = emulator();
        let sdk = emulator.sdk_config().await;
        let prefix = unique("hd");
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let sfn = aws_sdk_sfn::Client::new(&sdk);
        let settings = create_stack(&sdk, &prefix, "arn:aws:iam::123456789012:role/heimdall-state-machine").await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let runs_log = heimdall_tests::runs_log_in(dir.path());
        let config_file = dir.path().join("config.yml");
        let mut config_text = heimdall_tests::fill_runs_log(CONFIG, &runs_log).replace("{{BUCKET}}", &settings.bucket);
        // The caller's values first, then harmless ones for what a test does not use.
        let defaults = [
            ("{{SPARK_CLUSTER}}", "spark-eks"),
            ("{{LANDING_BUCKET}}", "landing-unused"),
            ("{{SNOWFLAKE_ACCOUNT}}", "myorg-acct"),
            ("{{SNOWFLAKE_USER}}", "heimdall_svc"),
            ("{{SNOWFLAKE_KEY}}", "/nonexistent/snowflake-key.p8"),
            ("{{SNOWFLAKE_ENDPOINT}}", "https://snowflake.invalid"),
            ("{{ACTIVE_JOBS_PER_USER}}", "100"),
            ("{{SPARK_HEALTH_CHECK}}", "false"),
            ("{{SPARK_JOB_RUN_EVENTS}}", "true"),
        ];
        for (placeholder, value) in replacements.iter().chain(defaults.iter()) {
            config_text = config_text.replace(placeholder, value);
        }
        std::fs::write(&config_file, config_text).unwrap();
        let config = FunctionConfig {
            aws: settings.clone(),
            config_location: Some(config_file.display().to_string()),
            plugin_function_template: format!("{prefix}-plugin-{{plugin}}"),
            default_user: None,
            job_retention_days: Some(30),
            max_sync_seconds: heimdall_functions::DEFAULT_FUNCTION_MAX_SYNC_SECONDS,
            emf_metrics: false,
            // A counted stack reads the catalog's version as often as a function does, so its
            // counts are a function's.
            catalog_refresh: if counted { std::time::Duration::from_secs(heimdall_functions::function_config::DEFAULT_CATALOG_REFRESH_SECONDS) } else { CATALOG_REFRESH },
            seeds_catalog: true,
            plugin_log_group: Some(format!("/aws/lambda/{prefix}-plugins")),
        };
        let (service_sdk, calls) = if counted {
            let (sdk, counter) = emulator.counted_sdk_config().await;
            (sdk, Some(counter))
        } else {
            (sdk.clone(), None)
        };
        let service = build_service(&service_sdk, &config, heimdall_functions::every_plugin).await.unwrap();
        let runtime = tokio::runtime::Handle::current();
        for plugin in service.plugin_names() {
            let service = service.clone();
            let runtime = runtime.clone();
            let handler: LambdaHandler = Arc::new(move |payload: Value| {
                let service = service.clone();
                // Run on the test's runtime, where the service's clients live.
                let task = runtime.spawn(async move {
                    let request = serde_json::from_value(payload).map_err(|e| ("InvalidRequest".to_owned(), e.to_string()))?;
                    plugin_step::handle(&service, plugin, request)
                        .await
                        .map_err(|failure| (failure.error_type, failure.error_message))
                });
                Box::pin(async move { task.await.unwrap_or_else(|e| Err(("Crashed".to_owned(), e.to_string()))) })
            });
            emulator.register_function(&config.plugin_function_template.replace("{plugin}", plugin), handler);
        }
        let api = heimdall_function_api::app(service.clone(), None);
        Self { service, settings, sfn, sqs, runs_log, plugin_function_template: config.plugin_function_template.clone(), calls, config, api, _dir: dir }
    }

    /// Sends an API Gateway HTTP API event (JWT authorizer, `$default` stage) for `user`
    /// through the API function's app, the way `lambda_http` hands it over; answers status and
    /// body. The event also carries an `X-Heimdall-User` header forged by the client.
    pub async fn api_call(&self, user: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Vec<u8>) {
        let authorizer = if user.is_empty() {
            Value::Null
        } else {
            json!({"jwt": {"claims": {"sub": "0000-sub", "username": user}, "scopes": null}})
        };
        self.api_call_with(authorizer, method, path, body).await
    }

    /// `api_call` with the request context's `authorizer` as given (JWT claims, IAM, …).
    pub async fn api_call_with(&self, authorizer: Value, method: &str, path: &str, body: Option<Value>) -> (u16, Vec<u8>) {
        let (status, _, body) = api_request(&self.api, authorizer, method, path, body, &[]).await;
        (status, body)
    }

    /// A JWT caller `user`'s request with `headers` added; answers status, headers and body.
    pub async fn api_call_with_headers(&self, user: &str, method: &str, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> (u16, axum::http::HeaderMap, Value) {
        let authorizer = json!({"jwt": {"claims": {"sub": "0000-sub", "username": user}, "scopes": null}});
        let (status, answer_headers, bytes) = api_request(&self.api, authorizer, method, path, body, headers).await;
        (status, answer_headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Another instance of the api function beside this stack's: its service built again by the
    /// functions' wiring from the same environment, as a second cold start would.
    pub async fn another_api_instance(&self) -> ApiInstance {
        let service = build_service(&emulator().sdk_config().await, &self.config, heimdall_functions::every_plugin).await.unwrap();
        ApiInstance { app: heimdall_function_api::app(service, None) }
    }
}

/// An api function instance's app.
pub struct ApiInstance {
    app: axum::Router,
}

impl ApiInstance {
    /// A JWT caller `user`'s request to this instance; answers status and JSON body.
    pub async fn api_json(&self, user: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let authorizer = json!({"jwt": {"claims": {"sub": "0000-sub", "username": user}, "scopes": null}});
        let (status, _, bytes) = api_request(&self.app, authorizer, method, path, body, &[]).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

/// Sends `method path` as API Gateway's HTTP API event to `api`, as `lambda_http` hands it over.
async fn api_request(api: &axum::Router, authorizer: Value, method: &str, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    {
        let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
        let mut event_headers = json!({"content-type": "application/json", "x-heimdall-user": "forged-by-client"});
        for (name, value) in headers {
            event_headers[name.to_ascii_lowercase()] = json!(value);
        }
        let event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": raw_query,
            "headers": event_headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api123",
                "authorizer": authorizer,
                "domainName": "api123.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "api123",
                "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "tests"},
                "requestId": JobId::new().to_string(),
                "routeKey": "$default",
                "stage": "$default",
                "time": "24/Nov/2026:22:00:00 +0000",
                "timeEpoch": 1_700_000_000_000i64
            },
            "body": body.map(|b| b.to_string()),
            "isBase64Encoded": false
        });
        let request = lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway event");
        let (parts, body) = request.into_parts();
        let request = axum::http::Request::from_parts(parts, Body::from(body.to_vec()));
        let response = api.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let answer_headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, answer_headers, bytes.to_vec())
    }
}

impl ServerlessStack {

    pub async fn api_json(&self, user: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, bytes) = self.api_call(user, method, path, body).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// The service's AWS calls so far (a counted stack's).
    pub fn counted_calls(&self) -> Vec<String> {
        self.calls.as_ref().expect("a counted stack (create_counted)").calls()
    }

    /// Submits as alice through the api function and dispatches the queued message; answers
    /// the job id.
    pub async fn submit_and_dispatch(&self, request: Value) -> JobId {
        let (status, answer) = self.api_json("alice", "POST", "/api/v1/job", Some(request)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["status"], "ACCEPTED");
        let id: JobId = answer["id"].as_str().unwrap().parse().unwrap();
        let event = self.receive_as_sqs_event().await;
        assert_eq!(event.records.len(), 1);
        let queued = heimdall_adapters_aws::QueuedJob::from_body(event.records[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(queued.job_id, id);
        let response = heimdall_function_dispatcher::handle_batch(&self.service, event).await;
        assert!(response.batch_item_failures.is_empty());
        id
    }

    /// `bodies` as the SQS batch a queue's Lambda gets.
    pub fn sqs_batch(bodies: &[String]) -> aws_lambda_events::sqs::SqsEvent {
        let records: Vec<Value> = bodies
            .iter()
            .map(|body| json!({"messageId": JobId::new().to_string(), "body": body, "eventSource": "aws:sqs", "attributes": {}, "messageAttributes": {}}))
            .collect();
        serde_json::from_value(json!({"Records": records})).unwrap()
    }

    /// Receives the jobs queue's messages as the SQS event the dispatcher Lambda gets.
    pub async fn receive_as_sqs_event(&self) -> aws_lambda_events::sqs::SqsEvent {
        self.receive_from(&self.settings.queue_url).await
    }

    /// Receives a queue's messages as the SQS event its Lambda gets.
    pub async fn receive_from(&self, queue_url: &str) -> aws_lambda_events::sqs::SqsEvent {
        let received = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .send()
            .await
            .unwrap();
        let records: Vec<Value> = received
            .messages()
            .iter()
            .map(|m| {
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": {},
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs",
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        serde_json::from_value(json!({"Records": records})).unwrap()
    }

    pub async fn wait_for(&self, id: JobId, timeout: Duration, done: impl Fn(JobStatus) -> bool) -> Job {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.service.get(id).await.unwrap();
            if done(job.status) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} still {} after {timeout:?}", job.status);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn execution_arn(&self, id: JobId) -> String {
        format!("{}:{id}", self.settings.state_machine_arn.replacen(":stateMachine:", ":execution:", 1))
    }

    pub async fn execution_status(&self, id: JobId) -> String {
        let execution = self.sfn.describe_execution().execution_arn(self.execution_arn(id)).send().await.unwrap();
        execution.status().as_str().to_owned()
    }

    /// The execution's status, `None` when the job never had one.
    pub async fn execution_status_or_none(&self, id: JobId) -> Option<String> {
        match self.sfn.describe_execution().execution_arn(self.execution_arn(id)).send().await {
            Ok(execution) => Some(execution.status().as_str().to_owned()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_execution_does_not_exist()) => None,
            Err(error) => panic!("DescribeExecution: {error:?}"),
        }
    }

    /// Waits for the job's execution to leave RUNNING; answers its status.
    pub async fn wait_for_execution_end(&self, id: JobId, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.execution_status(id).await;
            if status != "RUNNING" || Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
