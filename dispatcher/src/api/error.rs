//! The one place errors become HTTP: every failure is an `ApiError`, answered with the
//! envelope `{"ok":false,"error":{"code":"snake_case","message":"..."}}`.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::deploy::DeployError;
use crate::runtime::{ArtifactError, InvokeError, PrepareError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidWasm(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("a valid X-Customer-Token header is required")]
    Unauthorized,
    /// A gateway route that needs a session, called without a valid one.
    #[error("{0}")]
    SignInRequired(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("no script named `{0}`")]
    ScriptNotFound(String),
    #[error("{0}")]
    NameTaken(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    ScriptError(String),
    #[error("{0}")]
    ExceededCpu(String),
    #[error("{0}")]
    ExceededMemory(String),
    #[error("{0}")]
    ExceededWallTime(String),
    #[error("{0}")]
    Overloaded(String),
    /// Too many attempts from one client; the next is allowed after `retry_after`.
    #[error("too many attempts from this address; retry after the time in Retry-After")]
    RateLimited { retry_after: std::time::Duration },
    /// A script the store has but the server cannot load (e.g. its stored bytes are
    /// corrupted); the reason is logged, never answered.
    #[error("the script is unavailable")]
    ScriptUnavailable { script: String, reason: String },
    /// The disk is full; the detail is logged, never answered.
    #[error("the server is out of storage space; nothing was changed")]
    InsufficientStorage(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::InvalidWasm(_) => (StatusCode::BAD_REQUEST, "invalid_wasm"),
            ApiError::InvalidName(_) => (StatusCode::BAD_REQUEST, "invalid_name"),
            ApiError::Unauthorized | ApiError::SignInRequired(_) => {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            }
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::ScriptNotFound(_) => (StatusCode::NOT_FOUND, "script_not_found"),
            ApiError::NameTaken(_) => (StatusCode::CONFLICT, "name_taken"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::ScriptError(_) => (StatusCode::INTERNAL_SERVER_ERROR, "script_error"),
            ApiError::ExceededCpu(_) => (StatusCode::SERVICE_UNAVAILABLE, "exceeded_cpu"),
            ApiError::ExceededMemory(_) => (StatusCode::SERVICE_UNAVAILABLE, "exceeded_memory"),
            ApiError::ExceededWallTime(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "exceeded_wall_time")
            }
            ApiError::Overloaded(_) => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::ScriptUnavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "script_unavailable")
            }
            ApiError::InsufficientStorage(_) => {
                (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::ScriptUnavailable { script, reason } => {
                tracing::error!(script, reason, "script unavailable");
            }
            ApiError::InsufficientStorage(detail) => {
                tracing::error!(%detail, "storage is full");
            }
            _ => {}
        }
        let body = serde_json::json!({
            "ok": false,
            "error": ErrorBody { code, message: self.to_string() },
        });
        let mut response = (status, Json(body)).into_response();
        let retry_after = match &self {
            ApiError::Overloaded(_) => Some(1),
            ApiError::RateLimited { retry_after } => Some(retry_after.as_secs_f64().ceil() as u64),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(seconds.max(1)),
            );
        }
        response
    }
}

/// `{"ok":true,"data":...}` with `status`.
pub fn ok<T: Serialize>(status: StatusCode, data: T) -> Response {
    (
        status,
        Json(serde_json::json!({ "ok": true, "data": data })),
    )
        .into_response()
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("not found".into()),
            StoreError::NameTaken => ApiError::NameTaken("the name is taken".into()),
            StoreError::StorageFull(detail) => ApiError::InsufficientStorage(detail),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        let message = e.to_string();
        match e {
            DeployError::InvalidName(_) => ApiError::InvalidName(message),
            DeployError::InvalidTag(_) | DeployError::InvalidBinding(_) => {
                ApiError::BadRequest(message)
            }
            DeployError::TooLarge { .. } => ApiError::TooLarge(message),
            DeployError::Prepare(PrepareError::Artifact(ArtifactError::Store(e))) => e.into(),
            DeployError::Prepare(_) => ApiError::InvalidWasm(message),
            DeployError::NameTaken(_) => ApiError::NameTaken(message),
            DeployError::NotFound(name) => ApiError::ScriptNotFound(name),
            DeployError::Store(e) => e.into(),
            DeployError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<InvokeError> for ApiError {
    fn from(e: InvokeError) -> Self {
        let message = e.to_string();
        match e {
            InvokeError::ScriptError(_) => ApiError::ScriptError(message),
            InvokeError::ExceededCpu => ApiError::ExceededCpu(message),
            InvokeError::ExceededMemory => ApiError::ExceededMemory(message),
            InvokeError::WallTime => ApiError::ExceededWallTime(message),
            InvokeError::Overloaded => ApiError::Overloaded(message),
        }
    }
}
