//! The config file: commands and clusters in Heimdall's YAML format.
//!
//! ```yaml
//! commands:
//!   - name: ping-0.0.1
//!     version: 0.0.1
//!     status: active
//!     plugin: ping
//!     is_sync: true
//!     tags: [type:ping]
//!     cluster_tags: [type:localhost]
//! clusters:
//!   - name: localhost-0.0.1
//!     version: 0.0.1
//!     tags: [type:localhost]
//! ```
//! Unknown keys are errors (a typo must not be ignored silently). Syntax errors carry the line
//! and column; every other problem names the entry and the field, and all are reported at once.
//! Plugin-specific context checks happen where the plugins are known (the service's catalog).

use std::collections::HashSet;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::{AccessPolicy, GROUP_PREFIX};
use crate::clock::now_epoch_seconds;
use crate::cluster::Cluster;
use crate::command::{CallerPattern, Command, ExecutionMode};
use crate::job_attributes::JobAttributes;
use crate::limits::Limits;
use crate::resource_status::ResourceStatus;
use crate::tags::{TagSet, system_tags};
use crate::trigger::Trigger;

/// A parsed and validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub commands: Vec<Command>,
    pub clusters: Vec<Cluster>,
    /// The entries `commands` were built from, in the same order (what the catalog store keeps).
    pub command_specs: Vec<CommandSpec>,
    pub cluster_specs: Vec<ClusterSpec>,
    pub pool: PoolSettings,
    pub triggers: Vec<Trigger>,
    pub access: AccessPolicy,
    pub limits: Limits,
}

/// Heimdall's `pool`: how many async jobs run at once in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSettings {
    #[serde(default = "default_pool_size")]
    pub size: usize,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { size: default_pool_size() }
    }
}

fn default_pool_size() -> usize {
    8
}

/// What is wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{source_name}: {message}")]
    Syntax { source_name: String, message: String },
    #[error("{source_name}: {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid { source_name: String, problems: Vec<String> },
}

impl ConfigError {
    /// The individual problems (one for a syntax error).
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Syntax { message, .. } => vec![message.clone()],
            ConfigError::Invalid { problems, .. } => problems.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    commands: Vec<CommandSpec>,
    #[serde(default)]
    clusters: Vec<ClusterSpec>,
    #[serde(default)]
    pool: PoolSettings,
    #[serde(default)]
    triggers: Vec<Trigger>,
    #[serde(default)]
    access: AccessPolicy,
    #[serde(default)]
    limits: Limits,
}

/// A command as the config file and `PUT /api/v1/command/{id}` declare it (Heimdall's fields
/// and ours). [`Command::from_spec`] checks it and builds the command routing uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub status: ResourceStatus,
    pub plugin: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub is_sync: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sync_seconds: Option<u64>,
    #[serde(default)]
    pub retry: crate::retry::RetryPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_modes: Option<Vec<ExecutionMode>>,
    #[serde(default)]
    pub cluster_tags: Vec<String>,
    #[serde(default)]
    pub allowed_callers: Vec<String>,
    /// Links shown with each of its jobs (Heimdall's `job_attributes`), templated.
    #[serde(default, skip_serializing_if = "JobAttributes::is_empty")]
    pub job_attributes: JobAttributes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

/// A cluster as the config file and `PUT /api/v1/cluster/{id}` declare it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub status: ResourceStatus,
    #[serde(default)]
    pub health_check: bool,
    /// Seconds between health checks of this cluster (default 60).
    #[serde(default = "default_health_interval")]
    pub health_interval: u64,
    /// A self-registered cluster: active only while registered again within this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Links shown with each job run here (Heimdall's `job_attributes`), templated.
    #[serde(default, skip_serializing_if = "JobAttributes::is_empty")]
    pub job_attributes: JobAttributes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

/// Seconds between two health checks of a cluster when its entry names none.
pub const DEFAULT_HEALTH_INTERVAL: u64 = 60;

fn default_health_interval() -> u64 {
    DEFAULT_HEALTH_INTERVAL
}

/// A digest of an entry as declared (SHA-256 of its JSON): what tells a config entry that
/// changed since the catalog store was seeded from it.
pub fn spec_digest(spec: &impl Serialize) -> String {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_string(spec).unwrap_or_default();
    Sha256::digest(text.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

impl CommandSpec {
    /// The id: as given, else the name.
    pub fn resolved_id(&self) -> String {
        self.id.clone().unwrap_or_else(|| self.name.clone())
    }
}

impl ClusterSpec {
    pub fn resolved_id(&self) -> String {
        self.id.clone().unwrap_or_else(|| self.name.clone())
    }
}

fn default_weight() -> u32 {
    crate::selection::DEFAULT_WEIGHT
}

fn check_weight(label: &str, weight: u32, problems: &mut Vec<String>) {
    if weight > crate::selection::MAX_WEIGHT {
        problems.push(format!("{label}: field `weight` must be 0 to {}; got {weight}", crate::selection::MAX_WEIGHT));
    }
}

/// The owner recorded for config entries that name none.
const CONFIG_OWNER: &str = "heimdall";

impl Config {
    /// Parses and validates `text`; `source_name` (the file path) prefixes every error.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let file: ConfigFile = serde_saphyr::from_str(text).map_err(|error| ConfigError::Syntax {
            source_name: source_name.to_owned(),
            message: error.to_string(),
        })?;
        let mut problems = Vec::new();
        let now = now_epoch_seconds();
        let commands: Vec<Command> = file
            .commands
            .iter()
            .enumerate()
            .filter_map(|(index, entry)| build_command(&entry_label("commands", index, &entry.resolved_id()), entry.clone(), now, &mut problems))
            .collect();
        let clusters: Vec<Cluster> = file
            .clusters
            .iter()
            .enumerate()
            .filter_map(|(index, entry)| build_cluster(&entry_label("clusters", index, &entry.resolved_id()), entry.clone(), now, &mut problems))
            .collect();
        find_duplicates("commands", commands.iter().map(|c| c.id.as_str()), &mut problems);
        find_duplicates("clusters", clusters.iter().map(|c| c.id.as_str()), &mut problems);
        if file.pool.size == 0 {
            problems.push("pool: field `size` must be at least 1".to_owned());
        }
        for (index, trigger) in file.triggers.iter().enumerate() {
            if let Err(problem) = trigger.validate() {
                problems.push(format!("triggers[{index}] (name `{}`): {problem}", trigger.name));
            }
        }
        find_duplicates("triggers", file.triggers.iter().map(|t| t.name.as_str()), &mut problems);
        problems.extend(file.access.problems());
        problems.extend(file.limits.problems());
        if problems.is_empty() {
            Ok(Config { commands, clusters, command_specs: file.commands, cluster_specs: file.clusters, pool: file.pool, triggers: file.triggers, access: file.access, limits: file.limits })
        } else {
            Err(ConfigError::Invalid { source_name: source_name.to_owned(), problems })
        }
    }
}

fn entry_label(list: &str, index: usize, id: &str) -> String {
    format!("{list}[{index}] (id `{id}`)")
}

impl Command {
    /// Checks `spec` (every problem prefixed with `label`) and builds the command, created and
    /// updated `now`. Plugin-specific checks of its context are the service catalog's.
    pub fn from_spec(spec: &CommandSpec, label: &str, now: i64) -> Result<Command, Vec<String>> {
        let mut problems = Vec::new();
        build_command(label, spec.clone(), now, &mut problems).ok_or(problems)
    }
}

impl Cluster {
    /// Checks `spec` (every problem prefixed with `label`) and builds the cluster.
    pub fn from_spec(spec: &ClusterSpec, label: &str, now: i64) -> Result<Cluster, Vec<String>> {
        let mut problems = Vec::new();
        build_cluster(label, spec.clone(), now, &mut problems).ok_or(problems)
    }
}

fn build_command(label: &str, entry: CommandSpec, now: i64, problems: &mut Vec<String>) -> Option<Command> {
    let id = entry.resolved_id();
    let before = problems.len();
    check_identity(label, &id, &entry.name, &entry.version, problems);
    check_tag_list(label, "tags", &entry.tags, problems);
    check_tag_list(label, "cluster_tags", &entry.cluster_tags, problems);
    if entry.plugin.trim().is_empty() {
        problems.push(format!("{label}: field `plugin` must name a plugin, e.g. ping or shell"));
    }
    let context = check_context(label, entry.context, problems);
    let mut caller_patterns = Vec::new();
    for (i, entry_text) in entry.allowed_callers.iter().enumerate() {
        let (is_group, pattern) = match entry_text.strip_prefix(GROUP_PREFIX) {
            Some(group) => (true, group),
            None => (false, entry_text.as_str()),
        };
        match Regex::new(&format!("^(?:{pattern})$")) {
            Ok(regex) => caller_patterns.push(CallerPattern { is_group, regex }),
            Err(error) => problems.push(format!(
                "{label}: field `allowed_callers[{i}]`: `{pattern}` is not a valid regex: {error}"
            )),
        }
    }
    let default_mode = ExecutionMode::from_is_sync(entry.is_sync);
    let allowed_modes = entry
        .allowed_modes
        .unwrap_or_else(|| vec![ExecutionMode::Sync, ExecutionMode::Async]);
    if !allowed_modes.contains(&default_mode) {
        problems.push(format!(
            "{label}: field `allowed_modes` must include the default mode `{}` set by `is_sync: {}`",
            if entry.is_sync { "sync" } else { "async" },
            entry.is_sync
        ));
    }
    problems.extend(entry.retry.problems().into_iter().map(|problem| format!("{label}: {problem}")));
    check_weight(label, entry.weight, problems);
    problems.extend(crate::job_attributes::problems(label, &entry.job_attributes));
    if entry.max_sync_seconds == Some(0) {
        problems.push(format!("{label}: field `max_sync_seconds` must be at least 1 (seconds a sync job may run)"));
    }
    if problems.len() > before {
        return None;
    }
    Some(Command {
        tags: with_system_tags(&entry.tags, &id, &entry.name, &entry.version),
        id,
        name: entry.name,
        version: entry.version,
        description: entry.description,
        user: entry.user.unwrap_or_else(|| CONFIG_OWNER.to_owned()),
        status: entry.status,
        plugin: entry.plugin,
        weight: entry.weight,
        is_sync: entry.is_sync,
        max_sync_seconds: entry.max_sync_seconds,
        retry: entry.retry,
        allowed_modes,
        cluster_tags: entry.cluster_tags.into_iter().collect(),
        allowed_callers: entry.allowed_callers,
        job_attributes: entry.job_attributes,
        context,
        created_at: now,
        updated_at: now,
        caller_patterns,
    })
}

fn build_cluster(label: &str, entry: ClusterSpec, now: i64, problems: &mut Vec<String>) -> Option<Cluster> {
    let id = entry.resolved_id();
    let before = problems.len();
    check_identity(label, &id, &entry.name, &entry.version, problems);
    check_tag_list(label, "tags", &entry.tags, problems);
    let context = check_context(label, entry.context, problems);
    check_weight(label, entry.weight, problems);
    if entry.health_interval == 0 {
        problems.push(format!("{label}: field `health_interval` must be at least 1 (seconds between health checks)"));
    }
    problems.extend(crate::job_attributes::problems(label, &entry.job_attributes));
    if entry.ttl_seconds == Some(0) {
        problems.push(format!("{label}: field `ttl_seconds` must be at least 1 (seconds a registration lasts)"));
    }
    if problems.len() > before {
        return None;
    }
    Some(Cluster {
        tags: with_system_tags(&entry.tags, &id, &entry.name, &entry.version),
        id,
        name: entry.name,
        version: entry.version,
        description: entry.description,
        user: entry.user.unwrap_or_else(|| CONFIG_OWNER.to_owned()),
        status: entry.status,
        health_check: entry.health_check,
        health_interval: entry.health_interval,
        ttl_seconds: entry.ttl_seconds,
        expires_at: entry.ttl_seconds.map(|ttl| now.saturating_add(ttl as i64)),
        weight: entry.weight,
        job_attributes: entry.job_attributes,
        context,
        created_at: now,
        updated_at: now,
    })
}

fn check_identity(label: &str, id: &str, name: &str, version: &str, problems: &mut Vec<String>) {
    for (field, value) in [("id", id), ("name", name), ("version", version)] {
        if value.trim().is_empty() {
            problems.push(format!("{label}: field `{field}` must not be empty"));
        } else if value.chars().any(char::is_whitespace) {
            problems.push(format!("{label}: field `{field}` must not contain spaces: `{value}`"));
        }
    }
}

fn check_tag_list(label: &str, field: &str, tags: &[String], problems: &mut Vec<String>) {
    for (i, tag) in tags.iter().enumerate() {
        if tag.trim().is_empty() {
            problems.push(format!("{label}: field `{field}[{i}]` must not be empty"));
        } else if tag.starts_with('_') {
            problems.push(format!(
                "{label}: field `{field}[{i}]`: `{tag}` starts with `_`, which is kept for the system tags _id:, _name: and _version:"
            ));
        }
    }
}

fn check_context(label: &str, context: Option<Value>, problems: &mut Vec<String>) -> Value {
    match context {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(Value::Object(map)) => Value::Object(map),
        Some(other) => {
            problems.push(format!(
                "{label}: field `context` must be a mapping, got {}",
                crate::job::json_kind(&other)
            ));
            Value::Null
        }
    }
}

fn with_system_tags(own: &[String], id: &str, name: &str, version: &str) -> TagSet {
    own.iter().cloned().chain(system_tags(id, name, version)).collect()
}

fn find_duplicates<'a>(list: &str, ids: impl Iterator<Item = &'a str>, problems: &mut Vec<String>) {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            problems.push(format!("{list}: id `{id}` is used by more than one entry (a missing id defaults to the name)"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Caller;

    const GOOD: &str = r#"
commands:
  - name: ping-0.0.1
    version: 0.0.1
    status: active
    plugin: ping
    is_sync: true
    tags: [type:ping]
    cluster_tags: [type:localhost]
clusters:
  - name: localhost-0.0.1
    version: 0.0.1
    status: active
    tags: [type:localhost, data:local]
    context: {}
"#;

    fn problems_of(text: &str) -> Vec<String> {
        Config::parse(text, "test.yml").unwrap_err().problems()
    }

    #[test]
    fn heimdalls_example_config_loads_with_system_tags() {
        let config = Config::parse(GOOD, "test.yml").unwrap();
        let ping = &config.commands[0];
        assert_eq!(ping.id, "ping-0.0.1");
        assert!(ping.tags.contains("_id:ping-0.0.1") && ping.tags.contains("_version:0.0.1"));
        assert!(ping.is_sync);
        assert_eq!(config.clusters[0].tags.len(), 5);
        assert_eq!(config.pool.size, 8);
        assert_eq!(config.limits.active_jobs_per_user, 100);
        assert_eq!(ping.max_sync_seconds, None);
    }

    #[test]
    fn limits_and_a_commands_sync_limit_are_read_and_checked() {
        let text = "limits: {active_jobs_per_user: 3}\ncommands:\n  - {name: a, version: '1', plugin: ping, max_sync_seconds: 20}\n";
        let config = Config::parse(text, "t").unwrap();
        assert_eq!(config.limits.active_jobs_per_user, 3);
        assert_eq!(config.commands[0].max_sync_seconds, Some(20));
        let problems = problems_of("limits: {active_jobs_per_user: 0}\ncommands:\n  - {name: a, version: '1', plugin: ping, max_sync_seconds: 0}\n");
        assert!(problems.iter().any(|p| p.contains("`max_sync_seconds` must be at least 1")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("`active_jobs_per_user` must be at least 1")), "{problems:?}");
    }

    #[test]
    fn a_syntax_error_names_the_file_and_the_line() {
        let error = Config::parse("commands:\n  - name: [unclosed\n", "bad.yml").unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("bad.yml: "), "{text}");
        assert!(text.contains("line 2") || text.contains(":2:") || text.contains("2:"), "{text}");
    }

    #[test]
    fn an_unknown_key_is_an_error_not_ignored() {
        let problems = problems_of("database:\n  url: x\n");
        assert!(problems[0].contains("database"), "{problems:?}");
    }

    #[test]
    fn a_misspelt_field_in_an_entry_is_named() {
        let problems = problems_of(&GOOD.replace("cluster_tags:", "cluster_tag:"));
        assert!(problems[0].contains("cluster_tag"), "{problems:?}");
    }

    #[test]
    fn a_bad_status_says_which_values_are_allowed() {
        let problems = problems_of(&GOOD.replacen("status: active", "status: enabled", 1));
        assert!(problems[0].contains("active, inactive or deleted"), "{problems:?}");
    }

    #[test]
    fn every_semantic_problem_names_entry_and_field_and_all_are_reported() {
        let text = r#"
commands:
  - name: a
    version: "1"
    plugin: ping
    allowed_callers: ["[unclosed"]
  - name: a
    version: ""
    plugin: ping
    tags: [_id:fake]
clusters:
  - name: k
    version: "1"
    context: [1, 2]
"#;
        let problems = problems_of(text);
        let expect = [
            "commands[0] (id `a`): field `allowed_callers[0]`",
            "commands[1] (id `a`): field `version` must not be empty",
            "commands[1] (id `a`): field `tags[0]`",
            "clusters[0] (id `k`): field `context` must be a mapping",
        ];
        for needle in expect {
            assert!(problems.iter().any(|p| p.contains(needle)), "missing `{needle}` in {problems:#?}");
        }
    }

    #[test]
    fn duplicate_ids_are_reported() {
        let text = "commands:\n  - {name: a, version: '1', plugin: ping}\n  - {name: a, version: '2', plugin: ping}\n";
        let problems = problems_of(text);
        assert!(problems.iter().any(|p| p.contains("id `a` is used by more than one entry")), "{problems:?}");
    }

    #[test]
    fn allowed_modes_must_contain_the_default_mode() {
        let text = "commands:\n  - {name: a, version: '1', plugin: ping, is_sync: true, allowed_modes: [async]}\n";
        let problems = problems_of(text);
        assert!(problems[0].contains("allowed_modes"), "{problems:?}");
    }

    #[test]
    fn a_requested_mode_outside_allowed_modes_is_refused_with_the_alternative() {
        let text = "commands:\n  - {name: a, version: '1', plugin: ping, is_sync: true, allowed_modes: [sync]}\n";
        let command = &Config::parse(text, "t").unwrap().commands[0];
        assert_eq!(command.resolve_mode(None), Ok(ExecutionMode::Sync));
        let message = command.resolve_mode(Some(false)).unwrap_err();
        assert!(message.contains("\"is_sync\": true"), "{message}");
    }

    #[test]
    fn a_trigger_with_an_unknown_placeholder_is_named_by_its_entry() {
        let text = "triggers:\n  - {name: nightly, schedule: '0 2 * * *', job: {name: x, version: '1', command_criteria: [t:x], context: {day: '${today}'}}}\n";
        let problems = problems_of(text);
        assert!(problems[0].starts_with("triggers[0] (name `nightly`): `job.context.day`: unknown placeholder `${today}`"), "{problems:?}");
    }

    #[test]
    fn allowed_callers_are_anchored_regexes() {
        let text = "commands:\n  - {name: a, version: '1', plugin: ping, allowed_callers: ['data-.*']}\n";
        let command = &Config::parse(text, "t").unwrap().commands[0];
        assert!(command.admits_caller(&Caller::new("data-eng")));
        assert!(!command.admits_caller(&Caller::new("x-data-eng")));
    }

    #[test]
    fn allowed_callers_may_name_groups() {
        let text = "commands:\n  - {name: a, version: '1', plugin: ping, allowed_callers: ['group:data-.*', carol]}\n";
        let command = &Config::parse(text, "t").unwrap().commands[0];
        assert!(command.admits_caller(&Caller::new("bob").with_groups(["data-eng".to_owned()])));
        assert!(command.admits_caller(&Caller::new("carol")));
        assert!(!command.admits_caller(&Caller::new("data-eng")), "a user named like the group is not in it");
    }

    #[test]
    fn the_access_section_is_read_and_checked() {
        let text = "access:\n  admins: [alice, 'group:platform']\n  job_visibility: all\n  groups: {platform: [dave]}\n";
        let config = Config::parse(text, "t").unwrap();
        assert!(config.access.is_admin(&config.access.resolve(Caller::new("dave"))));
        let problems = problems_of("access:\n  job_visibility: everyone\n");
        assert!(problems[0].contains("everyone"), "{problems:?}");
    }
}
