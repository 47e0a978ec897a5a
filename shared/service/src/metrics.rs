//! The platform's figures in Prometheus' text format (`GET /metrics`): jobs submitted, finished
//! by status, their durations, retries, plugin errors by type, jobs running in this process.
//! Counted where the service changes a job, so every runtime counts the same way.

use std::sync::Mutex;

use heimdall_domain::{Job, JobStatus};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    command: String,
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    command: String,
    cluster: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginFailure {
    plugin: String,
    error_type: String,
}

/// Job duration buckets, seconds: a second to a day.
const DURATION_BUCKETS: [f64; 12] = [1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0];

/// The service's metrics.
pub struct JobMetrics {
    registry: Mutex<Registry>,
    submitted: Family<Route, Counter>,
    finished: Family<Outcome, Counter>,
    durations: Family<Outcome, Histogram>,
    retries: Family<Route, Counter>,
    plugin_errors: Family<PluginFailure, Counter>,
    running: Gauge,
}

impl Default for JobMetrics {
    fn default() -> Self {
        let submitted = Family::<Route, Counter>::default();
        let finished = Family::<Outcome, Counter>::default();
        let durations = Family::<Outcome, Histogram>::new_with_constructor(|| Histogram::new(DURATION_BUCKETS));
        let retries = Family::<Route, Counter>::default();
        let plugin_errors = Family::<PluginFailure, Counter>::default();
        let running = Gauge::default();
        let mut registry = Registry::with_prefix("heimdall");
        registry.register("jobs_submitted", "Jobs accepted, by command and cluster", submitted.clone());
        registry.register("jobs_finished", "Jobs that ended, by command, cluster and final status", finished.clone());
        registry.register("job_duration_seconds", "From start to end of jobs that ran, by command, cluster and final status", durations.clone());
        registry.register("job_retries", "Failed attempts run again, by command and the cluster that failed", retries.clone());
        registry.register("plugin_errors", "Failed attempts, by plugin and error type", plugin_errors.clone());
        registry.register("jobs_running", "Jobs this process is running or waiting to retry now", running.clone());
        Self { registry: Mutex::new(registry), submitted, finished, durations, retries, plugin_errors, running }
    }
}

fn route_of(job: &Job) -> Route {
    Route { command: job.command_id.clone().unwrap_or_default(), cluster: job.cluster_id.clone().unwrap_or_default() }
}

impl JobMetrics {
    pub(crate) fn submitted(&self, job: &Job) {
        self.submitted.get_or_create(&route_of(job)).inc();
    }

    /// A job reached its final status (counted once: only the write that ended it calls this).
    pub(crate) fn finished(&self, job: &Job) {
        let route = route_of(job);
        let outcome = Outcome { command: route.command, cluster: route.cluster, status: job.status.as_str().to_owned() };
        self.finished.get_or_create(&outcome).inc();
        if let (Some(started), Some(finished)) = (job.started_at, job.finished_at) {
            self.durations.get_or_create(&outcome).observe((finished - started).max(0) as f64);
        }
    }

    pub(crate) fn retried(&self, failed: &Job) {
        self.retries.get_or_create(&route_of(failed)).inc();
    }

    pub(crate) fn plugin_error(&self, plugin: &str, error_type: &str) {
        self.plugin_errors.get_or_create(&PluginFailure { plugin: plugin.to_owned(), error_type: error_type.to_owned() }).inc();
    }

    /// The text exposition, with `running` jobs in this process.
    pub(crate) fn render(&self, running: usize) -> String {
        self.running.set(i64::try_from(running).unwrap_or(i64::MAX));
        let registry = self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }
}

/// Whether a status change is the one that ends a job (what [`JobMetrics::finished`] counts).
pub(crate) fn ends(from: JobStatus, to: JobStatus) -> bool {
    to.is_terminal() && !from.is_terminal()
}
