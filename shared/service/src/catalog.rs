use std::sync::Arc;

use heimdall_domain::AccessPolicy;
use heimdall_domain::config::{ClusterSpec, CommandSpec, Config, ConfigError, PoolSettings};
use heimdall_domain::health::HealthBook;
use heimdall_domain::limits::Limits;
use heimdall_domain::tags::carries_all;
use heimdall_domain::trigger::Trigger;
use heimdall_domain::{Cluster, Command};
use heimdall_ports::{CatalogKind, CatalogRecord, StoredCatalog};

use crate::plugin_registry::PluginRegistry;

/// The commands and clusters a deployment offers at one moment, every command naming a known
/// plugin whose checks its context and its clusters' contexts pass; with the config's
/// settings that do not change at run time (pool, triggers, access, limits).
///
/// Built from the config file ([`Catalog::load`]); where a catalog store keeps run-time
/// changes, each version of the store gives a new `Catalog` ([`Catalog::from_stored`]).
#[derive(Debug, Clone)]
pub struct Catalog {
    commands: Vec<Command>,
    clusters: Vec<Cluster>,
    health: HealthBook,
    /// The store's version this copy reflects (0: the config alone).
    version: u64,
    /// The stored records, for conditional changes (empty for the config alone).
    records: Vec<CatalogRecord>,
    /// The config's entries, what the store is seeded from.
    pub(crate) seed: Arc<Seed>,
    pool: PoolSettings,
    triggers: Arc<Vec<Trigger>>,
    access: Arc<AccessPolicy>,
    limits: Limits,
}

/// The config file's commands and clusters as declared.
#[derive(Debug, Default)]
pub(crate) struct Seed {
    pub(crate) commands: Vec<CommandSpec>,
    pub(crate) clusters: Vec<ClusterSpec>,
}

impl Catalog {
    /// Parses, validates and checks `text` against `plugins`; errors name `source_name`.
    pub fn load(text: &str, source_name: &str, plugins: &PluginRegistry) -> Result<Self, ConfigError> {
        let config = Config::parse(text, source_name)?;
        let problems = plugin_problems(&config.commands, &config.clusters, plugins, |kind, index, id| {
            format!("{}s[{index}] (id `{id}`)", kind.as_str())
        });
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { source_name: source_name.to_owned(), problems });
        }
        Ok(Self {
            commands: config.commands,
            clusters: config.clusters,
            health: HealthBook::default(),
            version: 0,
            records: Vec::new(),
            seed: Arc::new(Seed { commands: config.command_specs, clusters: config.cluster_specs }),
            pool: config.pool,
            triggers: Arc::new(config.triggers),
            access: Arc::new(config.access),
            limits: config.limits,
        })
    }

    /// This catalog's settings with the commands, clusters and health checks of `stored`. A
    /// record this build cannot use (a plugin it lacks) is left out and logged, not fatal: the
    /// rest of the catalog still routes.
    pub fn from_stored(&self, stored: StoredCatalog, plugins: &PluginRegistry) -> Self {
        let mut commands = Vec::new();
        let mut clusters = Vec::new();
        for record in &stored.records {
            let built = match record.kind {
                CatalogKind::Command => built_from(record, Command::from_spec).map(|mut command| {
                    command.created_at = record.created_at;
                    commands.push(command);
                }),
                CatalogKind::Cluster => built_from(record, Cluster::from_spec).map(|mut cluster| {
                    cluster.created_at = record.created_at;
                    clusters.push(cluster);
                }),
            };
            if let Err(problems) = built {
                tracing::error!(kind = record.kind.as_str(), id = %record.id, problems = ?problems, "a stored catalog entry cannot be used");
            }
        }
        commands.retain(|command| {
            let problems = command_problems(command, plugins, &format!("stored command `{}`", command.id));
            for problem in &problems {
                tracing::error!(%problem, "a stored command is left out");
            }
            problems.is_empty()
        });
        Self {
            commands,
            clusters,
            health: HealthBook::new(stored.health),
            version: stored.version,
            records: stored.records,
            ..self.clone()
        }
    }

    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    pub fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    pub fn command(&self, id: &str) -> Option<&Command> {
        self.commands.iter().find(|c| c.id == id)
    }

    pub fn cluster(&self, id: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.id == id)
    }

    /// The last health check of every (cluster, command) pair checked.
    pub fn health(&self) -> &HealthBook {
        &self.health
    }

    /// The catalog store's version this copy reflects.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The stored record of a command or cluster.
    pub(crate) fn record(&self, kind: CatalogKind, id: &str) -> Option<&CatalogRecord> {
        self.records.iter().find(|record| record.kind == kind && record.id == id)
    }

    pub(crate) fn records(&self) -> &[CatalogRecord] {
        &self.records
    }

    pub fn pool(&self) -> PoolSettings {
        self.pool
    }

    pub fn triggers(&self) -> &[Trigger] {
        &self.triggers
    }

    /// Who reads and cancels which jobs, and who changes the catalog (the config's `access`).
    pub fn access(&self) -> &AccessPolicy {
        &self.access
    }

    /// What one user may have going at once (the config's `limits`).
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

/// The command or cluster `record` holds, built by `from_spec` as of its last change.
fn built_from<Spec: serde::de::DeserializeOwned, Built>(
    record: &CatalogRecord,
    from_spec: impl Fn(&Spec, &str, i64) -> Result<Built, Vec<String>>,
) -> Result<Built, Vec<String>> {
    let label = format!("stored {} `{}`", record.kind.as_str(), record.id);
    let spec: Spec = serde_json::from_value(record.spec.clone()).map_err(|error| vec![format!("{label}: {error}")])?;
    from_spec(&spec, &label, record.updated_at)
}

/// What the plugins say of `commands` and of the clusters each runs on. `label(kind, index,
/// id)` names an entry.
pub(crate) fn plugin_problems(
    commands: &[Command],
    clusters: &[Cluster],
    plugins: &PluginRegistry,
    label: impl Fn(CatalogKind, usize, &str) -> String,
) -> Vec<String> {
    let of_commands = commands.iter().enumerate().flat_map(|(index, command)| command_problems(command, plugins, &label(CatalogKind::Command, index, &command.id)));
    let of_clusters = clusters.iter().enumerate().flat_map(|(index, cluster)| cluster_problems(cluster, commands, plugins, &label(CatalogKind::Cluster, index, &cluster.id)));
    of_commands.chain(of_clusters).collect()
}

/// What its plugin says of `command` (named `label`): unknown, a context it refuses, a sync
/// default it cannot run.
pub(crate) fn command_problems(command: &Command, plugins: &PluginRegistry, label: &str) -> Vec<String> {
    let Some(plugin) = plugins.get(&command.plugin) else {
        if plugins.others_run_elsewhere() {
            return Vec::new();
        }
        return vec![format!("{label}: field `plugin`: unknown plugin `{}`; this build has: {}", command.plugin, plugins.names().join(", "))];
    };
    let mut problems = Vec::new();
    if let Err(message) = plugin.validate_command(command) {
        problems.push(format!("{label}: field `context`: {message}"));
    }
    if command.allowed_modes.iter().any(|mode| mode.is_sync()) && !plugin.supports_sync() {
        problems.push(format!("{label}: plugin `{}` runs only async jobs: set `is_sync: false` and `allowed_modes: [async]`", command.plugin));
    }
    problems
}

/// What the plugins of the `commands` that run on `cluster` (named `label`) say of its context.
pub(crate) fn cluster_problems(cluster: &Cluster, commands: &[Command], plugins: &PluginRegistry, label: &str) -> Vec<String> {
    commands
        .iter()
        .filter(|command| carries_all(&cluster.tags, &command.cluster_tags))
        .filter_map(|command| match plugins.get(&command.plugin).map(|plugin| plugin.validate_cluster(cluster)) {
            Some(Err(message)) => Some(format!("{label}: field `context` (used by command `{}`, plugin `{}`): {message}", command.id, command.plugin)),
            _ => None,
        })
        .collect()
}
