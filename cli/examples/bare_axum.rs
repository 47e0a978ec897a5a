//! A bare axum hello-world server: the baseline `scripts/bench` measures heimdall against.
//! `cargo run --release -p heimdall-cli --example bare_axum -- 127.0.0.1:9099`

use axum::Router;
use axum::routing::{get, post};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9099".to_owned());
    let app = Router::new()
        .route("/", get(|| async { "Hello, World!" }))
        .route("/", post(|body: String| async move { body }));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    axum::serve(listener, app).await
}
