//! The API Lambda: `heimdall_function_api::app` under `lambda_http::run`.

use heimdall_functions::{FunctionConfig, build_service};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = FunctionConfig::from_env()?;
    let sdk = heimdall_adapters_aws::load_sdk_config().await;
    let service = build_service(&sdk, &config).await?;
    lambda_http::run(heimdall_function_api::app(service, config.default_user)).await
}
