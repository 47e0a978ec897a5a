//! The catalog a process routes with: a copy of the catalog store's, replaced when the store's
//! version moves. The version is read at most once per `refresh` (not per job), so on AWS every
//! Lambda instance sees a change within that time at the cost of one small read.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use heimdall_ports::CatalogStore;

use crate::catalog::Catalog;
use crate::plugin_registry::PluginRegistry;
use crate::service_error::ServiceError;

pub(crate) struct LiveCatalog {
    current: RwLock<Arc<Catalog>>,
    /// `None`: the config's catalog, fixed (tests of logic that needs no store).
    store: Option<Arc<dyn CatalogStore>>,
    refresh: Duration,
    checked_at: Mutex<Instant>,
}

impl LiveCatalog {
    pub(crate) fn fixed(catalog: Catalog) -> Self {
        Self { current: RwLock::new(Arc::new(catalog)), store: None, refresh: Duration::MAX, checked_at: Mutex::new(Instant::now()) }
    }

    pub(crate) fn stored(catalog: Catalog, store: Arc<dyn CatalogStore>, refresh: Duration) -> Self {
        Self { current: RwLock::new(Arc::new(catalog)), store: Some(store), refresh, checked_at: Mutex::new(Instant::now()) }
    }

    pub(crate) fn store(&self) -> Option<&Arc<dyn CatalogStore>> {
        self.store.as_ref()
    }

    /// The copy held, unchecked: for what the store never changes (access, triggers, limits).
    pub(crate) fn cached(&self) -> Arc<Catalog> {
        Arc::clone(&self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The copy held, first brought up to date if `refresh` has passed since the last check.
    /// A store that cannot be read leaves the copy as it is (routing goes on; logged).
    pub(crate) async fn current(&self, plugins: &PluginRegistry) -> Arc<Catalog> {
        let due = {
            let mut checked_at = self.checked_at.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let due = self.store.is_some() && checked_at.elapsed() >= self.refresh;
            if due {
                *checked_at = Instant::now();
            }
            due
        };
        if due && let Err(error) = self.refresh_if_moved(plugins).await {
            tracing::warn!(%error, "the catalog store could not be read; routing with the catalog held");
        }
        self.cached()
    }

    /// Reads the store's version and reloads if it moved.
    async fn refresh_if_moved(&self, plugins: &PluginRegistry) -> Result<(), ServiceError> {
        let Some(store) = &self.store else { return Ok(()) };
        let version = store.version().await.map_err(|e| ServiceError::from_store(e, None))?;
        if version != self.cached().version() {
            self.reload(plugins).await?;
        }
        Ok(())
    }

    /// Reads the whole store now (after a change this process made, or when a job names a
    /// command or cluster this copy lacks).
    pub(crate) async fn reload(&self, plugins: &PluginRegistry) -> Result<Arc<Catalog>, ServiceError> {
        let Some(store) = &self.store else { return Ok(self.cached()) };
        let stored = store.load().await.map_err(|e| ServiceError::from_store(e, None))?;
        let held = self.cached();
        if stored.version == 0 {
            // Never seeded (no api function has started yet): the config's catalog stands.
            return Ok(held);
        }
        if stored.version < held.version() {
            // A slower read than one already applied: keep the newer copy.
            return Ok(held);
        }
        let fresh = Arc::new(held.from_stored(stored, plugins));
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::clone(&fresh);
        *self.checked_at.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Instant::now();
        Ok(fresh)
    }
}
