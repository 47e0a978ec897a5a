//! SparkSQL on EMR on EKS (async). Heimdall's contexts:
//!
//! - command: `queries_uri` and `results_uri` (S3 prefixes), `logs_uri` (optional),
//!   `wrapper_uri` (the Spark entry point that runs a query file), `properties` (Spark conf),
//!   `max_rows` (result cap, default 10,000).
//! - cluster: `execution_role_arn`, `emr_release_label`, `properties`, and the virtual cluster:
//!   found by the cluster's `name` among running virtual clusters, or given as
//!   `virtual_cluster_id`; `role_arn`, assumed for the EMR calls (a cluster in another account;
//!   the query and result files stay with the platform's own role).
//! - job: `query`, `arguments`, `parameters` (`properties`, `entry_point`), `return_result`.
//!
//! `submit` writes the query to `<queries_uri>/<job id>.sql` and calls `StartJobRun` (client
//! token: the job id, so a retried submit starts one run) with the entry point, the arguments
//! `<query file> <result prefix or ->` then the job's `arguments`, and `--conf` for the merged
//! properties (cluster, then command, then job). The state machine polls `DescribeJobRun`;
//! `COMPLETED` is done, `FAILED` or a cancel outside Heimdall fails the job with the run's
//! `stateDetails` and `failureReason`. With `return_result`, the job writes JSON Lines
//! (`df.write.json(result_prefix)`) under `<results_uri>/<job id>/`; `finalize` reads them back
//! as the result. `cancel` calls `CancelJobRun`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_emrcontainers::types::{
    ConfigurationOverrides, JobDriver, JobRunState, MonitoringConfiguration, S3MonitoringConfiguration,
    SparkSubmitJobDriver, VirtualClusterState,
};
use heimdall_domain::{Cluster, Command};
use heimdall_ports::{Plugin, PluginError, PluginRun, Step};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::assumed_roles::{RoleClients, validate_role_arn};
use crate::result_table::ResultTable;
use crate::s3_uri::{join, parse_s3_uri};

pub const DEFAULT_MAX_ROWS: usize = 10_000;

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
    entry_point: Option<String>,
}

/// What the state machine carries between steps.
#[derive(Debug, Deserialize)]
struct RunHandle {
    virtual_cluster_id: String,
    job_run_id: String,
    result_uri: Option<String>,
}

fn command_settings(command: &Command) -> Result<SparkCommand, String> {
    let settings: SparkCommand = serde_json::from_value(command.context.clone()).map_err(|e| format!("spark command context: {e}"))?;
    for (field, uri) in [("queries_uri", &settings.queries_uri), ("results_uri", &settings.results_uri), ("wrapper_uri", &settings.wrapper_uri)] {
        if parse_s3_uri(&format!("{}/x", uri.trim_end_matches('/'))).is_none() {
            return Err(format!("spark command context: `{field}` must be an s3:// URI; got `{uri}`"));
        }
    }
    Ok(settings)
}

fn cluster_settings(cluster: &Cluster) -> Result<SparkCluster, String> {
    let settings: SparkCluster = serde_json::from_value(cluster.context.clone()).map_err(|e| format!("spark cluster context: {e}"))?;
    if let Some(role_arn) = &settings.role_arn {
        validate_role_arn(role_arn).map_err(|error| format!("spark cluster context: {error}"))?;
    }
    Ok(settings)
}

fn job_settings(context: &Value) -> Result<SparkJob, String> {
    let job: SparkJob = serde_json::from_value(context.clone()).map_err(|e| format!("spark job context: {e}"))?;
    if job.query.trim().is_empty() {
        return Err("spark job context: `query` must not be empty".into());
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
            .map_err(|e| PluginError::Unavailable(format!("S3 PutObject {uri}: {}", heimdall_ports::error_chain(&e))))?;
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
                .map_err(|e| unavailable(&heimdall_ports::error_chain(&e)))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let file = key.rsplit('/').next().unwrap_or(key);
                if file.starts_with('_') || file.starts_with('.') {
                    continue; // _SUCCESS, .crc files
                }
                let body = self.s3.get_object().bucket(bucket).key(key).send().await.map_err(|e| unavailable(&heimdall_ports::error_chain(&e)))?;
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

fn merged_properties(layers: [&BTreeMap<String, String>; 3]) -> String {
    let mut merged = BTreeMap::new();
    for layer in layers {
        merged.extend(layer.iter());
    }
    merged.iter().map(|(key, value)| format!("--conf {key}={value}")).collect::<Vec<_>>().join(" ")
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

    fn validate_job(&self, context: &Value, _command: &Command) -> Result<(), String> {
        job_settings(context).map(|_| ())
    }

    fn supports_sync(&self) -> bool {
        false
    }

    async fn submit(&self, run: &PluginRun) -> Result<Step, PluginError> {
        let command = command_settings(&run.command).map_err(PluginError::InvalidContext)?;
        let cluster = cluster_settings(&run.cluster).map_err(PluginError::InvalidContext)?;
        let job = job_settings(&run.job.context).map_err(PluginError::InvalidContext)?;
        let emr = self.emr(&cluster).await;
        let virtual_cluster_id = Self::virtual_cluster_id(&emr, &run.cluster, &cluster).await?;
        let query_uri = join(&command.queries_uri, &format!("{}.sql", run.job.id));
        self.put_text(&query_uri, &job.query).await?;
        let result_uri = job.return_result.then(|| join(&command.results_uri, &format!("{}/", run.job.id)));
        let mut arguments = vec![query_uri, result_uri.clone().unwrap_or_else(|| "-".into())];
        arguments.extend(job.arguments);
        let driver = SparkSubmitJobDriver::builder()
            .entry_point(job.parameters.entry_point.clone().unwrap_or(command.wrapper_uri.clone()))
            .set_entry_point_arguments(Some(arguments))
            .spark_submit_parameters(merged_properties([&cluster.properties, &command.properties, &job.parameters.properties]))
            .build()
            .map_err(|e| PluginError::InvalidContext(format!("spark: {e}")))?;
        let mut request = emr
            .start_job_run()
            .name(format!("heimdall-{}", run.job.id))
            .virtual_cluster_id(&virtual_cluster_id)
            .client_token(run.job.id.to_string())
            .execution_role_arn(&cluster.execution_role_arn)
            .release_label(&cluster.emr_release_label)
            .job_driver(JobDriver::builder().spark_submit_job_driver(driver).build())
            .tags("heimdall_job_id", run.job.id.to_string());
        if let Some(logs_uri) = &command.logs_uri {
            let s3 = S3MonitoringConfiguration::builder().log_uri(logs_uri).build().map_err(|e| PluginError::InvalidContext(format!("spark: {e}")))?;
            let monitoring = MonitoringConfiguration::builder().s3_monitoring_configuration(s3).build();
            request = request.configuration_overrides(ConfigurationOverrides::builder().monitoring_configuration(monitoring).build());
        }
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
                    .name(format!("heimdall-{}", run.job.id))
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

    #[test]
    fn properties_merge_cluster_then_command_then_job() {
        let cluster = BTreeMap::from([("spark.executor.memory".to_owned(), "2g".to_owned()), ("a".to_owned(), "1".to_owned())]);
        let command = BTreeMap::from([("spark.executor.memory".to_owned(), "4g".to_owned())]);
        let job = BTreeMap::from([("a".to_owned(), "3".to_owned())]);
        assert_eq!(merged_properties([&cluster, &command, &job]), "--conf a=3 --conf spark.executor.memory=4g");
    }

    #[test]
    fn a_query_is_required() {
        assert!(job_settings(&json!({"query": " "})).unwrap_err().contains("`query`"));
        assert!(job_settings(&json!({})).unwrap_err().contains("query"));
    }
}
