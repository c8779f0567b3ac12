//! Example script for KV namespace bindings: a REST front end of the namespace.
//!
//! Binding: `CACHE` (KV namespace). `{key}` is one path segment, percent-decoded, so keys
//! may hold any character but `/`.
//!
//! - `GET /` (optional query `prefix`, `cursor`, `limit`) → `200`
//!   `{"keys": [{"name": .., "expiration": <Unix seconds>|null}], "cursor": ..|null}`.
//! - `GET /{key}` → `200` with the raw value bytes, or `404` when there is none.
//! - `PUT /{key}` (optional query `ttl=<seconds>`) with the value as body → `204`.
//! - `DELETE /{key}` → `204`.
//! - A KV error (e.g. a key too long) or a bad query → `400` `{"error": <message>}`.

use sdk::anyhow::Context as _;
use sdk::kv::ListOptions;
use sdk::{Context, Env, Kv, Request, RequestExt as _, Response, Result, RouteContext, Router};
use serde_json::json;

#[sdk::fetch]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let routed = Router::new()
        .get("/", list)
        .get("/:key", get)
        .put("/:key", put)
        .delete("/:key", delete)
        .run(req, env, ctx)
        .await;
    routed.or_else(|e| Ok(Response::json(&json!({ "error": format!("{e:#}") }))?.with_status(400)))
}

async fn list(req: Request, route: RouteContext) -> Result<Response> {
    let limit = req.query_param("limit").map(|l| l.parse()).transpose();
    let options = ListOptions {
        prefix: req.query_param("prefix"),
        cursor: req.query_param("cursor"),
        limit: limit.context("query `limit` is not a number")?,
    };
    Response::json(&cache(&route).list(options)?)
}

async fn get(_req: Request, route: RouteContext) -> Result<Response> {
    Ok(match cache(&route).get(key(&route))? {
        Some(value) => Response::bytes(value),
        None => Response::error("not found", 404),
    })
}

async fn put(mut req: Request, route: RouteContext) -> Result<Response> {
    let value = req.bytes().await?;
    match req.query_param("ttl") {
        Some(ttl) => {
            let ttl = ttl
                .parse()
                .context("query `ttl` is not a number of seconds")?;
            cache(&route).put_with_ttl(key(&route), value, ttl)?
        }
        None => cache(&route).put(key(&route), value)?,
    }
    Ok(Response::empty(204))
}

async fn delete(_req: Request, route: RouteContext) -> Result<Response> {
    cache(&route).delete(key(&route))?;
    Ok(Response::empty(204))
}

fn cache(route: &RouteContext) -> Kv {
    route.env.kv("CACHE")
}

fn key(route: &RouteContext) -> &str {
    route.param("key").unwrap_or_default()
}
