//! Health of where jobs run: the last check of each (cluster, command) pair. A pair whose last
//! check failed is left out of routing until a check passes again.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// How a check ended, in Heimdall's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Error,
}

/// One check of a cluster for one of the commands it runs (its plugin's check), as
/// `GET /api/v1/clusters/health` answers it: Heimdall's fields and `command_id`, `checked_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthCheck {
    pub cluster_id: String,
    pub cluster_name: String,
    pub command_id: String,
    pub plugin: String,
    pub status: HealthStatus,
    pub latency_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the check ran (epoch seconds).
    pub checked_at: i64,
}

impl HealthCheck {
    pub fn is_ok(&self) -> bool {
        self.status == HealthStatus::Ok
    }
}

/// The last check of every pair checked, by (cluster id, command id).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthBook {
    checks: HashMap<(String, String), HealthCheck>,
}

impl HealthBook {
    pub fn new(checks: impl IntoIterator<Item = HealthCheck>) -> Self {
        Self { checks: checks.into_iter().map(|check| ((check.cluster_id.clone(), check.command_id.clone()), check)).collect() }
    }

    /// The last check of the pair, if it ever ran.
    pub fn last(&self, cluster_id: &str, command_id: &str) -> Option<&HealthCheck> {
        self.checks.get(&(cluster_id.to_owned(), command_id.to_owned()))
    }

    /// The failed last check of the pair: why it is left out of routing.
    pub fn failing(&self, cluster_id: &str, command_id: &str) -> Option<&HealthCheck> {
        self.last(cluster_id, command_id).filter(|check| !check.is_ok())
    }

    /// Every last check, by cluster then command.
    pub fn all(&self) -> Vec<&HealthCheck> {
        let mut checks: Vec<&HealthCheck> = self.checks.values().collect();
        checks.sort_by(|a, b| (&a.cluster_id, &a.command_id).cmp(&(&b.cluster_id, &b.command_id)));
        checks
    }

    pub fn record(&mut self, check: HealthCheck) {
        self.checks.insert((check.cluster_id.clone(), check.command_id.clone()), check);
    }
}
