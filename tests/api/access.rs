//! Tenants apart: a job is its owner's (others get the 404 of a job that does not exist),
//! admins see and cancel everything, a request says who it is or gets 401, identity cannot be
//! forged (Host check, proxy secret, verified tokens), and the catalog never shows a secret.

use std::time::Duration;

use heimdall_cli::serve::{ServeAuth, ServeSettings, run};
use heimdall_fake_snowflake::key::TestKey;
use heimdall_tests::{id_of, job, offline_aws_config, spawn_app, spawn_app_tuned, spawn_app_with_auth, test_config};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A finished sync job of alice's, with stdout and a result.
async fn alices_job(app: &heimdall_tests::TestApp) -> String {
    let response = app.submit_job_as("alice", &job("private", &["shell:table"], json!({}))).await;
    assert_eq!(response.status(), 200);
    id_of(&response.json().await.unwrap())
}

#[tokio::test]
async fn another_user_gets_404_for_the_job_and_every_sub_resource_as_if_it_did_not_exist() {
    // GIVEN a job of alice's
    let app = spawn_app().await;
    let id = alices_job(&app).await;
    let missing = uuid_like_missing();
    for suffix in ["", "/status", "/stdout", "/stderr", "/result"] {
        // WHEN alice reads it, she gets it; WHEN bob does, it does not exist for him
        assert_eq!(app.get_as("alice", &format!("/api/v1/job/{id}{suffix}")).await.status(), 200, "alice {suffix}");
        let bob = app.get_as("bob", &format!("/api/v1/job/{id}{suffix}")).await;
        assert_eq!(bob.status(), 404, "bob {suffix}");
        let body: Value = bob.json().await.unwrap();
        assert_eq!(body["code"], "NOT_FOUND");
        // THEN the answer is the one for an id nobody has (nothing confirms the id exists)
        let nobody: Value = app.get_as("bob", &format!("/api/v1/job/{missing}{suffix}")).await.json().await.unwrap();
        assert_eq!(body["error"].as_str().unwrap().replace(&id, "ID"), nobody["error"].as_str().unwrap().replace(&missing, "ID"));
    }
    // AND bob may not cancel it either (404, not 403)
    assert_eq!(app.cancel_job_as("bob", &id).await.status(), 404);
}

fn uuid_like_missing() -> String {
    "01890000-0000-7000-8000-000000000000".to_owned()
}

#[tokio::test]
async fn jobs_lists_only_the_callers_jobs_and_a_filter_on_someone_else_finds_nothing() {
    let app = spawn_app().await;
    let alices = alices_job(&app).await;
    let bobs = id_of(&app.submit_job_as("bob", &job("mine", &["type:ping"], json!({}))).await.json().await.unwrap());
    let listed = |body: Value| body["data"].as_array().unwrap().iter().map(id_of).collect::<Vec<_>>();
    let as_bob: Value = app.get_as("bob", "/api/v1/jobs").await.json().await.unwrap();
    assert_eq!(listed(as_bob), vec![bobs.clone()]);
    let snooping: Value = app.get_as("bob", "/api/v1/jobs?username=alice").await.json().await.unwrap();
    assert_eq!(listed(snooping), Vec::<String>::new());
    // an admin (by name, or through a group) lists everyone's
    for admin in ["admin-alice", "dave"] {
        let all = listed(app.get_as(admin, "/api/v1/jobs").await.json().await.unwrap());
        assert!(all.contains(&alices) && all.contains(&bobs), "{admin}: {all:?}");
    }
}

#[tokio::test]
async fn an_admin_reads_and_cancels_any_job_and_the_cancel_records_who() {
    let app = spawn_app().await;
    let body = job("nap", &["shell:sleep"], json!({"arguments": ["30"]}));
    let id = id_of(&app.submit_job_as("alice", &body).await.json().await.unwrap());
    assert_eq!(app.get_as("dave", &format!("/api/v1/job/{id}")).await.status(), 200, "dave is in group platform, an admin");
    let canceled = app.cancel_job_as("dave", &id).await;
    assert_eq!(canceled.status(), 200);
    app.wait_for_status_as("alice", &id, Duration::from_secs(30), heimdall_tests::is_final).await;
    let job: Value = app.get_as("alice", &format!("/api/v1/job/{id}")).await.json().await.unwrap();
    assert_eq!(job["status"], "CANCELED");
    assert_eq!(job["canceled_by"], "dave");
}

#[tokio::test]
async fn with_job_visibility_all_everyone_reads_every_job_but_cancels_only_their_own() {
    let config = test_config().replace("  admins: [admin-alice", "  job_visibility: all\n  admins: [admin-alice");
    let app = spawn_app_tuned(&config, |_| {}).await;
    let body = job("nap", &["shell:sleep"], json!({"arguments": ["30"]}));
    let id = id_of(&app.submit_job_as("alice", &body).await.json().await.unwrap());
    assert_eq!(app.get_as("bob", &format!("/api/v1/job/{id}")).await.status(), 200);
    assert_eq!(app.cancel_job_as("bob", &id).await.status(), 403);
    assert_eq!(app.cancel_job_as("alice", &id).await.status(), 200);
}

#[tokio::test]
async fn without_an_identity_every_api_route_is_401_but_status_names_and_the_document() {
    let app = spawn_app().await;
    let id = alices_job(&app).await;
    for path in [
        format!("/api/v1/job/{id}"),
        format!("/api/v1/job/{id}/stdout"),
        format!("/api/v1/job/{id}/result"),
        "/api/v1/jobs".into(),
        "/api/v1/commands".into(),
        "/api/v1/clusters".into(),
        "/api/v1/command/echo".into(),
        "/api/v1/cluster/warehouse".into(),
    ] {
        let response = app.anonymous.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "UNAUTHENTICATED", "{path}");
    }
    for path in ["/api/v1/job/statuses", "/api/v1/command/statuses", "/api/v1/cluster/statuses", "/api/v1/openapi.json", "/health"] {
        assert_eq!(app.anonymous.get(app.url(path)).send().await.unwrap().status(), 200, "{path}");
    }
}

#[tokio::test]
async fn allowed_callers_may_name_a_group() {
    let app = spawn_app().await;
    let request = job("env", &["shell:with-secrets"], json!({}));
    assert_eq!(app.submit_job_as("bob", &request).await.status(), 200, "bob is in data-eng");
    assert_eq!(app.submit_job_as("carol", &request).await.status(), 403);
}

#[tokio::test]
async fn the_catalog_never_shows_a_secret_but_shows_where_it_is_kept() {
    let app = spawn_app().await;
    let commands = app.get("/api/v1/commands").await.text().await.unwrap();
    let command = app.get("/api/v1/command/with-secrets").await.text().await.unwrap();
    let clusters = app.get("/api/v1/clusters").await.text().await.unwrap();
    let cluster: Value = app.get_json("/api/v1/cluster/warehouse").await;
    for (what, text) in [("commands", &commands), ("command", &command), ("clusters", &clusters), ("cluster", &cluster.to_string())] {
        for secret in ["hunter2", "s3cr3t-pw", "tok-123"] {
            assert!(!text.contains(secret), "{what} shows `{secret}`");
        }
    }
    assert_eq!(cluster["context"]["password"], "***");
    assert_eq!(cluster["context"]["nested"]["api_token"], "***");
    assert_eq!(cluster["context"]["private_key"], "ssm:/heimdall/warehouse/key");
    assert_eq!(cluster["context"]["account"], "acme");
    let command: Value = serde_json::from_str(&command).unwrap();
    assert_eq!(command["context"]["env"], json!({"DB_URL": "***", "LC_ALL": "***"}));
}

#[tokio::test]
async fn a_request_naming_another_host_is_refused_so_dns_rebinding_cannot_drive_the_server() {
    let app = spawn_app().await;
    let port = app.base_url.rsplit(':').next().unwrap().to_owned();
    let with_host = |host: String| app.client.get(app.url("/api/v1/jobs")).header("Host", host).send();
    let evil = with_host(format!("evil.example:{port}")).await.unwrap();
    assert_eq!(evil.status(), 403);
    let body: Value = evil.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("evil.example"), "{body}");
    assert_eq!(with_host(format!("localhost:{port}")).await.unwrap().status(), 200);
    assert_eq!(with_host(format!("127.0.0.1:{port}")).await.unwrap().status(), 200);
    assert_eq!(with_host("127.0.0.1:1".into()).await.unwrap().status(), 403, "another port is another server");
}

#[tokio::test]
async fn header_identity_is_refused_at_start_off_loopback() {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let settings = ServeSettings {
        data_dir: scratch.path().to_owned(),
        config: None,
        auth: ServeAuth::Header { default_user: None },
        max_sync_jobs: heimdall_service::ServiceSettings::DEFAULT_MAX_SYNC_JOBS,
        shutdown_grace: Duration::from_secs(1),
        watch_dir: None,
        watch_interval: Duration::from_secs(1),
        retention: None,
        janitor_interval: heimdall_cli::serve::DEFAULT_JANITOR_INTERVAL,
        aws: Some(offline_aws_config()),
    };
    let error = run(listener, settings, async {}).await.unwrap_err().to_string();
    assert!(error.contains("--auth jwt") && error.contains("--auth trusted-proxy"), "{error}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_header_counts_only_beside_the_proxys_secret() {
    let secret = "proxy-secret-0123456789";
    let app = spawn_app_with_auth(test_config(), ServeAuth::TrustedProxy { secret: secret.into() }).await;
    let request = job("p", &["type:ping"], json!({}));
    let forged = app.client.post(app.url("/api/v1/job")).json(&request).send().await.unwrap();
    assert_eq!(forged.status(), 401, "a header alone is not believed");
    let wrong = app.client.post(app.url("/api/v1/job")).header("X-Heimdall-Proxy-Secret", "guess").json(&request).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let proxied = app.client.post(app.url("/api/v1/job")).header("X-Heimdall-Proxy-Secret", secret).json(&request).send().await.unwrap();
    assert_eq!(proxied.status(), 200);
    let job: Value = proxied.json().await.unwrap();
    assert_eq!(job["user"], heimdall_tests::USER);
}

fn token(claims: Value) -> String {
    let key = EncodingKey::from_rsa_pem(TestKey::get().private_pem.as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key".into());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test]
async fn with_jwt_auth_only_a_verified_token_names_the_caller_and_its_groups_count() {
    // GIVEN a server verifying tokens against a JWKS file
    let jwks_dir = tempfile::tempdir().unwrap();
    let jwks = jwks_dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [TestKey::get().public_jwk]}).to_string()).unwrap();
    let auth = ServeAuth::Jwt { issuer: "https://issuer.test".into(), audience: "heimdall".into(), jwks: jwks.display().to_string() };
    let app = spawn_app_with_auth(test_config(), auth).await;
    let exp = heimdall_domain::clock::now_epoch_seconds() + 600;
    let good = token(json!({"iss": "https://issuer.test", "aud": "heimdall", "exp": exp, "username": "erin", "cognito:groups": ["platform"]}));
    let request = job("p", &["type:ping"], json!({}));
    let submit = |bearer: Option<String>| {
        let builder = app.anonymous.post(app.url("/api/v1/job")).header("X-Heimdall-User", "mallory").json(&request);
        match bearer {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
        .send()
    };
    // WHEN a request carries only the header, or a token for another audience, or an expired one
    assert_eq!(submit(None).await.unwrap().status(), 401, "the header is not an identity here");
    let other_audience = token(json!({"iss": "https://issuer.test", "aud": "other", "exp": exp, "username": "erin"}));
    assert_eq!(submit(Some(other_audience)).await.unwrap().status(), 401);
    let expired = token(json!({"iss": "https://issuer.test", "aud": "heimdall", "exp": exp - 7200, "username": "erin"}));
    assert_eq!(submit(Some(expired)).await.unwrap().status(), 401);
    let unsigned = format!("{}.", good.rsplit_once('.').unwrap().0);
    assert_eq!(submit(Some(unsigned)).await.unwrap().status(), 401);
    // THEN only the verified token counts: the job is erin's, whatever the header said
    let answered = submit(Some(good.clone())).await.unwrap();
    assert_eq!(answered.status(), 200);
    let job: Value = answered.json().await.unwrap();
    assert_eq!(job["user"], "erin");
    // AND her token's group makes her an admin (group:platform): she lists other users' jobs
    let other = app
        .anonymous
        .post(app.url("/api/v1/job"))
        .bearer_auth(token(json!({"iss": "https://issuer.test", "aud": "heimdall", "exp": exp, "sub": "frank"})))
        .json(&request)
        .send()
        .await
        .unwrap();
    let other_id = id_of(&other.json().await.unwrap());
    let listed: Value = app.anonymous.get(app.url("/api/v1/jobs")).bearer_auth(good).send().await.unwrap().json().await.unwrap();
    assert!(listed["data"].as_array().unwrap().iter().any(|j| id_of(j) == other_id), "{listed}");
}

#[tokio::test]
async fn with_jwt_auth_the_keys_may_come_from_a_jwks_url() {
    // GIVEN an identity provider publishing its keys over HTTP
    let jwks = json!({"keys": [TestKey::get().public_jwk]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
    let provider = axum::Router::new().route("/.well-known/jwks.json", axum::routing::get(move || async move { axum::Json(jwks) }));
    tokio::spawn(async move { axum::serve(listener, provider).await });
    // WHEN the server reads them at start
    let auth = ServeAuth::Jwt { issuer: "https://issuer.test".into(), audience: "heimdall".into(), jwks: url };
    let app = spawn_app_with_auth(test_config(), auth).await;
    // THEN a token they verify names the caller
    let exp = heimdall_domain::clock::now_epoch_seconds() + 600;
    let bearer = token(json!({"iss": "https://issuer.test", "aud": "heimdall", "exp": exp, "sub": "gina"}));
    let answered = app.anonymous.post(app.url("/api/v1/job")).bearer_auth(bearer).json(&job("p", &["type:ping"], json!({}))).send().await.unwrap();
    assert_eq!(answered.status(), 200);
    assert_eq!(answered.json::<Value>().await.unwrap()["user"], "gina");
}
