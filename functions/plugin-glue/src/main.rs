//! The glue plugin's Lambda: `heimdall_functions::plugin_step` with the glue plugin.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    heimdall_functions::plugin_step::run_function("glue").await
}
