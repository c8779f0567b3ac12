//! Example script for `plain_text` and `secret_text` bindings.
//!
//! Bindings: `GREETING` (plain text), `API_KEY` (secret text).
//!
//! - `GET /` with header `x-api-key` equal to the `API_KEY` secret → `200`
//!   `{"greeting": <GREETING or null>}`; without it, with another value, or when the
//!   secret is not set → `401` `{"error": "bad api key"}`.
//! - `GET /secret-length` → `200` `{"length": <length in bytes of API_KEY or null>}`.
//! - Any other path → `404`, another method → `405`.

use sdk::{Context, Env, Request, RequestExt as _, Response, Result, RouteContext, Router};
use serde_json::json;

#[sdk::fetch]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    Router::new()
        .get("/", greeting)
        .get("/secret-length", secret_length)
        .run(req, env, ctx)
        .await
}

async fn greeting(req: Request, route: RouteContext) -> Result<Response> {
    let authorized = match (route.env.secret("API_KEY"), req.header("x-api-key")) {
        (Some(secret), Some(given)) => secret == given,
        _ => false,
    };
    if !authorized {
        return Ok(Response::json(&json!({ "error": "bad api key" }))?.with_status(401));
    }
    Response::json(&json!({ "greeting": route.env.var("GREETING") }))
}

async fn secret_length(_req: Request, route: RouteContext) -> Result<Response> {
    let length = route.env.secret("API_KEY").map(|secret| secret.len());
    Response::json(&json!({ "length": length }))
}
