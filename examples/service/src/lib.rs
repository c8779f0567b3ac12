//! Example script for service bindings.
//!
//! Binding: `BACKEND` (service). Every request — any method, path, headers and body — is
//! forwarded to `BACKEND`, and its response is returned unchanged (status, headers,
//! streamed body). When the call itself fails (no such binding, the platform's call-depth
//! limit, ...) the answer is `502` with the error message as text, which includes the
//! platform's explanation.

use sdk::{Context, Env, Request, Response, Result};

#[sdk::fetch]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    match env.service("BACKEND").fetch(req).await {
        Ok(response) => Ok(response),
        Err(e) => Ok(Response::error(format!("{e:#}"), 502)),
    }
}
