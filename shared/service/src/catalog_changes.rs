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

use crate::catalog::{Catalog, cluster_problems, command_problems};
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
        let mut problems = command_problems(&command, &self.plugins, &label);
        for cluster in catalog.clusters() {
            problems.extend(cluster_problems(cluster, std::slice::from_ref(&command), &self.plugins, &format!("cluster `{}`", cluster.id)));
        }
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
        let problems = cluster_problems(&cluster, catalog.commands(), &self.plugins, &label);
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
        let record = successor(Some(previous), kind, id, with_status(&previous.spec, status), &caller.user);
        let now = record.updated_at;
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
        let spec = serde_json::to_value(spec).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let record = successor(previous, kind, id, spec, user);
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
        let entries = seed
            .commands
            .iter()
            .map(|spec| seed_entry(CatalogKind::Command, spec.resolved_id(), spec, spec.user.as_deref()))
            .chain(seed.clusters.iter().map(|spec| seed_entry(CatalogKind::Cluster, spec.resolved_id(), spec, spec.user.as_deref())))
            .collect::<Result<Vec<_>, _>>()?;
        for (kind, id, spec, digest, owner) in &entries {
            let previous = catalog.record(*kind, id);
            if previous.is_none_or(|p| p.seed.as_deref() != Some(digest.as_str())) {
                let record = CatalogRecord { seed: Some(digest.clone()), ..successor(previous, *kind, id, spec.clone(), owner) };
                seed_write(store.as_ref(), &record, previous).await?;
            }
        }
        let declared = |record: &CatalogRecord| entries.iter().any(|(kind, id, ..)| *kind == record.kind && *id == record.id);
        for previous in catalog.records().iter().filter(|record| record.seed.is_some() && !declared(record)) {
            let spec = with_status(&previous.spec, ResourceStatus::Deleted);
            let record = CatalogRecord { seed: None, ..successor(Some(previous), previous.kind, &previous.id, spec, CONFIG_OWNER) };
            seed_write(store.as_ref(), &record, Some(previous)).await?;
        }
        self.catalog.reload(&self.plugins).await?;
        Ok(())
    }
}

/// A config entry as seeding writes it: kind, id, spec, digest and owner.
type SeedEntry = (CatalogKind, String, Value, String, String);

fn seed_entry(kind: CatalogKind, id: String, spec: &impl serde::Serialize, owner: Option<&str>) -> Result<SeedEntry, ServiceError> {
    let value = serde_json::to_value(spec).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok((kind, id, value, spec_digest(spec), owner.unwrap_or(CONFIG_OWNER).to_owned()))
}

/// The record that follows `previous` (none: a new one) with `spec`, changed by `user` now:
/// created when the first was, one revision on, seeded from what `previous` was (a run-time
/// change stands until the config entry itself changes).
fn successor(previous: Option<&CatalogRecord>, kind: CatalogKind, id: &str, spec: Value, user: &str) -> CatalogRecord {
    let now = now_epoch_seconds();
    CatalogRecord {
        kind,
        id: id.to_owned(),
        spec,
        changed_by: user.to_owned(),
        created_at: previous.map_or(now, |p| p.created_at),
        updated_at: now,
        revision: previous.map_or(1, |p| p.revision + 1),
        seed: previous.and_then(|p| p.seed.clone()),
    }
}

/// `spec` with its `status` set, as the config writes it (lower case).
fn with_status(spec: &Value, status: ResourceStatus) -> Value {
    let mut spec = spec.clone();
    spec["status"] = Value::String(status.as_str().to_lowercase());
    spec
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
