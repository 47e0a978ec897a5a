//! An AWS call refused for lack of a right is a deployment's setup mistake, not an outage:
//! retrying cannot help, so the job fails saying what was refused (instead of `Unavailable`,
//! which the state machine retries).

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use heimdall_ports::PluginError;

/// The error codes AWS services answer for a missing right.
const REFUSAL_CODES: [&str; 3] = ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation"];

/// `text` as the job's failure when `error` is a refusal, as `Unavailable` otherwise.
pub fn refused_or_unavailable<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>, text: String) -> PluginError {
    let code = error.as_service_error().and_then(ProvideErrorMetadata::code);
    if code.is_some_and(|code| REFUSAL_CODES.contains(&code)) {
        PluginError::JobFailed {
            message: format!("{text} (the deployment does not grant this right: see the template's data parameters)"),
            exit_code: None,
        }
    } else {
        PluginError::Unavailable(text)
    }
}
