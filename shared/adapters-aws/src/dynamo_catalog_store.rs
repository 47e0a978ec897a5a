//! The live catalog in a DynamoDB table of its own (`HEIMDALL_CATALOG_TABLE`), one partition:
//!
//! | `pk` | `sk` | attributes |
//! |---|---|---|
//! | `catalog` | `command#<id>`, `cluster#<id>` | `body` (the record, JSON), `revision` |
//! | `catalog` | `health#<cluster id>#<command id>` | `body` (the last check, JSON) |
//! | `catalog` | `version` | `version` (a number moved by every change routing depends on) |
//!
//! A change is one `TransactWriteItems`: the record, conditioned on the `revision` it was
//! read with, and `ADD version 1`. A process holding a copy reads the version item alone
//! (`GetItem`, strongly consistent) to know whether its copy is current; `load` reads the version
//! first, then the partition, so a change landing in between makes the next check reload.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put, ScalarAttributeType, TransactWriteItem, Update,
};
use heimdall_domain::health::HealthCheck;
use heimdall_ports::{CatalogRecord, CatalogStore, StoreError, StoredCatalog, error_chain};

type Item = HashMap<String, AttributeValue>;

const PARTITION: &str = "catalog";
const VERSION_KEY: &str = "version";

/// The catalog store on DynamoDB.
#[derive(Clone)]
pub struct DynamoCatalogStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn unavailable(operation: &str, error: &(dyn std::error::Error + 'static)) -> StoreError {
    StoreError::Unavailable(format!("DynamoDB {operation} (catalog): {}", error_chain(error)))
}

fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("a stored catalog entry cannot be read: {error}"))
}

fn record_key(record: &CatalogRecord) -> String {
    format!("{}#{}", record.kind.as_str(), record.id)
}

fn health_key(check: &HealthCheck) -> String {
    format!("health#{}#{}", check.cluster_id, check.command_id)
}

fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

impl DynamoCatalogStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Creates the table (on-demand capacity). `infra/` declares the same.
    pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), StoreError> {
        let attribute = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().expect("name and type are set")
        };
        let key = |name: &str, key_type: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().expect("name and type are set");
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("pk"))
            .attribute_definitions(attribute("sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .send()
            .await
            .map_err(|error| unavailable("CreateTable", &error))?;
        Ok(())
    }

    fn item(sort_key: String, body: String, revision: Option<u64>) -> Item {
        let mut item = Item::from([("pk".to_owned(), string(PARTITION)), ("sk".to_owned(), string(sort_key)), ("body".to_owned(), string(body))]);
        if let Some(revision) = revision {
            item.insert("revision".to_owned(), AttributeValue::N(revision.to_string()));
        }
        item
    }

    fn move_version(&self) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", string(PARTITION))
            .key("sk", string(VERSION_KEY))
            .update_expression("ADD version :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .map_err(|error| unavailable("TransactWriteItems", &error))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Writes `put` and moves the version in one transaction; a failed condition on `put` is
    /// [`StoreError::Changed`].
    async fn write_moving_version(&self, put: Put) -> Result<(), StoreError> {
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(self.move_version()?)
            .send()
            .await;
        let Err(error) = result else { return Ok(()) };
        if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(canceled)) =
            error.as_service_error()
            && canceled.cancellation_reasons().first().and_then(|r| r.code()) == Some("ConditionalCheckFailed")
        {
            return Err(StoreError::Changed);
        }
        Err(unavailable("TransactWriteItems", &error))
    }
}

#[async_trait]
impl CatalogStore for DynamoCatalogStore {
    #[tracing::instrument(skip(self))]
    async fn version(&self) -> Result<u64, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", string(PARTITION))
            .key("sk", string(VERSION_KEY))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| unavailable("GetItem", &error))?;
        let version = output.item.as_ref().and_then(|item| item.get("version")).and_then(|v| v.as_n().ok()).map(|n| n.parse::<u64>());
        match version {
            None => Ok(0),
            Some(parsed) => parsed.map_err(corrupt),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn load(&self) -> Result<StoredCatalog, StoreError> {
        let version = self.version().await?;
        let mut catalog = StoredCatalog { version, ..StoredCatalog::default() };
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", string(PARTITION))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|error| unavailable("Query", &error))?;
            for item in output.items() {
                let sort_key = item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default();
                let Some(body) = item.get("body").and_then(|v| v.as_s().ok()) else { continue };
                if sort_key.starts_with("health#") {
                    catalog.health.push(serde_json::from_str(body).map_err(corrupt)?);
                } else {
                    catalog.records.push(serde_json::from_str(body).map_err(corrupt)?);
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(catalog)
    }

    #[tracing::instrument(skip(self, record, previous), fields(id = %record.id))]
    async fn put(&self, record: &CatalogRecord, previous: Option<&CatalogRecord>) -> Result<(), StoreError> {
        let body = serde_json::to_string(record).map_err(corrupt)?;
        let put = Put::builder().table_name(&self.table).set_item(Some(Self::item(record_key(record), body, Some(record.revision))));
        let put = match previous {
            None => put.condition_expression("attribute_not_exists(sk)"),
            Some(previous) => put
                .condition_expression("revision = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(previous.revision.to_string())),
        };
        self.write_moving_version(put.build().map_err(|error| unavailable("TransactWriteItems", &error))?).await
    }

    #[tracing::instrument(skip(self, check), fields(cluster = %check.cluster_id, command = %check.command_id))]
    async fn record_health(&self, check: &HealthCheck, moves_routing: bool) -> Result<(), StoreError> {
        let body = serde_json::to_string(check).map_err(corrupt)?;
        let item = Self::item(health_key(check), body, None);
        if moves_routing {
            let put = Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(|error| unavailable("TransactWriteItems", &error))?;
            return self.write_moving_version(put).await;
        }
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(|error| unavailable("PutItem", &error))?;
        Ok(())
    }
}
