//! The served OpenAPI document is the one checked in at `docs/openapi.json`.
//! After changing the API, refresh it with:
//! `UPDATE_OPENAPI=1 cargo test -p heimdall-tests --test api openapi`

use std::path::PathBuf;

use heimdall_tests::spawn_app;
use serde_json::Value;

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

#[tokio::test]
async fn the_served_openapi_document_matches_the_checked_in_one() {
    let app = spawn_app().await;
    let served = app.get_json("/api/v1/openapi.json").await;
    assert_eq!(served, serde_json::to_value(heimdall_api::openapi()).unwrap());

    let path = checked_in_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&served).unwrap() + "\n").unwrap();
    }
    let checked_in: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        served, checked_in,
        "docs/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p heimdall-tests --test api openapi"
    );
    let paths = served["paths"].as_object().unwrap();
    for route in ["/api/v1/job", "/api/v1/job/{id}", "/api/v1/job/{id}/cancel", "/api/v1/jobs", "/api/v1/commands", "/health"] {
        assert!(paths.contains_key(route), "{route} is not documented");
    }
}
