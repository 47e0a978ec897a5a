use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::Caller;
use crate::resource_status::ResourceStatus;
use crate::tags::TagSet;

/// How a job runs: inside the submit call (`sync`) or queued and driven to the end in the
/// background (`async`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionMode {
    Sync,
    Async,
}

impl ExecutionMode {
    pub fn from_is_sync(is_sync: bool) -> Self {
        if is_sync { ExecutionMode::Sync } else { ExecutionMode::Async }
    }

    pub fn is_sync(self) -> bool {
        self == ExecutionMode::Sync
    }
}

/// What to run: a plugin and its settings, offered to jobs whose `command_criteria` it carries.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Command {
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    /// Who owns the command (from the config file).
    pub user: String,
    /// The command's tags, system tags (`_id:`, `_name:`, `_version:`) included.
    #[schema(value_type = Vec<String>)]
    pub tags: TagSet,
    pub status: ResourceStatus,
    /// The plugin that runs this command's jobs (`ping`, `shell`, …).
    pub plugin: String,
    /// Its share of the jobs its tags match, against other matching commands (default 100;
    /// 0: only when pinned with `_id:`). A canary: two commands with the same tags, 99 and 1.
    pub weight: u32,
    /// The default mode of its jobs (Heimdall's `is_sync`).
    pub is_sync: bool,
    /// How long a sync job of this command may run inside its request; past it the job is
    /// stopped and FAILED (submit it async instead). `None`: the runtime's own limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sync_seconds: Option<u64>,
    /// Which failed attempts run again, how often, after how long (default: none).
    pub retry: crate::retry::RetryPolicy,
    /// The modes a job may ask for with `is_sync` in its request.
    pub allowed_modes: Vec<ExecutionMode>,
    /// Tags a cluster must carry to run this command (left out when none, as Heimdall answers).
    #[schema(value_type = Vec<String>)]
    #[serde(skip_serializing_if = "TagSet::is_empty")]
    pub cluster_tags: TagSet,
    /// Regexes over the user name; left out (anyone may run the command) when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_callers: Vec<String>,
    /// Links shown with each of its jobs: templates (see `job_attributes`).
    #[serde(skip_serializing_if = "crate::job_attributes::JobAttributes::is_empty")]
    pub job_attributes: crate::job_attributes::JobAttributes,
    /// Plugin settings.
    #[schema(value_type = Object)]
    pub context: Value,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip)]
    pub(crate) caller_patterns: Vec<CallerPattern>,
}

/// One `allowed_callers` entry: an anchored regex over the user name, or over the caller's
/// group names when written `group:<regex>`.
#[derive(Debug, Clone)]
pub(crate) struct CallerPattern {
    pub(crate) is_group: bool,
    pub(crate) regex: Regex,
}

impl CallerPattern {
    fn admits(&self, caller: &Caller) -> bool {
        if self.is_group {
            caller.groups.iter().any(|group| self.regex.is_match(group))
        } else {
            self.regex.is_match(&caller.user)
        }
    }
}

impl Command {
    pub fn is_active(&self) -> bool {
        self.status == ResourceStatus::Active
    }

    /// The command as the API shows it: secrets in its context (and shell `env` values) hidden.
    pub fn redacted(&self) -> Self {
        Self { context: crate::redaction::redact_context(&self.context, Some(&self.plugin)), ..self.clone() }
    }

    /// The mode a job runs in: the one it asked for if the command allows it, else an error
    /// naming what is allowed.
    pub fn resolve_mode(&self, requested_is_sync: Option<bool>) -> Result<ExecutionMode, String> {
        let mode = requested_is_sync
            .map(ExecutionMode::from_is_sync)
            .unwrap_or(ExecutionMode::from_is_sync(self.is_sync));
        if self.allowed_modes.contains(&mode) {
            return Ok(mode);
        }
        let allowed: Vec<&str> = self
            .allowed_modes
            .iter()
            .map(|m| if m.is_sync() { "\"is_sync\": true" } else { "\"is_sync\": false" })
            .collect();
        Err(format!(
            "command `{}` does not run {} jobs; send {} or leave is_sync out",
            self.id,
            if mode.is_sync() { "sync" } else { "async" },
            allowed.join(" or ")
        ))
    }

    /// Whether `caller` may run this command (`allowed_callers`).
    pub fn admits_caller(&self, caller: &Caller) -> bool {
        self.caller_patterns.is_empty() || self.caller_patterns.iter().any(|p| p.admits(caller))
    }
}
