use std::sync::Arc;

use anyhow::{Context, anyhow};
use heimdall_adapters_aws::{DynamoJobStore, S3ArtifactStore, SfnWorkflows, SqsJobQueue, s3_client};
use heimdall_ports::Plugin;
use heimdall_service::{Catalog, JobService, PluginRegistry, ServiceSettings};

use crate::function_config::FunctionConfig;

/// The bundled example config, used when `HEIMDALL_CONFIG` is not set.
pub const BUNDLED_CONFIG: &str = include_str!("../../../config/example.yml");

/// Every plugin of this build: the local ones and the data plugins (AWS clients from `sdk`).
pub fn all_plugins(sdk: &aws_config::SdkConfig) -> Vec<Arc<dyn Plugin>> {
    heimdall_plugins::builtin_plugins().into_iter().chain(heimdall_plugins_aws::data_plugins(sdk)).collect()
}

/// The service over DynamoDB, S3, SQS and Step Functions, with every plugin of this build.
pub fn build_service(sdk: &aws_config::SdkConfig, config: &FunctionConfig) -> anyhow::Result<Arc<JobService>> {
    let (text, name) = match &config.config_file {
        None => (BUNDLED_CONFIG.to_owned(), "bundled config/example.yml".to_owned()),
        Some(path) => (
            std::fs::read_to_string(path).with_context(|| format!("Failed to read the config file {}", path.display()))?,
            path.display().to_string(),
        ),
    };
    // Every plugin this build knows validates the config, whichever this function runs.
    let registry = PluginRegistry::new(all_plugins(sdk));
    let catalog = Catalog::load(&text, &name, &registry).map_err(|error| anyhow!("{error}"))?;
    let service = JobService::new(
        Arc::new(catalog),
        registry,
        Arc::new(match config.job_retention_days {
            Some(days) => DynamoJobStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.aws.table).with_retention_days(days),
            None => DynamoJobStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.aws.table),
        }),
        Arc::new(S3ArtifactStore::new(s3_client(sdk), &config.aws.bucket)),
        Arc::new(SqsJobQueue::new(aws_sdk_sqs::Client::new(sdk), &config.aws.queue_url)),
        ServiceSettings { work_root: std::env::temp_dir().join("heimdall-work"), inline_result_limit: 4 * 1024 * 1024, max_job_seconds: ServiceSettings::DEFAULT_MAX_JOB_SECONDS },
    )
    .with_workflows(
        Arc::new(SfnWorkflows::new(aws_sdk_sfn::Client::new(sdk), &config.aws.state_machine_arn)),
        config.plugin_function_template.clone(),
    );
    Ok(Arc::new(service))
}
