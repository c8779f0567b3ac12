//! Operator routes: `GET /healthz` (liveness) and `GET /metrics` (Prometheus text).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operator",
    summary = "Liveness",
    responses((status = 200, body = super::openapi::Envelope<serde_json::Value>))
)]
pub async fn healthz() -> impl IntoResponse {
    super::error::ok(
        axum::http::StatusCode::OK,
        serde_json::json!({ "status": "ok" }),
    )
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operator",
    summary = "Metrics in the Prometheus text format",
    responses((status = 200, body = String, content_type = "text/plain; version=0.0.4"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.runtime.render_metrics(),
    )
}
