//! One structured log line per state-changing request (submit, cancel, later catalog changes):
//! who (user and groups, or `-` when unauthenticated), what (method and route), which object,
//! the outcome (status and error code) and from where (the client's address). Lines go to the
//! `heimdall::audit` target: on AWS they land in the api function's log group, locally on stderr.
//!
//! The middleware owns the line; [`crate::identity::Authenticated`] fills in the caller, and a
//! handler or an error names the object by putting an [`AuditObject`] on its response.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use heimdall_domain::Caller;

/// The id of the object a state-changing request acted on, set on its response.
#[derive(Debug, Clone)]
pub struct AuditObject(pub String);

/// The error code answered, set on an error response.
#[derive(Debug, Clone, Copy)]
pub struct AuditCode(pub &'static str);

/// Where a request came from, when a hosting layer knows better than the socket (API Gateway's
/// `sourceIp`).
#[derive(Debug, Clone)]
pub struct ClientSource(pub String);

/// Where the authenticated caller of a request is written while it is handled.
#[derive(Debug, Clone, Default)]
pub struct AuditSlot(Arc<Mutex<Option<Caller>>>);

impl AuditSlot {
    pub fn record(&self, caller: &Caller) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(caller.clone());
        }
    }

    fn caller(&self) -> Option<Caller> {
        self.0.lock().ok().and_then(|slot| slot.clone())
    }
}

/// Logs every request that may change state, after it is answered.
pub async fn audit_state_changes(mut request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let source = request
        .extensions()
        .get::<ClientSource>()
        .map(|source| source.0.clone())
        .or_else(|| request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip().to_string()))
        .unwrap_or_else(|| "-".into());
    let slot = AuditSlot::default();
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    let caller = slot.caller();
    let object = response.extensions().get::<AuditObject>().map(|o| o.0.as_str()).unwrap_or("-");
    let code = response.extensions().get::<AuditCode>().map(|c| c.0).unwrap_or("-");
    let status = response.status();
    let outcome = if status.is_success() { "ok" } else if status.is_client_error() { "refused" } else { "failed" };
    tracing::info!(
        target: "heimdall::audit",
        user = caller.as_ref().map(|c| c.user.as_str()).unwrap_or("-"),
        groups = ?caller.as_ref().map(|c| c.groups.iter().cloned().collect::<Vec<_>>()).unwrap_or_default(),
        action = %format!("{method} {route}"),
        path = %path,
        object,
        outcome,
        status = status.as_u16(),
        code,
        source = %source,
        "audit"
    );
    response
}
