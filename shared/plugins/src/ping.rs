use async_trait::async_trait;
use heimdall_domain::JobResult;
use heimdall_ports::{Plugin, PluginError, PluginRun, Step};
use serde_json::json;

/// Answers `Hello, <user>!` as a one-row result. Runs in both modes.
pub struct PingPlugin;

#[async_trait]
impl Plugin for PingPlugin {
    fn name(&self) -> &'static str {
        "ping"
    }

    async fn submit(&self, run: &PluginRun) -> Result<Step, PluginError> {
        run.write_result(&JobResult::single_string("message", format!("Hello, {}!", run.job.user)))
            .await?;
        Ok(Step::Complete(json!({})))
    }
}
