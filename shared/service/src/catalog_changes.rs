//! Changing the live catalog: admins upsert commands and clusters and set their status
//! (Heimdall's `PUT /api/v1/command/{id}`, `/cluster/{id}`, `…/status`), and the config file
//! seeds the store. Every change is one conditional write that moves the store's version, so
//! every process routes with it once its copy refreshes.

use heimdall_domain::clock::now_epoch_seconds;
use heimdall_domain::config::{ClusterSpec, CommandSpec, spec_digest};
use heimdall_domain::tags::is_system_tag;
use heimdall_domain::{Caller, Cluster, Command, ResourceStatus};
use heimdall_ports::{CatalogKind, CatalogRecord, CatalogStore, StoreError};
use serde_json::Value;

use crate::catalog::{Catalog, plugin_problems};
use crate::job_service::JobService;
use crate::service_error::ServiceError;

/// Fields the API answers that a `PUT` may send back and that are not the client's to set.
const READ_ONLY_FIELDS: [&str; 3] = ["created_at", "updated_at", "expires_at"];

/// The owner recorded for config entries that name none.
const CONFIG_OWNER: &str = "heimdall";

impl JobService {
    /// Creates or replaces command `id` from `body` (the config's fields, as JSON) for an admin.
    pub async fn put_command(&self, caller: &Caller, id: &str, body: Value) -> Result<Command, ServiceError> {
        let (store, catalog) = self.catalog_for_change(caller).await?;
        let spec: CommandSpec = spec_from_body(CatalogKind::Command, id, body, caller)?;
        let label = format!("command `{id}`");
        let command = Command::from_spec(&spec, &label, now_epoch_seconds()).map_err(problems_error)?;
        let problems = plugin_problems(std::slice::from_ref(&command), catalog.clusters(), &self.plugins, |kind, _, each| {
            if kind == CatalogKind::Command { label.clone() } else { format!("cluster `{each}`") }
        });
        if !problems.is_empty() {
            return Err(problems_error(problems));
        }
        self.write_record(store.as_ref(), &catalog, CatalogKind::Command, id, &spec, &caller.user).await?;
        let catalog = self.catalog.reload(&self.plugins).await?;
        catalog.command(id).cloned().ok_or_else(|| ServiceError::Internal(format!("command `{id}` was written but cannot be read back")))
    }

    /// Creates or replaces cluster `id` from `body` for an admin. A cluster sending
    /// `ttl_seconds` registers itself: it stays active while it sends this again in time.
    pub async fn put_cluster(&self, caller: &Caller, id: &str, body: Value) -> Result<Cluster, ServiceError> {
        let (store, catalog) = self.catalog_for_change(caller).await?;
        let spec: ClusterSpec = spec_from_body(CatalogKind::Cluster, id, body, caller)?;
        let label = format!("cluster `{id}`");
        let cluster = Cluster::from_spec(&spec, &label, now_epoch_seconds()).map_err(problems_error)?;
        let problems = plugin_problems(catalog.commands(), std::slice::from_ref(&cluster), &self.plugins, |kind, _, _| {
            if kind == CatalogKind::Cluster { label.clone() } else { String::new() }
        });
        // Only the new cluster's problems: the commands were checked when they were written.
        let problems: Vec<String> = problems.into_iter().filter(|p| p.starts_with(&label)).collect();
        if !problems.is_empty() {
            return Err(problems_error(problems));
        }
        self.write_record(store.as_ref(), &catalog, CatalogKind::Cluster, id, &spec, &caller.user).await?;
        let catalog = self.catalog.reload(&self.plugins).await?;
        catalog.cluster(id).cloned().ok_or_else(|| ServiceError::Internal(format!("cluster `{id}` was written but cannot be read back")))
    }

    /// Sets the status of command or cluster `id` for an admin; answers it and when it changed.
    pub async fn set_status(&self, caller: &Caller, kind: CatalogKind, id: &str, status: ResourceStatus) -> Result<(ResourceStatus, i64), ServiceError> {
        let (store, catalog) = self.catalog_for_change(caller).await?;
        let previous = catalog.record(kind, id).ok_or_else(|| ServiceError::NotFound(format!("{} `{id}` not found", kind.as_str())))?;
        let mut spec = previous.spec.clone();
        spec["status"] = Value::String(status.as_str().to_lowercase());
        let now = now_epoch_seconds();
        let record = CatalogRecord { spec, changed_by: caller.user.clone(), updated_at: now, revision: previous.revision + 1, ..previous.clone() };
        store.put(&record, Some(previous)).await.map_err(|e| ServiceError::from_store(e, None))?;
        tracing::info!(kind = kind.as_str(), %id, %status, user = %caller.user, "catalog status changed");
        self.catalog.reload(&self.plugins).await?;
        Ok((status, now))
    }

    /// The store and a fresh copy of the catalog, for an admin; a non-admin is refused.
    async fn catalog_for_change(&self, caller: &Caller) -> Result<(std::sync::Arc<dyn CatalogStore>, std::sync::Arc<Catalog>), ServiceError> {
        if !self.catalog.cached().access().is_admin(caller) {
            return Err(ServiceError::Forbidden(format!(
                "changing commands and clusters takes an admin (the config's access.admins); user `{}` is not one",
                caller.user
            )));
        }
        let store = self.catalog.store().cloned().ok_or_else(|| {
            ServiceError::Unavailable("this server's catalog is its config file alone (no catalog store): change the config instead".into())
        })?;
        let catalog = self.catalog.reload(&self.plugins).await?;
        Ok((store, catalog))
    }

    /// Writes `spec` as the record of `id`, conditioned on the record `catalog` holds.
    async fn write_record(
        &self,
        store: &dyn CatalogStore,
        catalog: &Catalog,
        kind: CatalogKind,
        id: &str,
        spec: &impl serde::Serialize,
        user: &str,
    ) -> Result<(), ServiceError> {
        let previous = catalog.record(kind, id);
        let now = now_epoch_seconds();
        let record = CatalogRecord {
            kind,
            id: id.to_owned(),
            spec: serde_json::to_value(spec).map_err(|e| ServiceError::Internal(e.to_string()))?,
            changed_by: user.to_owned(),
            created_at: previous.map_or(now, |p| p.created_at),
            updated_at: now,
            revision: previous.map_or(1, |p| p.revision + 1),
            // A run-time change stands until the config entry itself changes.
            seed: previous.and_then(|p| p.seed.clone()),
        };
        store.put(&record, previous).await.map_err(|e| ServiceError::from_store(e, None))?;
        tracing::info!(kind = kind.as_str(), %id, %user, revision = record.revision, "catalog entry written");
        Ok(())
    }

    /// Brings the store in line with the config file: an entry new or changed since it was last
    /// seeded is written (a run-time change to an entry the config did not change stands), and
    /// a seeded entry the config no longer has is marked deleted. Another process seeding at
    /// the same moment is not an error.
    pub(crate) async fn seed_catalog(&self) -> Result<(), ServiceError> {
        let Some(store) = self.catalog.store().cloned() else { return Ok(()) };
        let catalog = self.catalog.reload(&self.plugins).await?;
        let seed = std::sync::Arc::clone(&catalog.seed);
        let now = now_epoch_seconds();
        let mut declared = Vec::new();
        let entries = seed
            .commands
            .iter()
            .map(|spec| (CatalogKind::Command, spec.resolved_id(), serde_json::to_value(spec), spec_digest(spec), spec.user.clone()))
            .chain(seed.clusters.iter().map(|spec| (CatalogKind::Cluster, spec.resolved_id(), serde_json::to_value(spec), spec_digest(spec), spec.user.clone())));
        for (kind, id, spec, digest, owner) in entries {
            declared.push((kind, id.clone()));
            let previous = catalog.record(kind, &id);
            if previous.is_some_and(|p| p.seed.as_deref() == Some(digest.as_str())) {
                continue;
            }
            let record = CatalogRecord {
                kind,
                id: id.clone(),
                spec: spec.map_err(|e| ServiceError::Internal(e.to_string()))?,
                changed_by: owner.unwrap_or_else(|| CONFIG_OWNER.to_owned()),
                created_at: previous.map_or(now, |p| p.created_at),
                updated_at: now,
                revision: previous.map_or(1, |p| p.revision + 1),
                seed: Some(digest),
            };
            seed_write(store.as_ref(), &record, previous).await?;
        }
        for previous in catalog.records().iter().filter(|r| r.seed.is_some() && !declared.contains(&(r.kind, r.id.clone()))) {
            let mut spec = previous.spec.clone();
            spec["status"] = Value::String("deleted".into());
            let record = CatalogRecord { spec, changed_by: CONFIG_OWNER.to_owned(), updated_at: now, revision: previous.revision + 1, seed: None, ..previous.clone() };
            seed_write(store.as_ref(), &record, Some(previous)).await?;
        }
        self.catalog.reload(&self.plugins).await?;
        Ok(())
    }
}

async fn seed_write(store: &dyn CatalogStore, record: &CatalogRecord, previous: Option<&CatalogRecord>) -> Result<(), ServiceError> {
    match store.put(record, previous).await {
        Ok(()) => {
            tracing::info!(kind = record.kind.as_str(), id = %record.id, "catalog entry seeded from the config");
            Ok(())
        }
        Err(StoreError::Changed) => Ok(()),
        Err(error) => Err(ServiceError::from_store(error, None)),
    }
}

/// `body` as the spec of `kind` `id`: what the API answers and the client may send back
/// (timestamps, system tags) left out, the owner set to `caller`, the id checked against the
/// path's.
fn spec_from_body<T: serde::de::DeserializeOwned>(kind: CatalogKind, id: &str, body: Value, caller: &Caller) -> Result<T, ServiceError> {
    let Value::Object(mut fields) = body else {
        return Err(ServiceError::BadRequest(format!("the body must be a JSON object with the {}'s fields, as in the config file", kind.as_str())));
    };
    for field in READ_ONLY_FIELDS {
        fields.remove(field);
    }
    match fields.get("id") {
        Some(Value::String(given)) if given != id => {
            return Err(ServiceError::BadRequest(format!("the body's id `{given}` is not the path's `{id}`: leave id out or send the same")));
        }
        _ => {}
    }
    fields.insert("id".into(), Value::String(id.to_owned()));
    fields.insert("user".into(), Value::String(caller.user.clone()));
    if let Some(Value::Array(tags)) = fields.get_mut("tags") {
        tags.retain(|tag| !tag.as_str().is_some_and(is_system_tag));
    }
    if let Some(context) = fields.get("context")
        && context.to_string().contains(&format!("\"{}\"", heimdall_domain::redaction::HIDDEN))
    {
        return Err(ServiceError::BadRequest(
            "the context holds `***`, where the API hides a secret: send the real value (better, a reference such as ssm:… or secretsmanager:…)".into(),
        ));
    }
    serde_json::from_value(Value::Object(fields)).map_err(|error| ServiceError::BadRequest(format!("{} `{id}`: {error}", kind.as_str())))
}

fn problems_error(problems: Vec<String>) -> ServiceError {
    ServiceError::BadRequest(problems.join("; "))
}
