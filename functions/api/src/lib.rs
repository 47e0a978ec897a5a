//! The API Lambda: the same router as `heimdall serve`, behind API Gateway. The caller is who
//! API Gateway says it is (the authorizer's claims, or the IAM principal), never a header the
//! client sent: that header is removed before the router sees the request.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use heimdall_api::extract::USER_HEADER;
use heimdall_api::{AppState, Identity, router};
use heimdall_service::JobService;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

/// The router with identity taken from the API Gateway request context; `default_user` (local
/// development only) stands in when API Gateway authenticated nobody.
pub fn app(service: Arc<JobService>, default_user: Option<String>) -> Router {
    router(AppState { service, identity: Identity::Header { default_user } })
        .layer(axum::middleware::from_fn(identity_from_request_context))
}

async fn identity_from_request_context(mut request: Request, next: Next) -> Response {
    let caller = caller_of(&request);
    let headers = request.headers_mut();
    headers.remove(USER_HEADER);
    if let Some(value) = caller.and_then(|user| HeaderValue::from_str(&user).ok()) {
        headers.insert(USER_HEADER, value);
    }
    next.run(request).await
}

/// The user API Gateway authenticated: a JWT or Cognito claim (`username`, `cognito:username`,
/// `sub`), a Lambda authorizer's `principalId`, or the IAM principal (the last part of its ARN).
pub fn caller_of<B>(request: &axum::http::Request<B>) -> Option<String> {
    let context = request.request_context_ref()?;
    let from_claims = |claims: &dyn Fn(&str) -> Option<String>| {
        ["username", "cognito:username", "sub"].iter().find_map(|name| claims(name))
    };
    let from_arn = |arn: &Option<String>| arn.as_deref().and_then(|arn| arn.rsplit(['/', ':']).next()).map(str::to_owned);
    let caller = match context {
        RequestContext::ApiGatewayV1(context) => {
            let fields = &context.authorizer.fields;
            let claim = |name: &str| fields.get("claims").and_then(|c| c.get(name)).and_then(|v| v.as_str()).map(str::to_owned);
            let jwt = |name: &str| context.authorizer.jwt.as_ref().and_then(|j| j.claims.get(name).cloned());
            from_claims(&claim)
                .or_else(|| from_claims(&jwt))
                .or_else(|| fields.get("principalId").and_then(|v| v.as_str()).map(str::to_owned))
                .or_else(|| from_arn(&context.identity.user_arn))
        }
        RequestContext::ApiGatewayV2(context) => {
            let authorizer = context.authorizer.as_ref()?;
            let jwt = |name: &str| authorizer.jwt.as_ref().and_then(|j| j.claims.get(name).cloned());
            from_claims(&jwt)
                .or_else(|| authorizer.fields.get("principalId").and_then(|v| v.as_str()).map(str::to_owned))
                .or_else(|| from_arn(&authorizer.iam.as_ref().and_then(|iam| iam.user_arn.clone())))
        }
        #[allow(unreachable_patterns)]
        _ => None,
    };
    caller.filter(|user| !user.trim().is_empty())
}
