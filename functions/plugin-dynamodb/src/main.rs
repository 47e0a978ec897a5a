//! The dynamodb plugin's Lambda: `heimdall_functions::plugin_step` with the dynamodb plugin,
//! the only plugin this binary links.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    heimdall_functions::plugin_step::run_function(|sdk, config| {
        // Never the platform's own jobs table.
        std::sync::Arc::new(heimdall_plugins_aws::DynamoDbPlugin::new(sdk).forbidding(Some(&config.aws.table)))
    }).await
}
