//! The REST API: the Heimdall endpoints under `/api/v1`, the same router for `heimdall serve`
//! and for the API Lambda, with its OpenAPI document generated from the same code.
//!
//! # Layout
//! - [`router`]: `router(state)`, composing every route, and `openapi()`, the document.
//! - [`app_state`]: `AppState` (the service and how callers are identified).
//! - [`identity`]: `Identity` (loopback header, trusted proxy, JWT, API Gateway), the
//!   `Authenticated` extractor, the Host check against DNS rebinding.
//! - [`api_error`]: `ApiError`, the one place that maps errors to status codes and bodies.
//! - [`audit`]: one structured log line per state-changing request (who, what, object, outcome, from where).
//! - [`extract`]: extractors whose rejections answer in the API's error shape (`AppJson`,
//!   `AppQuery`, `JobIdPath`).
//! - [`time_limit`]: every request but a sync submit is answered within a minute (504 otherwise).
//! - [`routes`]: the handlers, one file per resource, and the web UI (`routes::ui`, assets in `ui/`).

pub mod api_error;
pub mod audit;
pub mod app_state;
pub mod extract;
pub mod identity;
pub mod router;
pub mod routes;
pub mod time_limit;

pub use app_state::AppState;
pub use identity::{Authenticated, GatewayCaller, Identity};
pub use router::{openapi, router};
