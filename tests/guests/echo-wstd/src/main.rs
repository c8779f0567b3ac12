//! Test guest in the `wstd` convention (a `bin` crate with `#[wstd::http_server]`, as
//! people write for `wasmtime serve`): answers with a JSON document describing the
//! request it saw, so tests can check what the dispatcher hands to a script.
//!
//! `GET /stream?chunks=N` answers N chunks written one at a time, for streaming tests.

use wstd::http::body::Body;
use wstd::http::{Error, Request, Response};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    let (parts, mut body) = request.into_parts();
    if parts.uri.path() == "/stream" {
        let chunks: usize = parts
            .uri
            .query()
            .and_then(|q| q.strip_prefix("chunks="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(3);
        let text: String = (0..chunks).map(|i| format!("chunk {i}\n")).collect();
        return Ok(Response::new(text.into()));
    }
    let body = body.str_contents().await?.to_string();
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                serde_json::Value::String(String::from_utf8_lossy(value.as_bytes()).into()),
            )
        })
        .collect();
    println!("echo {} {}", parts.method, parts.uri.path());
    let seen = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": body,
    });
    Ok(Response::builder()
        .header("content-type", "application/json")
        .header("x-echo", "wstd")
        .body(seen.to_string().into())?)
}
