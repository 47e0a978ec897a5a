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
    /// Whether the platform checks the cluster's health (each `health_interval` seconds) and
    /// leaves it out of routing while a check fails.
    pub health_check: bool,
    pub health_interval: u64,
    /// A self-registered cluster's registration lasts this long; it registers again (`PUT`)
    /// to stay active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// When a self-registered cluster stops being active unless registered again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Its share of the jobs its matching commands route (default 100; 0: only when pinned
    /// with `_id:`).
    pub weight: u32,
    /// Links shown with each job run here: templates (see `job_attributes`).
    #[serde(skip_serializing_if = "crate::job_attributes::JobAttributes::is_empty")]
    pub job_attributes: crate::job_attributes::JobAttributes,
    /// Where and how to connect (references to secrets, never secrets).
    #[schema(value_type = Object)]
    pub context: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Cluster {
    /// Active and, if self-registered, registered within its `ttl_seconds`.
    pub fn is_active(&self) -> bool {
        self.effective_status() == ResourceStatus::Active
    }

    /// The status routing uses: a self-registered cluster whose registration expired counts
    /// as INACTIVE until it registers again.
    pub fn effective_status(&self) -> ResourceStatus {
        match self.expires_at {
            Some(expires_at) if self.status == ResourceStatus::Active && crate::clock::now_epoch_seconds() >= expires_at => ResourceStatus::Inactive,
            _ => self.status,
        }
    }

    /// The cluster as the API shows it: secrets in its context hidden.
    pub fn redacted(&self) -> Self {
        Self { context: crate::redaction::redact_context(&self.context, None), status: self.effective_status(), ..self.clone() }
    }
}
