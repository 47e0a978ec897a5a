//! Jobs in one DynamoDB table. Key design (also in `docs/DYNAMODB.md`):
//!
//! | key | attribute | value |
//! |---|---|---|
//! | table partition key | `id` | the job id |
//! | GSI `by_created` | `all` (HASH) + `created_key` (RANGE) | the constant `JOB` + `<created_at, 12 digits>#<id>` |
//! | GSI `by_user` | `user` + `created_key` | |
//! | GSI `by_status` | `status` + `created_key` | |
//! | GSI `by_name` | `name` + `created_key` | |
//! | GSI `by_updated` | `all` + `updated_key` | `<updated_at, 12 digits>#<id>` (for `order_by=updated_at`) |
//! | GSI `by_active_user` (sparse, keys only) | `active_user` + `created_key` | the user, only while the job has not ended |
//!
//! An idempotency key is an item of its own, `id` = `key#<SHA-256 of user and key>`, written in
//! one transaction with the job it names and expiring (`expires_at`, the table's TTL) after a day.
//!
//! Every listing is a `Query` on one index, newest first (`ScanIndexForward=false`), never a
//! `Scan`: the most selective of user, status (one) and name picks the index, the time range is
//! a key condition on `created_key`, the other filters a `FilterExpression`. Ids are UUIDv7, so
//! `created_key` orders jobs of the same second by creation. The whole job is in `body` (JSON);
//! the indexed and filtered fields are copied beside it. A status change is a `PutItem`
//! conditioned on the status it expects: two workers can never both move a job out of the same
//! status. Listing by `updated_at` reads `by_updated`, every filter (and the creation time
//! range) then being a `FilterExpression`; `order_by=id` reads as `created_at` does (ids are
//! UUIDv7: their order is creation order, and `created_key` ends with the id). A text filter
//! that is a `like` pattern (`name=ping%`) never picks an index: the listing reads the index the
//! other filters pick (else `by_created`), the filter narrows by the pattern's literal prefix
//! (`begins_with`), and each item read is matched against the pattern; still a `Query`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    Projection, ProjectionType, Put, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, Select,
    TransactWriteItem,
};
use heimdall_domain::clock::now_epoch_seconds;
use heimdall_domain::idempotency::IdempotencyClaim;
use heimdall_domain::{Job, JobId, JobStatus};
use heimdall_ports::{error_chain, JobPage, JobQuery, JobStore, NextAttempt, SortDirection, SortField, StatusChange, StoreError, TextFilter};


type Item = HashMap<String, AttributeValue>;

const ALL_JOBS: &str = "JOB";
/// The sparse index of jobs not yet ended, by user.
const ACTIVE_BY_USER: &str = "by_active_user";

fn key_item_id(claim: &IdempotencyClaim) -> String {
    format!("key#{}", claim.scoped_key())
}
/// Items read per `Query` call while filling a page.
const DEFAULT_QUERY_BATCH: i32 = 100;

/// The job store on DynamoDB.
#[derive(Clone)]
pub struct DynamoJobStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    query_batch: i32,
    /// Finished jobs get `expires_at` this long after they end, for the table's TTL.
    retention_seconds: Option<i64>,
}

/// The index a listing reads, and its partition key.
struct IndexChoice {
    index: &'static str,
    key_attribute: &'static str,
    key_value: String,
    /// The index's sort key: `created_key` or `updated_key`.
    sort_attribute: &'static str,
}

fn unavailable(operation: &str, error: &(dyn std::error::Error + 'static)) -> StoreError {
    StoreError::Unavailable(format!("DynamoDB {operation}: {}", error_chain(error)))
}

fn created_key(job: &Job) -> String {
    format!("{:012}#{}", job.created_at.max(0), job.id)
}

fn updated_key(job: &Job) -> String {
    format!("{:012}#{}", job.updated_at.max(0), job.id)
}

impl DynamoJobStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), query_batch: DEFAULT_QUERY_BATCH, retention_seconds: None }
    }

    /// Finished jobs expire (DynamoDB TTL on `expires_at`) `days` after they end.
    pub fn with_retention_days(mut self, days: u32) -> Self {
        self.retention_seconds = Some(i64::from(days) * 86_400);
        self
    }

    /// Sets how many items one `Query` call reads while a page is filled (DynamoDB's `Limit`).
    pub fn with_query_batch(mut self, items: i32) -> Self {
        self.query_batch = items.max(1);
        self
    }

    /// Creates the table with its indexes (on-demand capacity). The one definition of the
    /// schema in code; `infra/` declares the same.
    pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), StoreError> {
        let string_attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set")
        };
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().expect("name and type are set")
        };
        let index = |name: &str, partition: &str, sort: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(partition, KeyType::Hash))
                .key_schema(key(sort, KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("name, keys and projection are set")
        };
        let mut request = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("id", KeyType::Hash));
        for attribute in ["id", "created_key", "updated_key", "all", "user", "status", "name", "active_user"] {
            request = request.attribute_definitions(string_attribute(attribute));
        }
        for (name, partition, sort) in [
            ("by_created", "all", "created_key"),
            ("by_user", "user", "created_key"),
            ("by_status", "status", "created_key"),
            ("by_name", "name", "created_key"),
            ("by_updated", "all", "updated_key"),
        ] {
            request = request.global_secondary_indexes(index(name, partition, sort));
        }
        let active = GlobalSecondaryIndex::builder()
            .index_name(ACTIVE_BY_USER)
            .key_schema(key("active_user", KeyType::Hash))
            .key_schema(key("created_key", KeyType::Range))
            .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
            .build()
            .expect("name, keys and projection are set");
        request = request.global_secondary_indexes(active);
        request.send().await.map_err(|error| unavailable("CreateTable", &error))?;
        Ok(())
    }

    fn to_item(&self, job: &Job) -> Result<Item, StoreError> {
        let body = crate::stored_job_body::stored_body(job).map_err(|error| StoreError::Unavailable(error.to_string()))?;
        let mut item = Item::from([
            ("id".to_owned(), AttributeValue::S(job.id.to_string())),
            ("body".to_owned(), AttributeValue::S(body)),
            ("all".to_owned(), AttributeValue::S(ALL_JOBS.to_owned())),
            ("created_key".to_owned(), AttributeValue::S(created_key(job))),
            ("updated_key".to_owned(), AttributeValue::S(updated_key(job))),
            ("user".to_owned(), AttributeValue::S(job.user.clone())),
            ("name".to_owned(), AttributeValue::S(job.name.clone())),
            ("version".to_owned(), AttributeValue::S(job.version.clone())),
            ("status".to_owned(), AttributeValue::S(job.status.as_str().to_owned())),
            ("attempt".to_owned(), AttributeValue::N(job.attempt.to_string())),
        ]);
        for (attribute, value) in [
            ("command_id", &job.command_id),
            ("command_name", &job.command_name),
            ("cluster_id", &job.cluster_id),
            ("cluster_name", &job.cluster_name),
        ] {
            if let Some(value) = value {
                item.insert(attribute.to_owned(), AttributeValue::S(value.clone()));
            }
        }
        if !job.tags.is_empty() {
            item.insert("tags".to_owned(), AttributeValue::Ss(job.tags.clone()));
        }
        if !job.status.is_terminal() {
            item.insert("active_user".to_owned(), AttributeValue::S(job.user.clone()));
        }
        // Written alone by their own conditional UpdateItem, read back into the job.
        for (attribute, value) in [("heartbeat_at", job.heartbeat_at), ("work_started_at", job.work_started_at)] {
            if let Some(value) = value {
                item.insert(attribute.to_owned(), AttributeValue::N(value.to_string()));
            }
        }
        if let (Some(retention), Some(finished_at)) = (self.retention_seconds, job.finished_at) {
            item.insert("expires_at".to_owned(), AttributeValue::N((finished_at + retention).to_string()));
        }
        Ok(item)
    }

    fn from_item(item: &Item) -> Result<Job, StoreError> {
        let body = item
            .get("body")
            .and_then(|value| value.as_s().ok())
            .ok_or_else(|| StoreError::Unavailable("a stored job has no body".into()))?;
        let attribute = |name: &str| item.get(name).and_then(|value| value.as_s().ok()).cloned();
        let mut job = crate::stored_job_body::job_from_stored(body, attribute)
            .map_err(|error| StoreError::Unavailable(format!("a stored job cannot be read: {error}")))?;
        // Heartbeats and work claims update their attribute alone (one UpdateItem), not the body.
        let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok());
        job.heartbeat_at = number("heartbeat_at").or(job.heartbeat_at);
        job.work_started_at = number("work_started_at").or(job.work_started_at);
        Ok(job)
    }

    /// Changes a job that is in `expected`: one consistent read, then a `PutItem` conditioned on
    /// the status still being `expected`. `Conflict` carries the status found instead.
    async fn update_if(&self, id: JobId, expected: JobStatus, change: impl FnOnce(&mut Job)) -> Result<Job, StoreError> {
        self.update_if_at(id, expected, None, change).await
    }

    /// `update_if`, also conditioned on the job being at `attempt` when one is given.
    async fn update_if_at(&self, id: JobId, expected: JobStatus, attempt: Option<u32>, change: impl FnOnce(&mut Job)) -> Result<Job, StoreError> {
        let mut job = self.get(id).await?;
        if job.status != expected || attempt.is_some_and(|attempt| job.attempt != attempt) {
            return Err(StoreError::Conflict { current: job.status });
        }
        change(&mut job);
        self.put_if(job, expected, attempt, None).await
    }

    /// Writes `job` whole, with `result` when given, if the stored one is in `expected` (and at
    /// `attempt`, when given).
    async fn put_if(&self, job: Job, expected: JobStatus, attempt: Option<u32>, result: Option<&str>) -> Result<Job, StoreError> {
        let id = job.id;
        let mut item = self.to_item(&job)?;
        if let Some(result) = result {
            item.insert("result".to_owned(), AttributeValue::S(result.to_owned()));
        }
        heimdall_ports::usage::record_write(job_write_units(&item));
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(match attempt {
                // Items written before attempts existed are at the first.
                Some(_) => "#status = :expected AND (attribute_not_exists(attempt) OR attempt = :attempt)",
                None => "#status = :expected",
            })
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expected", AttributeValue::S(expected.as_str().to_owned()));
        if let Some(attempt) = attempt {
            request = request.expression_attribute_values(":attempt", AttributeValue::N(attempt.to_string()));
        }
        let result = request
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(job),
            Err(error) => match error.as_service_error() {
                // Someone else moved it between our read and our write; the answer holds it.
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(failed)) => {
                    let current = match failed.item() {
                        Some(item) => Self::from_item(item)?.status,
                        None => self.get(id).await?.status,
                    };
                    Err(StoreError::Conflict { current })
                }
                _ => Err(unavailable("PutItem", &error)),
            },
        }
    }

    /// Sets the number `attribute` of a RUNNING job (only if it is unset, with `once`): `Ok(false)`
    /// when `once` found it set, `Conflict` when the job is not running.
    async fn set_while_running(&self, id: JobId, attribute: &str, value: i64, once: bool) -> Result<bool, StoreError> {
        let condition = if once { "#status = :running AND attribute_not_exists(#attribute)" } else { "#status = :running" };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_string()))
            .update_expression("SET #attribute = :value")
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#attribute", attribute)
            .expression_attribute_values(":value", AttributeValue::N(value.to_string()))
            .expression_attribute_values(":running", AttributeValue::S(JobStatus::Running.as_str().to_owned()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let Err(error) = result else { return Ok(true) };
        let Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(failed)) = error.as_service_error() else {
            return Err(unavailable("UpdateItem", &error));
        };
        let Some(item) = failed.item() else { return Err(StoreError::NotFound) };
        match Self::from_item(item)?.status {
            JobStatus::Running => Ok(false),
            current => Err(StoreError::Conflict { current }),
        }
    }

    /// The item with `id` (a job's, or an idempotency key's), read consistently.
    async fn item(&self, id: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| unavailable("GetItem", &error))?;
        // A consistent read: a unit per 4 KB.
        let units = output.item.as_ref().map_or(1.0, |item| (item_kb(item) / 4.0).ceil().max(1.0));
        heimdall_ports::usage::record(|usage| usage.dynamodb_read_units += units);
        Ok(output.item)
    }

    /// The job an idempotency key item names and its fingerprint; with `live_only`, `None` once
    /// the key has expired (TTL deletes items only eventually).
    async fn key_holder(&self, key_id: &str, live_only: bool) -> Result<Option<(JobId, String)>, StoreError> {
        let Some(item) = self.item(key_id).await? else { return Ok(None) };
        let item = &item;
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let expires_at = item.get("expires_at").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok()).unwrap_or(0);
        if live_only && expires_at <= now_epoch_seconds() {
            return Ok(None);
        }
        let job = text("job_id").and_then(|id| id.parse().ok()).ok_or_else(|| StoreError::Unavailable("an idempotency key item has no job id".into()))?;
        Ok(Some((job, text("fingerprint").unwrap_or_default())))
    }

    fn choose_index(query: &JobQuery) -> IndexChoice {
        let choice = |index, key_attribute, key_value: String| IndexChoice { index, key_attribute, key_value, sort_attribute: "created_key" };
        if query.order_by == SortField::UpdatedAt {
            IndexChoice { index: "by_updated", key_attribute: "all", key_value: ALL_JOBS.to_owned(), sort_attribute: "updated_key" }
        } else if let Some(user) = query.user.as_ref().and_then(TextFilter::exact) {
            choice("by_user", "user", user.to_owned())
        } else if let [status] = query.statuses.as_slice() {
            choice("by_status", "status", status.as_str().to_owned())
        } else if let Some(name) = query.name.as_ref().and_then(TextFilter::exact) {
            choice("by_name", "name", name.to_owned())
        } else {
            choice("by_created", "all", ALL_JOBS.to_owned())
        }
    }
}

#[async_trait]
impl JobStore for DynamoJobStore {
    #[tracing::instrument(skip(self, job), fields(job_id = %job.id))]
    async fn insert(&self, job: &Job) -> Result<(), StoreError> {
        let item = self.to_item(job)?;
        heimdall_ports::usage::record_write(job_write_units(&item));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(StoreError::AlreadyExists)
            }
            Err(error) => Err(unavailable("PutItem", &error)),
        }
    }

    #[tracing::instrument(skip(self, job, claim), fields(job_id = %job.id))]
    async fn insert_keyed(&self, job: &Job, claim: &IdempotencyClaim) -> Result<(), StoreError> {
        let key_id = key_item_id(claim);
        let key_item = Item::from([
            ("id".to_owned(), AttributeValue::S(key_id.clone())),
            ("job_id".to_owned(), AttributeValue::S(job.id.to_string())),
            ("fingerprint".to_owned(), AttributeValue::S(claim.fingerprint.clone())),
            ("expires_at".to_owned(), AttributeValue::N(claim.expires_at.to_string())),
        ]);
        let put_key = Put::builder()
            .table_name(&self.table)
            .set_item(Some(key_item))
            .condition_expression("attribute_not_exists(id) OR expires_at < :now")
            .expression_attribute_values(":now", AttributeValue::N(now_epoch_seconds().to_string()))
            .build()
            .map_err(|error| unavailable("TransactWriteItems", &error))?;
        let job_item = self.to_item(job)?;
        // The job's write (what the job's later writes are counted at), then what the
        // transaction adds: its writes cost twice, and the key item is a unit, in no index.
        let units = job_write_units(&job_item);
        heimdall_ports::usage::record_write(units);
        heimdall_ports::usage::record(|usage| usage.dynamodb_write_units += units + 2.0);
        let put_job = Put::builder()
            .table_name(&self.table)
            .set_item(Some(job_item))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(|error| unavailable("TransactWriteItems", &error))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_key).build())
            .transact_items(TransactWriteItem::builder().put(put_job).build())
            .send()
            .await;
        let Err(error) = result else { return Ok(()) };
        let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(canceled)) =
            error.as_service_error()
        else {
            return Err(unavailable("TransactWriteItems", &error));
        };
        let failed = |index: usize| canceled.cancellation_reasons().get(index).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
        if failed(1) && !failed(0) {
            return Err(StoreError::AlreadyExists);
        }
        // The key is taken (or the transaction lost a race for it): read who holds it.
        match self.key_holder(&key_id, false).await? {
            Some((job, fingerprint)) => Err(StoreError::KeyTaken { job, fingerprint }),
            None => Err(StoreError::Unavailable(format!("DynamoDB TransactWriteItems was canceled: {}", error_chain(&error)))),
        }
    }

    #[tracing::instrument(skip(self, claim))]
    async fn find_key(&self, claim: &IdempotencyClaim) -> Result<Option<(JobId, String)>, StoreError> {
        self.key_holder(&key_item_id(claim), true).await
    }

    #[tracing::instrument(skip(self))]
    async fn count_active(&self, user: &str, at_most: usize) -> Result<usize, StoreError> {
        let mut count = 0usize;
        let mut start_key = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(ACTIVE_BY_USER)
                .key_condition_expression("active_user = :user")
                .expression_attribute_values(":user", AttributeValue::S(user.to_owned()))
                .select(Select::Count)
                .limit(i32::try_from(at_most.saturating_sub(count)).unwrap_or(i32::MAX).max(1))
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|error| unavailable("Query", &error))?;
            // An eventually consistent read of keys only: half a unit per page.
            heimdall_ports::usage::record(|usage| usage.dynamodb_read_units += 0.5);
            count += usize::try_from(output.count()).unwrap_or(0);
            match output.last_evaluated_key() {
                Some(key) if count < at_most => start_key = Some(key.clone()),
                _ => return Ok(count.min(at_most)),
            }
        }
    }

    #[tracing::instrument(skip(self))]
    async fn ended_before(&self, cutoff: i64, limit: usize) -> Result<Vec<JobId>, StoreError> {
        let mut ids = Vec::new();
        let mut start_key = None;
        let mut filter = Filter::default();
        filter.any_status(JobStatus::ALL.iter().filter(|s| s.is_terminal()));
        loop {
            let request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("by_updated")
                .key_condition_expression("#pk = :pk AND #updated < :cutoff")
                .expression_attribute_names("#pk", "all")
                .expression_attribute_names("#updated", "updated_key")
                .expression_attribute_values(":pk", AttributeValue::S(ALL_JOBS.to_owned()))
                .expression_attribute_values(":cutoff", AttributeValue::S(format!("{:012}", cutoff.max(0))))
                .projection_expression("id")
                .limit(self.query_batch)
                .set_exclusive_start_key(start_key.take());
            let output = filter.apply(request).send().await.map_err(|error| unavailable("Query", &error))?;
            for item in output.items() {
                if let Some(id) = item.get("id").and_then(|v| v.as_s().ok()).and_then(|id| id.parse().ok()) {
                    ids.push(id);
                }
                if ids.len() == limit {
                    return Ok(ids);
                }
            }
            match output.last_evaluated_key() {
                Some(key) => start_key = Some(key.clone()),
                None => return Ok(ids),
            }
        }
    }

    /// Deletes the job; its idempotency key, if any, expires on its own within a day (the
    /// table's TTL), and names a job that is gone meanwhile.
    #[tracing::instrument(skip(self), fields(job_id = %id))]
    async fn delete(&self, id: JobId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_string()))
            .send()
            .await
            .map_err(|error| unavailable("DeleteItem", &error))?;
        Ok(())
    }

    #[tracing::instrument(skip(self), fields(job_id = %id))]
    async fn get(&self, id: JobId) -> Result<Job, StoreError> {
        Self::from_item(&self.item(&id.to_string()).await?.ok_or(StoreError::NotFound)?)
    }

    /// 1 KiB: the item is copied whole into five indexes (projection ALL), so each KB of result
    /// costs six write units per write ($3.75 per million at on-demand prices), where an S3 PUT
    /// is $5 per million plus a GET to read it. A ping's result (~100 bytes) fits.
    fn recorded_result_limit(&self) -> usize {
        1024
    }

    async fn get_with_result(&self, id: JobId) -> Result<(Job, Option<String>), StoreError> {
        let item = self.item(&id.to_string()).await?.ok_or(StoreError::NotFound)?;
        let result = item.get("result").and_then(|value| value.as_s().ok()).cloned();
        Ok((Self::from_item(&item)?, result))
    }

    #[tracing::instrument(skip(self, change), fields(job_id = %id, from = %change.from(), to = %change.to()))]
    async fn transition(&self, id: JobId, change: &StatusChange) -> Result<Job, StoreError> {
        let mut job = self.get(id).await?;
        if job.status != change.from() {
            return Err(StoreError::Conflict { current: job.status });
        }
        change.apply(&mut job);
        self.put_if(job, change.from(), None, change.result.as_deref()).await
    }

    /// One conditional `PutItem`, no read.
    #[tracing::instrument(skip(self, held, change), fields(job_id = %held.id))]
    async fn transition_held(&self, held: &Job, change: &StatusChange) -> Result<Job, StoreError> {
        let mut job = held.clone();
        change.apply(&mut job);
        self.put_if(job, change.from(), Some(held.attempt), change.result.as_deref()).await
    }

    #[tracing::instrument(skip(self, next), fields(job_id = %id, attempt = next.failed.attempt))]
    async fn next_attempt(&self, id: JobId, next: &NextAttempt) -> Result<Job, StoreError> {
        self.update_if_at(id, JobStatus::Running, Some(next.failed.attempt), |job| next.apply(job)).await
    }

    /// One `UpdateItem` of the `heartbeat_at` attribute, conditioned on the job running.
    #[tracing::instrument(skip(self), fields(job_id = %id))]
    async fn heartbeat(&self, id: JobId, at: i64) -> Result<(), StoreError> {
        self.set_while_running(id, "heartbeat_at", at, false).await.map(|_| ())
    }

    /// One `UpdateItem` of `work_started_at`, conditioned on the job running and the attribute
    /// not set yet.
    #[tracing::instrument(skip(self), fields(job_id = %id))]
    async fn claim_work_start(&self, id: JobId, at: i64) -> Result<bool, StoreError> {
        self.set_while_running(id, "work_started_at", at, true).await
    }

    #[tracing::instrument(skip(self, handle), fields(job_id = %id))]
    async fn save_handle(&self, id: JobId, handle: &serde_json::Value) -> Result<Job, StoreError> {
        self.update_if(id, JobStatus::Running, |job| job.plugin_handle = Some(handle.clone())).await
    }

    #[tracing::instrument(skip(self, query))]
    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        if let Some(id) = query.id {
            let jobs = match self.get(id).await {
                Ok(job) if matches_filters(&job, query) => vec![job],
                Ok(_) | Err(StoreError::NotFound) => vec![],
                Err(error) => return Err(error),
            };
            return Ok(JobPage { jobs, next_cursor: None });
        }
        let choice = Self::choose_index(query);
        let limit = query.limit.max(1);
        let mut start_key = match &query.cursor {
            None => None,
            Some(cursor) => Some(cursor_key(cursor, &choice)?),
        };

        // The creation time range: a key condition on `created_key`, or a filter on it when the
        // index sorts by `updated_key`.
        let created_lower = query.created_after.map(|after| format!("{:012}", after.max(0))).unwrap_or_else(|| "0".into());
        let created_upper = query.created_before.map(|before| format!("{:012}", before.max(0))).unwrap_or_else(|| "~".into());
        let mut filter = filter_expression(query, &choice);
        let (lower, upper) = if choice.sort_attribute == "created_key" {
            (created_lower, created_upper)
        } else {
            if query.created_after.is_some() || query.created_before.is_some() {
                let (name, lower, upper) = (filter.name("created_key"), filter.value(&created_lower), filter.value(&created_upper));
                filter.clauses.push(format!("{name} BETWEEN {lower} AND {upper}"));
            }
            ("0".to_owned(), "~".to_owned())
        };

        let mut jobs: Vec<Job> = Vec::new();
        loop {
            let request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(choice.index)
                .key_condition_expression("#pk = :pk AND #created BETWEEN :lower AND :upper")
                .expression_attribute_names("#pk", choice.key_attribute)
                .expression_attribute_names("#created", choice.sort_attribute)
                .expression_attribute_values(":pk", AttributeValue::S(choice.key_value.clone()))
                .expression_attribute_values(":lower", AttributeValue::S(lower.clone()))
                .expression_attribute_values(":upper", AttributeValue::S(upper.clone()))
                .scan_index_forward(query.direction == SortDirection::Asc)
                .limit(self.query_batch)
                .set_exclusive_start_key(start_key.take());
            let output = filter.apply(request).send().await.map_err(|error| unavailable("Query", &error))?;
            for item in output.items() {
                let job = Self::from_item(item)?;
                // Patterns are narrowed by the filter (their literal prefix) and decided here.
                if !matches_filters(&job, query) {
                    continue;
                }
                jobs.push(job);
                if jobs.len() > limit {
                    break;
                }
            }
            if jobs.len() > limit {
                jobs.truncate(limit);
                let next_cursor = jobs.last().map(|job| if choice.sort_attribute == "created_key" { created_key(job) } else { updated_key(job) });
                return Ok(JobPage { jobs, next_cursor });
            }
            match output.last_evaluated_key() {
                Some(key) => start_key = Some(key.clone()),
                None => return Ok(JobPage { jobs, next_cursor: None }),
            }
        }
    }
}

/// The cursor is the sort key (`created_key` or `updated_key`) of the page's last job; the
/// query names the index.
fn cursor_key(cursor: &str, choice: &IndexChoice) -> Result<Item, StoreError> {
    let invalid = || StoreError::InvalidCursor(format!("`{cursor}` is not a cursor of this listing"));
    let (created, id) = cursor.split_once('#').ok_or_else(invalid)?;
    if created.len() != 12 || !created.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let id: JobId = id.parse().map_err(|_| invalid())?;
    Ok(Item::from([
        ("id".to_owned(), AttributeValue::S(id.to_string())),
        (choice.sort_attribute.to_owned(), AttributeValue::S(cursor.to_owned())),
        (choice.key_attribute.to_owned(), AttributeValue::S(choice.key_value.clone())),
    ]))
}

/// A `FilterExpression` being built, with its placeholders.
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    names: Vec<(String, String)>,
    values: Vec<(String, AttributeValue)>,
}

impl Filter {
    /// `request` with this filter (when it has clauses) and its placeholders.
    fn apply(&self, mut request: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        if self.clauses.is_empty() {
            return request;
        }
        request = request.filter_expression(self.clauses.join(" AND "));
        for (placeholder, name) in &self.names {
            request = request.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in &self.values {
            request = request.expression_attribute_values(placeholder, value.clone());
        }
        request
    }

    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#f{}", self.names.len());
        self.names.push((placeholder.clone(), attribute.to_owned()));
        placeholder
    }

    fn value(&mut self, value: &str) -> String {
        let placeholder = format!(":f{}", self.values.len());
        self.values.push((placeholder.clone(), AttributeValue::S(value.to_owned())));
        placeholder
    }

    fn equal(&mut self, attribute: &str, value: &str) {
        let (name, value) = (self.name(attribute), self.value(value));
        self.clauses.push(format!("{name} = {value}"));
    }

    /// The job's status is one of `statuses`.
    fn any_status<'s>(&mut self, statuses: impl Iterator<Item = &'s JobStatus>) {
        let status = self.name("status");
        let values: Vec<String> = statuses.map(|s| self.value(s.as_str())).collect();
        self.clauses.push(format!("{status} IN ({})", values.join(", ")));
    }

    fn id_or_name(&mut self, id_attribute: &str, name_attribute: &str, filter: &TextFilter) {
        let (id, name) = (self.name(id_attribute), self.name(name_attribute));
        match filter {
            TextFilter::Exact(text) => {
                let value = self.value(text);
                self.clauses.push(format!("({id} = {value} OR {name} = {value})"));
            }
            TextFilter::Pattern(_) if filter.literal_prefix().is_empty() => {}
            TextFilter::Pattern(_) => {
                let prefix = self.value(filter.literal_prefix());
                self.clauses.push(format!("(begins_with({id}, {prefix}) OR begins_with({name}, {prefix}))"));
            }
        }
    }

    /// `attribute` equal to an exact filter, or beginning with a pattern's literal prefix (the
    /// pattern itself is decided on each item read).
    fn text(&mut self, attribute: &str, filter: &TextFilter) {
        match filter {
            TextFilter::Exact(text) => self.equal(attribute, text),
            TextFilter::Pattern(_) if filter.literal_prefix().is_empty() => {}
            TextFilter::Pattern(_) => {
                let (name, prefix) = (self.name(attribute), self.value(filter.literal_prefix()));
                self.clauses.push(format!("begins_with({name}, {prefix})"));
            }
        }
    }
}

/// The filters the chosen index does not answer, as a `FilterExpression`.
fn filter_expression(query: &JobQuery, choice: &IndexChoice) -> Filter {
    let mut filter = Filter::default();
    if let Some(user) = query.user.as_ref().filter(|_| choice.key_attribute != "user") {
        filter.text("user", user);
    }
    if let Some(name) = query.name.as_ref().filter(|_| choice.key_attribute != "name") {
        filter.text("name", name);
    }
    if let Some(version) = &query.version {
        filter.text("version", version);
    }
    if let Some(command) = &query.command {
        filter.id_or_name("command_id", "command_name", command);
    }
    if let Some(cluster) = &query.cluster {
        filter.id_or_name("cluster_id", "cluster_name", cluster);
    }
    if !query.statuses.is_empty() && choice.key_attribute != "status" {
        filter.any_status(query.statuses.iter());
    }
    if !query.tags.is_empty() {
        let tags = filter.name("tags");
        for tag in &query.tags {
            let value = filter.value(tag);
            filter.clauses.push(format!("contains({tags}, {value})"));
        }
    }
    filter
}

/// The filters, applied to one job (for a lookup by id).
fn matches_filters(job: &Job, query: &JobQuery) -> bool {
    let same = |filter: &Option<TextFilter>, value: &str| filter.as_ref().is_none_or(|f| f.matches(value));
    let either = |filter: &Option<TextFilter>, id: &Option<String>, name: &Option<String>| {
        filter.as_ref().is_none_or(|f| id.as_deref().is_some_and(|v| f.matches(v)) || name.as_deref().is_some_and(|v| f.matches(v)))
    };
    same(&query.user, &job.user)
        && same(&query.name, &job.name)
        && same(&query.version, &job.version)
        && either(&query.command, &job.command_id, &job.command_name)
        && either(&query.cluster, &job.cluster_id, &job.cluster_name)
        && (query.statuses.is_empty() || query.statuses.contains(&job.status))
        && query.tags.iter().all(|tag| job.tags.contains(tag))
        && query.created_after.is_none_or(|after| job.created_at >= after)
        && query.created_before.is_none_or(|before| job.created_at < before)
}

/// A job item's size in KB as DynamoDB bills it: attribute names and values.
pub fn item_kb(item: &HashMap<String, AttributeValue>) -> f64 {
    let bytes: usize = item
        .iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(text) => text.len(),
                    AttributeValue::N(number) => number.len() / 2 + 1,
                    AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
                    _ => 1,
                }
        })
        .sum();
    bytes as f64 / 1024.0
}

/// The write units a write of the job `item` consumes on the jobs table (`create_table`): the
/// item and its copies in the five indexes that project it whole, a unit per KB each; the two
/// whose key moves on a status change (`by_status`, `by_updated`) written twice (counted on
/// every write, an insert's too: at most two units over); one unit for the keys-only index of
/// active jobs.
fn job_write_units(item: &Item) -> f64 {
    item_kb(item).ceil().max(1.0) * (1.0 + 5.0 + 2.0) + 1.0
}
