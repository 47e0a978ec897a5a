//! The snowflake plugin's Lambda: `heimdall_functions::plugin_step` with the snowflake plugin.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    heimdall_functions::plugin_step::run_function("snowflake").await
}
