//! The `CatalogStore` contract, on `SqliteCatalogStore` (local) and `DynamoCatalogStore` (aws):
//! records and health checks read back as written, each change moves the version, and a write
//! conditioned on a record another writer changed meanwhile is refused.

use std::sync::Arc;

use heimdall_adapters_aws::DynamoCatalogStore;
use heimdall_adapters_local::SqliteJobStore;
use heimdall_domain::health::{HealthCheck, HealthStatus};
use heimdall_ports::{CatalogKind, CatalogRecord, CatalogStore, StoreError};
use heimdall_tests::emulator::emulator;
use serde_json::json;

use crate::contract;

async fn local() -> Arc<dyn CatalogStore> {
    Arc::new(SqliteJobStore::in_memory().unwrap().catalog_store())
}

async fn aws() -> Arc<dyn CatalogStore> {
    let client = aws_sdk_dynamodb::Client::new(&emulator().sdk_config().await);
    let table = format!("catalog-{}", heimdall_domain::JobId::new());
    DynamoCatalogStore::create_table(&client, &table).await.unwrap();
    Arc::new(DynamoCatalogStore::new(client, table))
}

fn record(kind: CatalogKind, id: &str, revision: u64) -> CatalogRecord {
    CatalogRecord {
        kind,
        id: id.into(),
        spec: json!({"name": id, "version": "1", "plugin": "ping"}),
        changed_by: "alice".into(),
        created_at: 100,
        updated_at: 100 + revision as i64,
        revision,
        seed: (revision == 1).then(|| "digest".to_owned()),
    }
}

fn check(cluster: &str, status: HealthStatus) -> HealthCheck {
    HealthCheck {
        cluster_id: cluster.into(),
        cluster_name: cluster.into(),
        command_id: "etl".into(),
        plugin: "spark".into(),
        status,
        latency_ms: 12,
        error: (status == HealthStatus::Error).then(|| "virtual cluster is TERMINATED".to_owned()),
        checked_at: 1_700_000_000,
    }
}

async fn records_read_back_as_written_and_each_change_moves_the_version(store: Arc<dyn CatalogStore>) {
    assert_eq!(store.version().await.unwrap(), 0, "an empty store");
    let command = record(CatalogKind::Command, "etl", 1);
    let cluster = record(CatalogKind::Cluster, "etl", 1);
    store.put(&command, None).await.unwrap();
    store.put(&cluster, None).await.unwrap();

    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.version, 2);
    assert_eq!(store.version().await.unwrap(), 2);
    let mut records = loaded.records.clone();
    records.sort_by_key(|r| r.kind.as_str());
    assert_eq!(records, vec![cluster, command.clone()], "a command and a cluster may share an id");

    let changed = CatalogRecord { changed_by: "bob".into(), ..record(CatalogKind::Command, "etl", 2) };
    store.put(&changed, Some(&command)).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.version, 3);
    assert!(loaded.records.contains(&changed), "{:?}", loaded.records);
}

async fn a_write_based_on_a_stale_read_is_refused_and_changes_nothing(store: Arc<dyn CatalogStore>) {
    let first = record(CatalogKind::Cluster, "spark", 1);
    store.put(&first, None).await.unwrap();
    let by_alice = record(CatalogKind::Cluster, "spark", 2);
    store.put(&by_alice, Some(&first)).await.unwrap();

    let by_bob = CatalogRecord { changed_by: "bob".into(), ..record(CatalogKind::Cluster, "spark", 2) };
    assert!(matches!(store.put(&by_bob, Some(&first)).await, Err(StoreError::Changed)), "bob read revision 1, alice wrote 2");
    assert!(matches!(store.put(&first, None).await, Err(StoreError::Changed)), "a create of what exists");

    let loaded = store.load().await.unwrap();
    assert_eq!((loaded.version, loaded.records), (2, vec![by_alice]));
}

async fn health_checks_are_kept_per_pair_and_only_a_flip_moves_the_version(store: Arc<dyn CatalogStore>) {
    store.record_health(&check("spark-a", HealthStatus::Ok), false).await.unwrap();
    store.record_health(&check("spark-b", HealthStatus::Ok), false).await.unwrap();
    assert_eq!(store.version().await.unwrap(), 0, "a check that changes nothing for routing");

    store.record_health(&check("spark-a", HealthStatus::Error), true).await.unwrap();

    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.version, 1);
    let mut health = loaded.health;
    health.sort_by(|a, b| a.cluster_id.cmp(&b.cluster_id));
    assert_eq!(health, vec![check("spark-a", HealthStatus::Error), check("spark-b", HealthStatus::Ok)]);
}

contract!(
    records_read_back_as_written_and_each_change_moves_the_version,
    a_write_based_on_a_stale_read_is_refused_and_changes_nothing,
    health_checks_are_kept_per_pair_and_only_a_flip_moves_the_version,
);
