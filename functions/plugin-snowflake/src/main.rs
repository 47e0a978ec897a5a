//! The snowflake plugin's Lambda: `heimdall_functions::plugin_step` with the snowflake plugin,
//! the only plugin this binary links.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    heimdall_functions::plugin_step::run_function(|sdk, _| heimdall_plugins_aws::snowflake_plugin(sdk)).await
}
