//! The web UI's files, served by the API's router: the page, its script and style, each with
//! its type and a Content-Security-Policy that allows nothing from elsewhere.

use heimdall_tests::spawn_app;

#[tokio::test]
async fn the_ui_is_served_from_the_binary_with_a_strict_policy() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let root = client.get(app.url("/ui")).send().await.unwrap();
    assert_eq!(root.status(), 308);
    assert_eq!(root.headers()["location"], "/ui/index.html");

    for (path, content_type, marker) in [
        ("/ui/index.html", "text/html; charset=utf-8", "<script src=\"app.js\""),
        ("/ui/", "text/html; charset=utf-8", "<main"),
        ("/ui/app.js", "text/javascript; charset=utf-8", "api/v1"),
        ("/ui/app.css", "text/css; charset=utf-8", "{"),
    ] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(policy.contains("default-src 'self'") && policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(policy.contains("base-uri 'none'") && policy.contains("form-action 'self'"), "{path}: {policy}");
        assert!(response.text().await.unwrap().contains(marker), "{path}");
    }
}

#[tokio::test]
async fn logs_and_results_are_never_sniffed_into_something_a_browser_runs() {
    let app = spawn_app().await;
    let job = app.submit_ok(&heimdall_tests::job("html", &["shell:echo"], serde_json::json!({"arguments": ["<script>alert(1)</script>"]}))).await;
    let id = heimdall_tests::id_of(&job);
    for suffix in ["stdout", "stderr"] {
        let response = app.get(&format!("/api/v1/job/{id}/{suffix}")).await;
        assert_eq!(response.headers()["x-content-type-options"], "nosniff", "{suffix}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"), "{suffix}");
    }
}
