//! `ai`, the platform's first-party AI service: API keys (`/keys`) and a deterministic
//! text model (`/ai/generate`) whose every answer is paid for in credits through the
//! `billing` service. The contract of every route is in `examples/platform/README.md`;
//! this file owns the routing, the modules own the routes.
//!
//! Bindings: `DB` (SQLite), `BILLING` (service binding to `billing`).

mod generate;
mod keys;
mod model;

use platform_kit as kit;
use sdk::{Context, Env, Request, Response, Router};

#[sdk::fetch]
async fn fetch(req: Request, env: Env, ctx: Context) -> sdk::Result<Response> {
    kit::serve(router(), req, env, ctx).await
}

fn router() -> Router {
    Router::new()
        .post("/keys", keys::create)
        .get("/keys", keys::list)
        .delete("/keys/:id", keys::revoke)
        .post("/ai/generate", generate::generate)
}
