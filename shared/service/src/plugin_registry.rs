use std::collections::BTreeMap;
use std::sync::Arc;

use heimdall_ports::Plugin;

/// The plugins a process runs, by the name commands use.
#[derive(Clone, Default)]
pub struct PluginRegistry {
    plugins: BTreeMap<&'static str, Arc<dyn Plugin>>,
    /// Whether other plugins' commands run elsewhere (see [`PluginRegistry::running_only`]).
    others_run_elsewhere: bool,
}

impl PluginRegistry {
    /// Every plugin of the deployment: a command naming another is a config error.
    pub fn new(plugins: impl IntoIterator<Item = Arc<dyn Plugin>>) -> Self {
        let mut registry = Self::default();
        for plugin in plugins {
            registry.add(plugin);
        }
        registry
    }

    /// Some of the deployment's plugins, in a process that runs only these (a plugin's Lambda):
    /// commands of other plugins stay in its catalog, unchecked here (the processes that run
    /// them, and the api function that loads the config, check them), and its binary links
    /// only these plugins' code and AWS clients.
    pub fn running_only(plugins: impl IntoIterator<Item = Arc<dyn Plugin>>) -> Self {
        Self { others_run_elsewhere: true, ..Self::new(plugins) }
    }

    /// Whether a command of a plugin not here is fine (it runs in another process).
    pub fn others_run_elsewhere(&self) -> bool {
        self.others_run_elsewhere
    }

    pub fn add(&mut self, plugin: Arc<dyn Plugin>) {
        self.plugins.insert(plugin.name(), plugin);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Plugin>> {
        self.plugins.get(name)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.plugins.keys().copied().collect()
    }
}
