//! The baseline: a bare axum handler answering what the default template `hello` answers
//! (`Hello! This module is provided by the platform`, `text/plain; charset=utf-8`), the
//! floor any dispatcher request is measured against. Usage: `axum-hello 127.0.0.1:PORT`.

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8790".into());
    let app =
        axum::Router::new().fallback(|| async { "Hello! This module is provided by the platform" });
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("axum-hello listening on http://{addr}");
    axum::serve(listener, app).await.expect("serve");
}
