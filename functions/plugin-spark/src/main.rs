//! The spark plugin's Lambda: `heimdall_functions::plugin_step` with the spark plugin,
//! the only plugin this binary links.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    heimdall_functions::plugin_step::run_function(|sdk, _| std::sync::Arc::new(heimdall_plugins_aws::SparkPlugin::new(sdk))).await
}
