//! Tenants apart on the serverless path: the api function (its router and its API Gateway
//! identity layer) over DynamoDB and S3 on the emulator. A job is its owner's; the caller is
//! who API Gateway's authorizer says (never a header, never an IAM session name); groups from
//! the token make admins.

use serde_json::{Value, json};

use crate::serverless_stack::ServerlessStack;

fn job(criteria: &str) -> Value {
    let context = if criteria.starts_with("shell:") { json!({"arguments": ["alices output"]}) } else { json!({}) };
    json!({"name": "private", "version": "1", "is_sync": true, "command_criteria": [criteria], "context": context})
}

fn jwt(claims: Value) -> Value {
    json!({"jwt": {"claims": claims, "scopes": null}})
}

fn iam(user_arn: &str) -> Value {
    json!({"iam": {"accessKey": "ASIA0000", "accountId": "123456789012", "callerId": "AROA0000:x", "userArn": user_arn, "userId": "AROA0000:x"}})
}

async fn call(stack: &ServerlessStack, authorizer: Value, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, bytes) = stack.api_call_with(authorizer, method, path, body).await;
    (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_cannot_read_alices_job_through_the_api_function() {
    // GIVEN a sync shell job of alice's, its output and result on S3 and the job in DynamoDB
    let stack = ServerlessStack::create().await;
    let (status, answer) = stack.api_json("alice", "POST", "/api/v1/job", Some(job("shell:echo"))).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["id"].as_str().unwrap().to_owned();
    for suffix in ["", "/status", "/stdout", "/stderr"] {
        // WHEN alice reads it she does; WHEN bob does, it does not exist for him
        let (alice, _) = stack.api_call("alice", "GET", &format!("/api/v1/job/{id}{suffix}"), None).await;
        assert_eq!(alice, 200, "alice {suffix}");
        let (bob, body) = stack.api_json("bob", "GET", &format!("/api/v1/job/{id}{suffix}"), None).await;
        assert_eq!(bob, 404, "bob {suffix}: {body}");
    }
    let (status, _) = stack.api_json("bob", "POST", &format!("/api/v1/job/{id}/cancel"), None).await;
    assert_eq!(status, 404);
    let (_, listed) = stack.api_json("bob", "GET", "/api/v1/jobs?username=alice", None).await;
    assert_eq!(listed["data"], json!([]), "{listed}");
    let (_, own) = stack.api_json("alice", "GET", "/api/v1/jobs", None).await;
    assert_eq!(own["data"][0]["id"], id.as_str());
    // AND a token whose groups (API Gateway's string form `[a b]`) hold `platform` is an admin
    let admin = jwt(json!({"sub": "s-1", "username": "carol", "cognito:groups": "[platform data-eng]"}));
    let (status, read) = call(&stack, admin, "GET", &format!("/api/v1/job/{id}/stdout"), None).await;
    assert_eq!(status, 200);
    assert_eq!(read, Value::String("alices output\n".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iam_caller_is_its_role_never_the_session_name_it_chose() {
    let stack = ServerlessStack::create().await;
    // GIVEN a caller that assumed role `analyst` naming its session `alice`
    let forged = iam("arn:aws:sts::123456789012:assumed-role/analyst/alice");
    let (status, answer) = call(&stack, forged.clone(), "POST", "/api/v1/job", Some(job("type:ping"))).await;
    assert_eq!(status, 200, "{answer}");
    // THEN the job is the role's, and alice's jobs stay closed to it
    assert_eq!(answer["user"], "analyst");
    let (_, alices) = stack.api_json("alice", "POST", "/api/v1/job", Some(job("type:ping"))).await;
    let (status, _) = call(&stack, forged, "GET", &format!("/api/v1/job/{}", alices["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 404);
    // AND a role the config maps to alice is alice, whatever its session is called
    let mapped = iam("arn:aws:sts::123456789012:assumed-role/heimdall-alice/anything");
    let (status, answer) = call(&stack, mapped, "GET", &format!("/api/v1/job/{}", alices["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 200, "{answer}");
    // AND an IAM user is its user name
    let (_, answer) = call(&stack, iam("arn:aws:iam::123456789012:user/teams/dana"), "POST", "/api/v1/job", Some(job("type:ping"))).await;
    assert_eq!(answer["user"], "dana");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_authorizer_identity_the_api_function_answers_401_even_with_a_user_header() {
    let stack = ServerlessStack::create().await;
    // api_call sends `X-Heimdall-User: forged-by-client` on every request
    let (status, body) = stack.api_json("", "POST", "/api/v1/job", Some(job("type:ping"))).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "UNAUTHENTICATED");
    let (status, _) = stack.api_json("", "GET", "/api/v1/job/statuses", None).await;
    assert_eq!(status, 200, "status names need no identity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_mistake_is_a_400_on_dynamodb_as_on_sqlite() {
    let stack = ServerlessStack::create().await;
    for mistake in heimdall_tests::client_mistakes("type:ping") {
        let (status, bytes) = stack.api_call("alice", mistake.method, &mistake.path, mistake.body.clone()).await;
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(status, mistake.status, "{}: {}", mistake.what, &text[..text.len().min(300)]);
        assert!(text.contains(mistake.needle), "{}: {}", mistake.what, &text[..text.len().min(300)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_function_never_shows_a_secret_of_the_catalog() {
    let stack = ServerlessStack::create().await;
    let (status, cluster) = stack.api_json("bob", "GET", "/api/v1/cluster/vault-demo", None).await;
    assert_eq!(status, 200, "{cluster}");
    assert_eq!(cluster["context"]["password"], "***");
    assert_eq!(cluster["context"]["private_key"], "ssm:/heimdall/demo/key", "a reference stays visible");
    let (_, bytes) = stack.api_call("bob", "GET", "/api/v1/clusters", None).await;
    assert!(!String::from_utf8_lossy(&bytes).contains("pw-in-config"));
}
