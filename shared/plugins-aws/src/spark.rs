//! SparkSQL on EMR on EKS (async). Heimdall's contexts:
//!
//! - command: `queries_uri` and `results_uri` (S3 prefixes), `logs_uri` (optional),
//!   `wrapper_uri` (the Spark entry point that runs a query file; jobs cannot replace it),
//!   `properties` (Spark conf), `allowed_properties` (the property names a job may set; an
//!   entry ending in `*` allows a prefix; default none), `max_rows` (result cap, default 10,000).
//! - cluster: `execution_role_arn`, `emr_release_label`, `properties`, and the virtual cluster:
//!   found by the cluster's `name` among running virtual clusters, or given as
//!   `virtual_cluster_id`; `role_arn`, assumed for the EMR calls (a cluster in another account;
//!   the query and result files stay with the platform's own role).
//! - job: `query`, `arguments`, `parameters.properties` (only names the command's
//!   `allowed_properties` admit), `return_result`. A job naming an `entry_point` is refused.
//!
//! Property names match `^[A-Za-z0-9][A-Za-z0-9._-]*$`; values are one line of at most 1,024
//! characters, not blank (EMR on EKS's limits, and a line break would add a line to
//! `spark-defaults.conf`). `submit` writes the query to `<queries_uri>/<job id>.sql` and calls
//! `StartJobRun` (client token: the attempt's key, the job id for the first, so a retried submit starts one run) with the
//! command's entry point, the arguments `<query file> <result prefix or ->` then the job's
//! `arguments`, and the merged properties (cluster, then command, then job) as the
//! `spark-defaults` classification of `configurationOverrides.applicationConfiguration`: each
//! property its own map entry, never spliced into `sparkSubmitParameters` (which stays unset),
//! so no value can add spark-submit options. The state machine polls `DescribeJobRun`;
//! `COMPLETED` is done, `FAILED` or a cancel outside Heimdall fails the job with the run's
//! `stateDetails` and `failureReason`. With `return_result`, the job writes JSON Lines
//! (`df.write.json(result_prefix)`) under `<results_uri>/<job id>/`; `finalize` reads them back
//! as the result. `cancel` calls `CancelJobRun`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_emrcontainers::types::{
    Configuration, ConfigurationOverrides, JobDriver, JobRunState, MonitoringConfiguration, S3MonitoringConfiguration,
    SparkSubmitJobDriver, VirtualClusterState,
};
use heimdall_domain::{Cluster, Command, JobId};
use crate::aws_refusal::refused_or_unavailable;
use heimdall_ports::{Plugin, PluginError, PluginRun, Step};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::assumed_roles::{RoleClients, validate_role_arn};
use crate::result_table::ResultTable;
use crate::s3_uri::{join, parse_s3_uri};

pub const DEFAULT_MAX_ROWS: usize = 10_000;
/// The classification the merged properties go to.
pub const SPARK_DEFAULTS: &str = "spark-defaults";
/// EMR on EKS's limits on a classification's properties.
const MAX_PROPERTIES: usize = 100;
const MAX_PROPERTY_CHARS: usize = 1024;

/// The spark plugin.
pub struct SparkPlugin {
    emr: RoleClients<aws_sdk_emrcontainers::Client>,
    s3: aws_sdk_s3::Client,
}

impl SparkPlugin {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { emr: RoleClients::new(sdk, aws_sdk_emrcontainers::Client::new), s3: heimdall_adapters_aws::s3_client(sdk) }
    }

    /// The EMR client for a cluster: as its `role_arn` when it names one.
    async fn emr(&self, cluster: &SparkCluster) -> aws_sdk_emrcontainers::Client {
        self.emr.client(cluster.role_arn.as_deref()).await
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SparkCommand {
    queries_uri: String,
    results_uri: String,
    logs_uri: Option<String>,
    wrapper_uri: String,
    #[serde(default)]
    properties: BTreeMap<String, String>,
    /// The property names a job may set: exact names, or prefixes ending in `*`.
    #[serde(default)]
    allowed_properties: Vec<String>,
    max_rows: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SparkCluster {
    execution_role_arn: String,
    emr_release_label: String,
    role_arn: Option<String>,
    #[serde(default)]
    properties: BTreeMap<String, String>,
    virtual_cluster_id: Option<String>,
    /// Whether EMR's job run events of this cluster reach this deployment's event bus (the
    /// virtual cluster is in its account): the state machine then waits for a run's end instead
    /// of polling it. Default: yes, unless the cluster is reached through `role_arn` (another
    /// account, whose events stay on its own bus).
    job_run_events: Option<bool>,
}

impl SparkCluster {
    fn job_run_events(&self) -> bool {
        self.job_run_events.unwrap_or(self.role_arn.is_none())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SparkJob {
    query: String,
    #[serde(default)]
    arguments: Vec<String>,
    #[serde(default)]
    parameters: SparkParameters,
    #[serde(default)]
    return_result: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SparkParameters {
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

/// What the state machine carries between steps.
#[derive(Debug, Deserialize)]
struct RunHandle {
    virtual_cluster_id: String,
    job_run_id: String,
    result_uri: Option<String>,
}

fn command_settings(command: &Command) -> Result<SparkCommand, String> {
    command_context(&command.context)
}

fn command_context(context: &Value) -> Result<SparkCommand, String> {
    let settings: SparkCommand = serde_json::from_value(context.clone()).map_err(|e| format!("spark command context: {e}"))?;
    for (field, uri) in [("queries_uri", &settings.queries_uri), ("results_uri", &settings.results_uri), ("wrapper_uri", &settings.wrapper_uri)] {
        if parse_s3_uri(&format!("{}/x", uri.trim_end_matches('/'))).is_none() {
            return Err(format!("spark command context: `{field}` must be an s3:// URI; got `{uri}`"));
        }
    }
    check_properties(&settings.properties).map_err(|error| format!("spark command context: `properties`: {error}"))?;
    for entry in &settings.allowed_properties {
        check_allowed_entry(entry).map_err(|error| format!("spark command context: `allowed_properties`: {error}"))?;
    }
    Ok(settings)
}

fn cluster_settings(cluster: &Cluster) -> Result<SparkCluster, String> {
    cluster_context(&cluster.context)
}

fn cluster_context(context: &Value) -> Result<SparkCluster, String> {
    let settings: SparkCluster = serde_json::from_value(context.clone()).map_err(|e| format!("spark cluster context: {e}"))?;
    if let Some(role_arn) = &settings.role_arn {
        validate_role_arn(role_arn).map_err(|error| format!("spark cluster context: {error}"))?;
    }
    check_properties(&settings.properties).map_err(|error| format!("spark cluster context: `properties`: {error}"))?;
    Ok(settings)
}

/// The name of a job's EMR job runs: its events (EventBridge) say which job they are about.
pub fn run_name(job: JobId) -> String {
    format!("heimdall-{job}")
}

/// The job a job run named by [`run_name`] belongs to.
pub fn job_of_run_name(name: &str) -> Option<JobId> {
    name.strip_prefix("heimdall-")?.parse().ok()
}

/// Whether `name` is a property name: `^[A-Za-z0-9][A-Za-z0-9._-]*$`.
fn is_property_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn check_property(name: &str, value: &str) -> Result<(), String> {
    if !is_property_name(name) || name.len() > MAX_PROPERTY_CHARS {
        return Err(format!(
            "`{}` is not a property name: a name is letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most {MAX_PROPERTY_CHARS} characters",
            name.escape_debug()
        ));
    }
    if value.trim().is_empty() {
        return Err(format!("property `{name}` has a blank value; give it a value or leave it out"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("property `{name}`'s value holds a line break or another control character; a value is one line of text"));
    }
    if value.chars().count() > MAX_PROPERTY_CHARS {
        return Err(format!("property `{name}`'s value is longer than {MAX_PROPERTY_CHARS} characters, EMR on EKS's limit"));
    }
    Ok(())
}

fn check_properties(properties: &BTreeMap<String, String>) -> Result<(), String> {
    properties.iter().try_for_each(|(name, value)| check_property(name, value))?;
    if properties.len() > MAX_PROPERTIES {
        return Err(format!("{} properties; EMR on EKS takes at most {MAX_PROPERTIES}", properties.len()));
    }
    Ok(())
}

/// An `allowed_properties` entry: a property name, or a name's beginning followed by `*`.
fn check_allowed_entry(entry: &str) -> Result<(), String> {
    let name = entry.strip_suffix('*').unwrap_or(entry);
    if name.is_empty() {
        return Err("`*` alone would let a job set any property (spark.driver.extraJavaOptions, spark.jars, …); list the names or prefixes (e.g. `spark.sql.*`) jobs may set".into());
    }
    if !is_property_name(name) {
        return Err(format!(
            "`{}` is neither a property name nor a prefix ending in `*` (names are letters, digits, `.`, `_` and `-`; `*` only at the end)",
            entry.escape_debug()
        ));
    }
    Ok(())
}

/// Whether the command's `allowed_properties` admit a job setting `name`.
fn is_allowed(allowed: &[String], name: &str) -> bool {
    allowed.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == entry,
    })
}

/// Whether a context key names an entry point (`entry_point`, `entryPoint`, `entry-point`, …).
fn names_entry_point(key: &str) -> bool {
    key.chars().filter(|c| !matches!(c, '_' | '-' | ' ')).collect::<String>().eq_ignore_ascii_case("entrypoint")
}

fn job_settings(context: &Value, command: &SparkCommand) -> Result<SparkJob, String> {
    let parameters = context.get("parameters").and_then(Value::as_object);
    let top = context.as_object().into_iter().flat_map(|o| o.keys()).map(|k| (k.clone(), k));
    let nested = parameters.into_iter().flat_map(|o| o.keys()).map(|k| (format!("parameters.{k}"), k));
    if let Some((path, _)) = top.chain(nested).find(|(_, key)| names_entry_point(key)) {
        return Err(format!(
            "spark job context: `{path}` is refused: the command fixes its entry point (its `wrapper_uri`), and a job cannot replace it; remove `{path}`, or submit to a command whose wrapper runs what you need"
        ));
    }
    let job: SparkJob = serde_json::from_value(context.clone()).map_err(|e| format!("spark job context: {e}"))?;
    if job.query.trim().is_empty() {
        return Err("spark job context: `query` must not be empty".into());
    }
    if job.parameters.properties.len() > MAX_PROPERTIES {
        return Err(format!("spark job context: {} properties; EMR on EKS takes at most {MAX_PROPERTIES}", job.parameters.properties.len()));
    }
    for (name, value) in &job.parameters.properties {
        check_property(name, value).map_err(|error| format!("spark job context: `parameters.properties`: {error}"))?;
        if !is_allowed(&command.allowed_properties, name) {
            let allowed = if command.allowed_properties.is_empty() {
                "this command allows none (its `allowed_properties` is empty)".to_owned()
            } else {
                format!("this command allows only {}", command.allowed_properties.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", "))
            };
            return Err(format!(
                "spark job context: property `{name}` may not be set by a job: {allowed}; remove it from `parameters.properties`, or ask the command's owner to allow it"
            ));
        }
    }
    Ok(job)
}

fn failed(message: String) -> PluginError {
    PluginError::JobFailed { message, exit_code: None }
}

fn emr_failure(operation: &str, error: &(dyn std::error::Error + 'static), client_mistake: bool) -> PluginError {
    let text = format!("EMR on EKS {operation}: {}", heimdall_ports::error_chain(error));
    if client_mistake { failed(text) } else { PluginError::Unavailable(text) }
}

impl SparkPlugin {
    async fn virtual_cluster_id(emr: &aws_sdk_emrcontainers::Client, cluster: &Cluster, settings: &SparkCluster) -> Result<String, PluginError> {
        if let Some(id) = &settings.virtual_cluster_id {
            return Ok(id.clone());
        }
        let mut next_token = None;
        loop {
            let page = emr
                .list_virtual_clusters()
                .states(VirtualClusterState::Running)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| emr_failure("ListVirtualClusters", &e, false))?;
            if let Some(found) = page.virtual_clusters().iter().find(|vc| vc.name() == Some(cluster.name.as_str())) {
                return found.id().map(str::to_owned).ok_or_else(|| failed("a virtual cluster without an id".into()));
            }
            match page.next_token() {
                Some(token) => next_token = Some(token.to_owned()),
                None => {
                    return Err(failed(format!(
                        "no running EMR on EKS virtual cluster is named `{}` (the cluster's name); set `virtual_cluster_id` in its context to name one",
                        cluster.name
                    )));
                }
            }
        }
    }

    async fn put_text(&self, uri: &str, text: &str) -> Result<(), PluginError> {
        let (bucket, key) = parse_s3_uri(uri).ok_or_else(|| failed(format!("`{uri}` is not an s3:// URI")))?;
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(text.as_bytes().to_vec().into())
            .send()
            .await
            .map_err(|e| refused_or_unavailable(&e, format!("S3 PutObject {uri}: {}", heimdall_ports::error_chain(&e))))?;
        Ok(())
    }

    /// Every JSON Lines file under `prefix`, read into a result table (capped at `max_rows`).
    async fn read_result(&self, prefix: &str, max_rows: usize) -> Result<ResultTable, PluginError> {
        let (bucket, key_prefix) = parse_s3_uri(prefix).ok_or_else(|| failed(format!("`{prefix}` is not an s3:// URI")))?;
        let unavailable = |e: &dyn std::fmt::Display| PluginError::Unavailable(format!("S3 {prefix}: {e}"));
        let mut table = ResultTable::default();
        let mut token = None;
        'pages: loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(key_prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| refused_or_unavailable(&e, format!("S3 {prefix}: {}", heimdall_ports::error_chain(&e))))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let file = key.rsplit('/').next().unwrap_or(key);
                if file.starts_with('_') || file.starts_with('.') {
                    continue; // _SUCCESS, .crc files
                }
                let body = self.s3.get_object().bucket(bucket).key(key).send().await.map_err(|e| refused_or_unavailable(&e, format!("S3 {prefix}: {}", heimdall_ports::error_chain(&e))))?;
                let bytes = body.body.collect().await.map_err(|e| unavailable(&e))?.into_bytes();
                for line in bytes.split(|b| *b == b'\n').filter(|line| !line.iter().all(u8::is_ascii_whitespace)) {
                    if table.len() == max_rows {
                        break 'pages;
                    }
                    let row: serde_json::Map<String, Value> = serde_json::from_slice(line)
                        .map_err(|e| failed(format!("{key}: a result line is not a JSON object: {e}")))?;
                    table.push_row(row.into_iter().map(|(name, value)| {
                        let type_name = match &value {
                            Value::Bool(_) => "boolean",
                            Value::Number(n) if n.is_i64() => "bigint",
                            Value::Number(_) => "double",
                            Value::String(_) => "string",
                            Value::Null => "NULL",
                            _ => "struct",
                        };
                        (name, value, type_name)
                    }));
                }
            }
            match page.next_continuation_token() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        Ok(table)
    }
}

/// The properties of every layer, later layers winning (cluster, then command, then job).
fn merged_properties(layers: [&BTreeMap<String, String>; 3]) -> BTreeMap<String, String> {
    let mut merged = BTreeMap::new();
    for layer in layers {
        merged.extend(layer.iter().map(|(key, value)| (key.clone(), value.clone())));
    }
    merged
}

/// The job driver and configuration overrides of a run: the command's entry point, the
/// arguments as a list, and the properties as `spark-defaults` map entries (never text).
fn job_run_parts(
    command: &SparkCommand,
    cluster: &SparkCluster,
    job: &SparkJob,
    arguments: Vec<String>,
) -> Result<(SparkSubmitJobDriver, Option<ConfigurationOverrides>), String> {
    let properties = merged_properties([&cluster.properties, &command.properties, &job.parameters.properties]);
    if properties.len() > MAX_PROPERTIES {
        return Err(format!(
            "spark: {} properties once the cluster's, the command's and the job's are merged; EMR on EKS takes at most {MAX_PROPERTIES}",
            properties.len()
        ));
    }
    let driver = SparkSubmitJobDriver::builder()
        .entry_point(&command.wrapper_uri)
        .set_entry_point_arguments(Some(arguments))
        .build()
        .map_err(|e| format!("spark: {e}"))?;
    let mut overrides = ConfigurationOverrides::builder();
    let mut any = false;
    if !properties.is_empty() {
        let defaults = Configuration::builder()
            .classification(SPARK_DEFAULTS)
            .set_properties(Some(properties.into_iter().collect()))
            .build()
            .map_err(|e| format!("spark: {e}"))?;
        overrides = overrides.application_configuration(defaults);
        any = true;
    }
    if let Some(logs_uri) = &command.logs_uri {
        let s3 = S3MonitoringConfiguration::builder().log_uri(logs_uri).build().map_err(|e| format!("spark: {e}"))?;
        overrides = overrides.monitoring_configuration(MonitoringConfiguration::builder().s3_monitoring_configuration(s3).build());
        any = true;
    }
    Ok((driver, any.then(|| overrides.build())))
}

#[async_trait]
impl Plugin for SparkPlugin {
    fn name(&self) -> &'static str {
        "spark"
    }

    fn validate_command(&self, command: &Command) -> Result<(), String> {
        command_settings(command).map(|_| ())
    }

    fn validate_cluster(&self, cluster: &Cluster) -> Result<(), String> {
        cluster_settings(cluster).map(|_| ())
    }

    fn validate_job(&self, context: &Value, command: &Command) -> Result<(), String> {
        job_settings(context, &command_settings(command)?).map(|_| ())
    }

    fn supports_sync(&self) -> bool {
        false
    }

    /// EMR sends "EMR Job Run State Change" events to the EventBridge of the virtual cluster's
    /// account, the run's name carrying the job's id (`heimdall-<job id>`): where they reach this
    /// deployment (the cluster's `job_run_events`), the state machine waits for the end instead
    /// of polling.
    fn ends_with_event(&self, run: &PluginRun) -> bool {
        cluster_settings(&run.cluster).is_ok_and(|cluster| cluster.job_run_events())
    }

    /// The virtual cluster is found (by id, or by the cluster's name among the running ones)
    /// and is RUNNING.
    async fn check_health(&self, _command: &Command, cluster: &Cluster) -> Result<(), String> {
        let settings = cluster_settings(cluster)?;
        let emr = self.emr(&settings).await;
        let id = Self::virtual_cluster_id(&emr, cluster, &settings).await.map_err(|error| error.to_string())?;
        let described = emr
            .describe_virtual_cluster()
            .id(&id)
            .send()
            .await
            .map_err(|error| format!("EMR on EKS DescribeVirtualCluster: {}", heimdall_ports::error_chain(&error)))?;
        let state = described.virtual_cluster().and_then(|vc| vc.state()).map(|state| state.as_str().to_owned());
        match state.as_deref() {
            Some("RUNNING") => Ok(()),
            other => Err(format!("virtual cluster {id} is {}, not RUNNING", other.unwrap_or("in no state"))),
        }
    }

    async fn submit(&self, run: &PluginRun) -> Result<Step, PluginError> {
        let command = command_settings(&run.command).map_err(PluginError::InvalidContext)?;
        let cluster = cluster_settings(&run.cluster).map_err(PluginError::InvalidContext)?;
        let job = job_settings(&run.job.context, &command).map_err(PluginError::InvalidContext)?;
        let result_uri = job.return_result.then(|| join(&command.results_uri, &format!("{}/", run.job.id)));
        let query_uri = join(&command.queries_uri, &format!("{}.sql", run.job.id));
        let mut arguments = vec![query_uri.clone(), result_uri.clone().unwrap_or_else(|| "-".into())];
        arguments.extend(job.arguments.iter().cloned());
        let (driver, overrides) = job_run_parts(&command, &cluster, &job, arguments).map_err(PluginError::InvalidContext)?;
        let emr = self.emr(&cluster).await;
        let virtual_cluster_id = Self::virtual_cluster_id(&emr, &run.cluster, &cluster).await?;
        self.put_text(&query_uri, &job.query).await?;
        let request = emr
            .start_job_run()
            .name(run_name(run.job.id))
            .virtual_cluster_id(&virtual_cluster_id)
            .client_token(run.job.id.attempt_key(run.job.attempt))
            .execution_role_arn(&cluster.execution_role_arn)
            .release_label(&cluster.emr_release_label)
            .job_driver(JobDriver::builder().spark_submit_job_driver(driver).build())
            .set_configuration_overrides(overrides)
            .tags("heimdall_job_id", run.job.id.to_string());
        let started = request.send().await.map_err(|e| {
            let client_mistake = e.as_service_error().is_some_and(|s| s.is_validation_exception() || s.is_resource_not_found_exception());
            emr_failure("StartJobRun", &e, client_mistake)
        })?;
        let job_run_id = started.id().ok_or_else(|| failed("StartJobRun answered no job run id".into()))?;
        tracing::info!(job_id = %run.job.id, %job_run_id, %virtual_cluster_id, "spark job run started");
        Ok(Step::Pending(json!({"virtual_cluster_id": virtual_cluster_id, "job_run_id": job_run_id, "result_uri": result_uri})))
    }

    async fn poll(&self, run: &PluginRun, handle: &Value) -> Result<Step, PluginError> {
        let run_handle: RunHandle = serde_json::from_value(handle.clone()).map_err(|e| PluginError::InvalidContext(format!("spark handle: {e}")))?;
        let cluster = cluster_settings(&run.cluster).map_err(PluginError::InvalidContext)?;
        let described = self
            .emr(&cluster)
            .await
            .describe_job_run()
            .id(&run_handle.job_run_id)
            .virtual_cluster_id(&run_handle.virtual_cluster_id)
            .send()
            .await
            .map_err(|e| emr_failure("DescribeJobRun", &e, false))?;
        let job_run = described.job_run().ok_or_else(|| PluginError::Unavailable("DescribeJobRun answered no job run".into()))?;
        match job_run.state() {
            Some(JobRunState::Completed) => Ok(Step::Complete(handle.clone())),
            Some(state @ (JobRunState::Failed | JobRunState::Cancelled | JobRunState::CancelPending)) => {
                let reason = job_run.failure_reason().map(|r| r.as_str().to_owned()).unwrap_or_else(|| "no failure reason".into());
                let details = job_run.state_details().unwrap_or("no details");
                Err(failed(format!("the Spark job run {} ended {}: {reason}: {details}", run_handle.job_run_id, state.as_str())))
            }
            _ => Ok(Step::Pending(handle.clone())),
        }
    }

    /// Cancels the job's run: the one in `handle`, or (when the caller has no handle, as the
    /// API does after stopping a workflow) the active runs named after the job.
    async fn cancel(&self, run: &PluginRun, handle: Option<&Value>) -> Result<(), PluginError> {
        let cluster = cluster_settings(&run.cluster).map_err(PluginError::InvalidContext)?;
        let emr = self.emr(&cluster).await;
        let runs = match handle.and_then(|h| serde_json::from_value::<RunHandle>(h.clone()).ok()) {
            Some(run_handle) => vec![(run_handle.virtual_cluster_id, run_handle.job_run_id)],
            None => {
                let virtual_cluster_id = Self::virtual_cluster_id(&emr, &run.cluster, &cluster).await?;
                let listed = emr
                    .list_job_runs()
                    .virtual_cluster_id(&virtual_cluster_id)
                    .name(run_name(run.job.id))
                    .states(JobRunState::Pending)
                    .states(JobRunState::Submitted)
                    .states(JobRunState::Running)
                    .send()
                    .await
                    .map_err(|e| emr_failure("ListJobRuns", &e, false))?;
                listed.job_runs().iter().filter_map(|r| r.id()).map(|id| (virtual_cluster_id.clone(), id.to_owned())).collect()
            }
        };
        for (virtual_cluster_id, job_run_id) in runs {
            emr.cancel_job_run()
                .id(&job_run_id)
                .virtual_cluster_id(&virtual_cluster_id)
                .send()
                .await
                .map_err(|e| emr_failure("CancelJobRun", &e, false))?;
            tracing::info!(job_id = %run.job.id, %job_run_id, "spark job run canceled");
        }
        Ok(())
    }

    async fn finalize(&self, run: &PluginRun, handle: &Value) -> Result<heimdall_ports::RunOutcome, PluginError> {
        let run_handle: RunHandle = serde_json::from_value(handle.clone()).map_err(|e| PluginError::InvalidContext(format!("spark handle: {e}")))?;
        if let Some(result_uri) = run_handle.result_uri {
            let max_rows = command_settings(&run.command).ok().and_then(|c| c.max_rows).unwrap_or(DEFAULT_MAX_ROWS);
            let table = self.read_result(&result_uri, max_rows).await?;
            run.write_result(&table.into_result()).await?;
        }
        Ok(heimdall_ports::RunOutcome::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(context: Value) -> Result<SparkCommand, String> {
        let mut base = json!({"queries_uri": "s3://b/q", "results_uri": "s3://b/r", "wrapper_uri": "s3://b/run_sql.py"});
        base.as_object_mut().unwrap().extend(context.as_object().unwrap().clone());
        command_context(&base)
    }

    #[test]
    fn a_cluster_in_this_account_is_awaited_by_event_and_one_reached_through_a_role_is_polled_unless_told() {
        assert!(cluster(json!({})).unwrap().job_run_events());
        let other_account = json!({"role_arn": "arn:aws:iam::210987654321:role/emr-access"});
        assert!(!cluster(other_account.clone()).unwrap().job_run_events(), "its events stay on its own bus");
        let mut forwarded = other_account;
        forwarded["job_run_events"] = json!(true);
        assert!(cluster(forwarded).unwrap().job_run_events(), "the owner forwards them here");
        assert!(!cluster(json!({"job_run_events": false})).unwrap().job_run_events());
    }

    fn cluster(context: Value) -> Result<SparkCluster, String> {
        let mut base = json!({"execution_role_arn": "arn:aws:iam::123456789012:role/emr", "emr_release_label": "emr-7.2.0-latest"});
        base.as_object_mut().unwrap().extend(context.as_object().unwrap().clone());
        cluster_context(&base)
    }

    fn sql_command() -> SparkCommand {
        command(json!({"allowed_properties": ["spark.sql.*", "spark.executor.memory"]})).unwrap()
    }

    #[test]
    fn properties_merge_cluster_then_command_then_job() {
        let cluster = BTreeMap::from([("spark.executor.memory".to_owned(), "2g".to_owned()), ("a".to_owned(), "1".to_owned())]);
        let command = BTreeMap::from([("spark.executor.memory".to_owned(), "4g".to_owned())]);
        let job = BTreeMap::from([("a".to_owned(), "3".to_owned())]);
        let merged = merged_properties([&cluster, &command, &job]);
        assert_eq!(merged, BTreeMap::from([("a".to_owned(), "3".to_owned()), ("spark.executor.memory".to_owned(), "4g".to_owned())]));
    }

    #[test]
    fn a_query_is_required() {
        let command = sql_command();
        assert!(job_settings(&json!({"query": " "}), &command).unwrap_err().contains("`query`"));
        assert!(job_settings(&json!({}), &command).unwrap_err().contains("query"));
    }

    #[test]
    fn a_job_naming_an_entry_point_is_refused_however_it_spells_it() {
        let command = sql_command();
        for context in [
            json!({"query": "SELECT 1", "parameters": {"entry_point": "s3://evil/x.py"}}),
            json!({"query": "SELECT 1", "parameters": {"entryPoint": "s3://evil/x.py"}}),
            json!({"query": "SELECT 1", "entry_point": "s3://evil/x.py"}),
            json!({"query": "SELECT 1", "Entry-Point": "s3://evil/x.py"}),
        ] {
            let error = job_settings(&context, &command).unwrap_err();
            assert!(error.contains("the command fixes its entry point") && error.contains("is refused"), "{error}");
        }
    }

    #[test]
    fn a_job_sets_only_the_properties_its_command_allows() {
        let command = sql_command();
        let with = |name: &str| json!({"query": "SELECT 1", "parameters": {"properties": {name: "8"}}});
        assert!(job_settings(&with("spark.sql.shuffle.partitions"), &command).is_ok());
        assert!(job_settings(&with("spark.executor.memory"), &command).is_ok());
        for refused in ["spark.driver.extraJavaOptions", "spark.sqlx", "spark.executor.memoryOverhead", "spark.jars"] {
            let error = job_settings(&with(refused), &command).unwrap_err();
            assert!(error.contains(&format!("property `{refused}` may not be set by a job")), "{error}");
            assert!(error.contains("allows only `spark.sql.*`, `spark.executor.memory`"), "{error}");
        }
        // By default a command allows none.
        let error = job_settings(&with("spark.sql.shuffle.partitions"), &command_settings_default()).unwrap_err();
        assert!(error.contains("allows none"), "{error}");
    }

    fn command_settings_default() -> SparkCommand {
        command(json!({})).unwrap()
    }

    #[test]
    fn property_names_and_values_are_checked_in_every_layer() {
        let command = sql_command();
        for bad in ["spark.sql.a b", "-spark.sql.x", "", "spark.sql.x=y", "spark.sql.é"] {
            let error = job_settings(&json!({"query": "SELECT 1", "parameters": {"properties": {bad: "1"}}}), &command).unwrap_err();
            assert!(error.contains("is not a property name"), "{bad}: {error}");
            let error = command_settings_error(json!({"properties": {bad: "1"}}));
            assert!(error.contains("spark command context: `properties`") && error.contains("is not a property name"), "{error}");
            let error = cluster(json!({"properties": {bad: "1"}})).unwrap_err();
            assert!(error.contains("spark cluster context: `properties`") && error.contains("is not a property name"), "{error}");
        }
        let value = |v: &str| job_settings(&json!({"query": "SELECT 1", "parameters": {"properties": {"spark.sql.x": v}}}), &command);
        assert!(value("1\nspark.driver.extraJavaOptions -Dx").unwrap_err().contains("line break"));
        assert!(value(" ").unwrap_err().contains("blank value"));
        assert!(value(&"x".repeat(1025)).unwrap_err().contains("longer than 1024"));
        assert!(value("1 --conf spark.driver.extraJavaOptions=-Dx=y").is_ok(), "spaces are fine: the value stays one value");
        let many: serde_json::Map<String, Value> = (0..101).map(|i| (format!("spark.sql.p{i}"), json!("1"))).collect();
        assert!(job_settings(&json!({"query": "SELECT 1", "parameters": {"properties": many}}), &command).unwrap_err().contains("at most 100"));
    }

    fn command_settings_error(context: Value) -> String {
        command(context).unwrap_err()
    }

    #[test]
    fn allowed_properties_entries_are_names_or_prefixes() {
        assert!(command(json!({"allowed_properties": ["spark.sql.*", "spark.executor.memory", "spark.sql.adaptive.enabled"]})).is_ok());
        for bad in ["*", "spark.*.memory", "spark sql.*", "**", ""] {
            let error = command_settings_error(json!({"allowed_properties": [bad]}));
            assert!(error.contains("spark command context: `allowed_properties`"), "{bad}: {error}");
        }
        assert!(command_settings_error(json!({"allowed_properties": ["*"]})).contains("`*` alone"));
    }

    #[test]
    fn the_run_has_the_commands_entry_point_and_each_property_as_its_own_entry() {
        let command = command(json!({"allowed_properties": ["spark.sql.*"], "properties": {"spark.executor.memory": "4g"}, "logs_uri": "s3://b/logs"})).unwrap();
        let cluster = cluster(json!({"properties": {"spark.executor.memory": "2g", "spark.executor.cores": "2"}})).unwrap();
        let injected = "1 --conf spark.driver.extraJavaOptions=-Dx=y";
        let job = job_settings(&json!({"query": "SELECT 1", "parameters": {"properties": {"spark.sql.shuffle.partitions": injected}}}), &command).unwrap();
        let (driver, overrides) = job_run_parts(&command, &cluster, &job, vec!["s3://b/q/1.sql".into(), "-".into()]).unwrap();
        assert_eq!(driver.entry_point(), "s3://b/run_sql.py");
        assert_eq!(driver.entry_point_arguments(), ["s3://b/q/1.sql", "-"]);
        assert_eq!(driver.spark_submit_parameters(), None, "nothing goes to spark-submit as text");
        let overrides = overrides.unwrap();
        let [defaults] = overrides.application_configuration() else { panic!("one classification: {overrides:?}") };
        assert_eq!(defaults.classification(), SPARK_DEFAULTS);
        let properties = defaults.properties().unwrap();
        assert_eq!(properties.len(), 3, "{properties:?}");
        assert_eq!(properties["spark.sql.shuffle.partitions"], injected);
        assert_eq!(properties["spark.executor.memory"], "4g");
        assert_eq!(properties["spark.executor.cores"], "2");
        assert!(!properties.contains_key("spark.driver.extraJavaOptions"));
        assert_eq!(overrides.monitoring_configuration().unwrap().s3_monitoring_configuration().unwrap().log_uri(), "s3://b/logs");
    }

    #[test]
    fn a_run_without_properties_or_logs_has_no_overrides() {
        let command = command_settings_default();
        let cluster = cluster(json!({})).unwrap();
        let job = job_settings(&json!({"query": "SELECT 1"}), &command).unwrap();
        let (driver, overrides) = job_run_parts(&command, &cluster, &job, vec![]).unwrap();
        assert!(overrides.is_none());
        assert_eq!(driver.spark_submit_parameters(), None);
    }
}
