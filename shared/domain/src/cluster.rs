use serde::Serialize;
use serde_json::Value;

use crate::resource_status::ResourceStatus;
use crate::tags::TagSet;

/// Where a command runs: localhost, a Snowflake account, an EMR on EKS virtual cluster, …
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Cluster {
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    pub user: String,
    /// The cluster's tags, system tags (`_id:`, `_name:`, `_version:`) included.
    #[schema(value_type = Vec<String>)]
    pub tags: TagSet,
    pub status: ResourceStatus,
    pub health_check: bool,
    /// Its share of the jobs its matching commands route (default 100; 0: only when pinned
    /// with `_id:`).
    pub weight: u32,
    /// Where and how to connect (references to secrets, never secrets).
    #[schema(value_type = Object)]
    pub context: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Cluster {
    pub fn is_active(&self) -> bool {
        self.status == ResourceStatus::Active
    }

    /// The cluster as the API shows it: secrets in its context hidden.
    pub fn redacted(&self) -> Self {
        Self { context: crate::redaction::redact_context(&self.context, None), ..self.clone() }
    }
}
