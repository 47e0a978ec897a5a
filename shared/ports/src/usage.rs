//! What a piece of work uses of AWS, metered where it is spent: the AWS adapters add each call's
//! units to the meter of the task they run in ([`record`]); outside a metered scope nothing is
//! kept. The api function meters each request, so a sync job, which lives within one request,
//! knows what it used when its end is written.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heimdall_domain::aws_cost::AwsUsage;

tokio::task_local! {
    static METER: UsageMeter;
}

/// The usage of one piece of work (an api request), shared by the tasks it runs in.
#[derive(Clone, Debug)]
pub struct UsageMeter {
    started: Instant,
    used: Arc<Mutex<Used>>,
}

#[derive(Debug, Default)]
struct Used {
    usage: AwsUsage,
    /// DynamoDB write units of the latest write: what a write about to be made is counted at.
    last_write_units: f64,
}

impl Default for UsageMeter {
    fn default() -> Self {
        Self { started: Instant::now(), used: Arc::default() }
    }
}

impl UsageMeter {
    /// Runs `work` with this meter as the current one.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        METER.scope(self, work).await
    }

    /// What was recorded so far.
    pub fn usage(&self) -> AwsUsage {
        self.used.lock().map(|used| used.usage).unwrap_or_default()
    }

    /// The units of the latest DynamoDB write recorded (0 before any).
    pub fn last_write_units(&self) -> f64 {
        self.used.lock().map(|used| used.last_write_units).unwrap_or_default()
    }

    /// How long since the work began.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The meter of the work this task is part of, if it is metered.
pub fn current() -> Option<UsageMeter> {
    METER.try_with(Clone::clone).ok()
}

/// `work` under `meter` when there is one (a task spawned for metered work stays metered).
pub async fn within<F: Future>(meter: Option<UsageMeter>, work: F) -> F::Output {
    match meter {
        Some(meter) => meter.scope(work).await,
        None => work.await,
    }
}

/// Adds to the current meter, if any.
pub fn record(add: impl FnOnce(&mut AwsUsage)) {
    let _ = METER.try_with(|meter| {
        if let Ok(mut used) = meter.used.lock() {
            add(&mut used.usage);
        }
    });
}

/// Adds a DynamoDB write of `units` write units to the current meter, if any.
pub fn record_write(units: f64) {
    let _ = METER.try_with(|meter| {
        if let Ok(mut used) = meter.used.lock() {
            used.usage.dynamodb_write_units += units;
            used.last_write_units = units;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_is_recorded_within_a_scope_and_its_spawned_tasks_is_kept_and_nothing_outside() {
        record(|usage| usage.s3_puts += 1.0);
        let meter = UsageMeter::default();
        let seen = meter.clone();
        meter
            .scope(async {
                record(|usage| usage.s3_puts += 1.0);
                record_write(9.0);
                let inherited = current();
                tokio::spawn(within(inherited, async { record(|usage| usage.sqs_requests += 3.0) })).await.unwrap();
                tokio::spawn(async { record(|usage| usage.sqs_requests += 100.0) }).await.unwrap();
            })
            .await;
        let usage = seen.usage();
        assert_eq!((usage.s3_puts, usage.dynamodb_write_units, usage.sqs_requests), (1.0, 9.0, 3.0));
        assert_eq!(seen.last_write_units(), 9.0);
    }
}
