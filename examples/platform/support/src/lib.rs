//! The `support` service: users open tickets, comment on them, attach files to them and
//! close them; admins see and act on every ticket. Routes and answers: `examples/platform/README.md`.
//!
//! This file is the entry point and the routing table; the schema is in [`schema`],
//! tickets in [`tickets`], comments in [`comments`], attachments (rows in `DB`, bytes in
//! the `ATTACHMENTS` bucket) in [`attachments`], notifications through the `NOTIFY`
//! queue in [`notifications`] and input checks in [`input`].

mod attachments;
mod comments;
mod input;
mod notifications;
mod schema;
mod tickets;

use platform_kit as kit;
use sdk::{Context, Env, MessageBatch, Request, Response, Result, Router};

#[sdk::fetch]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    kit::serve(router(), req, env, ctx).await
}

/// The consumer of `ticket-notifications` (see [`notifications`]).
#[sdk::queue]
async fn queue(batch: MessageBatch, env: Env, _ctx: Context) -> Result<()> {
    notifications::deliver(batch, env).await
}

fn router() -> Router {
    Router::new()
        .post("/tickets", tickets::open)
        .get("/tickets", tickets::list)
        .get("/tickets/:id", tickets::show)
        .post("/tickets/:id/comments", comments::add)
        .post("/tickets/:id/attachments", attachments::add)
        .get(
            "/tickets/:id/attachments/:attachment_id",
            attachments::download,
        )
        .post("/tickets/:id/close", tickets::close)
}
