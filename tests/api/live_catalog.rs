//! The live catalog on `heimdall serve`: admins change commands and clusters at run time
//! (Heimdall v1.6's `PUT` routes) and the next job routes with the change; clusters register
//! themselves with a TTL; health checks take a failing cluster out of routing and back.

use std::time::{Duration, Instant};

use heimdall_tests::{TestApp, USER, job, offline_aws_config, spawn_app, spawn_app_on, spawn_app_tuned, spawn_app_with, test_config};
use serde_json::{Value, json};

const ADMIN: &str = "admin-alice";

async fn put(app: &TestApp, user: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = app.client.put(app.url(path)).header("X-Heimdall-User", user).json(body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app.get(path).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// A job request matching `command_criteria` on any cluster (no cluster criteria).
fn job_anywhere(name: &str, command_criteria: &[&str]) -> Value {
    let mut body = job(name, command_criteria, json!({}));
    body["cluster_criteria"] = json!([]);
    body
}

/// Where `body` would run (`POST /api/v1/job/route`).
async fn preview(app: &TestApp, body: &Value) -> Value {
    app.client.post(app.url("/api/v1/job/route")).json(body).send().await.unwrap().json().await.unwrap()
}

/// Polls `path` until `done` holds for its answer (status, body), or fails after `timeout`.
async fn wait_for(app: &TestApp, path: &str, timeout: Duration, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, body) = get(app, path).await;
        if done(status, &body) {
            return (status, body);
        }
        assert!(Instant::now() < deadline, "{path} never reached the expected answer; last: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_command_an_admin_puts_runs_the_next_job_and_records_who_changed_it() {
    let app = spawn_app().await;
    let hello = json!({"name": "hello", "version": "1.0", "plugin": "ping", "is_sync": true, "tags": ["type:hello"], "cluster_tags": ["type:localhost"]});

    let (status, command) = put(&app, ADMIN, "/api/v1/command/hello", &hello).await;

    assert_eq!(status, 200, "{command}");
    assert_eq!((command["id"].as_str(), command["user"].as_str(), command["status"].as_str()), (Some("hello"), Some(ADMIN), Some("ACTIVE")));
    assert!(command["tags"].as_array().unwrap().contains(&json!("_id:hello")), "{command}");
    let answer = app.submit_ok(&job("greet", &["type:hello"], json!({}))).await;
    assert_eq!((answer["command_id"].as_str(), answer["status"].as_str()), (Some("hello"), Some("SUCCEEDED")), "{answer}");

    // What GET answers can be sent back: timestamps and system tags are ignored.
    let (_, read) = get(&app, "/api/v1/command/hello").await;
    let mut changed = read.clone();
    changed["description"] = json!("says hello");
    let (status, updated) = put(&app, ADMIN, "/api/v1/command/hello", &changed).await;
    assert_eq!((status, updated["description"].as_str()), (200, Some("says hello")), "{updated}");
    assert_eq!(updated["created_at"], read["created_at"], "an update keeps the creation time");
    let listed = app.get_json("/api/v1/commands?id=hello").await;
    assert_eq!(listed["data"][0]["description"], "says hello");
}

#[tokio::test]
async fn only_admins_change_the_catalog_and_every_problem_of_a_put_is_named() {
    let app = spawn_app().await;
    let body = json!({"name": "x", "version": "1", "plugin": "ping"});

    let (status, error) = put(&app, USER, "/api/v1/command/x", &body).await;
    assert_eq!((status, error["code"].as_str()), (403, Some("FORBIDDEN")), "{error}");
    assert!(error["error"].as_str().unwrap().contains("access.admins"), "{error}");
    let (status, _) = put(&app, USER, "/api/v1/command/ping-0.0.1/status", &json!({"status": "inactive"})).await;
    assert_eq!(status, 403);
    assert_eq!(app.get_json("/api/v1/command/ping-0.0.1/status").await["status"], "ACTIVE", "a refused change changes nothing");

    let (status, error) = put(&app, ADMIN, "/api/v1/command/x", &json!({"name": "x", "version": "", "plugin": "warp", "tags": ["_mine:y"]})).await;
    assert_eq!(status, 400, "{error}");
    let message = error["error"].as_str().unwrap();
    for needle in ["field `version` must not be empty", "field `tags[0]`"] {
        assert!(message.contains(needle), "`{needle}` missing from {message}");
    }
    let (status, error) = put(&app, ADMIN, "/api/v1/command/x", &json!({"name": "x", "version": "1", "plugin": "warp"})).await;
    assert!(status == 400 && error["error"].as_str().unwrap().contains("unknown plugin `warp`"), "{error}");
    let (status, error) = put(&app, ADMIN, "/api/v1/command/x", &json!({"id": "y", "name": "x", "version": "1", "plugin": "ping"})).await;
    assert!(status == 400 && error["error"].as_str().unwrap().contains("is not the path's"), "{error}");
    let (status, error) = put(&app, ADMIN, "/api/v1/command/x", &json!({"name": "x", "version": "1", "plugin": "ping", "colour": "red"})).await;
    assert!(status == 400 && error["error"].as_str().unwrap().contains("colour"), "{error}");
    let (status, error) = put(&app, ADMIN, "/api/v1/command/x", &json!({"name": "x", "version": "1", "plugin": "shell", "context": {"command": []}})).await;
    assert!(status == 400 && error["error"].as_str().unwrap().contains("non-empty argv"), "{error}");
    let (status, error) = put(&app, ADMIN, "/api/v1/cluster/warehouse", &json!({"name": "warehouse", "version": "1", "context": {"password": "***"}})).await;
    assert!(status == 400 && error["error"].as_str().unwrap().contains("hides a secret"), "{error}");
    let (status, _) = put(&app, ADMIN, "/api/v1/command/nope/status", &json!({"status": "inactive"})).await;
    assert_eq!(status, 404);
    let (status, error) = put(&app, ADMIN, "/api/v1/command/ping-0.0.1/status", &json!({"status": "paused"})).await;
    assert!(status == 400 && error["error"].as_str().unwrap().contains("active, inactive or deleted"), "{error}");
    assert_eq!(app.get(&"/api/v1/command/x".to_string()).await.status(), 404, "nothing refused was stored");
}

#[tokio::test]
async fn a_deactivated_command_is_no_longer_picked_and_comes_back_when_activated() {
    let app = spawn_app().await;

    let (status, answer) = put(&app, "dave", "/api/v1/command/canary-stable/status", &json!({"status": "INACTIVE"})).await;

    assert_eq!((status, answer["status"].as_str()), (200, Some("INACTIVE")), "dave is an admin through group platform: {answer}");
    let (_, read) = get(&app, "/api/v1/command/canary-stable/status").await;
    assert_eq!((read["status"].as_str(), read["updated_at"].as_i64()), (Some("INACTIVE"), answer["updated_at"].as_i64()));
    for _ in 0..20 {
        let answer = app.submit_ok(&job("canary", &["type:canary"], json!({}))).await;
        assert_eq!(answer["command_id"], "canary-new", "the inactive command was picked");
    }
    let plan = preview(&app, &job("canary", &["type:canary"], json!({}))).await;
    assert_eq!(plan["candidates"].as_array().unwrap().len(), 1, "{plan}");
    assert!(plan["excluded"].as_array().unwrap().iter().any(|e| e["command_id"] == "canary-stable" && e["reason"] == "the command is INACTIVE"), "{plan}");

    put(&app, ADMIN, "/api/v1/command/canary-stable/status", &json!({"status": "active"})).await;
    let plan = preview(&app, &job("canary", &["type:canary"], json!({}))).await;
    assert_eq!(plan["candidates"].as_array().unwrap().len(), 2, "{plan}");
}

#[tokio::test]
async fn a_self_registered_cluster_takes_jobs_while_it_registers_again_and_expires_when_it_stops() {
    let app = spawn_app().await;
    let runner = json!({"name": "runner", "version": "1", "plugin": "ping", "is_sync": true, "tags": ["type:burst"], "cluster_tags": ["type:burst"]});
    assert_eq!(put(&app, ADMIN, "/api/v1/command/runner", &runner).await.0, 200);
    let worker = json!({"name": "worker-7", "version": "1", "tags": ["type:burst"], "ttl_seconds": 4});

    let (status, cluster) = put(&app, ADMIN, "/api/v1/cluster/worker-7", &worker).await;

    assert_eq!((status, cluster["status"].as_str(), cluster["ttl_seconds"].as_u64()), (200, Some("ACTIVE"), Some(4)), "{cluster}");
    assert!(cluster["expires_at"].as_i64().unwrap() > cluster["updated_at"].as_i64().unwrap(), "{cluster}");
    assert_eq!(app.submit_ok(&job_anywhere("b", &["type:burst"])).await["cluster_id"], "worker-7");
    // Registered again in time: still active past the first registration's end (times are
    // whole seconds: 1.6 s after registering again, more than 1.4 s of the 4 is left).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(put(&app, ADMIN, "/api/v1/cluster/worker-7", &worker).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(app.get_json("/api/v1/cluster/worker-7/status").await["status"], "ACTIVE");

    let (_, expired) = wait_for(&app, "/api/v1/cluster/worker-7/status", Duration::from_secs(8), |_, body| body["status"] == "INACTIVE").await;
    assert_eq!(expired["status"], "INACTIVE");
    let response = app.submit_job(&job_anywhere("b", &["type:burst"])).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "NO_MATCHING_CLUSTER", "{error}");
    let plan = preview(&app, &job_anywhere("b", &["type:burst"])).await;
    assert!(plan["excluded"].as_array().unwrap().iter().any(|e| e["cluster_id"] == "worker-7" && e["reason"].as_str().unwrap().contains("registration expired")), "{plan}");

    assert_eq!(put(&app, ADMIN, "/api/v1/cluster/worker-7", &worker).await.0, 200, "it comes back by registering");
    assert_eq!(app.submit_ok(&job_anywhere("b", &["type:burst"])).await["cluster_id"], "worker-7");
}

/// A shell command whose executable is a script in the runs folder, on a checked cluster.
const CHECKED_CONFIG: &str = r#"
commands:
  - name: probe
    version: "1"
    plugin: shell
    is_sync: true
    tags: [type:probe]
    cluster_tags: [type:checked]
    context:
      command: ["{{RUNS_DIR}}/probe.sh"]
      sandbox: {read_paths: ["{{RUNS_DIR}}"]}
clusters:
  - name: checked
    version: "1"
    tags: [type:checked]
    health_check: true
    health_interval: 1
  - name: unchecked
    version: "1"
    tags: [type:other]
"#;

#[tokio::test]
async fn a_cluster_failing_its_health_check_leaves_routing_and_comes_back_when_it_passes() {
    let app = spawn_app_tuned(CHECKED_CONFIG, |_| {}).await;
    let script = app.runs_log.parent().unwrap().join("probe.sh");
    let install = || {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&script, "#!/bin/sh\necho probed\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    install();
    let healthy = |status: u16, body: &Value| status == 200 && body["checks"].as_array().is_some_and(|c| !c.is_empty());
    let (_, report) = wait_for(&app, "/api/v1/clusters/health", Duration::from_secs(10), healthy).await;
    let check = &report["checks"][0];
    assert_eq!((check["cluster_id"].as_str(), check["command_id"].as_str(), check["plugin"].as_str(), check["status"].as_str()), (Some("checked"), Some("probe"), Some("shell"), Some("ok")), "{report}");
    assert!(check["checked_at"].as_i64().is_some() && check["latency_ms"].as_u64().is_some(), "{report}");
    assert_eq!(app.submit_ok(&job_anywhere("p", &["type:probe"])).await["status"], "SUCCEEDED");

    std::fs::remove_file(&script).unwrap();
    let (status, report) = wait_for(&app, "/api/v1/clusters/health", Duration::from_secs(10), |status, _| status == 503).await;

    assert_eq!((status, report["healthy"].as_bool()), (503, Some(false)), "{report}");
    assert!(report["checks"][0]["error"].as_str().unwrap().contains("probe.sh` does not exist"), "{report}");
    let (status, one) = get(&app, "/api/v1/cluster/checked/health").await;
    assert_eq!((status, one["checks"].as_array().unwrap().len()), (503, 1), "{one}");
    assert_eq!(get(&app, "/api/v1/cluster/unchecked/health").await, (200, json!({"healthy": true, "checks": []})));
    assert_eq!(get(&app, "/api/v1/cluster/nope/health").await.0, 404);
    let response = app.submit_job(&job_anywhere("p", &["type:probe"])).await;
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "NO_MATCHING_CLUSTER", "{error}");
    assert!(error["error"].as_str().unwrap().contains("fails its health check"), "{error}");
    let plan = preview(&app, &job_anywhere("p", &["type:probe"])).await;
    assert!(plan["excluded"].as_array().unwrap().iter().any(|e| e["cluster_id"] == "checked" && e["reason"].as_str().unwrap().starts_with("unhealthy: its shell health check failed")), "{plan}");
    let metrics = app.get_text("/metrics").await;
    assert!(metrics.contains("heimdall_cluster_healthy{cluster=\"checked\",command=\"probe\"} 0"), "{metrics}");

    install();
    wait_for(&app, "/api/v1/clusters/health", Duration::from_secs(10), |status, _| status == 200).await;
    assert_eq!(app.submit_ok(&job_anywhere("p", &["type:probe"])).await["status"], "SUCCEEDED", "back in routing");
}

#[tokio::test]
async fn a_run_time_change_survives_a_restart_until_the_config_changes_that_entry() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("data");
    let app = spawn_app_on(dir.clone(), Duration::from_secs(5)).await;
    assert_eq!(put(&app, ADMIN, "/api/v1/command/canary-new/status", &json!({"status": "inactive"})).await.0, 200);
    app.stop().await;

    // The same config: the admin's change stands.
    let app = spawn_app_on(dir.clone(), Duration::from_secs(5)).await;
    assert_eq!(app.get_json("/api/v1/command/canary-new/status").await["status"], "INACTIVE");
    app.stop().await;

    // The config changes that entry (its weight) and drops another: the config wins for the
    // first, the second is marked DELETED.
    let changed = test_config().replacen("    weight: 1\n", "    weight: 2\n", 1).replace("  - name: retired\n", "  - name: retired-renamed\n");
    assert_ne!(changed, test_config());
    let app = spawn_app_with(&changed, dir, Duration::from_secs(5), offline_aws_config()).await;
    let command = app.get_json("/api/v1/command/canary-new").await;
    assert_eq!((command["status"].as_str(), command["weight"].as_u64()), (Some("ACTIVE"), Some(2)), "{command}");
    assert_eq!(app.get_json("/api/v1/command/retired/status").await["status"], "DELETED");
    assert_eq!(app.get_json("/api/v1/command/retired-renamed/status").await["status"], "INACTIVE");
}

#[tokio::test]
async fn a_jobs_attributes_render_from_its_commands_and_clusters_templates() {
    let app = spawn_app().await;
    let traced = json!({
        "name": "traced", "version": "1", "plugin": "ping", "is_sync": true, "tags": ["type:traced"], "cluster_tags": ["type:localhost"],
        "job_attributes": {
            "trace": {"kind": "link", "value": "https://traces.example.com/{cluster.name}/{job.id}?who={job.user}"},
            "pending": {"kind": "link", "value": "https://ui.example.com/{handle.query_id}"}
        }
    });
    assert_eq!(put(&app, ADMIN, "/api/v1/command/traced", &traced).await.0, 200);

    let answer = app.submit_ok(&job("t", &["type:traced"], json!({}))).await;

    let id = answer["id"].as_str().unwrap();
    let expected = json!({"trace": {"kind": "link", "value": format!("https://traces.example.com/localhost-0.0.1/{id}?who=test_user")}});
    assert_eq!(answer["job_attributes"], expected, "on the submit's answer; a template whose handle is unknown is left out");
    assert_eq!(app.get_job(id).await["job_attributes"], expected);
    assert_eq!(app.get_json("/api/v1/jobs?name=t").await["data"][0]["job_attributes"], expected);

    let bad = json!({"name": "bad", "version": "1", "plugin": "ping", "job_attributes": {"x": {"kind": "link", "value": "javascript:{job.id}"}, "y": {"kind": "text", "value": "{secret.key}"}}});
    let (status, error) = put(&app, ADMIN, "/api/v1/command/bad", &bad).await;
    assert_eq!(status, 400, "{error}");
    let message = error["error"].as_str().unwrap();
    assert!(message.contains("must start with https://") && message.contains("unknown placeholder `{secret.key}`"), "{message}");
}
