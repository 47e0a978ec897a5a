//! DNS rebinding: a web page on `evil.example` whose name resolves to 127.0.0.1 can send
//! requests to a developer's local server, with its own name in `Host`. A loopback server
//! answers only requests that name it (`127.0.0.1:<port>`, `localhost:<port>`, …).

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use heimdall_domain::names;

use crate::api_error::ApiError;
use crate::app_state::AppState;
use crate::identity::Identity;

/// The `Host` values that name a server listening on `address`.
pub fn hosts_naming(address: SocketAddr) -> Vec<String> {
    let port = address.port();
    let mut hosts = vec![format!("localhost:{port}"), address.to_string()];
    hosts.push(if address.is_ipv4() { format!("[::1]:{port}") } else { format!("127.0.0.1:{port}") });
    if port == 80 {
        hosts.push("localhost".into());
        hosts.push(address.ip().to_string());
    }
    hosts
}

/// Refuses, in the loopback-header mode, requests whose `Host` is not this server.
pub async fn refuse_foreign_hosts(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Identity::LoopbackHeader { allowed_hosts, .. } = &state.identity {
        let host = request.headers().get(HOST).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
        let named = host.as_deref().is_some_and(|host| allowed_hosts.iter().any(|allowed| allowed == host));
        if !named {
            let shown = host.unwrap_or_else(|| "(none)".into());
            return ApiError::new(
                StatusCode::FORBIDDEN,
                names::FORBIDDEN,
                format!(
                    "Host `{shown}` does not name this server; use http://{} (a local server answers only its own address)",
                    allowed_hosts.first().map(String::as_str).unwrap_or("localhost")
                ),
            )
            .into_response();
        }
    }
    next.run(request).await
}
