//! The `content` service: an app's content items, public to read; signed-in users write
//! items into their own app, and only an item's owner or an admin changes or deletes it.
//! Routes and answers: `examples/platform/README.md`.
//!
//! This file is the entry point and the routing table; the database and its items are
//! in [`store`], the reading routes in [`read`], the writing routes in [`write`] and
//! input checks in [`input`].

mod input;
mod read;
mod store;
mod write;

use platform_kit as kit;
use sdk::{Context, Env, Request, Response, Result, Router};

#[sdk::fetch]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    kit::serve(router(), req, env, ctx).await
}

fn router() -> Router {
    Router::new()
        .get("/content", read::list)
        .get("/content/:id", read::show)
        .post("/content", write::create)
        .put("/content/:id", write::update)
        .delete("/content/:id", write::delete)
}
