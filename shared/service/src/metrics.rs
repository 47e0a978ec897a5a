//! The platform's figures in Prometheus' text format (`GET /metrics`): jobs submitted, finished
//! by status, their durations, retries, plugin errors by type, jobs running in this process,
//! and the last health check of each (cluster, command) pair.
//! Counted where the service changes a job, so every runtime counts the same way.

use std::sync::Mutex;

use heimdall_domain::Job;
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
struct Pair {
    cluster: String,
    command: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginFailure {
    plugin: String,
    error_type: String,
}

/// Job duration buckets, seconds: a second to a day.
const DURATION_BUCKETS: [f64; 12] = [1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0];

/// Where one CloudWatch embedded-metric-format document goes (a function's stdout).
pub type EmfSink = std::sync::Arc<dyn Fn(String) + Send + Sync>;

/// The service's metrics.
pub struct JobMetrics {
    registry: Mutex<Registry>,
    submitted: Family<Route, Counter>,
    finished: Family<Outcome, Counter>,
    durations: Family<Outcome, Histogram>,
    retries: Family<Route, Counter>,
    plugin_errors: Family<PluginFailure, Counter>,
    running: Gauge,
    /// Async jobs waiting in the queue for a worker.
    queued: Gauge,
    /// 1 when the last health check of a (cluster, command) pair passed, 0 when it failed.
    healthy: Family<Pair, Gauge>,
    /// On AWS, each figure also goes out as an EMF log line: CloudWatch makes metrics of
    /// them with no call per job.
    emf: Option<EmfSink>,
}

impl Default for JobMetrics {
    fn default() -> Self {
        let submitted = Family::<Route, Counter>::default();
        let finished = Family::<Outcome, Counter>::default();
        let durations = Family::<Outcome, Histogram>::new_with_constructor(|| Histogram::new(DURATION_BUCKETS));
        let retries = Family::<Route, Counter>::default();
        let plugin_errors = Family::<PluginFailure, Counter>::default();
        let running = Gauge::default();
        let queued = Gauge::default();
        let healthy = Family::<Pair, Gauge>::default();
        let mut registry = Registry::with_prefix("heimdall");
        registry.register("jobs_submitted", "Jobs accepted, by command and cluster", submitted.clone());
        registry.register("jobs_finished", "Jobs that ended, by command, cluster and final status", finished.clone());
        registry.register("job_duration_seconds", "From start to end of jobs that ran, by command, cluster and final status", durations.clone());
        registry.register("job_retries", "Failed attempts run again, by command and the cluster that failed", retries.clone());
        registry.register("plugin_errors", "Failed attempts, by plugin and error type", plugin_errors.clone());
        registry.register("jobs_running", "Jobs this process is running or waiting to retry now", running.clone());
        registry.register("queue_depth", "Async jobs waiting in the queue for a worker (SQS: approximate)", queued.clone());
        registry.register("cluster_healthy", "1 when the last health check of a cluster for a command passed, 0 when it failed", healthy.clone());
        Self { registry: Mutex::new(registry), submitted, finished, durations, retries, plugin_errors, running, queued, healthy, emf: None }
    }
}

/// One EMF document: `values` (name, unit, value) under the dimensions `dimensions`, in the
/// `Heimdall` namespace.
pub fn emf_document(at_millis: i64, dimensions: &[(&str, &str)], values: &[(&str, &str, f64)]) -> String {
    let mut document = serde_json::json!({
        "_aws": {
            "Timestamp": at_millis,
            "CloudWatchMetrics": [{
                "Namespace": "Heimdall",
                "Dimensions": [dimensions.iter().map(|(name, _)| *name).collect::<Vec<_>>()],
                "Metrics": values.iter().map(|(name, unit, _)| serde_json::json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        },
    });
    for (name, value) in dimensions {
        document[*name] = serde_json::json!(value);
    }
    for (name, _, value) in values {
        document[*name] = serde_json::json!(value);
    }
    document.to_string()
}

fn route_of(job: &Job) -> Route {
    Route { command: job.command_id.clone().unwrap_or_default(), cluster: job.cluster_id.clone().unwrap_or_default() }
}

impl JobMetrics {
    /// Also writes each figure as an EMF document to `sink`.
    pub fn with_emf(mut self, sink: EmfSink) -> Self {
        self.emf = Some(sink);
        self
    }

    fn emit(&self, dimensions: &[(&str, &str)], values: &[(&str, &str, f64)]) {
        if let Some(sink) = &self.emf {
            sink(emf_document(chrono_millis(), dimensions, values));
        }
    }

    pub(crate) fn submitted(&self, job: &Job) {
        let route = route_of(job);
        self.emit(&[("command", &route.command), ("cluster", &route.cluster)], &[("JobsSubmitted", "Count", 1.0)]);
        self.submitted.get_or_create(&route).inc();
    }

    /// A job reached its final status (counted once: only the write that ended it calls this;
    /// the transition table lets no final status move again).
    pub(crate) fn finished(&self, job: &Job) {
        let route = route_of(job);
        let outcome = Outcome { command: route.command, cluster: route.cluster, status: job.status.as_str().to_owned() };
        self.finished.get_or_create(&outcome).inc();
        let dimensions = [("command", outcome.command.as_str()), ("cluster", outcome.cluster.as_str()), ("status", outcome.status.as_str())];
        match (job.started_at, job.finished_at) {
            (Some(started), Some(finished)) => {
                let seconds = (finished - started).max(0) as f64;
                self.durations.get_or_create(&outcome).observe(seconds);
                self.emit(&dimensions, &[("JobsFinished", "Count", 1.0), ("JobDuration", "Seconds", seconds)]);
            }
            _ => self.emit(&dimensions, &[("JobsFinished", "Count", 1.0)]),
        }
    }

    pub(crate) fn retried(&self, failed: &Job) {
        let route = route_of(failed);
        self.emit(&[("command", &route.command), ("cluster", &route.cluster)], &[("JobRetries", "Count", 1.0)]);
        self.retries.get_or_create(&route).inc();
    }

    pub(crate) fn plugin_error(&self, plugin: &str, error_type: &str) {
        self.emit(&[("plugin", plugin), ("error_type", error_type)], &[("PluginErrors", "Count", 1.0)]);
        self.plugin_errors.get_or_create(&PluginFailure { plugin: plugin.to_owned(), error_type: error_type.to_owned() }).inc();
    }

    pub(crate) fn queue_depth(&self, depth: u64) {
        self.emit(&[], &[("QueueDepth", "Count", depth as f64)]);
        self.queued.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    pub(crate) fn health_checked(&self, check: &heimdall_domain::health::HealthCheck) {
        let value = if check.is_ok() { 1 } else { 0 };
        self.emit(&[("cluster", &check.cluster_id), ("command", &check.command_id)], &[("ClusterHealthy", "Count", value as f64)]);
        self.healthy.get_or_create(&Pair { cluster: check.cluster_id.clone(), command: check.command_id.clone() }).set(value);
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


fn chrono_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_document_names_its_dimensions_and_metrics_beside_their_values() {
        let text = emf_document(1_700_000_000_000, &[("command", "etl"), ("status", "FAILED")], &[("JobsFinished", "Count", 1.0), ("JobDuration", "Seconds", 42.0)]);
        let document: serde_json::Value = serde_json::from_str(&text).unwrap();
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Heimdall");
        assert_eq!(directive["Dimensions"], serde_json::json!([["command", "status"]]));
        assert_eq!(directive["Metrics"][1], serde_json::json!({"Name": "JobDuration", "Unit": "Seconds"}));
        assert_eq!((document["command"].as_str(), document["JobDuration"].as_f64()), (Some("etl"), Some(42.0)));
        assert_eq!(document["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }
}
