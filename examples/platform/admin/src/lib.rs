//! The `admin` service: the admin API. It keeps no data; every route checks the admin
//! role, then asks the service that owns the data through its binding (`AUTH`,
//! `BILLING`, `SUPPORT`), with the admin's identity, and answers what that service
//! answered. Routes and answers: `examples/platform/README.md`.
//!
//! This file is the entry point, the routing table and the routes; calling another
//! service is in [`upstream`], the credit adjustment's checks in [`credits`].

mod credits;
mod upstream;

use platform_kit::{self as kit, Caller};
use sdk::{Context, Env, Method, Request, Response, Result, RouteContext, Router};

use crate::upstream::Upstream;

#[sdk::fetch]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    kit::serve(router(), req, env, ctx).await
}

fn router() -> Router {
    Router::new()
        .get("/admin/users", users)
        .get("/admin/tickets", tickets)
        .post("/admin/credits", adjust_credits)
}

/// `GET /admin/users` → auth's `GET /auth/users`.
async fn users(req: Request, route: RouteContext) -> Result<Response> {
    let caller = Caller::admin(&req)?;
    let call = Upstream::new(Method::GET, "/auth/users");
    call.send(&route.env, "AUTH", &caller).await
}

/// `GET /admin/tickets[?status=..]` → support's `GET /tickets` with the same query,
/// which support checks.
async fn tickets(req: Request, route: RouteContext) -> Result<Response> {
    let caller = Caller::admin(&req)?;
    let path = match req.uri().query() {
        Some(query) => format!("/tickets?{query}"),
        None => "/tickets".to_owned(),
    };
    let call = Upstream::new(Method::GET, &path);
    call.send(&route.env, "SUPPORT", &caller).await
}

/// `POST /admin/credits {user_id, app_key, delta, reason}` → billing's
/// `POST /credits/adjust` with that body, once it checks out.
async fn adjust_credits(mut req: Request, route: RouteContext) -> Result<Response> {
    let caller = Caller::admin(&req)?;
    let adjustment = credits::Adjustment::read(&mut req).await?;
    let call = Upstream::new(Method::POST, "/credits/adjust").json(&adjustment)?;
    call.send(&route.env, "BILLING", &caller).await
}
