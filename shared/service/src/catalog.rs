use heimdall_domain::AccessPolicy;
use heimdall_domain::limits::Limits;
use heimdall_domain::config::{Config, ConfigError, PoolSettings};
use heimdall_domain::tags::carries_all;
use heimdall_domain::trigger::Trigger;
use heimdall_domain::{Cluster, Command};

use crate::plugin_registry::PluginRegistry;

/// The commands and clusters a deployment offers: a config whose every command names a known
/// plugin and whose contexts that plugin accepts.
#[derive(Debug, Clone)]
pub struct Catalog {
    commands: Vec<Command>,
    clusters: Vec<Cluster>,
    pool: PoolSettings,
    triggers: Vec<Trigger>,
    access: AccessPolicy,
    limits: Limits,
}

impl Catalog {
    /// Parses, validates and checks `text` against `plugins`; errors name `source_name`.
    pub fn load(text: &str, source_name: &str, plugins: &PluginRegistry) -> Result<Self, ConfigError> {
        let config = Config::parse(text, source_name)?;
        let mut problems = Vec::new();
        for (index, command) in config.commands.iter().enumerate() {
            let label = format!("commands[{index}] (id `{}`)", command.id);
            match plugins.get(&command.plugin) {
                None => problems.push(format!(
                    "{label}: field `plugin`: unknown plugin `{}`; this build has: {}",
                    command.plugin,
                    plugins.names().join(", ")
                )),
                Some(plugin) => {
                    if let Err(message) = plugin.validate_command(command) {
                        problems.push(format!("{label}: field `context`: {message}"));
                    }
                    if command.allowed_modes.iter().any(|mode| mode.is_sync()) && !plugin.supports_sync() {
                        problems.push(format!(
                            "{label}: plugin `{}` runs only async jobs: set `is_sync: false` and `allowed_modes: [async]`",
                            command.plugin
                        ));
                    }
                }
            }
        }
        for (index, cluster) in config.clusters.iter().enumerate() {
            let label = format!("clusters[{index}] (id `{}`)", cluster.id);
            let users = config.commands.iter().filter(|c| carries_all(&cluster.tags, &c.cluster_tags));
            for command in users {
                if let Some(Err(message)) = plugins.get(&command.plugin).map(|p| p.validate_cluster(cluster)) {
                    problems.push(format!(
                        "{label}: field `context` (used by command `{}`, plugin `{}`): {message}",
                        command.id, command.plugin
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { source_name: source_name.to_owned(), problems });
        }
        Ok(Self { commands: config.commands, clusters: config.clusters, pool: config.pool, triggers: config.triggers, access: config.access, limits: config.limits })
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

    pub fn pool(&self) -> PoolSettings {
        self.pool
    }

    pub fn triggers(&self) -> &[Trigger] {
        &self.triggers
    }

    /// Who reads and cancels which jobs (the config's `access`).
    pub fn access(&self) -> &AccessPolicy {
        &self.access
    }

    /// What one user may have going at once (the config's `limits`).
    pub fn limits(&self) -> Limits {
        self.limits
    }
}
