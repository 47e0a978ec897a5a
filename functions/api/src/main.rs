//! The API Lambda: `heimdall_function_api::app` under `lambda_http::run`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let (service, config) = heimdall_functions::service_from_env(heimdall_functions::every_plugin).await?;
    lambda_http::run(heimdall_function_api::app(service, config.default_user)).await
}
