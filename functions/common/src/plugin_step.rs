//! The handler of the plugin Lambdas. The state machine calls it once per step with
//! `{"operation": "submit" | "poll" | "finalize" | "fail", "job_id": …, …}` (and `claim`, from
//! executions an earlier state machine started); it calls
//! the matching service step and answers small JSON. Failures carry a stable `errorType`
//! ([`PluginError::error_type`]) that the state machine's Retry and Catch match on, and an
//! `errorMessage` that is JSON (`{"message", "exit_code"}`) so the `fail` step can record both.

use std::sync::Arc;
use std::time::Duration;

use heimdall_domain::JobId;
use heimdall_ports::{Plugin, PluginError};
use heimdall_service::{JobService, PluginRegistry};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::FunctionConfig;

/// One step, as the state machine sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
pub enum StepRequest {
    Claim { job_id: JobId },
    Submit { job_id: JobId },
    Poll { job_id: JobId, handle: Value, wait_seconds: u64 },
    Finalize { job_id: JobId, handle: Value },
    /// The workflow waits for the work's end (`token`: the waiting task's); see
    /// `heimdall_service::awaited_ends`.
    Await { job_id: JobId, handle: Value, token: String },
    /// From a Catch: `error` is the state's `{"Error", "Cause"}`.
    Fail { job_id: JobId, error: CaughtError },
}

/// What Step Functions puts in a Catch's `ResultPath`.
#[derive(Debug, Clone, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

/// A failed step, in the shape the Lambda runtime reports.
#[derive(Debug, Clone, PartialEq)]
pub struct StepFailure {
    pub error_type: String,
    pub error_message: String,
}

impl From<PluginError> for StepFailure {
    fn from(error: PluginError) -> Self {
        Self { error_type: error.error_type().to_owned(), error_message: error.step_message() }
    }
}

impl From<StepFailure> for Diagnostic {
    fn from(failure: StepFailure) -> Self {
        Diagnostic { error_type: failure.error_type, error_message: failure.error_message }
    }
}

/// Runs one step for a job of `plugin` (this function's plugin; the service refuses a job of
/// another).
pub async fn handle(service: &JobService, plugin: &str, request: StepRequest) -> Result<Value, StepFailure> {
    let answer = |step: heimdall_service::StepAnswer| serde_json::to_value(step).unwrap_or(Value::Null);
    Ok(match request {
        StepRequest::Claim { job_id } => json!({"proceed": service.step_claim(job_id, plugin).await?}),
        StepRequest::Submit { job_id } => answer(service.step_submit(job_id, plugin).await?),
        StepRequest::Poll { job_id, handle, wait_seconds } => {
            answer(service.step_poll(job_id, plugin, &handle, Duration::from_secs(wait_seconds)).await?)
        }
        StepRequest::Await { job_id, handle, token } => json!({"resumed": service.step_await(job_id, plugin, &handle, &token).await?}),
        StepRequest::Finalize { job_id, handle } => {
            json!({"status": service.step_finalize(job_id, plugin, &handle).await?.status})
        }
        StepRequest::Fail { job_id, error } => {
            let (message, exit_code) = explain(&error);
            let answer = service.step_fail(job_id, &error.error, message, exit_code).await?;
            json!({"retry": answer.retry, "wait_seconds": answer.wait_seconds, "status": answer.status})
        }
    })
}

/// The message and exit code inside a caught error: ours (`errorMessage` is our JSON), a
/// Lambda's own (`errorMessage` text), or Step Functions' (`States.Timeout` and its cause).
pub fn explain(error: &CaughtError) -> (String, Option<i32>) {
    let cause = error.cause.clone().unwrap_or_default();
    let lambda_message = serde_json::from_str::<Value>(&cause)
        .ok()
        .and_then(|c| c.get("errorMessage").and_then(Value::as_str).map(str::to_owned));
    match lambda_message {
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(ours) if ours.get("message").is_some() => (
                ours["message"].as_str().unwrap_or_default().to_owned(),
                ours["exit_code"].as_i64().map(|code| code as i32),
            ),
            _ => (format!("{}: {text}", error.error), None),
        },
        None if cause.is_empty() => (error.error.clone(), None),
        None => (format!("{}: {cause}", error.error), None),
    }
}

/// The `main` of a plugin Lambda: tracing, config from the environment, the service running
/// only the plugin `make_plugin` builds (the binary links that plugin's code and AWS clients,
/// no other's), then one step per invocation.
pub async fn run_function(
    make_plugin: fn(&aws_config::SdkConfig, &FunctionConfig) -> Arc<dyn Plugin>,
) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (service, _) = crate::service_from_env(|sdk, config| PluginRegistry::running_only([make_plugin(sdk, config)])).await?;
    // The registry's one plugin.
    let plugin = service.plugin_names()[0];
    lambda_runtime::run(service_fn(move |event: LambdaEvent<StepRequest>| {
        let service = service.clone();
        async move { handle(&service, plugin, event.payload).await }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caught(error: &str, cause: Option<&str>) -> CaughtError {
        CaughtError { error: error.into(), cause: cause.map(str::to_owned) }
    }

    #[test]
    fn our_own_failure_gives_back_its_message_and_exit_code() {
        let failure = StepFailure::from(PluginError::JobFailed { message: "`sh` exited with code 3".into(), exit_code: Some(3) });
        let cause = json!({"errorType": failure.error_type, "errorMessage": failure.error_message}).to_string();
        assert_eq!(explain(&caught("JobFailed", Some(&cause))), ("`sh` exited with code 3".to_owned(), Some(3)));
    }

    #[test]
    fn a_step_functions_error_keeps_its_name_and_cause() {
        assert_eq!(
            explain(&caught("States.Timeout", Some("Task timed out"))),
            ("States.Timeout: Task timed out".to_owned(), None)
        );
        assert_eq!(explain(&caught("States.Runtime", None)), ("States.Runtime".to_owned(), None));
    }

    #[test]
    fn step_requests_parse_from_the_state_machines_payloads() {
        let poll: StepRequest = serde_json::from_value(json!({
            "operation": "poll", "job_id": "0190a0b0-0000-7000-8000-000000000000", "handle": {"h": 1}, "wait_seconds": 3
        }))
        .unwrap();
        assert!(matches!(poll, StepRequest::Poll { wait_seconds: 3, .. }));
        let awaiting: StepRequest = serde_json::from_value(json!({
            "operation": "await", "job_id": "0190a0b0-0000-7000-8000-000000000000", "handle": {"h": 1}, "token": "AQB-token"
        }))
        .unwrap();
        assert!(matches!(awaiting, StepRequest::Await { ref token, .. } if token == "AQB-token"));
    }

    #[test]
    fn the_state_machines_result_selectors_read_every_field_of_a_step_answer_and_nothing_else() {
        let asl: Value = serde_json::from_str(include_str!("../../../statemachines/async-job.asl.json")).unwrap();
        let answer = heimdall_service::StepAnswer {
            proceed: true, ended: false, done: false, handle: Value::Null, wait_seconds: 1, await_event: true, await_seconds: 60,
        };
        let mut fields: Vec<String> = serde_json::to_value(answer).unwrap().as_object().unwrap().keys().cloned().collect();
        fields.sort();
        for state in ["Submit", "Poll"] {
            let selector = asl["States"][state]["ResultSelector"].as_object().unwrap();
            let mut selected: Vec<String> = selector.keys().map(|key| key.trim_end_matches(".$").to_owned()).collect();
            selected.sort();
            assert_eq!(selected, fields, "{state}");
            for (key, path) in selector {
                assert_eq!(path.as_str().unwrap(), format!("$.Payload.{}", key.trim_end_matches(".$")), "{state}");
            }
        }
    }
}
