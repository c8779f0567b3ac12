//! Example script for R2 bucket bindings: an HTTP front end of the bucket whose bodies
//! stream both ways, so objects far larger than the script's memory go in and out.
//!
//! Binding: `FILES` (R2 bucket). `{key}` is the rest of the path, percent-decoded, so keys
//! may hold `/`. An object shows as `{"key", "size", "etag", "content_type",
//! "custom_metadata": {..}, "uploaded_ms"}`.
//!
//! - `PUT /files/{key}` with the bytes as body → `201 {object}`. The request's
//!   `content-type` is kept, and every `x-meta-<name>: <value>` header becomes the custom
//!   metadata `<name>: <value>`.
//! - `GET /files/{key}` → `200` with the bytes (streamed), their `content-type`,
//!   `content-length` and `etag`; honors one `Range` (`bytes=a-b`, `bytes=a-`,
//!   `bytes=-n`: `206` with `content-range`, or `416` with `content-range: bytes */size`
//!   past the end) and `If-None-Match` (`304` while the etag matches). `404` when there
//!   is none.
//! - `GET /files/{key}?meta` → `200 {object}` without the bytes, or `404`.
//! - `GET /files` (optional query `prefix`, `delimiter`, `cursor`, `limit`) → `200
//!   {"objects": [..], "delimited_prefixes": [..], "truncated": .., "cursor": ..|null}`.
//! - `DELETE /files/{key}` → `204` (also when there was none).
//! - `POST /delete` with a JSON array of keys → `204`.
//!
//! Errors are `{"error": <message>}`: `400` for bad input (a bad query or body, or what
//! the platform calls invalid, such as a key over 1024 bytes), `413` when a platform limit
//! was reached (the customer's storage quota or the largest object; nothing is stored
//! then). Other failures are the SDK's `500`.

use sdk::anyhow::Context as _;
use sdk::r2::{GetOptions, ListOptions, PutOptions};
use sdk::{
    BindingError, BindingErrorKind, Bucket, Context, Env, Request, RequestExt as _, Response,
    Result, RouteContext, Router,
};
use serde_json::json;

/// The prefix of the headers that carry custom metadata.
const META_HEADER: &str = "x-meta-";

#[sdk::fetch]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let routed = Router::new()
        .get("/files", list)
        .get("/files/*key", get)
        .put("/files/*key", put)
        .delete("/files/*key", delete)
        .post("/delete", delete_many)
        .run(req, env, ctx)
        .await;
    routed.or_else(answer_error)
}

async fn put(req: Request, route: RouteContext) -> Result<Response> {
    let mut options = PutOptions::new();
    if let Some(content_type) = req.header("content-type") {
        options = options.content_type(content_type);
    }
    for (name, value) in req.headers() {
        if let Some(meta) = name.as_str().strip_prefix(META_HEADER) {
            let value = value
                .to_str()
                .with_context(|| format!("header `{name}` is not text"))?;
            options = options.metadata(meta, value);
        }
    }
    let object = files(&route)
        .put(key(&route), req.into_body(), options)
        .await?;
    Ok(Response::json(&object)?.with_status(201))
}

async fn get(req: Request, route: RouteContext) -> Result<Response> {
    if req.query_pairs().iter().any(|(name, _)| name == "meta") {
        return Ok(match files(&route).head(key(&route)).await? {
            Some(object) => Response::json(&object)?,
            None => not_found()?,
        });
    }
    let options = GetOptions::from_headers(req.headers());
    Ok(files(&route)
        .get_with(key(&route), options)
        .await?
        .into_response())
}

async fn list(req: Request, route: RouteContext) -> Result<Response> {
    let limit = req.query_param("limit").map(|l| l.parse()).transpose();
    let options = ListOptions {
        prefix: req.query_param("prefix"),
        cursor: req.query_param("cursor"),
        delimiter: req.query_param("delimiter"),
        limit: limit.context("query `limit` is not a number")?,
    };
    Response::json(&files(&route).list(options).await?)
}

async fn delete(_req: Request, route: RouteContext) -> Result<Response> {
    files(&route).delete([key(&route)]).await?;
    Ok(Response::empty(204))
}

async fn delete_many(mut req: Request, route: RouteContext) -> Result<Response> {
    let keys: Vec<String> = req
        .json()
        .await
        .context("the body must be a JSON array of keys")?;
    files(&route).delete(&keys).await?;
    Ok(Response::empty(204))
}

/// `400` for bad input, `413` for a limit; the rest (no binding, a platform failure) is
/// the SDK's `500`.
fn answer_error(error: sdk::Error) -> Result<Response> {
    let status = match error.downcast_ref::<BindingError>().map(BindingError::kind) {
        None | Some(BindingErrorKind::Invalid) => 400,
        Some(BindingErrorKind::LimitExceeded) => 413,
        Some(BindingErrorKind::NoSuchBinding | BindingErrorKind::Internal) => return Err(error),
    };
    Ok(Response::json(&json!({ "error": format!("{error:#}") }))?.with_status(status))
}

fn not_found() -> Result<Response> {
    Ok(Response::json(&json!({ "error": "not found" }))?.with_status(404))
}

fn files(route: &RouteContext) -> Bucket {
    route.env.bucket("FILES")
}

fn key(route: &RouteContext) -> &str {
    route.param("key").unwrap_or_default()
}
