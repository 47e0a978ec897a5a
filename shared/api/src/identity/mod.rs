//! Who is calling, from a source the caller cannot forge. One [`Identity`] mode per server:
//!
//! - [`Identity::LoopbackHeader`]: `X-Heimdall-User`, only on a server listening on loopback and
//!   only for requests whose `Host` is that server (a DNS-rebinding page sends its own name).
//! - [`Identity::TrustedProxy`]: the header, honoured only beside the secret the proxy adds.
//! - [`Identity::Jwt`]: a bearer token verified here (issuer, audience, signature by a JWKS key).
//! - [`Identity::Gateway`]: what the hosting layer put in the request's extensions (API
//!   Gateway's authorizer, through the api function); a header the client sent is ignored.
//!
//! Every mode yields a [`Caller`] (user and groups), completed with the config's local groups.

pub mod host_check;
pub mod jwt;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use heimdall_domain::access::check_user_name;
use heimdall_domain::{Caller, names};

use crate::api_error::ApiError;
use crate::app_state::AppState;
pub use jwt::{JwtSettings, JwtVerifier};

/// The header that names the caller in the header modes.
pub const USER_HEADER: &str = "x-heimdall-user";
/// The header a trusted proxy adds to prove a request came through it.
pub const PROXY_SECRET_HEADER: &str = "x-heimdall-proxy-secret";

/// How the API learns who is calling.
#[derive(Clone)]
pub enum Identity {
    /// `X-Heimdall-User` from a loopback-only server; `allowed_hosts` are the `Host` values
    /// naming this server (others are refused before any route runs).
    LoopbackHeader { default_user: Option<String>, allowed_hosts: Arc<Vec<String>> },
    /// `X-Heimdall-User`, believed only with `X-Heimdall-Proxy-Secret: <secret>`.
    TrustedProxy { secret: Arc<str> },
    /// `Authorization: Bearer <JWT>`, verified.
    Jwt(Arc<JwtVerifier>),
    /// A [`GatewayCaller`] extension set by the hosting layer; `default_user` (local development
    /// of the function only) stands in when the gateway authenticated nobody.
    Gateway { default_user: Option<String> },
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self {
            Identity::LoopbackHeader { .. } => "loopback-header",
            Identity::TrustedProxy { .. } => "trusted-proxy",
            Identity::Jwt(_) => "jwt",
            Identity::Gateway { .. } => "gateway",
        };
        f.write_str(mode)
    }
}

/// The caller as a hosting layer established it (API Gateway's authorizer).
#[derive(Debug, Clone)]
pub struct GatewayCaller(pub Caller);

/// The authenticated caller of a request (401 when there is none), local groups included.
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = match &state.identity {
            Identity::LoopbackHeader { default_user, .. } => {
                header_user(parts)?.map(Caller::new).or_else(|| default_user.clone().map(Caller::new))
            }
            Identity::TrustedProxy { secret } => {
                let presented = parts.headers.get(PROXY_SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
                if !constant_time_eq(presented, secret.as_bytes()) {
                    return Err(unauthenticated(
                        "this server believes X-Heimdall-User only from its proxy; send the request through the proxy",
                    ));
                }
                header_user(parts)?.map(Caller::new)
            }
            Identity::Jwt(verifier) => Some(verifier.caller_of(&parts.headers).map_err(unauthenticated)?),
            Identity::Gateway { default_user } => parts
                .extensions
                .get::<GatewayCaller>()
                .map(|c| c.0.clone())
                .or_else(|| default_user.clone().map(Caller::new)),
        };
        let caller = caller.ok_or_else(|| unauthenticated(missing_identity_hint(&state.identity)))?;
        check_user_name(&caller.user).map_err(|problem| unauthenticated(format!("the caller's user name is refused: {problem}")))?;
        let caller = state.service.catalog_held().access().resolve(caller);
        if let Some(slot) = parts.extensions.get::<crate::audit::AuditSlot>() {
            slot.record(&caller);
        }
        Ok(Authenticated(caller))
    }
}

fn missing_identity_hint(identity: &Identity) -> &'static str {
    match identity {
        Identity::LoopbackHeader { .. } | Identity::TrustedProxy { .. } => {
            "say who you are with the header `X-Heimdall-User: <user name>`"
        }
        Identity::Jwt(_) => "send a token with the header `Authorization: Bearer <JWT>`",
        Identity::Gateway { .. } => "the request carries no authenticated identity; send the token or signature the deployment asks for",
    }
}

/// The trimmed `X-Heimdall-User`, if sent and not blank (checked as every mode's user is).
fn header_user(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(value) = parts.headers.get(USER_HEADER) else { return Ok(None) };
    let text = value.to_str().map_err(|_| unauthenticated("the X-Heimdall-User header must be plain ASCII text"))?;
    let user = text.trim();
    Ok((!user.is_empty()).then(|| user.to_owned()))
}

/// Compares secrets without leaking, through timing, how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, names::UNAUTHENTICATED, message)
}
