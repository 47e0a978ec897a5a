//! moto's Step Functions engine sends every AWS call it makes to `MOTO_PORT`: Lambda Task
//! invocations (`POST /2015-03-31/functions/{url-encoded ARN}/invocations`) and service
//! integrations alike. This router answers the invocations by running the registered
//! function's handler in-process, in the Lambda runtime's error shape
//! (`X-Amz-Function-Error: Unhandled`, `{"errorType", "errorMessage"}`), and forwards
//! everything else to moto unchanged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// What a function answers: its JSON result, or `(errorType, errorMessage)`.
pub type LambdaResult = Result<Value, (String, String)>;
/// A function the router can invoke.
pub type LambdaHandler = Arc<dyn Fn(Value) -> BoxFuture<'static, LambdaResult> + Send + Sync>;

/// The functions this router runs, by name (the last part of their ARN).
#[derive(Clone, Default)]
pub struct LambdaRouter {
    functions: Arc<Mutex<HashMap<String, LambdaHandler>>>,
    invocations: Arc<Mutex<Vec<String>>>,
    /// Every forwarded AWS call, as `service:Operation`, with the app name its client sent
    /// (`app/<name>` in its user agent), so callers count their own calls apart.
    forwarded: Arc<Mutex<Vec<(String, String)>>>,
    /// Answers given instead of moto's, by `METHOD path` (for states moto never reaches, like
    /// an EMR on EKS job run that completes or fails).
    overrides: Arc<Mutex<HashMap<String, Value>>>,
}

#[derive(Clone)]
struct RouterState {
    router: LambdaRouter,
    moto: String,
    client: reqwest::Client,
}

impl LambdaRouter {
    pub fn register(&self, name: &str, handler: LambdaHandler) {
        self.lock_functions().insert(name.to_owned(), handler);
    }

    /// How many times `name` was invoked.
    pub fn invocations_of(&self, name: &str) -> usize {
        self.invocations.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|n| *n == name).count()
    }

    /// From now on, answers `method path` (no query string) with `answer` instead of moto.
    pub fn override_answer(&self, method: &str, path: &str, answer: Value) {
        self.overrides.lock().unwrap_or_else(|p| p.into_inner()).insert(format!("{method} {path}"), answer);
    }

    /// The AWS calls forwarded so far from clients whose app name is `app`, as
    /// `service:Operation`, in order.
    pub fn forwarded_calls_of(&self, app: &str) -> Vec<String> {
        self.forwarded.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|(from, _)| from == app).map(|(_, call)| call.clone()).collect()
    }

    fn lock_functions(&self) -> std::sync::MutexGuard<'_, HashMap<String, LambdaHandler>> {
        self.functions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The HTTP app: invocations here, the rest forwarded to `moto` (its base URL).
    pub fn app(&self, moto: impl Into<String>) -> axum::Router {
        axum::Router::new()
            .route("/2015-03-31/functions/{function}/invocations", axum::routing::post(invoke))
            .fallback(forward)
            .with_state(RouterState { router: self.clone(), moto: moto.into(), client: reqwest::Client::new() })
    }
}

async fn invoke(State(state): State<RouterState>, Path(function): Path<String>, body: Bytes) -> Response {
    let name = function.rsplit(':').next().unwrap_or(&function).to_owned();
    let handler = state.router.lock_functions().get(&name).cloned();
    let Some(handler) = handler else {
        let message = format!("Function not found: {function}");
        return (StatusCode::NOT_FOUND, axum::Json(json!({"Type": "User", "Message": message}))).into_response();
    };
    state.router.invocations.lock().unwrap_or_else(|p| p.into_inner()).push(name);
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match handler(payload).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err((error_type, error_message)) => {
            let mut headers = HeaderMap::new();
            headers.insert("X-Amz-Function-Error", HeaderValue::from_static("Unhandled"));
            let body = json!({"errorType": error_type, "errorMessage": error_message});
            (StatusCode::OK, headers, axum::Json(body)).into_response()
        }
    }
}

/// The `app/<name>` an AWS SDK client puts in its user agent (empty when none).
fn app_name(parts: &axum::http::request::Parts) -> String {
    ["x-amz-user-agent", "user-agent"]
        .iter()
        .filter_map(|name| parts.headers.get(*name).and_then(|v| v.to_str().ok()))
        .flat_map(str::split_whitespace)
        .find_map(|token| token.strip_prefix("app/"))
        .unwrap_or_default()
        .to_owned()
}

/// `dynamodb:PutItem`, `sqs:SendMessage`, `s3:PUT`…: the signing scope names the service, the
/// JSON protocols' `X-Amz-Target` the operation (S3, a REST protocol, by its method).
fn call_name(parts: &axum::http::request::Parts) -> String {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let service = header("authorization")
        .split("Credential=")
        .nth(1)
        .and_then(|credential| credential.split('/').nth(3))
        .unwrap_or("unknown");
    let operation = match header("x-amz-target").rsplit_once('.') {
        Some((_, operation)) => operation.to_owned(),
        None => parts.method.to_string(),
    };
    format!("{service}:{operation}")
}

async fn forward(State(state): State<RouterState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    state.router.forwarded.lock().unwrap_or_else(|p| p.into_inner()).push((app_name(&parts), call_name(&parts)));
    let overridden = state.router.overrides.lock().unwrap_or_else(|p| p.into_inner()).get(&format!("{} {}", parts.method, parts.uri.path())).cloned();
    if let Some(answer) = overridden {
        return axum::Json(answer).into_response();
    }
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::BAD_REQUEST, "unreadable body").into_response();
    };
    let mut forwarded = state.client.request(parts.method, format!("{}{path}", state.moto)).body(body);
    for (name, value) in &parts.headers {
        if name != "host" {
            forwarded = forwarded.header(name, value);
        }
    }
    match forwarded.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let bytes = answer.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            for (name, value) in &headers {
                if name != "content-length" && name != "transfer-encoding" {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}
