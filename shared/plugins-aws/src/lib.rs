//! The data plugins that need AWS, and the list of every data plugin. Each takes the process's SDK configuration (credentials, region,
//! `AWS_ENDPOINT_URL`) at construction and builds its clients once.
//!
//! # Layout
//! - [`dynamodb`]: `DynamoDbPlugin`, reads (get, query, PartiQL `SELECT`) into a result table.
//! - [`glue`]: `GluePlugin`, an Iceberg table's metadata through the Glue catalog and S3.
//! - [`spark`]: `SparkPlugin`, SparkSQL on EMR on EKS, polled by the state machine.
//! - [`snowflake_keys`]: `AwsKeyLoader`, Snowflake keys from SSM Parameter Store or Secrets Manager.
//! - [`assumed_roles`]: `RoleClients`, clients acting as a cluster's `role_arn` (STS AssumeRole).
//! - [`s3_uri`]: `s3://bucket/key` parsing.
//! - [`attribute_json`]: DynamoDB attribute values to and from plain JSON.
//! - [`result_table`]: builds a result table whose columns are the union of the rows' fields.

pub mod assumed_roles;
pub mod aws_refusal;
pub mod attribute_json;
pub mod dynamodb;
pub mod glue;
pub mod result_table;
pub mod s3_uri;
pub mod snowflake_keys;
pub mod spark;

pub use dynamodb::DynamoDbPlugin;
pub use glue::GluePlugin;
pub use spark::SparkPlugin;

use std::sync::Arc;

use heimdall_ports::Plugin;

/// Every data plugin (dynamodb, glue, spark, snowflake with its keys in files, SSM or Secrets
/// Manager), with AWS clients built from `sdk`. The dynamodb plugin refuses to read
/// `jobs_table`, the platform's own (where jobs are kept on DynamoDB; none under `heimdall serve`).
pub fn data_plugins(sdk: &aws_config::SdkConfig, jobs_table: Option<&str>) -> Vec<Arc<dyn Plugin>> {
    vec![
        Arc::new(DynamoDbPlugin::new(sdk).forbidding(jobs_table)),
        Arc::new(GluePlugin::new(sdk)),
        Arc::new(SparkPlugin::new(sdk)),
        snowflake_plugin(sdk),
    ]
}

/// The snowflake plugin with its keys in files, SSM or Secrets Manager (clients from `sdk`).
pub fn snowflake_plugin(sdk: &aws_config::SdkConfig) -> Arc<dyn Plugin> {
    Arc::new(heimdall_plugins_snowflake::SnowflakePlugin::with_key_loader(Arc::new(snowflake_keys::AwsKeyLoader::new(sdk))))
}
