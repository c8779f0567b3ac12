//! Operator routes: `GET /healthz` (liveness) and `GET /metrics` (Prometheus text).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

pub async fn healthz() -> impl IntoResponse {
    super::error::ok(
        axum::http::StatusCode::OK,
        serde_json::json!({ "status": "ok" }),
    )
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.deployer.runtime.render_metrics(),
    )
}
