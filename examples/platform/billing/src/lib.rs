//! `billing`, the platform's first-party service for credits: each user's balance in its
//! app, idempotent spends that never go negative, admin adjustments, orders of credits
//! and test-mode payments whose signed webhook adds an order's credits exactly once; a
//! nightly Cron Trigger expires orders left unpaid for a day.
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
use sdk::{Context, Env, Request, Response, Router, ScheduledEvent};

#[sdk::fetch]
async fn fetch(req: Request, env: Env, ctx: Context) -> sdk::Result<Response> {
    kit::serve(router(), req, env, ctx).await
}

/// The nightly job (`0 3 * * *`, installed with the service): expire unpaid orders.
#[sdk::scheduled]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: Context) -> sdk::Result<()> {
    let db = store::open_env(&env)?;
    let now = (event.scheduled_time / 1000) as i64;
    let expired = orders::expire_unpaid(&db, now)?;
    sdk::log::info(format!("expired {expired} unpaid orders"));
    Ok(())
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
