//! The customer web page (seed 002's page): `GET /` and its assets under `/ui/`, plain
//! HTML, CSS and JavaScript embedded in the binary (no build step), and
//! `POST /ui/initialize`, the page's **Initialize** button, which creates the demo
//! customer and uploads the default template for it. Initialize answers only requests
//! from loopback unless the operator allows it from anywhere (`allow_remote_initialize`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
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
        (status = 403, description = "`forbidden`: not from this machine", body = super::openapi::ErrorEnvelope),
    )
)]
pub async fn initialize(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Result<Response, ApiError> {
    if !peer.ip().is_loopback() && !state.config.allow_remote_initialize {
        return Err(ApiError::Forbidden(
            "Initialize is only allowed from the server's own machine (set \
             `allow_remote_initialize = true` to allow it from anywhere)"
                .into(),
        ));
    }
    let demo = crate::demo::ensure(&state.deployer)
        .await
        .map_err(|e| ApiError::Internal(format!("initialize: {e:#}")))?;
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
