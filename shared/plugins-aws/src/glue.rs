//! An Iceberg table's metadata: `GetTable` in the Glue catalog, then the JSON file its
//! `metadata_location` names, read from S3. Job context: `{"table_name": "db.table"}`; command
//! context: `catalog_id` (optional, another account's catalog). A cluster's `database` (optional)
//! is what its health check reads (`GetDatabase`).
//!
//! The result is one table with a row per item, `section` saying which part it is:
//!
//! | section | name | type | detail |
//! |---|---|---|---|
//! | `schema` | field name | field type | `{"id", "required"}` (the current schema) |
//! | `partition` | partition field name | transform | `{"source_id", "field_id"}` (the default spec) |
//! | `snapshot` | snapshot id | operation | `{"timestamp_ms", "summary", "current"}` |
//! | `property` | key | `string` | value |

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use heimdall_domain::{Command, JobResult, ResultColumn};
use crate::aws_refusal::refused_or_unavailable;
use heimdall_ports::{Plugin, PluginError, PluginRun, Step};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::s3_uri::parse_s3_uri;

/// A metadata file larger than this is refused rather than loaded.
pub const MAX_METADATA_BYTES: usize = 64 * 1024 * 1024;

/// The glue plugin.
pub struct GluePlugin {
    glue: aws_sdk_glue::Client,
    s3: aws_sdk_s3::Client,
}

impl GluePlugin {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { glue: aws_sdk_glue::Client::new(sdk), s3: heimdall_adapters_aws::s3_client(sdk) }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GlueSettings {
    catalog_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GlueJob {
    table_name: String,
}

fn parse_settings(context: &Value) -> Result<GlueSettings, String> {
    serde_json::from_value(context.clone()).map_err(|error| format!("glue command context: {error}"))
}

/// `db.table` → (`db`, `table`).
fn parse_job(context: &Value) -> Result<(String, String), String> {
    let job: GlueJob = serde_json::from_value(context.clone()).map_err(|error| format!("glue job context: {error}"))?;
    match job.table_name.split_once('.') {
        Some((database, table)) if !database.is_empty() && !table.is_empty() && !table.contains('.') => {
            Ok((database.to_owned(), table.to_owned()))
        }
        _ => Err(format!("glue job context: `table_name` must be `database.table`; got `{}`", job.table_name)),
    }
}

fn failed(message: String) -> PluginError {
    PluginError::JobFailed { message, exit_code: None }
}

impl GluePlugin {
    async fn metadata_location(&self, catalog_id: Option<String>, database: &str, table: &str) -> Result<String, PluginError> {
        let output = self
            .glue
            .get_table()
            .set_catalog_id(catalog_id)
            .database_name(database)
            .name(table)
            .send()
            .await
            .map_err(|error| match error.as_service_error() {
                Some(e) if e.is_entity_not_found_exception() => {
                    failed(format!("table {database}.{table} not found in the Glue catalog (is the database or the table misspelt?)"))
                }
                _ => refused_or_unavailable(&error, format!("Glue GetTable: {}", heimdall_ports::error_chain(&error))),
            })?;
        let found = output.table().ok_or_else(|| failed(format!("Glue answered no table for {database}.{table}")))?;
        let parameters = found.parameters();
        let parameter = |name: &str| {
            parameters.and_then(|p| p.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()))
        };
        let table_type = parameter("table_type").unwrap_or_default();
        if !table_type.eq_ignore_ascii_case("ICEBERG") {
            return Err(failed(format!(
                "{database}.{table} is not an Iceberg table (its table_type parameter is `{table_type}`); the glue plugin reads Iceberg metadata"
            )));
        }
        parameter("metadata_location")
            .ok_or_else(|| failed(format!("{database}.{table} is an Iceberg table without a metadata_location parameter")))
    }

    async fn read_metadata(&self, location: &str) -> Result<Value, PluginError> {
        let (bucket, key) = parse_s3_uri(location).ok_or_else(|| failed(format!("metadata_location `{location}` is not an s3:// URI")))?;
        let output = self.s3.get_object().bucket(bucket).key(key).send().await.map_err(|error| match error.as_service_error() {
            Some(e) if e.is_no_such_key() => failed(format!("the table's metadata file {location} does not exist")),
            _ => refused_or_unavailable(&error, format!("S3 GetObject {location}: {}", heimdall_ports::error_chain(&error))),
        })?;
        if output.content_length().is_some_and(|length| length as usize > MAX_METADATA_BYTES) {
            return Err(failed(format!("the metadata file {location} is larger than {MAX_METADATA_BYTES} bytes")));
        }
        let body: ByteStream = output.body;
        let bytes = body
            .collect()
            .await
            .map_err(|error| PluginError::Unavailable(format!("S3 GetObject {location}: {error}")))?
            .into_bytes();
        serde_json::from_slice(&bytes).map_err(|error| failed(format!("the metadata file {location} is not JSON: {error}")))
    }
}

/// The result rows of an Iceberg metadata document (format versions 1 and 2).
pub fn describe_metadata(metadata: &Value) -> JobResult {
    let mut data = Vec::new();
    let current_schema = metadata["current-schema-id"]
        .as_i64()
        .and_then(|id| metadata["schemas"].as_array()?.iter().find(|s| s["schema-id"].as_i64() == Some(id)))
        .or_else(|| metadata.get("schema"))
        .cloned()
        .unwrap_or(Value::Null);
    for field in current_schema["fields"].as_array().into_iter().flatten() {
        data.push(vec![
            json!("schema"),
            field["name"].clone(),
            json!(type_name(&field["type"])),
            json!({"id": field["id"], "required": field["required"]}),
        ]);
    }
    let default_spec = metadata["default-spec-id"]
        .as_i64()
        .and_then(|id| metadata["partition-specs"].as_array()?.iter().find(|s| s["spec-id"].as_i64() == Some(id)))
        .map(|spec| spec["fields"].clone())
        .or_else(|| metadata.get("partition-spec").cloned())
        .unwrap_or(Value::Null);
    for field in default_spec.as_array().into_iter().flatten() {
        data.push(vec![
            json!("partition"),
            field["name"].clone(),
            field["transform"].clone(),
            json!({"source_id": field["source-id"], "field_id": field["field-id"]}),
        ]);
    }
    let current_snapshot = metadata["current-snapshot-id"].as_i64();
    for snapshot in metadata["snapshots"].as_array().into_iter().flatten() {
        data.push(vec![
            json!("snapshot"),
            json!(snapshot["snapshot-id"].to_string()),
            snapshot["summary"]["operation"].clone(),
            json!({
                "timestamp_ms": snapshot["timestamp-ms"],
                "summary": snapshot["summary"],
                "current": snapshot["snapshot-id"].as_i64() == current_snapshot,
            }),
        ]);
    }
    for (key, value) in metadata["properties"].as_object().into_iter().flatten() {
        data.push(vec![json!("property"), json!(key), json!("string"), value.clone()]);
    }
    let column = |name: &str, column_type: &str| ResultColumn { name: name.into(), column_type: column_type.into() };
    JobResult {
        columns: vec![column("section", "string"), column("name", "string"), column("type", "string"), column("detail", "json")],
        data,
    }
}

/// Iceberg types are strings (`long`) or objects (`{"type": "struct", …}`).
fn type_name(value: &Value) -> String {
    match value {
        Value::String(name) => name.clone(),
        Value::Object(object) => object.get("type").and_then(Value::as_str).unwrap_or("complex").to_owned(),
        other => other.to_string(),
    }
}

#[async_trait]
impl Plugin for GluePlugin {
    fn name(&self) -> &'static str {
        "glue"
    }

    fn validate_command(&self, command: &Command) -> Result<(), String> {
        parse_settings(&command.context).map(|_| ())
    }

    fn validate_job(&self, context: &Value, _command: &Command) -> Result<(), String> {
        parse_job(context).map(|_| ())
    }

    /// `GetDatabase` of the database the cluster's context names (`database`), in the
    /// command's catalog; a cluster naming none has nothing to check.
    async fn check_health(&self, command: &Command, cluster: &heimdall_domain::Cluster) -> Result<(), String> {
        let settings = parse_settings(&command.context)?;
        let Some(database) = cluster.context.get("database").and_then(Value::as_str) else { return Ok(()) };
        self.glue
            .get_database()
            .set_catalog_id(settings.catalog_id)
            .name(database)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| format!("Glue GetDatabase {database}: {}", heimdall_ports::error_chain(&error)))
    }

    async fn submit(&self, run: &PluginRun) -> Result<Step, PluginError> {
        let settings = parse_settings(&run.command.context).map_err(PluginError::InvalidContext)?;
        let (database, table) = parse_job(&run.job.context).map_err(PluginError::InvalidContext)?;
        let location = self.metadata_location(settings.catalog_id, &database, &table).await?;
        let metadata = self.read_metadata(&location).await?;
        run.write_result(&describe_metadata(&metadata)).await?;
        Ok(Step::Complete(json!({"metadata_location": location})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_must_be_database_dot_table() {
        assert_eq!(parse_job(&json!({"table_name": "sales.orders"})), Ok(("sales".into(), "orders".into())));
        for bad in ["orders", ".orders", "sales.", "a.b.c"] {
            assert!(parse_job(&json!({"table_name": bad})).unwrap_err().contains("database.table"), "{bad}");
        }
        assert!(parse_job(&json!({})).unwrap_err().contains("table_name"));
    }

    #[test]
    fn a_v1_metadata_file_describes_its_schema_and_spec() {
        let metadata = json!({
            "format-version": 1,
            "schema": {"type": "struct", "fields": [{"id": 1, "name": "id", "required": true, "type": "long"}]},
            "partition-spec": [{"name": "id_bucket", "transform": "bucket[16]", "source-id": 1, "field-id": 1000}],
            "properties": {"owner": "data"}
        });
        let result = describe_metadata(&metadata);
        let sections: Vec<&str> = result.data.iter().map(|row| row[0].as_str().unwrap()).collect();
        assert_eq!(sections, ["schema", "partition", "property"]);
        assert_eq!(result.data[1][2], json!("bucket[16]"));
    }
}
