//! Reads from DynamoDB into a result table. Three kinds of read, chosen by the job's context:
//!
//! ```json
//! {"query": "SELECT * FROM orders WHERE customer = ?", "parameters": ["c-1"], "limit": 100}
//! {"get": {"key": {"pk": "order#1"}}}
//! {"key_condition": "pk = :pk AND sk > :from", "values": {":pk": "c-1", ":from": 10}, "index": "by_date", "limit": 50}
//! ```
//! `query` is PartiQL (Heimdall's field) and must be a `SELECT`: writes are refused. `get` and
//! `key_condition` read the table named by the job (`table`), the command or the cluster
//! context (`table`), in that order. Every read pages through `NextToken` /
//! `LastEvaluatedKey` up to the job's `limit`, capped by the command's `max_rows` (default
//! 10,000). Columns are the union of the items' attribute names; values are plain JSON.
//! A cluster's `role_arn` (Heimdall's field) is assumed for its reads: tables in another account.
//!
//! The platform's own tables (its jobs table, which the api function's role can read) are never read by jobs: the plugin is built with the set of forbidden names
//! ([`DynamoDbPlugin::forbidding`]; names or table ARNs, compared by table name, any case) and
//! refuses a `get` or `key_condition` on one of them, and any `query` that mentions one as a
//! quoted or bare identifier (or inside an ARN or a string: when in doubt, refuse).

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use heimdall_domain::Command;
use heimdall_ports::{Plugin, PluginError, PluginRun, Step};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::assumed_roles::{RoleClients, validate_role_arn};
use crate::attribute_json::{to_attribute, to_item, to_json};
use crate::result_table::ResultTable;

pub const DEFAULT_MAX_ROWS: usize = 10_000;

/// The dynamodb plugin.
pub struct DynamoDbPlugin {
    clients: RoleClients<aws_sdk_dynamodb::Client>,
    /// Tables jobs may not read (lower-case table names).
    forbidden: BTreeSet<String>,
}

impl DynamoDbPlugin {
    /// A plugin that forbids no table; see [`DynamoDbPlugin::forbidding`].
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { clients: RoleClients::new(sdk, aws_sdk_dynamodb::Client::new), forbidden: BTreeSet::new() }
    }

    /// The plugin refusing jobs that read any of `tables` (names or table ARNs), besides those
    /// it already refuses. Blank entries are ignored.
    pub fn forbidding<I, S>(mut self, tables: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.forbidden.extend(tables.into_iter().map(|t| table_name_of(t.as_ref().trim()).to_lowercase()).filter(|t| !t.is_empty()));
        self
    }

    /// Refuses a read of a forbidden table.
    fn check_allowed(&self, read: &Read) -> Result<(), String> {
        let hit = match read {
            Read::Get { table, .. } | Read::Query { table, .. } => {
                let name = table_name_of(table).to_lowercase();
                self.forbidden.iter().find(|forbidden| **forbidden == name)
            }
            Read::Statement { statement, .. } => self.forbidden.iter().find(|forbidden| mentions_table(statement, forbidden)),
        };
        match hit {
            Some(table) => Err(format!(
                "dynamodb: table `{table}` is the platform's own (where Heimdall keeps its jobs) and cannot be read by jobs; read another table{}",
                if matches!(read, Read::Statement { .. }) { " (a statement that names it anywhere, even in a string, is refused)" } else { "" }
            )),
            None => Ok(()),
        }
    }
}

/// The table name in a table or index ARN (`arn:aws:dynamodb:…:table/NAME[/index/…]`), or
/// `table` itself when it is not an ARN.
fn table_name_of(table: &str) -> &str {
    match table.strip_prefix("arn:").and_then(|rest| rest.split_once(":table/")) {
        Some((_, path)) => path.split('/').next().unwrap_or(path),
        None => table,
    }
}

/// Whether `statement` mentions the table `name` (lower case): an occurrence, in any case, not
/// part of a longer name (the characters either side are not letters, digits, `_` or `-`).
/// Quoted (`"t"`, `"t"."index"`), bare (`FROM t`), in an ARN or in a string literal alike.
fn mentions_table(statement: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let statement = statement.to_lowercase();
    let part_of_name = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    statement.match_indices(name).any(|(start, found)| {
        let before = statement[..start].chars().next_back();
        let after = statement[start + found.len()..].chars().next();
        !before.is_some_and(part_of_name) && !after.is_some_and(part_of_name)
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DynamoSettings {
    table: Option<String>,
    max_rows: Option<usize>,
    /// A role to assume for the reads (cluster context only).
    role_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DynamoJob {
    table: Option<String>,
    query: Option<String>,
    #[serde(default)]
    parameters: Vec<Value>,
    get: Option<GetRequest>,
    key_condition: Option<String>,
    #[serde(default)]
    names: HashMap<String, String>,
    #[serde(default)]
    values: Map<String, Value>,
    index: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetRequest {
    key: Map<String, Value>,
}

/// One read, resolved against the settings.
enum Read {
    Statement { statement: String, parameters: Vec<Value> },
    Get { table: String, key: Map<String, Value> },
    Query { table: String, key_condition: String, names: HashMap<String, String>, values: Map<String, Value>, index: Option<String> },
}

/// A job's read, its row cap, and the role to read as.
struct Plan {
    read: Read,
    limit: usize,
    role_arn: Option<String>,
}

fn settings(context: &Value, what: &str) -> Result<DynamoSettings, String> {
    let settings: DynamoSettings = serde_json::from_value(context.clone()).map_err(|error| format!("dynamodb {what} context: {error}"))?;
    match (&settings.role_arn, what) {
        (Some(_), "command") => Err("dynamodb command context: `role_arn` belongs in the cluster context (the account the tables are in)".into()),
        (Some(role_arn), _) => validate_role_arn(role_arn).map(|()| settings).map_err(|error| format!("dynamodb {what} context: {error}")),
        (None, _) => Ok(settings),
    }
}

/// The statement with leading comments removed, for the read-only check.
fn first_keyword(statement: &str) -> String {
    let mut rest = statement.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map(|(_, r)| r).unwrap_or("").trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map(|(_, r)| r).unwrap_or("").trim_start();
        } else {
            break;
        }
    }
    rest.split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("").to_ascii_uppercase()
}

impl DynamoDbPlugin {
    fn plan(command_context: &Value, cluster_context: &Value, job_context: &Value) -> Result<Plan, String> {
        let command_settings = settings(command_context, "command")?;
        let cluster_settings = settings(cluster_context, "cluster")?;
        let job: DynamoJob = serde_json::from_value(job_context.clone()).map_err(|error| format!("dynamodb job context: {error}"))?;
        let max_rows = command_settings.max_rows.unwrap_or(DEFAULT_MAX_ROWS);
        let limit = job.limit.unwrap_or(max_rows).min(max_rows);
        if limit == 0 {
            return Err("dynamodb job context: `limit` must be at least 1".into());
        }
        let table = job.table.clone().or(command_settings.table).or(cluster_settings.table);
        let role_arn = cluster_settings.role_arn;
        let kinds = [job.query.is_some(), job.get.is_some(), job.key_condition.is_some()].iter().filter(|k| **k).count();
        if kinds != 1 {
            return Err("dynamodb job context: give exactly one of `query` (PartiQL SELECT), `get` ({\"key\": {...}}) or `key_condition`".into());
        }
        let need_table = || table.clone().ok_or_else(|| "dynamodb: no table: set `table` in the job, command or cluster context".to_owned());
        let read = if let Some(statement) = job.query {
            let keyword = first_keyword(&statement);
            if keyword != "SELECT" {
                return Err(format!(
                    "dynamodb job context: `query` must be a PartiQL SELECT; this plugin only reads, and {} statements are refused",
                    if keyword.is_empty() { "empty".to_owned() } else { keyword }
                ));
            }
            Read::Statement { statement, parameters: job.parameters }
        } else if let Some(get) = job.get {
            if get.key.is_empty() {
                return Err("dynamodb job context: `get.key` must name the item's key attributes".into());
            }
            Read::Get { table: need_table()?, key: get.key }
        } else {
            Read::Query {
                table: need_table()?,
                key_condition: job.key_condition.unwrap_or_default(),
                names: job.names,
                values: job.values,
                index: job.index,
            }
        };
        Ok(Plan { read, limit, role_arn })
    }

    async fn read(&self, client: &aws_sdk_dynamodb::Client, read: Read, limit: usize) -> Result<ResultTable, PluginError> {
        let mut table = ResultTable::default();
        let push = |item: &HashMap<String, AttributeValue>, table: &mut ResultTable| {
            let mut fields: Vec<(&String, &AttributeValue)> = item.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            table.push_row(fields.into_iter().map(|(name, value)| {
                let (json, type_name) = to_json(value);
                (name.clone(), json, type_name)
            }));
        };
        match read {
            Read::Get { table: name, key } => {
                let output = client
                    .get_item()
                    .table_name(&name)
                    .set_key(Some(to_item(&key)))
                    .send()
                    .await
                    .map_err(|error| failure("GetItem", &name, &error))?;
                if let Some(item) = output.item() {
                    push(item, &mut table);
                }
            }
            Read::Statement { statement, parameters } => {
                let mut next_token = None;
                loop {
                    let output = client
                        .execute_statement()
                        .statement(&statement)
                        .set_parameters((!parameters.is_empty()).then(|| parameters.iter().map(to_attribute).collect()))
                        .set_next_token(next_token.take())
                        .send()
                        .await
                        .map_err(|error| failure("ExecuteStatement", "the statement's table", &error))?;
                    for item in output.items() {
                        if table.len() == limit {
                            break;
                        }
                        push(item, &mut table);
                    }
                    match output.next_token() {
                        Some(token) if table.len() < limit => next_token = Some(token.to_owned()),
                        _ => break,
                    }
                }
            }
            Read::Query { table: name, key_condition, names, values, index } => {
                let mut start_key = None;
                loop {
                    let output = client
                        .query()
                        .table_name(&name)
                        .set_index_name(index.clone())
                        .key_condition_expression(&key_condition)
                        .set_expression_attribute_names((!names.is_empty()).then(|| names.clone()))
                        .set_expression_attribute_values((!values.is_empty()).then(|| to_item(&values)))
                        .set_exclusive_start_key(start_key.take())
                        .send()
                        .await
                        .map_err(|error| failure("Query", &name, &error))?;
                    for item in output.items() {
                        if table.len() == limit {
                            break;
                        }
                        push(item, &mut table);
                    }
                    match output.last_evaluated_key() {
                        Some(key) if table.len() < limit => start_key = Some(key.clone()),
                        _ => break,
                    }
                }
            }
        }
        Ok(table)
    }
}

/// A DynamoDB error as the job's failure: the service's own message for a client mistake
/// (missing table, bad expression), `Unavailable` for throttling and outages.
fn failure<E>(operation: &str, table: &str, error: &aws_sdk_dynamodb::error::SdkError<E>) -> PluginError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match error.as_service_error() {
        Some(service) => {
            let code = service.code().unwrap_or("Error");
            let message = service.message().unwrap_or("no message");
            if matches!(code, "ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded" | "InternalServerError") {
                PluginError::Unavailable(format!("DynamoDB {operation}: {code}: {message}"))
            } else if code == "ResourceNotFoundException" {
                PluginError::JobFailed { message: format!("DynamoDB {operation}: table {table} not found ({message})"), exit_code: None }
            } else {
                PluginError::JobFailed { message: format!("DynamoDB {operation}: {code}: {message}"), exit_code: None }
            }
        }
        None => PluginError::Unavailable(format!("DynamoDB {operation}: {}", heimdall_ports::error_chain(error))),
    }
}

impl DynamoDbPlugin {
    /// A job's context against its command's. The cluster is not chosen yet: a cluster's own
    /// `table` was checked when the config was loaded, and is again at submit.
    fn validate_job_context(&self, context: &Value, command_context: &Value) -> Result<(), String> {
        let plan = Self::plan(command_context, &json!({"table": "?"}), context)?;
        self.check_allowed(&plan.read)
    }

    /// A command's or cluster's context, its `table` not one of the forbidden.
    fn validate_settings(&self, context: &Value, what: &str) -> Result<(), String> {
        let settings = settings(context, what)?;
        if let Some(table) = &settings.table {
            let read = Read::Get { table: table.clone(), key: Map::new() };
            self.check_allowed(&read).map_err(|error| format!("dynamodb {what} context: `table`: {error}"))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Plugin for DynamoDbPlugin {
    fn name(&self) -> &'static str {
        "dynamodb"
    }

    fn validate_command(&self, command: &Command) -> Result<(), String> {
        self.validate_settings(&command.context, "command")
    }

    fn validate_cluster(&self, cluster: &heimdall_domain::Cluster) -> Result<(), String> {
        self.validate_settings(&cluster.context, "cluster")
    }

    fn validate_job(&self, context: &Value, command: &Command) -> Result<(), String> {
        self.validate_job_context(context, &command.context)
    }

    /// The table the command or cluster names (if any) is found and ACTIVE, read with the
    /// cluster's role.
    async fn check_health(&self, command: &Command, cluster: &heimdall_domain::Cluster) -> Result<(), String> {
        let command_settings: DynamoSettings = serde_json::from_value(command.context.clone()).map_err(|error| format!("dynamodb command context: {error}"))?;
        let cluster_settings: DynamoSettings = serde_json::from_value(cluster.context.clone()).map_err(|error| format!("dynamodb cluster context: {error}"))?;
        let Some(table) = command_settings.table.or(cluster_settings.table) else { return Ok(()) };
        let client = self.clients.client(cluster_settings.role_arn.as_deref()).await;
        let described = client
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .map_err(|error| format!("DynamoDB DescribeTable {table}: {}", heimdall_ports::error_chain(&error)))?;
        match described.table().and_then(|t| t.table_status()).map(|status| status.as_str().to_owned()) {
            Some(status) if status == "ACTIVE" || status == "UPDATING" => Ok(()),
            status => Err(format!("table {table} is {}, not ACTIVE", status.as_deref().unwrap_or("in no status"))),
        }
    }

    async fn submit(&self, run: &PluginRun) -> Result<Step, PluginError> {
        let plan = Self::plan(&run.command.context, &run.cluster.context, &run.job.context).map_err(PluginError::InvalidContext)?;
        self.check_allowed(&plan.read).map_err(PluginError::InvalidContext)?;
        let client = self.clients.client(plan.role_arn.as_deref()).await;
        let table = self.read(&client, plan.read, plan.limit).await?;
        let rows = table.len();
        run.write_result(&table.into_result()).await?;
        Ok(Step::Complete(json!({"rows": rows})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_only_check_sees_through_comments_and_case() {
        assert_eq!(first_keyword("  -- why\n /* note */ select * from t"), "SELECT");
        assert_eq!(first_keyword("DELETE FROM t WHERE pk = 'a'"), "DELETE");
        assert_eq!(first_keyword(""), "");
    }

    #[test]
    fn table_arns_come_down_to_the_table_name() {
        assert_eq!(table_name_of("arn:aws:dynamodb:us-east-1:123456789012:table/heimdall-jobs"), "heimdall-jobs");
        assert_eq!(table_name_of("arn:aws:dynamodb:us-east-1:123456789012:table/heimdall-jobs/index/by_user"), "heimdall-jobs");
        assert_eq!(table_name_of("heimdall-jobs"), "heimdall-jobs");
    }

    #[test]
    fn a_statement_naming_the_table_in_any_form_mentions_it() {
        for statement in [
            r#"SELECT * FROM "heimdall-jobs""#,
            r#"select * from "HEIMDALL-JOBS" where pk = 'x'"#,
            r#"SELECT * FROM "heimdall-jobs"."by_user" WHERE user_name = 'bob'"#,
            "SELECT * FROM heimdall-jobs",
            "SeLeCt * FrOm heimdall-jobs.by_user",
            r#"SELECT * FROM"heimdall-jobs""#,
            "SELECT * FROM \"arn:aws:dynamodb:us-east-1:123456789012:table/heimdall-jobs\"",
            "SELECT * FROM orders WHERE note = 'heimdall-jobs'",
            "/* x */ SELECT *\nFROM\n\theimdall-jobs",
        ] {
            assert!(mentions_table(statement, "heimdall-jobs"), "{statement}");
        }
        for statement in [
            r#"SELECT * FROM "heimdall-jobs-archive""#,
            r#"SELECT * FROM "my-heimdall-jobs""#,
            r#"SELECT * FROM "heimdall_jobs""#,
            "SELECT * FROM orders",
        ] {
            assert!(!mentions_table(statement, "heimdall-jobs"), "{statement}");
        }
    }

    fn plugin(forbidden: &[&str]) -> DynamoDbPlugin {
        let sdk = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        DynamoDbPlugin::new(&sdk).forbidding(forbidden)
    }

    #[test]
    fn every_read_of_a_forbidden_table_is_refused_at_validation() {
        let plugin = plugin(&["arn:aws:dynamodb:us-east-1:123456789012:table/heimdall-jobs"]);
        let bare = json!({});
        for context in [
            json!({"table": "heimdall-jobs", "get": {"key": {"pk": "job#1"}}}),
            json!({"table": "Heimdall-Jobs", "key_condition": "pk = :p", "values": {":p": "x"}, "index": "by_user"}),
            json!({"table": "arn:aws:dynamodb:us-east-1:123456789012:table/heimdall-jobs", "get": {"key": {"pk": "job#1"}}}),
            json!({"query": r#"SELECT * FROM "heimdall-jobs"."by_user""#}),
        ] {
            let error = plugin.validate_job_context(&context, &bare).unwrap_err();
            assert!(error.contains("table `heimdall-jobs` is the platform's own") && error.contains("cannot be read by jobs"), "{context}: {error}");
        }
        // The command's table is the job's when the job names none.
        let error = plugin.validate_job_context(&json!({"get": {"key": {"pk": "x"}}}), &json!({"table": "heimdall-jobs"})).unwrap_err();
        assert!(error.contains("platform's own"), "{error}");
        // Other tables still pass.
        assert!(plugin.validate_job_context(&json!({"table": "orders", "get": {"key": {"pk": "x"}}}), &bare).is_ok());
        assert!(plugin.validate_job_context(&json!({"query": r#"SELECT * FROM "heimdall-jobs-archive""#}), &bare).is_ok());
        // Without a forbidden set nothing is refused for its table.
        assert!(self::plugin(&[]).validate_job_context(&json!({"table": "heimdall-jobs", "get": {"key": {"pk": "x"}}}), &bare).is_ok());
    }

    #[test]
    fn forbidden_names_are_trimmed_and_blank_ones_forbid_nothing() {
        let get = |table: &str| json!({"table": table, "get": {"key": {"pk": "x"}}});
        assert!(plugin(&[" heimdall-jobs "]).validate_job_context(&get("heimdall-jobs"), &json!({})).is_err());
        assert!(plugin(&[""]).validate_job_context(&get("heimdall-jobs"), &json!({})).is_ok());
        let sdk = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        assert!(DynamoDbPlugin::new(&sdk).forbidding(None::<&str>).validate_job_context(&get("heimdall-jobs"), &json!({})).is_ok());
    }

    #[test]
    fn a_command_or_cluster_on_a_forbidden_table_is_refused_at_load() {
        let plugin = plugin(&["heimdall-jobs", " "]);
        let error = plugin.validate_settings(&json!({"table": "heimdall-jobs"}), "command").unwrap_err();
        assert!(error.starts_with("dynamodb command context: `table`") && error.contains("platform's own"), "{error}");
        let error = plugin.validate_settings(&json!({"table": "HEIMDALL-JOBS"}), "cluster").unwrap_err();
        assert!(error.starts_with("dynamodb cluster context: `table`"), "{error}");
        assert!(plugin.validate_settings(&json!({"table": "orders"}), "command").is_ok());
    }
}
