//! The shell plugin's Lambda: `heimdall_functions::plugin_step` with the shell plugin,
//! the only plugin this binary links.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    heimdall_functions::plugin_step::run_function(|_, _| std::sync::Arc::new(heimdall_plugins::shell::ShellPlugin::from_env())).await
}
