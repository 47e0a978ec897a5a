use async_trait::async_trait;
use heimdall_domain::health::HealthCheck;
use heimdall_ports::{CatalogRecord, CatalogStore, StoreError, StoredCatalog};
use rusqlite::{Connection, OptionalExtension, params};

use crate::SqliteDatabase;

/// The live catalog in the job database's file: one row per command or cluster (its record as
/// JSON), one per health check, and one version row, all changed in one transaction each.
#[derive(Clone)]
pub struct SqliteCatalogStore {
    database: SqliteDatabase,
}

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS catalog (
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS cluster_health (
    cluster_id  TEXT NOT NULL,
    command_id  TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (cluster_id, command_id)
);
CREATE TABLE IF NOT EXISTS catalog_version (
    only_row    INTEGER PRIMARY KEY CHECK (only_row = 1),
    version     INTEGER NOT NULL
);
INSERT OR IGNORE INTO catalog_version (only_row, version) VALUES (1, 0);
"#;

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("catalog database: {error}"))
}

fn corrupt(error: impl std::fmt::Display) -> StoreError {
    unavailable(format!("a stored catalog entry cannot be read: {error}"))
}

impl SqliteCatalogStore {
    /// The catalog tables beside the jobs, on the job store's connection.
    /// On `database`, whose connection has [`SCHEMA`]'s tables (the job store creates them).
    pub(crate) fn on(database: SqliteDatabase) -> Self {
        Self { database }
    }

    /// Runs `work` in its own savepoint on the database thread (see [`SqliteDatabase::run`]).
    async fn with_connection<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.database.run(work).await
    }
}

const MOVE_VERSION: &str = "UPDATE catalog_version SET version = version + 1 WHERE only_row = 1";

#[async_trait]
impl CatalogStore for SqliteCatalogStore {
    async fn version(&self) -> Result<u64, StoreError> {
        self.with_connection(|connection| {
            connection.query_row("SELECT version FROM catalog_version", [], |row| row.get::<_, i64>(0)).map(|v| v as u64).map_err(unavailable)
        })
        .await
    }

    async fn load(&self) -> Result<StoredCatalog, StoreError> {
        self.with_connection(|connection| {
            let version = connection.query_row("SELECT version FROM catalog_version", [], |row| row.get::<_, i64>(0)).map_err(unavailable)? as u64;
            let bodies = |sql: &str| -> Result<Vec<String>, StoreError> {
                let mut statement = connection.prepare(sql).map_err(unavailable)?;
                let rows = statement.query_map([], |row| row.get::<_, String>(0)).map_err(unavailable)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
            };
            let records = bodies("SELECT body FROM catalog ORDER BY kind, id")?
                .iter()
                .map(|body| serde_json::from_str::<CatalogRecord>(body).map_err(corrupt))
                .collect::<Result<Vec<_>, _>>()?;
            let health = bodies("SELECT body FROM cluster_health ORDER BY cluster_id, command_id")?
                .iter()
                .map(|body| serde_json::from_str::<HealthCheck>(body).map_err(corrupt))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(StoredCatalog { version, records, health })
        })
        .await
    }

    async fn put(&self, record: &CatalogRecord, previous: Option<&CatalogRecord>) -> Result<(), StoreError> {
        let body = serde_json::to_string(record).map_err(unavailable)?;
        let (kind, id, revision) = (record.kind.as_str(), record.id.clone(), record.revision as i64);
        let expected = previous.map(|p| p.revision as i64);
        self.with_connection(move |connection| {
            let stored: Option<i64> = connection
                .query_row("SELECT revision FROM catalog WHERE kind = ?1 AND id = ?2", params![kind, id], |row| row.get(0))
                .optional()
                .map_err(unavailable)?;
            if stored != expected {
                return Err(StoreError::Changed);
            }
            connection
                .execute(
                    "INSERT INTO catalog (kind, id, revision, body) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (kind, id) DO UPDATE SET revision = excluded.revision, body = excluded.body",
                    params![kind, id, revision, body],
                )
                .map_err(unavailable)?;
            connection.execute(MOVE_VERSION, []).map(drop).map_err(unavailable)
        })
        .await
    }

    async fn record_health(&self, check: &HealthCheck, moves_routing: bool) -> Result<(), StoreError> {
        let body = serde_json::to_string(check).map_err(unavailable)?;
        let (cluster_id, command_id) = (check.cluster_id.clone(), check.command_id.clone());
        self.with_connection(move |connection| {
            connection
                .execute(
                    "INSERT INTO cluster_health (cluster_id, command_id, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (cluster_id, command_id) DO UPDATE SET body = excluded.body",
                    params![cluster_id, command_id, body],
                )
                .map_err(unavailable)?;
            if moves_routing {
                connection.execute(MOVE_VERSION, []).map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }
}
