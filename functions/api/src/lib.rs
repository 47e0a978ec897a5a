//! The API Lambda: the same router as `heimdall serve`, behind API Gateway. The caller is who
//! API Gateway says it is (the authorizer's claims, or the IAM principal), never a header the
//! client sent: the router reads only the [`GatewayCaller`] this layer puts on the request.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use heimdall_api::identity::jwt::caller_from_claims;
use heimdall_api::audit::ClientSource;
use heimdall_api::{AppState, GatewayCaller, Identity, router};
use heimdall_domain::{AccessPolicy, Caller};
use heimdall_service::JobService;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use serde_json::Value;

/// The router with identity taken from the API Gateway request context; `default_user` (local
/// development only) stands in when API Gateway authenticated nobody.
pub fn app(service: Arc<JobService>, default_user: Option<String>) -> Router {
    let access = Arc::new(service.catalog_held().access().clone());
    router(AppState { service, identity: Identity::Gateway { default_user } })
        .layer(axum::middleware::from_fn(move |request: Request, next: Next| {
            let access = Arc::clone(&access);
            async move { identity_from_request_context(request, next, &access).await }
        }))
        // Each request metered: a sync job records what it cost on AWS.
        .layer(axum::middleware::from_fn(|request: Request, next: Next| heimdall_ports::usage::UsageMeter::default().scope(next.run(request))))
}

async fn identity_from_request_context(mut request: Request, next: Next, access: &AccessPolicy) -> Response {
    let caller = caller_of(&request, access);
    if let Some(source) = source_ip(&request) {
        request.extensions_mut().insert(ClientSource(source));
    }
    if let Some(caller) = caller {
        request.extensions_mut().insert(GatewayCaller(caller));
    }
    next.run(request).await
}

/// The client's address as API Gateway saw it (the audit log's "from where").
fn source_ip<B>(request: &axum::http::Request<B>) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(context) => context.identity.source_ip.clone(),
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The caller API Gateway authenticated: a JWT or Cognito claim (`username`,
/// `cognito:username`, `sub`) with its groups (`groups`, `cognito:groups`), a Lambda
/// authorizer's `principalId`, or the IAM principal (an IAM user's name, an assumed role's role
/// name unless `access.iam_principals` maps its ARN; never the session name, which the caller
/// picks).
pub fn caller_of<B>(request: &axum::http::Request<B>, access: &AccessPolicy) -> Option<Caller> {
    let context = request.request_context_ref()?;
    let from_claims = |claims: &Value| caller_from_claims(claims).ok();
    // API Gateway passes a JWT authorizer's claims as strings (arrays as `[a b]`).
    let jwt_claims = |claims: &std::collections::HashMap<String, String>| {
        Value::Object(claims.iter().map(|(name, value)| (name.clone(), Value::String(value.clone()))).collect())
    };
    let from_arn = |arn: Option<&str>| arn.and_then(|arn| access.user_for_iam_principal(arn)).map(Caller::new);
    let principal = |fields: &std::collections::HashMap<String, Value>| {
        fields.get("principalId").and_then(|v| v.as_str()).map(Caller::new)
    };
    let caller = match context {
        RequestContext::ApiGatewayV1(context) => {
            let fields = &context.authorizer.fields;
            fields
                .get("claims")
                .and_then(from_claims)
                .or_else(|| context.authorizer.jwt.as_ref().and_then(|jwt| from_claims(&jwt_claims(&jwt.claims))))
                .or_else(|| principal(fields))
                .or_else(|| from_arn(context.identity.user_arn.as_deref()))
        }
        RequestContext::ApiGatewayV2(context) => {
            let authorizer = context.authorizer.as_ref()?;
            authorizer
                .jwt
                .as_ref()
                .and_then(|jwt| from_claims(&jwt_claims(&jwt.claims)))
                .or_else(|| principal(&authorizer.fields))
                .or_else(|| from_arn(authorizer.iam.as_ref().and_then(|iam| iam.user_arn.as_deref())))
        }
        #[allow(unreachable_patterns)]
        _ => None,
    };
    caller.filter(|caller| !caller.user.trim().is_empty())
}
