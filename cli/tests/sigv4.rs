//! `heimdall --sigv4` as a user runs it, against a server that checks each request's signature
//! the way API Gateway's IAM auth does: recomputed from what actually arrived (method, path and
//! query, the signed headers, the body) with the caller's secret, and compared.

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use axum::body::Bytes;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use heimdall_cli::client::sigv4::SigV4Signer;
use serde_json::json;

const ACCESS_KEY: &str = "AKIDHEIMDALLTEST";
const SECRET: &str = "heimdall-test-secret";
const REGION: &str = "eu-west-1";

/// Whether the request's signature is the one its content and the secret give.
async fn verify(request: Request) -> (bool, String, String) {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let authorization = header("authorization");
    let signed: Vec<String> = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .map(|names| names.split(';').map(str::to_owned).collect())
        .unwrap_or_default();
    let amz_date = header("x-amz-date");
    let Ok(time) = chrono::NaiveDateTime::parse_from_str(&amz_date, "%Y%m%dT%H%M%SZ") else {
        return (false, authorization, format!("no x-amz-date: {amz_date:?}"));
    };
    let at = UNIX_EPOCH + Duration::from_secs(time.and_utc().timestamp() as u64);
    // The signer adds x-amz-date (and a session token) itself; every other signed header is
    // taken as it arrived.
    let values: Vec<(String, String)> =
        signed.iter().filter(|name| *name != "x-amz-date" && *name != "x-amz-security-token").map(|name| (name.clone(), header(name))).collect();
    let pairs: Vec<(&str, &str)> = values.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let url = format!("http://{}{}", header("host"), parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let signer = SigV4Signer::new(Credentials::new(ACCESS_KEY, SECRET, None, None, "test"), REGION);
    let expected = signer.headers(parts.method.as_str(), &url, &pairs, &body, at).unwrap();
    let expected = expected.iter().find(|(name, _)| name == "authorization").map(|(_, v)| v.clone()).unwrap_or_default();
    (expected == authorization && signed.contains(&"host".to_owned()), authorization, format!("{} {url}", parts.method))
}

fn heimdall(base_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heimdall"))
        .args(args)
        .env("HEIMDALL_URL", base_url)
        .env("HEIMDALL_SIGV4", "true")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn signed_requests_verify_against_what_the_server_received() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let checked: Arc<Mutex<Vec<(bool, String, String)>>> = Arc::default();
    let record = Arc::clone(&checked);
    let app = axum::Router::new().fallback(move |request: Request| {
        let record = Arc::clone(&record);
        async move {
            let verdict = verify(request).await;
            let ok = verdict.0;
            record.lock().unwrap().push(verdict);
            let answer: Response = if !ok {
                (axum::http::StatusCode::FORBIDDEN, axum::Json(json!({"message": "The request signature we calculated does not match"}))).into_response()
            } else {
                axum::Json(json!({"data": [], "has_more": false, "id": "0b5a3bd6-7a1e-4b8e-9d35-4c1f6f3b1c2d", "status": "ACCEPTED"})).into_response()
            };
            answer
        }
    });
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });

    // A query with characters that need encoding, and a POST with a body.
    let listed = heimdall(&base_url, &["jobs", "--for-user", "a b+c", "--status", "RUNNING,FAILED"]);
    let submitted = heimdall(&base_url, &["submit", "--name", "n", "--version", "1", "-c", "type:ping", "--context", r#"{"q": "ü"}"#]);

    for output in [&listed, &submitted] {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let checked = checked.lock().unwrap();
    assert_eq!(checked.len(), 2, "{checked:?}");
    for (ok, authorization, request) in checked.iter() {
        assert!(ok, "{request}: {authorization}");
        assert!(authorization.contains(&format!("Credential={ACCESS_KEY}/")) && authorization.contains(&format!("/{REGION}/execute-api/aws4_request")), "{authorization}");
    }
    assert!(checked[0].2.starts_with("GET ") && checked[0].2.contains("username=a%20b%2Bc&status=RUNNING%2CFAILED"), "{}", checked[0].2);
    assert!(checked[1].2.starts_with("POST "), "{}", checked[1].2);
}
