//! The Snowflake SQL API v2 calls, and what its answers mean for a job.
//!
//! | answer | meaning | becomes |
//! |---|---|---|
//! | 200 | the statement finished (the body is its first result partition) | done |
//! | 202 | still running | running |
//! | 422 | the statement failed (`code`, `sqlState`, `message`) | `JobFailed` (`TimedOut` for code 000630) |
//! | 401, 403 | the key pair, user or account is wrong | `InvalidContext` naming them |
//! | 408, 429, 5xx, no connection | passing trouble | `Unavailable` (retried) |
//! | other 4xx | a request Snowflake will never accept | `InvalidContext` |


use heimdall_ports::PluginError;
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::jwt::KeyPairJwt;

/// At most this much of an error answer is read: enough for Snowflake's JSON, not a whole
/// page from a misconfigured proxy.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Snowflake's error code for a statement stopped by its timeout.
const STATEMENT_TIMEOUT_CODE: &str = "000630";

/// The body of `POST /api/v2/statements`; absent fields are left out so the user's defaults apply.
#[derive(Debug, Serialize)]
pub(crate) struct StatementRequest<'a> {
    pub statement: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bindings: Option<&'a Map<String, Value>>,
}

/// Where a statement stands, by its handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Progress {
    Running(String),
    Done(String),
}

/// The part of a 200 or 202 answer every caller needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryStatus {
    statement_handle: String,
}

/// A finished statement's first answer: the result's shape, and partition 0's rows.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FirstPartition {
    pub result_set_meta_data: ResultSetMetaData,
    #[serde(default)]
    pub data: Vec<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResultSetMetaData {
    #[serde(default)]
    pub row_type: Vec<RowType>,
    /// One entry per partition; partition 0 came with this answer.
    #[serde(default)]
    pub partition_info: Vec<PartitionInfo>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RowType {
    pub name: String,
    /// Snowflake's type name, e.g. `fixed`, `text`, `timestamp_ntz`.
    #[serde(rename = "type")]
    pub column_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PartitionInfo {
    pub row_count: Option<u64>,
}

/// A later partition: its rows only.
#[derive(Deserialize)]
struct Partition {
    #[serde(default)]
    data: Vec<Vec<Value>>,
}

/// Snowflake's error body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
    sql_state: Option<String>,
}

/// The SQL API of one account, as one user.
#[derive(Debug)]
pub(crate) struct SqlApi {
    http: reqwest::Client,
    base: Url,
    jwt: KeyPairJwt,
    /// Who is signing in, for the message of a refused authentication.
    identity: String,
    /// The statement's timeout when known, so a timeout reads as `TimedOut`.
    statement_timeout: Option<u64>,
}

impl SqlApi {
    pub fn new(http: reqwest::Client, base: Url, jwt: KeyPairJwt, account: &str, user: &str) -> Self {
        let identity = format!(
            "user `{user}` on account `{account}` (JWT subject `{}`, key fingerprint {})",
            jwt.subject(),
            jwt.fingerprint()
        );
        Self { http, base, jwt, identity, statement_timeout: None }
    }

    pub fn with_statement_timeout(mut self, seconds: Option<u64>) -> Self {
        self.statement_timeout = seconds;
        self
    }

    /// `POST /api/v2/statements?async=true&requestId=…&retry=true`.
    ///
    /// `request_id` is the job id: when a submit is retried (the answer was lost, the Lambda
    /// timed out), `retry=true` with the same id makes Snowflake answer with the statement it
    /// already started instead of running the SQL a second time.
    pub async fn submit(&self, body: &StatementRequest<'_>, request_id: &str) -> Result<Progress, PluginError> {
        let mut url = self.statements_url(&[]);
        url.query_pairs_mut()
            .append_pair("async", "true")
            .append_pair("requestId", request_id)
            .append_pair("retry", "true");
        let response = self.send(self.http.post(url).json(body)).await?;
        progress_of(response).await
    }

    /// `GET /api/v2/statements/{handle}`: is it done? (Its rows are read by `first_partition`.)
    pub async fn status(&self, handle: &str) -> Result<Progress, PluginError> {
        let response = self.send(self.http.get(self.statements_url(&[handle]))).await?;
        match response.status() {
            // The body is partition 0, read again by `finalize`: not worth reading here.
            StatusCode::OK => Ok(Progress::Done(handle.to_owned())),
            _ => Ok(Progress::Running(handle.to_owned())),
        }
    }

    /// `GET /api/v2/statements/{handle}` of a finished statement: the result's shape and rows
    /// of partition 0.
    pub async fn first_partition(&self, handle: &str) -> Result<FirstPartition, PluginError> {
        let response = self.send(self.http.get(self.statements_url(&[handle]))).await?;
        if response.status() != StatusCode::OK {
            return Err(PluginError::Unavailable(format!("Snowflake statement {handle} has not finished yet")));
        }
        json_of(response, "the statement's result").await
    }

    /// `GET /api/v2/statements/{handle}?partition={index}`: the rows of one later partition.
    pub async fn partition(&self, handle: &str, index: usize) -> Result<Vec<Vec<Value>>, PluginError> {
        let mut url = self.statements_url(&[handle]);
        url.query_pairs_mut().append_pair("partition", &index.to_string());
        let response = self.send(self.http.get(url)).await?;
        let partition: Partition = json_of(response, &format!("result partition {index}")).await?;
        Ok(partition.data)
    }

    /// `POST /api/v2/statements/{handle}/cancel`. A statement that already ended (422) is
    /// as good as canceled.
    pub async fn cancel(&self, handle: &str) -> Result<(), PluginError> {
        // An empty body with the headers of Snowflake's own examples: some proxies refuse a
        // POST without a length.
        let request = self
            .http
            .post(self.statements_url(&[handle, "cancel"]))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body("");
        match self.send(request).await {
            Ok(_) | Err(PluginError::JobFailed { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn statements_url(&self, tail: &[&str]) -> Url {
        let mut url = self.base.clone();
        // Settings accept only http(s) base URLs, which always have path segments.
        if let Ok(mut segments) = url.path_segments_mut() {
            // Each part is percent-encoded: a handle cannot add path segments or a query.
            segments.pop_if_empty().extend(["api", "v2", "statements"]).extend(tail);
        }
        url
    }

    /// Signs and sends a request; any answer but 200 or 202 becomes the matching error.
    async fn send(&self, request: RequestBuilder) -> Result<Response, PluginError> {
        let token = self.jwt.token().map_err(|why| PluginError::InvalidContext(format!("`private_key`: {why}")))?;
        let response = request
            .bearer_auth(token)
            .header("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| {
                PluginError::Unavailable(format!("could not reach Snowflake at {}: {}", self.base, heimdall_ports::error_chain(&error)))
            })?;
        let status = response.status();
        if status == StatusCode::OK || status == StatusCode::ACCEPTED {
            return Ok(response);
        }
        let body = read_capped(response).await;
        Err(error_for(status, &body, &self.identity, self.statement_timeout))
    }
}

async fn progress_of(response: Response) -> Result<Progress, PluginError> {
    let done = response.status() == StatusCode::OK;
    let status: QueryStatus = json_of(response, "the statement's status").await?;
    Ok(if done { Progress::Done(status.statement_handle) } else { Progress::Running(status.statement_handle) })
}

async fn json_of<T: for<'de> Deserialize<'de>>(response: Response, what: &str) -> Result<T, PluginError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|error| PluginError::Unavailable(format!("lost the connection reading {what}: {}", heimdall_ports::error_chain(&error))))?;
    serde_json::from_slice(&bytes)
        .map_err(|error| PluginError::Unavailable(format!("Snowflake answered {what} with unexpected JSON: {error}")))
}

/// Reads at most [`MAX_ERROR_BODY_BYTES`] of an error answer; a broken read leaves what came.
async fn read_capped(mut response: Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ERROR_BODY_BYTES {
            break;
        }
    }
    body
}

/// What an answer other than 200 or 202 means.
fn error_for(status: StatusCode, body: &[u8], identity: &str, statement_timeout: Option<u64>) -> PluginError {
    let error: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message = error.message.clone().unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() { status.to_string() } else { text.chars().take(500).collect() }
    });
    match status.as_u16() {
        422 => match (error.code.as_deref(), statement_timeout) {
            (Some(STATEMENT_TIMEOUT_CODE), Some(seconds)) => PluginError::TimedOut { seconds },
            _ => PluginError::JobFailed { message: describe_failure(&message, &error), exit_code: None },
        },
        401 | 403 => PluginError::InvalidContext(format!(
            "Snowflake refused the key-pair authentication of {identity} (HTTP {}): {message}; \
             check the cluster's `account` and `user`, and that the user's RSA_PUBLIC_KEY is the public half of `private_key`",
            status.as_u16()
        )),
        408 | 429 | 500..=599 => {
            PluginError::Unavailable(format!("Snowflake is unavailable (HTTP {}): {message}", status.as_u16()))
        }
        _ => {
            PluginError::InvalidContext(format!("Snowflake refused the request (HTTP {}): {message}", status.as_u16()))
        }
    }
}

/// `message (Snowflake error 002003, SQL state 42S02)`.
fn describe_failure(message: &str, error: &ErrorBody) -> String {
    match (&error.code, &error.sql_state) {
        (Some(code), Some(state)) => format!("{message} (Snowflake error {code}, SQL state {state})"),
        (Some(code), None) => format!("{message} (Snowflake error {code})"),
        (None, Some(state)) => format!("{message} (SQL state {state})"),
        (None, None) => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn error(status: u16, body: Value, timeout: Option<u64>) -> PluginError {
        let body = serde_json::to_vec(&body).unwrap();
        error_for(StatusCode::from_u16(status).unwrap(), &body, "user `u` on account `a`", timeout)
    }

    #[test]
    fn a_failed_statement_keeps_snowflakes_message_code_and_sql_state() {
        let failure = json!({"code": "002003", "sqlState": "42S02", "message": "SQL compilation error: Object 'NOPE' does not exist"});
        assert_eq!(
            error(422, failure, None),
            PluginError::JobFailed {
                message:
                    "SQL compilation error: Object 'NOPE' does not exist (Snowflake error 002003, SQL state 42S02)"
                        .into(),
                exit_code: None
            }
        );
    }

    #[test]
    fn a_statement_stopped_by_its_timeout_reads_as_timed_out() {
        let failure = json!({"code": "000630", "sqlState": "57014", "message": "Statement reached its statement or warehouse timeout of 5 second(s) and was canceled."});
        assert_eq!(error(422, failure.clone(), Some(5)), PluginError::TimedOut { seconds: 5 });
        // Without a timeout of ours it was the warehouse's: still a failure, with its message.
        assert_eq!(error(422, failure, None).error_type(), PluginError::JOB_FAILED);
    }

    #[test]
    fn refused_authentication_names_who_tried() {
        for status in [401, 403] {
            let error = error(status, json!({"code": "390144", "message": "JWT token is invalid."}), None);
            assert!(
                matches!(&error, PluginError::InvalidContext(m) if m.contains("authentication of user `u` on account `a`") && m.contains("JWT token is invalid.")),
                "{error:?}"
            );
        }
    }

    #[test]
    fn throttling_timeouts_and_server_errors_are_retryable() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert_eq!(error(status, json!({}), None).error_type(), PluginError::UNAVAILABLE, "{status}");
        }
    }

    #[test]
    fn other_refusals_are_not_retried_and_keep_a_non_json_body() {
        let error = error_for(StatusCode::BAD_REQUEST, b"<html>bad binding</html>", "who", None);
        assert_eq!(
            error,
            PluginError::InvalidContext("Snowflake refused the request (HTTP 400): <html>bad binding</html>".into())
        );
    }

    #[test]
    fn the_statement_request_leaves_out_what_is_not_set() {
        let bindings = Map::from_iter([("1".to_owned(), json!({"type": "FIXED", "value": "1"}))]);
        let request = StatementRequest {
            statement: "select ?",
            timeout: Some(30),
            warehouse: Some("WH"),
            database: None,
            schema: None,
            role: Some("ANALYST"),
            bindings: Some(&bindings),
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({"statement": "select ?", "timeout": 30, "warehouse": "WH", "role": "ANALYST", "bindings": {"1": {"type": "FIXED", "value": "1"}}})
        );
    }
}
