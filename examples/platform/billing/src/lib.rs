//! `billing`, the platform's first-party service for credits: each user's balance in its
//! app, idempotent spends that never go negative, admin adjustments, orders of credits
//! and test-mode payments whose signed webhook adds an order's credits exactly once.
//! The contract of every route is in `examples/platform/README.md`; this file owns the
//! routing, the modules own the routes.
//!
//! Bindings: `DB` (SQLite), `PAYMENT_WEBHOOK_SECRET` (secret text).

mod credits;
mod input;
mod orders;
mod payment;
mod store;

use platform_kit as kit;
use sdk::{Context, Env, Request, Response, Router};

#[sdk::fetch]
async fn fetch(req: Request, env: Env, ctx: Context) -> sdk::Result<Response> {
    kit::serve(router(), req, env, ctx).await
}

fn router() -> Router {
    Router::new()
        .get("/credits", credits::balance)
        .post("/credits/check", credits::check)
        .post("/credits/spend", credits::spend)
        .post("/credits/adjust", credits::adjust)
        .post("/orders", orders::create)
        .get("/orders", orders::list)
        .get("/orders/:id", orders::get)
        .post("/payment/checkout", payment::checkout)
        .post("/payment/webhook", payment::webhook)
}
