use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use croner::Cron;
use heimdall_domain::trigger::Trigger;
use heimdall_service::JobService;
use tokio_util::sync::CancellationToken;

/// The scheduled triggers of `heimdall serve`: one task per trigger sleeps until its next cron
/// time (UTC), fills the job template and submits it as the trigger's user.
pub struct CronScheduler {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl CronScheduler {
    /// Parses every schedule (an error names the trigger) and starts the triggers.
    pub fn spawn(service: Arc<JobService>, triggers: &[Trigger]) -> Result<Self, String> {
        let stop = CancellationToken::new();
        let mut scheduled = Vec::new();
        for (index, trigger) in triggers.iter().enumerate() {
            let Some(expression) = &trigger.schedule else { continue };
            let cron = Cron::from_str(expression).map_err(|error| {
                format!("triggers[{index}] (name `{}`): field `schedule`: `{expression}` is not a cron expression: {error}", trigger.name)
            })?;
            scheduled.push((trigger.clone(), cron));
        }
        let tasks = scheduled
            .into_iter()
            .map(|(trigger, cron)| tokio::spawn(fire(Arc::clone(&service), trigger, cron, stop.clone())))
            .collect();
        Ok(Self { stop, tasks })
    }

    pub async fn shutdown(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn fire(service: Arc<JobService>, trigger: Trigger, cron: Cron, stop: CancellationToken) {
    loop {
        let now = Utc::now();
        let next = match cron.find_next_occurrence(&now, false) {
            Ok(next) => next,
            Err(error) => {
                tracing::warn!(trigger = %trigger.name, %error, "the schedule has no next time; the trigger stops");
                return;
            }
        };
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let values = BTreeMap::from([
            ("trigger.name", trigger.name.clone()),
            ("schedule.time", next.to_rfc3339_opts(SecondsFormat::Secs, true)),
        ]);
        match trigger.render(&values) {
            Ok(request) => match service.submit(&trigger.user, request).await {
                Ok(submitted) => tracing::info!(trigger = %trigger.name, job_id = %submitted.job.id, "scheduled job submitted"),
                Err(error) => tracing::warn!(trigger = %trigger.name, error.message = %error, "scheduled job refused"),
            },
            Err(error) => tracing::error!(trigger = %trigger.name, %error, "the trigger's job template does not render"),
        }
    }
}
