use async_trait::async_trait;
use heimdall_domain::health::HealthCheck;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::errors::StoreError;

/// Which half of the catalog a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogKind {
    Command,
    Cluster,
}

impl CatalogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CatalogKind::Command => "command",
            CatalogKind::Cluster => "cluster",
        }
    }
}

/// One command or cluster as stored: its spec (the config's fields, as JSON) and who changed
/// it last, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogRecord {
    pub kind: CatalogKind,
    pub id: String,
    /// A `CommandSpec` or `ClusterSpec`.
    pub spec: Value,
    /// Who made the last change (the config's owner for seeded entries).
    pub changed_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// 1 when first written, one more with each change: what a conditional write compares.
    pub revision: u64,
    /// A digest of the config entry this record was last seeded from: a config entry that
    /// changes replaces the record; one that does not leaves run-time changes standing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
}

/// Everything stored: records, the last health checks, and the version they make.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredCatalog {
    pub version: u64,
    pub records: Vec<CatalogRecord>,
    pub health: Vec<HealthCheck>,
}

/// The live catalog's storage: commands and clusters changed at run time, and health checks.
/// A version moves with every change routing depends on, so a process caching the catalog
/// reads one small value to know whether its copy is current.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// The current version (0 for an empty store).
    async fn version(&self) -> Result<u64, StoreError>;

    /// Every record and health check, and the version they belong to.
    async fn load(&self) -> Result<StoredCatalog, StoreError>;

    /// Writes `record` if the stored one is still `previous` (compared by `revision`; `None`:
    /// none stored), and moves the version. Another writer's change in between is
    /// [`StoreError::Changed`].
    async fn put(&self, record: &CatalogRecord, previous: Option<&CatalogRecord>) -> Result<(), StoreError>;

    /// Keeps `check` as its pair's last; `moves_routing` (its pair became healthy or unhealthy)
    /// also moves the version.
    async fn record_health(&self, check: &HealthCheck, moves_routing: bool) -> Result<(), StoreError>;
}
