//! Health-based routing: each active cluster with `health_check: true` is checked, for each
//! active command it runs, by that command's plugin every `health_interval` seconds. The last
//! check of each pair is stored; a pair whose check fails leaves routing (a failure or a
//! recovery moves the catalog's version, so every process sees it) until a check passes.

use std::time::{Duration, Instant};

use heimdall_domain::clock::now_epoch_seconds;
use heimdall_domain::health::{HealthCheck, HealthStatus};
use heimdall_domain::tags::carries_all;
use heimdall_domain::{Cluster, Command};

use crate::job_service::JobService;
use crate::service_error::ServiceError;

/// The longest one check may take before it counts as failed.
pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(30);

impl JobService {
    /// Runs every check that is due (never run, or run `health_interval` ago or more), stores
    /// each, and answers them. Checks run one after another: few, cheap, and never in a hurry.
    pub async fn check_cluster_health(&self) -> Result<Vec<HealthCheck>, ServiceError> {
        let catalog = self.catalog.current(&self.plugins).await;
        let now = now_epoch_seconds();
        let due: Vec<(&Command, &Cluster)> = catalog
            .clusters()
            .iter()
            .filter(|cluster| cluster.health_check && cluster.is_active())
            .flat_map(|cluster| {
                catalog
                    .commands()
                    .iter()
                    .filter(move |command| command.is_active() && carries_all(&cluster.tags, &command.cluster_tags))
                    .map(move |command| (command, cluster))
            })
            .filter(|(command, cluster)| {
                catalog.health().last(&cluster.id, &command.id).is_none_or(|last| now - last.checked_at >= cluster.health_interval as i64)
            })
            .collect();
        let mut checks = Vec::with_capacity(due.len());
        let mut moved = false;
        for (command, cluster) in due {
            let check = self.check_pair(command, cluster).await;
            let was_ok = catalog.health().last(&cluster.id, &command.id).map(HealthCheck::is_ok);
            // A first check that passes changes nothing for routing; any other change does.
            let moves_routing = was_ok.unwrap_or(true) != check.is_ok();
            self.metrics.health_checked(&check);
            if !check.is_ok() {
                tracing::warn!(cluster = %check.cluster_id, command = %check.command_id, error = ?check.error, "health check failed");
            }
            if let Some(store) = self.catalog.store() {
                store.record_health(&check, moves_routing).await.map_err(|e| ServiceError::from_store(e, None))?;
            }
            moved |= moves_routing;
            checks.push(check);
        }
        if moved {
            self.catalog.reload(&self.plugins).await?;
        }
        Ok(checks)
    }

    async fn check_pair(&self, command: &Command, cluster: &Cluster) -> HealthCheck {
        let started = Instant::now();
        let outcome = match self.plugins.get(&command.plugin) {
            None => Err(format!("plugin `{}` is not loaded", command.plugin)),
            Some(plugin) => match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, plugin.check_health(command, cluster)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {} s", HEALTH_CHECK_TIMEOUT.as_secs())),
            },
        };
        HealthCheck {
            cluster_id: cluster.id.clone(),
            cluster_name: cluster.name.clone(),
            command_id: command.id.clone(),
            plugin: command.plugin.clone(),
            status: if outcome.is_ok() { HealthStatus::Ok } else { HealthStatus::Error },
            latency_ms: started.elapsed().as_millis() as u64,
            error: outcome.err().map(heimdall_domain::job::bounded_error),
            checked_at: now_epoch_seconds(),
        }
    }

    /// The last check of every pair (of `cluster_id` alone when given), and whether all of
    /// those of active clusters passed.
    pub async fn cluster_health(&self, cluster_id: Option<&str>) -> Result<(bool, Vec<HealthCheck>), ServiceError> {
        let catalog = self.catalog.current(&self.plugins).await;
        if let Some(id) = cluster_id
            && catalog.cluster(id).is_none()
        {
            return Err(ServiceError::NotFound(format!("cluster `{id}` not found")));
        }
        let checks: Vec<HealthCheck> =
            catalog.health().all().into_iter().filter(|check| cluster_id.is_none_or(|id| check.cluster_id == id)).cloned().collect();
        let healthy = checks.iter().all(|check| check.is_ok() || !catalog.cluster(&check.cluster_id).is_some_and(Cluster::is_active));
        Ok((healthy, checks))
    }
}
