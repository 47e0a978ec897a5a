use std::sync::Arc;

use anyhow::{Context, anyhow};
use heimdall_adapters_aws::{DynamoCatalogStore, DynamoJobStore, S3ArtifactStore, SfnWorkflows, SqsJobQueue, s3_client};
use heimdall_ports::Plugin;
use heimdall_service::{Catalog, JobService, PluginRegistry, ServiceSettings};

use crate::function_config::FunctionConfig;

/// The bundled example config, used when `HEIMDALL_CONFIG` is not set.
pub const BUNDLED_CONFIG: &str = include_str!("../../../config/example.yml");

/// Every plugin of this build: the local ones and the data plugins (AWS clients from `sdk`),
/// none of which reads `jobs_table`.
pub fn all_plugins(sdk: &aws_config::SdkConfig, jobs_table: &str) -> Vec<Arc<dyn Plugin>> {
    heimdall_plugins::builtin_plugins().into_iter().chain(heimdall_plugins_aws::data_plugins(sdk, Some(jobs_table))).collect()
}

/// The plugins of the api, events and janitor functions (they submit jobs of any command and
/// check every cluster's health): every plugin, each command of the config checked by its own.
pub fn every_plugin(sdk: &aws_config::SdkConfig, config: &FunctionConfig) -> PluginRegistry {
    PluginRegistry::new(all_plugins(sdk, &config.aws.table))
}

/// The dispatcher's plugins: none (it starts executions and runs nothing), so it links no
/// plugin's code or AWS clients.
pub fn no_plugin(_sdk: &aws_config::SdkConfig, _config: &FunctionConfig) -> PluginRegistry {
    PluginRegistry::running_only(Vec::new())
}

/// The config's text and a name for its errors, from wherever `location` says.
pub async fn read_config(sdk: &aws_config::SdkConfig, location: Option<&str>) -> anyhow::Result<(String, String)> {
    let Some(location) = location else {
        return Ok((BUNDLED_CONFIG.to_owned(), "bundled config/example.yml".to_owned()));
    };
    let text = if let Some(rest) = location.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').with_context(|| format!("HEIMDALL_CONFIG `{location}` must be s3://bucket/key"))?;
        let object = heimdall_adapters_aws::s3_client(sdk)
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|error| anyhow!(heimdall_ports::error_chain(&error)))
            .with_context(|| format!("Failed to read the config {location}"))?;
        let bytes = object.body.collect().await.with_context(|| format!("Failed to read the config {location}"))?.into_bytes();
        String::from_utf8(bytes.to_vec()).with_context(|| format!("The config {location} is not UTF-8"))?
    } else if let Some(name) = location.strip_prefix("ssm:") {
        let output = aws_sdk_ssm::Client::new(sdk)
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|error| anyhow!(heimdall_ports::error_chain(&error)))
            .with_context(|| format!("Failed to read the config {location}"))?;
        output.parameter().and_then(|p| p.value()).with_context(|| format!("The config {location} has no value"))?.to_owned()
    } else {
        std::fs::read_to_string(location).with_context(|| format!("Failed to read the config file {location}"))?
    };
    Ok((text, location.to_owned()))
}

/// What a function's `main` starts with: its environment read and the service built from it,
/// with the plugins `plugins` builds ([`every_plugin`], [`no_plugin`], or a plugin function's
/// own: what a function's `main` names is all its binary links).
pub async fn service_from_env(
    plugins: impl FnOnce(&aws_config::SdkConfig, &FunctionConfig) -> PluginRegistry,
) -> anyhow::Result<(Arc<JobService>, FunctionConfig)> {
    // Before anything runs a job: the function's credentials are in its environment.
    heimdall_plugins::harden_server_process();
    let config = FunctionConfig::from_env()?;
    let sdk = heimdall_adapters_aws::load_sdk_config().await;
    let service = build_service(&sdk, &config, plugins).await?;
    Ok((service, config))
}

/// The service over DynamoDB, S3, SQS and Step Functions, with the plugins `plugins` builds and
/// the config read from `config.config_location` (checked by those plugins; commands of others
/// only where the registry says they run elsewhere).
pub async fn build_service(
    sdk: &aws_config::SdkConfig,
    config: &FunctionConfig,
    plugins: impl FnOnce(&aws_config::SdkConfig, &FunctionConfig) -> PluginRegistry,
) -> anyhow::Result<Arc<JobService>> {
    let (text, name) = read_config(sdk, config.config_location.as_deref()).await?;
    let registry = plugins(sdk, config);
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
        ServiceSettings {
            work_root: std::env::temp_dir().join("heimdall-work"),
            inline_result_limit: 4 * 1024 * 1024,
            max_job_seconds: ServiceSettings::DEFAULT_MAX_JOB_SECONDS,
            max_sync_jobs: ServiceSettings::DEFAULT_MAX_SYNC_JOBS,
            max_sync_seconds: config.max_sync_seconds,
        },
    )
    .with_workflows(Arc::new(
        SfnWorkflows::new(aws_sdk_sfn::Client::new(sdk), &config.aws.state_machine_arn, &config.plugin_function_template)
            .with_log_group(config.plugin_log_group.clone()),
    ));
    let service = if config.emf_metrics { service.with_emf_metrics(Arc::new(|line| println!("{line}"))) } else { service };
    // A sync job records what it cost at list prices, its Lambda time at this function's memory.
    let service = service.with_aws_costing(heimdall_domain::aws_cost::AwsCosting {
        prices: heimdall_domain::aws_cost::AwsPrices::LIST,
        lambda_memory_gb: std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok().and_then(|mb| mb.parse::<f64>().ok()).unwrap_or(512.0) / 1024.0,
    });
    let catalog_store = Arc::new(DynamoCatalogStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.aws.catalog_table));
    let service = service
        .with_catalog_store(catalog_store, config.catalog_refresh, config.seeds_catalog)
        .await
        .map_err(|error| anyhow!("Failed to read the catalog table {}: {error}", config.aws.catalog_table))?;
    Ok(Arc::new(service))
}
