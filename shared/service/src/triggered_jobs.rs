//! Jobs submitted by triggers: each trigger that answers an event submits its job, at most once
//! per event however often the event is delivered (the job id is derived from the trigger and
//! the event, see `Trigger::job_for`).

use std::sync::Arc;

use heimdall_domain::{Caller, JobId};
use heimdall_domain::trigger_event::TriggerEvent;

use crate::job_service::JobService;
use crate::service_error::ServiceError;

/// What one trigger did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerOutcome {
    Submitted { trigger: String, job_id: JobId },
    /// The event was delivered before; its job exists.
    AlreadySubmitted { trigger: String, job_id: JobId },
    /// The trigger answers the event but no job can be made of it (a placeholder the event
    /// does not fill, no matching command, …). Delivering it again would not help.
    Refused { trigger: String, message: String },
}

impl JobService {
    /// Submits the job of every trigger that answers `event`. An error means a backend failed
    /// and the event should be delivered again; jobs already submitted are not submitted twice.
    pub async fn submit_for_event(self: &Arc<Self>, event: &TriggerEvent) -> Result<Vec<TriggerOutcome>, ServiceError> {
        let mut outcomes = Vec::new();
        let catalog = self.catalog_held();
        for trigger in catalog.triggers() {
            let Some(rendered) = trigger.job_for(event) else { continue };
            let name = trigger.name.clone();
            let outcome = match rendered {
                Err(message) => TriggerOutcome::Refused { trigger: name, message },
                Ok(job) => match self.submit_with_id(&catalog.access().resolve(Caller::new(&trigger.user)), job.request, job.job_id, None).await {
                    Ok(_) => TriggerOutcome::Submitted { trigger: name, job_id: job.job_id },
                    Err(ServiceError::AlreadySubmitted(job_id)) => TriggerOutcome::AlreadySubmitted { trigger: name, job_id },
                    // Busy (a limit): the event is delivered again later, when the user has room.
                    Err(error @ (ServiceError::Unavailable(_) | ServiceError::Internal(_) | ServiceError::Busy(_))) => return Err(error),
                    Err(error) => TriggerOutcome::Refused { trigger: name, message: error.to_string() },
                },
            };
            match &outcome {
                TriggerOutcome::Submitted { trigger, job_id } => tracing::info!(%trigger, %job_id, "triggered job submitted"),
                TriggerOutcome::AlreadySubmitted { trigger, job_id } => {
                    tracing::info!(%trigger, %job_id, "event delivered again; its job exists")
                }
                TriggerOutcome::Refused { trigger, message } => tracing::warn!(%trigger, error.message = %message, "triggered job refused"),
            }
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }
}
