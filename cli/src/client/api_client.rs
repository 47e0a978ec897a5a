//! Requests to the REST API as one caller, and its answers: JSON, or an error in one line.

use std::fmt;
use std::time::SystemTime;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::args::Connection;
use crate::client::sigv4::SigV4Signer;

/// What went wrong with a request, said in one line.
#[derive(Debug)]
pub enum ClientError {
    /// The API answered an error (`{"error", "code"}`).
    Api { status: StatusCode, code: String, message: String },
    /// No answer, or an answer that is not the API's.
    Transport(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Api { status, code, message } => write!(f, "{message} (HTTP {}, {code})", status.as_u16()),
            ClientError::Transport(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ClientError {}

/// A part of a log: its bytes and the log's size so far (when the server said it).
#[derive(Debug)]
pub struct LogPart {
    pub bytes: Vec<u8>,
    pub total: Option<u64>,
}

/// The API at one base URL, as one caller.
pub struct ApiClient {
    base_url: String,
    user: Option<String>,
    token: Option<String>,
    signer: Option<SigV4Signer>,
    http: reqwest::Client,
}

impl ApiClient {
    pub async fn new(connection: &Connection) -> anyhow::Result<Self> {
        let signer = if connection.sigv4 { Some(SigV4Signer::from_environment().await?) } else { None };
        Ok(Self {
            base_url: connection.service_url.trim_end_matches('/').to_owned(),
            user: connection.user.clone(),
            token: connection.token.clone(),
            signer,
            http: reqwest::Client::builder().user_agent(concat!("heimdall-cli/", env!("CARGO_PKG_VERSION"))).build()?,
        })
    }

    pub async fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        json_of(self.send(Method::GET, path, None, None).await?).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        json_of(self.send(Method::POST, path, Some(body.to_string().into_bytes()), None).await?).await
    }

    /// A log from byte `from` on (all of it when 0); empty when nothing was written past it.
    pub async fn get_log(&self, path: &str, from: u64) -> Result<LogPart, ClientError> {
        let range = (from > 0).then(|| format!("bytes={from}-"));
        let response = self.send(Method::GET, path, None, range.as_deref()).await?;
        let status = response.status();
        let total = response
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit('/').next())
            .and_then(|total| total.parse().ok());
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            return Ok(LogPart { bytes: Vec::new(), total });
        }
        if !status.is_success() {
            return Err(api_error(response).await);
        }
        let bytes = response.bytes().await.map_err(|error| ClientError::Transport(format!("the answer broke off: {error}")))?;
        Ok(LogPart { bytes: bytes.to_vec(), total })
    }

    async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>, range: Option<&str>) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{path}", self.base_url);
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(user) = &self.user {
            headers.push(("x-heimdall-user".into(), user.clone()));
        }
        if let Some(token) = &self.token {
            headers.push(("authorization".into(), format!("Bearer {token}")));
        }
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        if let Some(range) = range {
            headers.push(("range".into(), range.to_owned()));
        }
        if let Some(signer) = &self.signer {
            let host = reqwest::Url::parse(&url)
                .ok()
                .and_then(|u| u.host_str().map(|h| match u.port() {
                    Some(port) => format!("{h}:{port}"),
                    None => h.to_owned(),
                }))
                .ok_or_else(|| ClientError::Transport(format!("`{url}` is not a URL; check --service-url")))?;
            headers.push(("host".into(), host));
            let signing: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let signed = signer
                .headers(method.as_str(), &url, &signing, body.as_deref().unwrap_or_default(), SystemTime::now())
                .map_err(|error| ClientError::Transport(format!("{error:#}")))?;
            headers.extend(signed);
        }
        let mut request = self.http.request(method, &url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|error| {
            ClientError::Transport(format!("cannot reach {}: {}; check --service-url or HEIMDALL_URL", self.base_url, root_cause(&error)))
        })?;
        Ok(response)
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

async fn json_of(response: reqwest::Response) -> Result<Value, ClientError> {
    if !response.status().is_success() {
        return Err(api_error(response).await);
    }
    response.json().await.map_err(|error| ClientError::Transport(format!("the answer is not JSON: {error}")))
}

/// The API's `{"error", "code"}`, or what the answer was when it is not that.
async fn api_error(response: reqwest::Response) -> ClientError {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<Value>(&text) {
        Ok(body) if body.get("error").is_some() => ClientError::Api {
            status,
            code: body["code"].as_str().unwrap_or("UNKNOWN").to_owned(),
            message: body["error"].as_str().map(str::to_owned).unwrap_or_else(|| body["error"].to_string()),
        },
        // API Gateway's own answers ({"message": "Unauthorized"}) and anything else.
        Ok(body) if body.get("message").is_some() => ClientError::Api {
            status,
            code: "GATEWAY".into(),
            message: body["message"].as_str().unwrap_or_default().to_owned(),
        },
        _ => ClientError::Transport(format!("HTTP {}: {}", status.as_u16(), text.chars().take(200).collect::<String>())),
    }
}
