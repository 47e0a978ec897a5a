use anyhow::Context;
use heimdall_adapters_aws::AwsSettings;

/// The environment of a Heimdall Lambda, set by `infra/`. Read once in `main`.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    pub aws: AwsSettings,
    /// Where the commands and clusters (Heimdall's YAML) are: a file path, `s3://bucket/key`,
    /// or `ssm:<parameter>`; `None`: the bundled example. Read once, at cold start.
    pub config_location: Option<String>,
    /// The name (or ARN) of a plugin's Lambda, with `{plugin}` for the plugin name.
    pub plugin_function_template: String,
    /// For local development only (`cargo lambda watch`, whose function URL has no
    /// authorizer): the user of requests API Gateway did not authenticate. Never set on AWS.
    pub default_user: Option<String>,
    /// Finished jobs leave the table (DynamoDB TTL) this many days after they end; `None`: kept.
    pub job_retention_days: Option<u32>,
    /// The longest a sync job runs inside a function: below API Gateway's 29 s integration
    /// timeout, so the api function answers before the client is cut off.
    pub max_sync_seconds: u64,
    /// Write metrics as CloudWatch embedded-metric-format lines on stdout: on in a Lambda
    /// (`AWS_LAMBDA_FUNCTION_NAME` set), where CloudWatch Logs turns them into metrics.
    pub emf_metrics: bool,
    /// How often at most a warm instance reads the catalog store's version to pick up changes
    /// (`HEIMDALL_CATALOG_REFRESH_SECONDS`, default 5).
    pub catalog_refresh: std::time::Duration,
    /// Whether this function writes the config file's commands and clusters into the catalog
    /// store at cold start (`HEIMDALL_SEED_CATALOG=true`: the api function; the others read).
    pub seeds_catalog: bool,
    /// The plugin functions' log group (`HEIMDALL_PLUGIN_LOG_GROUP`), linked from async jobs.
    pub plugin_log_group: Option<String>,
}

/// Seconds between two reads of the catalog store's version in a warm function.
pub const DEFAULT_CATALOG_REFRESH_SECONDS: u64 = 5;

/// API Gateway answers 504 after 29 s: a sync job stops at 25 s, leaving time to record it.
pub const DEFAULT_FUNCTION_MAX_SYNC_SECONDS: u64 = 25;

pub const PLUGIN_FUNCTION_PLACEHOLDER: &str = "{plugin}";

impl FunctionConfig {
    /// Reads `HEIMDALL_TABLE`, `HEIMDALL_CATALOG_TABLE`, `HEIMDALL_BUCKET`, `HEIMDALL_QUEUE_URL`,
    /// `HEIMDALL_STATE_MACHINE_ARN`, `HEIMDALL_CONFIG` (optional) and
    /// `HEIMDALL_PLUGIN_FUNCTION` (default `heimdall-plugin-{plugin}`) and, for local
    /// development, `HEIMDALL_DEFAULT_USER`; `HEIMDALL_JOB_RETENTION_DAYS` (optional);
    /// `HEIMDALL_MAX_SYNC_SECONDS` (default 25); `HEIMDALL_CATALOG_REFRESH_SECONDS` (default 5),
    /// `HEIMDALL_SEED_CATALOG`, `HEIMDALL_PLUGIN_LOG_GROUP`.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).with_context(|| format!("Failed to read {name}: the function's environment must set it"));
        Ok(Self {
            aws: AwsSettings {
                table: var("HEIMDALL_TABLE")?,
                catalog_table: var("HEIMDALL_CATALOG_TABLE")?,
                bucket: var("HEIMDALL_BUCKET")?,
                queue_url: var("HEIMDALL_QUEUE_URL")?,
                state_machine_arn: var("HEIMDALL_STATE_MACHINE_ARN")?,
            },
            config_location: std::env::var("HEIMDALL_CONFIG").ok().filter(|location| !location.trim().is_empty()),
            plugin_function_template: std::env::var("HEIMDALL_PLUGIN_FUNCTION")
                .unwrap_or_else(|_| format!("heimdall-plugin-{PLUGIN_FUNCTION_PLACEHOLDER}")),
            default_user: std::env::var("HEIMDALL_DEFAULT_USER").ok().filter(|user| !user.trim().is_empty()),
            job_retention_days: match std::env::var("HEIMDALL_JOB_RETENTION_DAYS") {
                Ok(days) => Some(days.parse().with_context(|| format!("Failed to read HEIMDALL_JOB_RETENTION_DAYS `{days}`: a whole number of days"))?),
                Err(_) => None,
            },
            max_sync_seconds: match std::env::var("HEIMDALL_MAX_SYNC_SECONDS") {
                Ok(seconds) => seconds
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .with_context(|| format!("Failed to read HEIMDALL_MAX_SYNC_SECONDS `{seconds}`: a whole number of seconds, at least 1"))?,
                Err(_) => DEFAULT_FUNCTION_MAX_SYNC_SECONDS,
            },
            emf_metrics: std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some(),
            catalog_refresh: std::time::Duration::from_secs(match std::env::var("HEIMDALL_CATALOG_REFRESH_SECONDS") {
                Ok(seconds) => seconds
                    .parse()
                    .with_context(|| format!("Failed to read HEIMDALL_CATALOG_REFRESH_SECONDS `{seconds}`: a whole number of seconds"))?,
                Err(_) => DEFAULT_CATALOG_REFRESH_SECONDS,
            }),
            seeds_catalog: std::env::var("HEIMDALL_SEED_CATALOG").is_ok_and(|value| value == "true"),
            plugin_log_group: std::env::var("HEIMDALL_PLUGIN_LOG_GROUP").ok().filter(|group| !group.trim().is_empty()),
        })
    }
}
