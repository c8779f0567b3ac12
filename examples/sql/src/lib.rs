//! Example script for SQL (`d1`) bindings: runs statements sent as JSON.
//!
//! Binding: `DB` (SQLite database). A statement is `{"sql": "...", "params": [...]}`
//! (`params` optional) with parameters `null`, numbers (integers stay integers), strings
//! or booleans (bound as `1`/`0`).
//!
//! - `POST /query` with one statement → `200` `{"columns": [..], "rows": [[..], ..],
//!   "rows_written": N, "last_insert_id": N}`.
//! - `POST /batch` with an array of statements, run in one transaction → `200` an array
//!   of those objects, in order.
//!
//! In rows, integers are JSON integers, reals JSON floats, text JSON strings, `NULL` is
//! `null` and a blob is an array of its byte values (numbers `0..=255`).
//! An SQL error or a body that is not such JSON → `400` `{"error": <message>}`.

use sdk::{
    Context, Env, Request, RequestExt as _, Response, Result, RouteContext, Router, Statement,
};
use serde_json::json;

#[sdk::fetch]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let routed = Router::new()
        .post("/query", query)
        .post("/batch", batch)
        .run(req, env, ctx)
        .await;
    routed.or_else(|e| Ok(Response::json(&json!({ "error": format!("{e:#}") }))?.with_status(400)))
}

async fn query(mut req: Request, route: RouteContext) -> Result<Response> {
    let statement: Statement = req.json().await?;
    Response::json(&route.env.sql("DB").run(statement)?)
}

async fn batch(mut req: Request, route: RouteContext) -> Result<Response> {
    let statements: Vec<Statement> = req.json().await?;
    Response::json(&route.env.sql("DB").batch(statements)?)
}
