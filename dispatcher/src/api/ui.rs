//! The customer web page (seed 002's page): `GET /` and its assets under `/ui/`, plain
//! HTML, CSS and JavaScript embedded in the binary (no build step), and
//! `POST /ui/initialize`, the page's **Initialize** button, which creates the demo
//! customer and uploads the default template for it (all or nothing, `demo.rs`).
//!
//! Initialize answers only requests from loopback, sent to this server by a loopback
//! name (`Host` `127.0.0.1:PORT`, `localhost:PORT` or `[::1]:PORT`, so a DNS-rebound
//! name cannot reach it), unless the operator allows it from anywhere
//! (`allow_remote_initialize`); and never a request whose `Origin` is another than this
//! server's own, `http://<Host>` (a page of another site posting from a browser here).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, ok};

const INDEX_HTML: &str = include_str!("../../ui/index.html");
const APP_JS: &str = include_str!("../../ui/app.js");
const TAIL_JS: &str = include_str!("../../ui/tail.js");
const STYLE_CSS: &str = include_str!("../../ui/style.css");

/// Pages and scripts may come only from this server; nothing may frame the page.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

pub async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub async fn tail_js() -> Response {
    asset("text/javascript; charset=utf-8", TAIL_JS)
}

pub async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// `POST /ui/initialize`: the demo customer (its token shown once) owning `hello`.
#[utoipa::path(
    post,
    path = "/ui/initialize",
    tag = "web page",
    summary = "Initialize: the demo customer (token shown once) and its `hello` script",
    responses(
        (status = 201, description = "Created", body = super::openapi::Envelope<super::openapi::Initialized>),
        (status = 200, description = "The demo existed already", body = super::openapi::Envelope<super::openapi::Initialized>),
        (status = 403, description = "`forbidden`: not from this machine, not to a loopback name of this server, or from another origin", body = super::openapi::ErrorEnvelope),
        (status = 409, description = "`name_taken`: another customer owns `hello`", body = super::openapi::ErrorEnvelope),
    )
)]
pub async fn initialize(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let config = &state.config;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    if !config.allow_remote_initialize {
        if !peer.ip().is_loopback() {
            return Err(ApiError::Forbidden(
                "Initialize is only allowed from the server's own machine (set \
                 `allow_remote_initialize = true` to allow it from anywhere)"
                    .into(),
            ));
        }
        if !host
            .as_deref()
            .is_some_and(|host| is_loopback_host(host, config.listen.port()))
        {
            return Err(ApiError::Forbidden(format!(
                "Initialize is only allowed at a loopback address of this server, such as \
                 http://127.0.0.1:{}/ (set `allow_remote_initialize = true` to allow it \
                 under any name)",
                config.listen.port()
            )));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let own = host.map(|host| format!("http://{host}"));
        let same = origin
            .to_str()
            .is_ok_and(|origin| Some(origin.to_ascii_lowercase()) == own);
        if !same {
            return Err(ApiError::Forbidden(
                "Initialize is only allowed from this server's own page, not from another \
                 origin"
                    .into(),
            ));
        }
    }
    let demo = crate::demo::ensure(&state.deployer).await?;
    let customers: Vec<_> = demo
        .customer
        .iter()
        .map(|issued| {
            serde_json::json!({
                "id": issued.customer.id,
                "name": issued.customer.name,
                "token": issued.token,
            })
        })
        .collect();
    let status = if customers.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(ok(
        status,
        serde_json::json!({ "customers": customers, "script": demo.script }),
    ))
}

/// True when `host` (a `Host` header, lowercase) names this server, listening on
/// `port`, by a loopback name: `127.0.0.1`, `localhost` or `[::1]`, with that port (or
/// none, when it is 80).
fn is_loopback_host(host: &str, port: u16) -> bool {
    let (name, given_port) = match host.rsplit_once(':') {
        Some((name, given)) if !given.ends_with(']') => (name, given.parse::<u16>().ok()),
        _ => (host, Some(80)),
    };
    matches!(name, "127.0.0.1" | "localhost" | "[::1]") && given_port == Some(port)
}
