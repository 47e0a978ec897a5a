use std::collections::BTreeMap;
use std::sync::Arc;

use heimdall_ports::Plugin;

/// The plugins a deployment offers, by the name commands use.
#[derive(Clone, Default)]
pub struct PluginRegistry {
    plugins: BTreeMap<&'static str, Arc<dyn Plugin>>,
}

impl PluginRegistry {
    pub fn new(plugins: impl IntoIterator<Item = Arc<dyn Plugin>>) -> Self {
        let mut registry = Self::default();
        for plugin in plugins {
            registry.add(plugin);
        }
        registry
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
