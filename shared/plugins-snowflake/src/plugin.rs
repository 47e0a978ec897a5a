//! `SnowflakePlugin`: a job's SQL as one asynchronous SQL API statement.
//!
//! - `submit` starts the statement (`async=true`, the attempt's key as `requestId`: the job id for the first) and answers its
//!   handle, `{"statement_handle": "…"}`;
//! - `poll` asks whether it finished;
//! - `finalize` streams its result, partition by partition, into the job's result artifact;
//! - `cancel` asks Snowflake to stop it.
//!
//! Each step loads the key and signs a fresh token: on AWS the steps are separate Lambda calls
//! hours apart, and a key rotated in between is picked up.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use heimdall_domain::{Cluster, Command, ResultColumn};
use heimdall_ports::{Plugin, PluginError, PluginRun, RunOutcome, Step};
use serde_json::{Value, json};

use crate::jwt::KeyPairJwt;
use crate::private_key::{FileKeyLoader, PrivateKeyLoader};
use crate::result_stream::ResultStream;
use crate::settings::{ClusterSettings, CommandSettings, JobContext};
use crate::sql_api::{PartitionInfo, Progress, SqlApi, StatementRequest};

/// Snowflake asks clients to name themselves.
const USER_AGENT: &str = concat!("heimdall-rs/", env!("CARGO_PKG_VERSION"), " (snowflake plugin)");
/// Answers to submit, poll and cancel are small and quick; a partition can be tens of MB.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The snowflake plugin.
pub struct SnowflakePlugin {
    http: reqwest::Client,
    keys: Arc<dyn PrivateKeyLoader>,
}

impl SnowflakePlugin {
    /// A plugin that reads private keys from files.
    pub fn new() -> Self {
        Self::with_key_loader(Arc::new(FileKeyLoader))
    }

    /// A plugin that loads private keys with `keys` (e.g. one that also reads `ssm:` references).
    pub fn with_key_loader(keys: Arc<dyn PrivateKeyLoader>) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            // Building fails only when the TLS backend cannot start: nothing could run anyway.
            .expect("the HTTP client for Snowflake builds");
        Self { http, keys }
    }

    /// The cluster's settings and its SQL API, signed in with the cluster's key.
    async fn connect(&self, cluster: &Cluster) -> Result<(ClusterSettings, SqlApi), PluginError> {
        let settings = ClusterSettings::parse(cluster).map_err(PluginError::InvalidContext)?;
        let base = settings.base_url().map_err(PluginError::InvalidContext)?;
        let pem = self.keys.load(&settings.private_key).await?;
        let jwt = KeyPairJwt::new(&settings.account, &settings.user, &pem)
            .map_err(|why| PluginError::InvalidContext(format!("`private_key` {}: {why}", settings.private_key)))?;
        let api = SqlApi::new(self.http.clone(), base, jwt, &settings.account, &settings.user);
        Ok((settings, api))
    }
}

impl Default for SnowflakePlugin {
    fn default() -> Self {
        Self::new()
    }
}

/// The job's command settings and context, checked as at submission.
/// How long a health check's `SELECT 1` may take.
const HEALTH_CHECK_SECONDS: u64 = 10;

fn job_settings(run: &PluginRun) -> Result<(CommandSettings, JobContext), PluginError> {
    let command = CommandSettings::parse(&run.command).map_err(PluginError::InvalidContext)?;
    let job = JobContext::parse(&run.job.context, &command).map_err(PluginError::InvalidContext)?;
    Ok((command, job))
}

/// The statement timeout the job asked for, so that hitting it reads as `TimedOut`.
fn statement_timeout(run: &PluginRun) -> Option<u64> {
    job_settings(run).ok().and_then(|(command, job)| job.timeout_seconds(&command))
}

/// The handle `submit` made: `{"statement_handle": "01b2…"}`.
fn statement_handle(handle: &Value) -> Result<&str, PluginError> {
    handle
        .get("statement_handle")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .ok_or_else(|| PluginError::InvalidContext(format!("not a snowflake statement handle: {handle}")))
}

fn step_of(progress: Progress) -> Step {
    match progress {
        Progress::Running(handle) => Step::Pending(json!({ "statement_handle": handle })),
        Progress::Done(handle) => Step::Complete(json!({ "statement_handle": handle })),
    }
}

/// A partition with fewer or more rows than announced was cut short on the way: reading it
/// again (a retried `finalize`) may succeed.
fn check_row_count(info: &[PartitionInfo], index: usize, received: usize) -> Result<(), PluginError> {
    match info.get(index).and_then(|p| p.row_count) {
        Some(expected) if expected != received as u64 => Err(PluginError::Unavailable(format!(
            "Snowflake result partition {index} arrived with {received} rows of {expected}"
        ))),
        _ => Ok(()),
    }
}

#[async_trait]
impl Plugin for SnowflakePlugin {
    fn name(&self) -> &'static str {
        "snowflake"
    }

    fn validate_command(&self, command: &Command) -> Result<(), String> {
        CommandSettings::parse(command).map(|_| ())
    }

    fn validate_cluster(&self, cluster: &Cluster) -> Result<(), String> {
        let settings = ClusterSettings::parse(cluster)?;
        self.keys.check(&settings.private_key)
    }

    fn validate_job(&self, context: &Value, command: &Command) -> Result<(), String> {
        let settings = CommandSettings::parse(command)?;
        JobContext::parse(context, &settings).map(|_| ())
    }

    /// Statements can run for hours: the state machine's loop polls them.
    fn supports_sync(&self) -> bool {
        false
    }

    /// A login with the cluster's key and `SELECT 1` in its warehouse, with the command's role.
    async fn check_health(&self, command: &Command, cluster: &Cluster) -> Result<(), String> {
        let role = CommandSettings::parse(command)?.role;
        let (settings, api) = self.connect(cluster).await.map_err(|error| error.to_string())?;
        let request = StatementRequest {
            statement: "SELECT 1",
            timeout: Some(HEALTH_CHECK_SECONDS),
            warehouse: settings.warehouse.as_deref(),
            database: settings.database.as_deref(),
            schema: settings.schema.as_deref(),
            role: role.as_deref().or(settings.role.as_deref()),
            bindings: None,
        };
        let request_id = heimdall_domain::JobId::new().to_string();
        api.with_statement_timeout(Some(HEALTH_CHECK_SECONDS)).submit(&request, &request_id).await.map(|_| ()).map_err(|error| error.to_string())
    }

    async fn submit(&self, run: &PluginRun) -> Result<Step, PluginError> {
        let (command, job) = job_settings(run)?;
        let (cluster, api) = self.connect(&run.cluster).await?;
        let timeout = job.timeout_seconds(&command);
        let request = StatementRequest {
            statement: &job.query,
            timeout,
            warehouse: cluster.warehouse.as_deref(),
            database: cluster.database.as_deref(),
            schema: cluster.schema.as_deref(),
            role: command.role.as_deref().or(cluster.role.as_deref()),
            bindings: job.bindings.as_ref(),
        };
        let progress = api.with_statement_timeout(timeout).submit(&request, &run.job.id.attempt_key(run.job.attempt)).await?;
        tracing::info!(job = %run.job.id, ?progress, account = %cluster.account, "snowflake statement submitted");
        Ok(step_of(progress))
    }

    async fn poll(&self, run: &PluginRun, handle: &Value) -> Result<Step, PluginError> {
        let handle = statement_handle(handle)?;
        let (_, api) = self.connect(&run.cluster).await?;
        let progress = api.with_statement_timeout(statement_timeout(run)).status(handle).await?;
        tracing::debug!(job = %run.job.id, ?progress, "snowflake statement polled");
        Ok(step_of(progress))
    }

    async fn cancel(&self, run: &PluginRun, handle: Option<&Value>) -> Result<(), PluginError> {
        let Some(handle) = handle else {
            // Never submitted: nothing runs in Snowflake.
            return Ok(());
        };
        let handle = statement_handle(handle)?;
        let (_, api) = self.connect(&run.cluster).await?;
        api.cancel(handle).await?;
        tracing::info!(job = %run.job.id, statement_handle = handle, "snowflake statement canceled");
        Ok(())
    }

    async fn finalize(&self, run: &PluginRun, handle: &Value) -> Result<RunOutcome, PluginError> {
        let handle = statement_handle(handle)?;
        let (_, api) = self.connect(&run.cluster).await?;
        let api = api.with_statement_timeout(statement_timeout(run));
        let first = api.first_partition(handle).await?;
        let meta = first.result_set_meta_data;
        let columns: Vec<ResultColumn> = meta
            .row_type
            .iter()
            .map(|column| ResultColumn { name: column.name.clone(), column_type: column.column_type.clone() })
            .collect();
        let mut result = ResultStream::start(run.artifacts.as_ref(), run.job.id, &columns).await?;
        check_row_count(&meta.partition_info, 0, first.data.len())?;
        result.write_rows(&first.data, 0).await?;
        drop(first.data);
        // Partition 0 came with the metadata; the others one at a time, in order.
        for index in 1..meta.partition_info.len() {
            let rows = api.partition(handle, index).await?;
            check_row_count(&meta.partition_info, index, rows.len())?;
            result.write_rows(&rows, index).await?;
        }
        let rows = result.finish().await?;
        tracing::info!(
            job = %run.job.id,
            statement_handle = handle,
            rows,
            partitions = meta.partition_info.len().max(1),
            "snowflake result stored"
        );
        Ok(RunOutcome::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_handles_made_by_submit_are_accepted() {
        assert_eq!(statement_handle(&json!({"statement_handle": "01b2c3d4-0000-1111"})).unwrap(), "01b2c3d4-0000-1111");
        for bad in [json!({}), json!({"statement_handle": ""}), json!({"statement_handle": "../x?y"}), json!("01b2")] {
            assert_eq!(statement_handle(&bad).unwrap_err().error_type(), PluginError::INVALID_CONTEXT, "{bad}");
        }
    }

    #[test]
    fn a_partition_short_of_its_announced_rows_is_retryable() {
        let info = [PartitionInfo { row_count: Some(2) }, PartitionInfo { row_count: None }];
        assert!(check_row_count(&info, 0, 2).is_ok());
        assert_eq!(check_row_count(&info, 0, 1).unwrap_err().error_type(), PluginError::UNAVAILABLE);
        // No count announced: nothing to check against.
        assert!(check_row_count(&info, 1, 7).is_ok());
    }

    #[test]
    fn the_plugin_is_async_only_and_named_snowflake() {
        let plugin = SnowflakePlugin::new();
        assert_eq!(plugin.name(), "snowflake");
        assert!(!plugin.supports_sync());
    }
}
