//! `GET /api/v1/jobs`: filters, newest first, cursor pages.

use heimdall_tests::{id_of, job, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn jobs_list_newest_first_and_pages_cover_everything_once() {
    let app = spawn_app().await;
    let mut submitted = Vec::new();
    for i in 0..7 {
        let mut request = job(&format!("job-{i}"), &["type:ping"], json!({}));
        request["tags"] = json!([format!("batch:{}", i % 2)]);
        submitted.push(id_of(&app.submit_ok(&request).await));
    }

    let mut seen = Vec::new();
    let mut path = "/api/v1/jobs?limit=3".to_owned();
    loop {
        let page = app.get_json(&path).await;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        seen.extend(data.iter().map(id_of));
        if page["has_more"] == json!(false) {
            assert_eq!(page["next_cursor"], json!(null));
            break;
        }
        path = format!("/api/v1/jobs?limit=3&cursor={}", page["next_cursor"].as_str().unwrap());
    }
    submitted.reverse();
    assert_eq!(seen, submitted);

    let oldest_first = app.get_json("/api/v1/jobs?direction=asc&limit=1").await;
    assert_eq!(id_of(&oldest_first["data"][0]), *submitted.last().unwrap());
}

#[tokio::test]
async fn jobs_filter_by_user_status_name_command_tags_and_time() {
    let app = spawn_app().await;
    app.submit_ok(&job("alpha", &["type:ping"], json!({}))).await;
    app.submit_job_as("other", &job("beta", &["type:ping"], json!({}))).await;
    app.submit_ok(&job("gamma", &["shell:exit-3"], json!({}))).await;
    let mut tagged = job("delta", &["shell:echo"], json!({"arguments": ["x"]}));
    tagged["tags"] = json!(["team:data", "env:test"]);
    app.submit_ok(&tagged).await;

    let names = |page: Value| -> Vec<String> {
        page["data"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap().to_owned()).collect()
    };
    let as_admin = app.get_as("admin-alice", "/api/v1/jobs?username=other").await;
    assert_eq!(names(as_admin.json().await.unwrap()), ["beta"]);
    assert!(names(app.get_json("/api/v1/jobs?username=other").await).is_empty(), "another user's jobs are not listed to a non-admin");
    assert_eq!(names(app.get_json("/api/v1/jobs?status=FAILED").await), ["gamma"]);
    assert_eq!(names(app.get_json("/api/v1/jobs?status=failed,running").await), ["gamma"]);
    assert_eq!(names(app.get_json("/api/v1/jobs?name=alpha").await), ["alpha"]);
    assert_eq!(names(app.get_json("/api/v1/jobs?command=echo").await), ["delta"]);
    assert_eq!(names(app.get_json("/api/v1/jobs?cluster=localhost-0.0.1&command=exit-3").await), ["gamma"]);
    assert_eq!(names(app.get_json("/api/v1/jobs?tags=team:data,env:test").await), ["delta"]);
    assert!(names(app.get_json("/api/v1/jobs?tags=team:data,env:prod").await).is_empty());
    assert_eq!(names(app.get_json("/api/v1/jobs?created_after=4102444800").await).len(), 0);
    assert_eq!(names(app.get_json("/api/v1/jobs?created_before=4102444800&unknown_param=1").await).len(), 3, "the caller's three jobs");
}

#[tokio::test]
async fn text_filters_take_heimdalls_like_wildcards_and_a_callers_own_listing_stays_exact() {
    let app = spawn_app().await;
    for name in ["ping-a", "ping-bb", "nightly"] {
        app.submit_ok(&job(name, &["type:ping"], json!({}))).await;
    }
    // Another user whose name the caller's (`test_user`) matches as a pattern.
    let response = app.submit_job_as("testXuser", &job("ping-other", &["type:ping"], json!({}))).await;
    assert_eq!(response.status(), 200);
    let names = |page: &Value| -> Vec<String> {
        let mut names: Vec<String> = page["data"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap().to_owned()).collect();
        names.sort();
        names
    };

    assert_eq!(names(&app.get_json("/api/v1/jobs?name=ping%25").await), ["ping-a", "ping-bb"]);
    assert_eq!(names(&app.get_json("/api/v1/jobs?name=ping-_").await), ["ping-a"]);
    // A non-admin's listing is its own: a username pattern matching another user shows nothing
    // of theirs, and one matching the caller shows only the caller's jobs.
    assert_eq!(names(&app.get_json("/api/v1/jobs?username=test_user&name=ping%25").await), ["ping-a", "ping-bb"]);
    assert_eq!(names(&app.get_json("/api/v1/jobs?username=testX%25").await), Vec::<String>::new());
    let admin = app.get_as("admin-alice", "/api/v1/jobs?username=test_user&name=ping%25").await.json::<Value>().await.unwrap();
    assert_eq!(names(&admin), ["ping-a", "ping-bb", "ping-other"], "for an admin, `_` matches any one character");

    let commands = app.get_json("/api/v1/commands?name=canary%25").await;
    let mut ids: Vec<&str> = commands["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["canary-new", "canary-stable"]);
    assert_eq!(app.get_json("/api/v1/clusters?name=pool-_").await["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn empty_criteria_and_lists_are_left_out_as_heimdall_answers() {
    let app = spawn_app().await;
    let mut request = job("bare", &["type:ping"], json!({}));
    request.as_object_mut().unwrap().remove("cluster_criteria");

    let answer = app.submit_ok(&request).await;

    assert!(answer.get("cluster_criteria").is_none(), "{answer}");
    assert!(app.get_job(answer["id"].as_str().unwrap()).await.get("cluster_criteria").is_none());
    let ping = app.get_json("/api/v1/command/ping-0.0.1").await;
    assert!(ping.get("allowed_callers").is_none() && ping["cluster_tags"] == json!(["type:localhost"]), "{ping}");
    let gated = app.get_json("/api/v1/command/admins-only").await;
    assert_eq!(gated["allowed_callers"], json!(["admin-.*"]));
}
