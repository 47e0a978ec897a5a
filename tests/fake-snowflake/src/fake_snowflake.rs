//! A fake Snowflake SQL API v2 on loopback, behaving as documented for what the plugin uses:
//!
//! - every request must carry a valid key-pair JWT: RS256-signed by the registered key, `iss`
//!   `<ACCOUNT>.<USER>.SHA256:<fingerprint>`, `sub` `<ACCOUNT>.<USER>`, at most an hour long,
//!   with `X-Snowflake-Authorization-Token-Type: KEYPAIR_JWT`; otherwise 401;
//! - `POST /api/v2/statements?async=true` answers 202 with a handle (the same handle again for
//!   a `requestId` already seen with `retry=true`); a statement containing `instant` answers
//!   200 with its result at once, one containing `overloaded` answers 503;
//! - `GET /api/v2/statements/{handle}` answers 202 for the first `pending_polls` requests, then
//!   200 with the result's metadata and partition 0; a statement containing `error` answers 422
//!   instead, a canceled one 422 "SQL execution canceled";
//! - `?partition=N` answers `{"data": …}` of partition N, gzip-compressed as Snowflake does;
//! - `POST /api/v2/statements/{handle}/cancel` marks the statement canceled and records it.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::key::TestKey;

/// The account and user the fake knows, and the claims they make.
pub const ACCOUNT: &str = "myorg-acct";
pub const USER: &str = "heimdall_svc";
pub const SUBJECT: &str = "MYORG-ACCT.HEIMDALL_SVC";

/// The result every successful statement has: three columns, three partitions, six rows.
pub fn columns() -> Value {
    json!([
        {"name": "ID", "type": "fixed", "nullable": false, "precision": 38, "scale": 0},
        {"name": "NAME", "type": "text", "nullable": false, "length": 16777216},
        {"name": "NOTE", "type": "text", "nullable": true, "length": 16777216}
    ])
}

pub fn partitions() -> Vec<Value> {
    vec![
        json!([["1", "alpha", null], ["2", "beta", "x"]]),
        json!([["3", "gamma", null], ["4", "delta", "y"], ["5", "epsilon", null]]),
        json!([["6", "zeta", "z"]]),
    ]
}

/// One statement the fake was given.
#[derive(Debug, Clone)]
pub struct Statement {
    pub handle: String,
    pub text: String,
    polls_left: u32,
    pub canceled: bool,
}

/// What the fake saw, for tests to check.
#[derive(Debug, Default)]
pub struct Seen {
    pub statements: Vec<Statement>,
    /// The query parameters and JSON body of every submit.
    pub submits: Vec<(HashMap<String, String>, Value)>,
    /// `METHOD path?query` of every request that passed authentication, in order.
    pub requests: Vec<String>,
    /// Handles whose cancel arrived.
    pub canceled: Vec<String>,
    /// Requests refused with 401.
    pub refused: u32,
}

struct Shared {
    key: DecodingKey,
    issuer: String,
    pending_polls: u32,
    seen: Mutex<Seen>,
}

pub struct FakeSnowflake {
    pub base_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSnowflake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeSnowflake {
    /// Starts the fake with `registered` as the user's public key.
    pub async fn start(registered: &TestKey, pending_polls: u32) -> Self {
        let shared = Arc::new(Shared {
            key: DecodingKey::from_rsa_pem(registered.public_pem.as_bytes()).expect("a public key PEM"),
            issuer: format!("{SUBJECT}.SHA256:{}", registered.fingerprint_base64),
            pending_polls,
            seen: Mutex::new(Seen::default()),
        });
        let app = Router::new()
            .route("/api/v2/statements", post(submit))
            .route("/api/v2/statements/{handle}", get(status))
            .route("/api/v2/statements/{handle}/cancel", post(cancel))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base_url, shared, server }
    }

    /// Looks at what the fake saw.
    pub fn seen<T>(&self, look: impl FnOnce(&Seen) -> T) -> T {
        look(&self.shared.seen.lock().unwrap())
    }
}

fn snowflake_error(status: StatusCode, code: &str, sql_state: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "sqlState": sql_state, "message": message}))).into_response()
}

#[derive(Debug, Deserialize)]
struct Claims {
    iat: u64,
    exp: u64,
}

/// Checks the request as Snowflake would (headers, signature, issuer, subject, lifetime):
/// the 401 to answer when it fails.
fn refusal(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let refuse = |why: &str| {
        shared.seen.lock().unwrap().refused += 1;
        Some(snowflake_error(StatusCode::UNAUTHORIZED, "390144", "", &format!("JWT token is invalid. ({why})")))
    };
    let header_is = |name: &str, expected: &str| headers.get(name).and_then(|v| v.to_str().ok()) == Some(expected);
    if !header_is("x-snowflake-authorization-token-type", "KEYPAIR_JWT") {
        return refuse("token type");
    }
    if !header_is("accept", "application/json") {
        return refuse("accept");
    }
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !agent.starts_with("heimdall-rs/") {
        return refuse("user agent");
    }
    let Some(token) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    else {
        return refuse("no bearer token");
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[&shared.issuer]);
    validation.sub = Some(SUBJECT.to_owned());
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    match jsonwebtoken::decode::<Claims>(token, &shared.key, &validation) {
        Ok(data) if data.claims.exp > data.claims.iat && data.claims.exp - data.claims.iat <= 3600 => None,
        Ok(_) => refuse("lifetime"),
        Err(error) => refuse(&error.to_string()),
    }
}

fn record(seen: &mut Seen, method: &str, path: &str, query: &HashMap<String, String>) {
    let mut pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    let line =
        if pairs.is_empty() { format!("{method} {path}") } else { format!("{method} {path}?{}", pairs.join("&")) };
    seen.requests.push(line);
}

fn running(handle: &str) -> Response {
    let body = json!({
        "code": "333334",
        "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
        "statementHandle": handle,
        "statementStatusUrl": format!("/api/v2/statements/{handle}")
    });
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

fn finished(handle: &str) -> Response {
    let partitions = partitions();
    let info: Vec<Value> = partitions
        .iter()
        .map(|p| json!({"rowCount": p.as_array().unwrap().len(), "uncompressedSize": p.to_string().len()}))
        .collect();
    let body = json!({
        "resultSetMetaData": {"numRows": 6, "format": "jsonv2", "rowType": columns(), "partitionInfo": info},
        "data": partitions[0],
        "code": "090001",
        "statementStatusUrl": format!("/api/v2/statements/{handle}"),
        "sqlState": "00000",
        "statementHandle": handle,
        "message": "Statement executed successfully.",
        "createdOn": 1_700_000_000_000_u64
    });
    (StatusCode::OK, Json(body)).into_response()
}

async fn submit(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = refusal(&shared, &headers) {
        return refused;
    }
    let mut seen = shared.seen.lock().unwrap();
    record(&mut seen, "POST", "/api/v2/statements", &query);
    seen.submits.push((query.clone(), body.clone()));
    if query.get("async").map(String::as_str) != Some("true") {
        return snowflake_error(StatusCode::BAD_REQUEST, "391901", "", "the fake only runs async statements");
    }
    let text = body["statement"].as_str().unwrap_or_default().to_owned();
    if text.contains("overloaded") {
        return snowflake_error(StatusCode::SERVICE_UNAVAILABLE, "390400", "", "Service is busy, try again later.");
    }
    // A request id seen before, retried: the statement already started, not a new one.
    let request_id = query.get("requestId").cloned().unwrap_or_default();
    let retried = query.get("retry").map(String::as_str) == Some("true");
    let known = seen.statements.iter().position(|s| !request_id.is_empty() && s.handle.ends_with(&request_id));
    let index = match known {
        Some(index) if retried => index,
        _ => {
            let handle = format!("01b{:05}-0000-{request_id}", seen.statements.len());
            let polls_left = if text.contains("instant") { 0 } else { shared.pending_polls };
            seen.statements.push(Statement { handle, text, polls_left, canceled: false });
            seen.statements.len() - 1
        }
    };
    let statement = &seen.statements[index];
    if statement.polls_left == 0 && !statement.text.contains("error") {
        finished(&statement.handle)
    } else {
        running(&statement.handle)
    }
}

async fn status(
    State(shared): State<Arc<Shared>>,
    Path(handle): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&shared, &headers) {
        return refused;
    }
    let mut seen = shared.seen.lock().unwrap();
    record(&mut seen, "GET", &format!("/api/v2/statements/{handle}"), &query);
    let Some(statement) = seen.statements.iter_mut().find(|s| s.handle == handle) else {
        return snowflake_error(StatusCode::NOT_FOUND, "333333", "", "Statement not found.");
    };
    if statement.canceled {
        return snowflake_error(StatusCode::UNPROCESSABLE_ENTITY, "000604", "57014", "SQL execution canceled");
    }
    if statement.polls_left > 0 {
        statement.polls_left -= 1;
        return running(&handle);
    }
    if statement.text.contains("error") {
        return snowflake_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "002003",
            "42S02",
            "SQL compilation error: Object 'NOPE' does not exist",
        );
    }
    match query.get("partition").map(|p| p.parse::<usize>()) {
        None | Some(Ok(0)) => finished(&handle),
        Some(Ok(index)) if index < partitions().len() => {
            let body = json!({"data": partitions()[index]}).to_string();
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gzip.write_all(body.as_bytes()).unwrap();
            let compressed = gzip.finish().unwrap();
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json"), (header::CONTENT_ENCODING, "gzip")],
                compressed,
            )
                .into_response()
        }
        _ => snowflake_error(StatusCode::UNPROCESSABLE_ENTITY, "000709", "", "Partition out of range."),
    }
}

async fn cancel(State(shared): State<Arc<Shared>>, Path(handle): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&shared, &headers) {
        return refused;
    }
    let mut seen = shared.seen.lock().unwrap();
    record(&mut seen, "POST", &format!("/api/v2/statements/{handle}/cancel"), &HashMap::new());
    let Some(statement) = seen.statements.iter_mut().find(|s| s.handle == handle) else {
        return snowflake_error(StatusCode::NOT_FOUND, "333333", "", "Statement not found.");
    };
    statement.canceled = true;
    seen.canceled.push(handle.clone());
    let body =
        json!({"code": "000000", "sqlState": "00000", "message": "successfully canceled", "statementHandle": handle});
    (StatusCode::OK, Json(body)).into_response()
}
