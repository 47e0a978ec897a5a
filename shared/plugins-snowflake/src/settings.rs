//! The plugin's three contexts, parsed and checked. Every message names the context and the
//! field, so a config error or a 400 says what to fix. Unknown keys are errors: a misspelt
//! `warehouse` must not silently run on the user's default one.

use std::net::IpAddr;

use heimdall_domain::{Cluster, Command};
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::private_key::PrivateKeyRef;

/// Snowflake's upper limit for a statement's `timeout` (7 days).
pub const MAX_TIMEOUT_SECONDS: u64 = 604_800;

/// The command context.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandSettings {
    /// Overrides the cluster's role for this command's jobs.
    pub role: Option<String>,
    /// The default statement timeout, and the most a job may ask for.
    pub timeout_seconds: Option<u64>,
}

/// The cluster context: which account, as whom, and where the statements run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterSettings {
    pub account: String,
    pub user: String,
    pub warehouse: Option<String>,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub role: Option<String>,
    pub private_key: PrivateKeyRef,
    /// A base URL replacing `https://<account>.snowflakecomputing.com` (a proxy, a test server).
    pub endpoint: Option<String>,
}

/// The job context.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobContext {
    pub query: String,
    /// Snowflake SQL API bind variables, e.g. `{"1": {"type": "FIXED", "value": "42"}}`.
    pub bindings: Option<Map<String, Value>>,
    pub timeout_seconds: Option<u64>,
}

fn from_context<T: for<'de> Deserialize<'de>>(context: &Value, what: &str) -> Result<T, String> {
    // A context left out of the config is `{}` already; `null` from an API client means the same.
    let context = if context.is_null() { Value::Object(Map::new()) } else { context.clone() };
    serde_json::from_value(context).map_err(|error| format!("snowflake {what} context: {error}"))
}

fn check_name(value: &Option<String>, field: &str, what: &str) -> Result<(), String> {
    match value {
        Some(name) if name.trim().is_empty() => Err(format!("snowflake {what} context: `{field}` must not be empty")),
        _ => Ok(()),
    }
}

fn check_timeout(timeout: Option<u64>, limit: u64, what: &str) -> Result<(), String> {
    match timeout {
        Some(0) => Err(format!("snowflake {what} context: `timeout_seconds` must be at least 1")),
        Some(asked) if asked > limit => {
            Err(format!("snowflake {what} context: `timeout_seconds` {asked} is above the limit of {limit}"))
        }
        _ => Ok(()),
    }
}

impl CommandSettings {
    pub fn parse(command: &Command) -> Result<Self, String> {
        let settings: Self = from_context(&command.context, "command")?;
        check_name(&settings.role, "role", "command")?;
        check_timeout(settings.timeout_seconds, MAX_TIMEOUT_SECONDS, "command")?;
        Ok(settings)
    }
}

impl ClusterSettings {
    pub fn parse(cluster: &Cluster) -> Result<Self, String> {
        let settings: Self = from_context(&cluster.context, "cluster")?;
        // The account becomes part of a host name: only the characters account identifiers
        // use, so `account` can never point requests (and the JWT) somewhere else.
        let account_ok = !settings.account.is_empty()
            && settings.account.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !account_ok {
            return Err(
                "snowflake cluster context: `account` must be an account identifier such as `myorg-myaccount` or `xy12345.us-east-1`"
                    .into(),
            );
        }
        if settings.user.trim().is_empty() {
            return Err("snowflake cluster context: `user` must not be empty".into());
        }
        for (value, field) in [
            (&settings.warehouse, "warehouse"),
            (&settings.database, "database"),
            (&settings.schema, "schema"),
            (&settings.role, "role"),
        ] {
            check_name(value, field, "cluster")?;
        }
        settings.base_url()?;
        Ok(settings)
    }

    /// Where the SQL API lives.
    pub fn base_url(&self) -> Result<Url, String> {
        match &self.endpoint {
            Some(endpoint) => parse_endpoint(endpoint),
            None => {
                // Host names cannot carry `_`; Snowflake serves such account names with `-`.
                let host = self.account.to_ascii_lowercase().replace('_', "-");
                Url::parse(&format!("https://{host}.snowflakecomputing.com"))
                    .map_err(|error| format!("snowflake cluster context: `account` does not make a URL: {error}"))
            }
        }
    }
}

fn parse_endpoint(endpoint: &str) -> Result<Url, String> {
    let invalid = |why: &str| format!("snowflake cluster context: `endpoint` {why}");
    let url = Url::parse(endpoint).map_err(|error| invalid(&format!("is not a URL: {error}")))?;
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(invalid("must be an http(s) base URL such as `https://myproxy.example.com`"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not carry credentials, a query or a fragment"));
    }
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    // The bearer token is good for an hour: plain HTTP only where it cannot leave the machine.
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(invalid("must be https (plain http only to a loopback address)")),
    }
}

impl JobContext {
    pub fn parse(context: &Value, settings: &CommandSettings) -> Result<Self, String> {
        let job: Self = from_context(context, "job")?;
        if job.query.trim().is_empty() {
            return Err("snowflake job context: `query` must be a non-empty SQL statement".into());
        }
        for (position, binding) in job.bindings.iter().flatten() {
            let typed = binding.as_object().and_then(|b| b.get("type")).is_some_and(Value::is_string);
            if !typed {
                return Err(format!(
                    "snowflake job context: `bindings.{position}` must be an object like {{\"type\": \"TEXT\", \"value\": \"abc\"}}"
                ));
            }
        }
        let limit = settings.timeout_seconds.unwrap_or(MAX_TIMEOUT_SECONDS);
        check_timeout(job.timeout_seconds, limit, "job")?;
        Ok(job)
    }

    /// The statement timeout: the job's, else the command's, else Snowflake's own default.
    pub fn timeout_seconds(&self, settings: &CommandSettings) -> Option<u64> {
        self.timeout_seconds.or(settings.timeout_seconds)
    }
}

#[cfg(test)]
mod tests {
    use heimdall_domain::config::Config;
    use serde_json::json;

    use super::*;


    fn parse_config(command_context: Value, cluster_context: Value) -> Config {
        let yaml = format!(
            "commands:\n  - {{name: sf, version: '1', plugin: snowflake, context: {command_context}}}\nclusters:\n  - {{name: sf, version: '1', context: {cluster_context}}}\n"
        );
        Config::parse(&yaml, "test.yml").unwrap()
    }

    fn cluster(context: Value) -> Result<ClusterSettings, String> {
        ClusterSettings::parse(&parse_config(json!({}), context).clusters[0])
    }

    fn command(context: Value) -> Result<CommandSettings, String> {
        CommandSettings::parse(&parse_config(context, json!({})).commands[0])
    }

    fn good_cluster() -> Value {
        json!({"account": "xy12345.us-east-1", "user": "heimdall", "private_key": "/keys/sf.p8"})
    }

    #[test]
    fn a_minimal_cluster_context_is_enough_and_points_at_the_accounts_host() {
        let settings = cluster(good_cluster()).unwrap();
        assert_eq!(settings.base_url().unwrap().as_str(), "https://xy12345.us-east-1.snowflakecomputing.com/");
        assert_eq!(settings.private_key, PrivateKeyRef::File("/keys/sf.p8".into()));
    }

    #[test]
    fn cluster_context_problems_name_the_field() {
        let with = |key: &str, value: Value| {
            let mut context = good_cluster();
            context[key] = value;
            context
        };
        let without = |key: &str| {
            let mut context = good_cluster();
            context.as_object_mut().unwrap().remove(key);
            context
        };
        let bad = [
            (without("account"), "missing field `account`"),
            (without("user"), "missing field `user`"),
            (without("private_key"), "missing field `private_key`"),
            (with("warehous", json!("WH")), "unknown field `warehous`"),
            (with("account", json!("evil.com/#")), "`account` must be an account identifier"),
            (with("user", json!(" ")), "`user` must not be empty"),
            (with("warehouse", json!("")), "`warehouse` must not be empty"),
            (with("private_key", json!("keys/sf.p8")), "`private_key` must be"),
            (with("endpoint", json!("not a url")), "`endpoint` is not a URL"),
            (with("endpoint", json!("http://snowflake.example.com")), "`endpoint` must be https"),
            (with("endpoint", json!("https://u:p@example.com")), "`endpoint` must not carry credentials"),
        ];
        for (context, expected) in bad {
            let message = cluster(context.clone()).unwrap_err();
            assert!(message.starts_with("snowflake cluster context: "), "{context}: {message}");
            assert!(message.contains(expected), "{context}: {message}");
        }
    }

    #[test]
    fn an_endpoint_replaces_the_account_host_and_may_be_plain_http_on_loopback() {
        let mut context = good_cluster();
        context["endpoint"] = json!("http://127.0.0.1:9999");
        assert_eq!(cluster(context).unwrap().base_url().unwrap().as_str(), "http://127.0.0.1:9999/");
    }

    #[test]
    fn underscores_in_the_account_become_hyphens_in_the_host() {
        let mut context = good_cluster();
        context["account"] = json!("MyOrg-My_Account");
        assert_eq!(
            cluster(context).unwrap().base_url().unwrap().host_str(),
            Some("myorg-my-account.snowflakecomputing.com")
        );
    }

    #[test]
    fn a_key_pasted_into_the_cluster_context_stays_out_of_errors_and_debug_output() {
        // GIVEN a cluster context with the key text where its location belongs
        let mut context = good_cluster();
        context["private_key"] = json!(crate::private_key::fake_pem("PRIVATE KEY", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw"));
        // WHEN it is checked
        let message = cluster(context).unwrap_err();
        // THEN the message names the field and holds none of the key
        assert!(message.contains("`private_key`"), "{message}");
        assert!(!message.contains("MIIEvQ"), "{message}");
    }

    #[test]
    fn debug_output_of_the_settings_shows_the_key_location_only() {
        let settings = cluster(good_cluster()).unwrap();
        let debug = format!("{settings:?}");
        assert!(debug.contains("/keys/sf.p8") && !debug.contains("BEGIN"), "{debug}");
    }

    #[test]
    fn command_context_problems_name_the_field() {
        let bad = [
            (json!({"rol": "ANALYST"}), "unknown field `rol`"),
            (json!({"role": ""}), "`role` must not be empty"),
            (json!({"timeout_seconds": 0}), "`timeout_seconds` must be at least 1"),
            (json!({"timeout_seconds": 604_801}), "`timeout_seconds` 604801 is above the limit of 604800"),
        ];
        for (context, expected) in bad {
            let message = command(context.clone()).unwrap_err();
            assert!(message.contains(expected), "{context}: {message}");
        }
        assert!(command(json!({})).is_ok());
    }

    #[test]
    fn job_context_problems_name_the_field() {
        let settings = command(json!({"timeout_seconds": 60})).unwrap();
        let bad = [
            (json!({}), "missing field `query`"),
            (json!({"query": "  "}), "`query` must be a non-empty SQL statement"),
            (json!({"query": "select 1", "sql": "x"}), "unknown field `sql`"),
            (json!({"query": "select 1", "bindings": [1]}), "invalid type: sequence, expected a map"),
            (json!({"query": "select ?", "bindings": {"1": "42"}}), "`bindings.1` must be an object"),
            (json!({"query": "select 1", "timeout_seconds": 61}), "`timeout_seconds` 61 is above the limit of 60"),
        ];
        for (context, expected) in bad {
            let message = JobContext::parse(&context, &settings).unwrap_err();
            assert!(message.starts_with("snowflake job context: "), "{context}: {message}");
            assert!(message.contains(expected), "{context}: {message}");
        }
    }

    #[test]
    fn the_jobs_timeout_wins_over_the_commands() {
        let settings = command(json!({"timeout_seconds": 60})).unwrap();
        let job = JobContext::parse(&json!({"query": "select 1", "timeout_seconds": 30}), &settings).unwrap();
        assert_eq!(job.timeout_seconds(&settings), Some(30));
        let job = JobContext::parse(&json!({"query": "select 1"}), &settings).unwrap();
        assert_eq!(job.timeout_seconds(&settings), Some(60));
        let job = JobContext::parse(&json!({"query": "select 1"}), &CommandSettings::default()).unwrap();
        assert_eq!(job.timeout_seconds(&CommandSettings::default()), None);
    }
}
