//! The one place errors become HTTP: every failure is an `ApiError`, answered with the
//! envelope `{"ok":false,"error":{"code":"snake_case","message":"..."}}`. A failed run
//! is the eyeballs' error boundary: its envelope says only what kind of failure it was,
//! with the run's `request_id` (also in `X-Request-Id`), under which the script's owner
//! finds the detail in its tail.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::deploy::DeployError;
use crate::runtime::{
    ArtifactError, CompileError, InvokeError, PrepareError, RunFailure, ValidateError,
};
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
    #[error("the script has no version `{0}`")]
    VersionNotFound(String),
    #[error("{0}")]
    NameTaken(String),
    #[error("{0}")]
    TooLarge(String),
    /// A request head over `max_header_bytes`.
    #[error("{0}")]
    HeadTooLarge(String),
    /// An upload body that did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// A component whose compile ran past the compile time limit.
    #[error("{0}")]
    CompileTimeout(String),
    /// A component over the code limits, or whose compile needed more memory than allowed.
    #[error("{0}")]
    CompileTooLarge(String),
    /// Every compile slot stayed busy; the upload may be retried after `retry_after`.
    #[error("{message}")]
    CompilesBusy {
        message: String,
        retry_after: std::time::Duration,
    },
    /// A run of a script that gave no answer (it failed, or hit a limit).
    #[error("{}", .0.error.public_message())]
    Run(RunFailure),
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
            ApiError::VersionNotFound(_) => (StatusCode::NOT_FOUND, "version_not_found"),
            ApiError::NameTaken(_) => (StatusCode::CONFLICT, "name_taken"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::CompileTimeout(_) => (StatusCode::BAD_REQUEST, "compile_timeout"),
            ApiError::CompileTooLarge(_) => (StatusCode::BAD_REQUEST, "compile_too_large"),
            ApiError::CompilesBusy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::HeadTooLarge(_) => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
            ApiError::Run(failure) => match failure.error {
                InvokeError::ScriptError(_) => (StatusCode::INTERNAL_SERVER_ERROR, "script_error"),
                InvokeError::ExceededCpu => (StatusCode::SERVICE_UNAVAILABLE, "exceeded_cpu"),
                InvokeError::ExceededMemory => (StatusCode::SERVICE_UNAVAILABLE, "exceeded_memory"),
                InvokeError::WallTime => (StatusCode::SERVICE_UNAVAILABLE, "exceeded_wall_time"),
                InvokeError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
                InvokeError::Unavailable(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "script_unavailable")
                }
            },
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
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::ScriptUnavailable { script, reason } => {
                tracing::error!(script, reason, "script unavailable");
            }
            ApiError::Run(RunFailure {
                error: InvokeError::Unavailable(reason),
                request_id,
            }) => tracing::error!(%request_id, reason, "script unavailable"),
            ApiError::InsufficientStorage(detail) => {
                tracing::error!(%detail, "storage is full");
            }
            _ => {}
        }
        let request_id = match &self {
            ApiError::Run(failure) => Some(&*failure.request_id),
            _ => None,
        };
        let body = serde_json::json!({
            "ok": false,
            "error": ErrorBody { code, message: self.to_string(), request_id },
        });
        let mut response = (status, Json(body)).into_response();
        if let Some(id) = request_id.and_then(|id| header::HeaderValue::from_str(id).ok()) {
            response.headers_mut().insert("x-request-id", id);
        }
        if let ApiError::RequestTimeout(_) | ApiError::TooLarge(_) = &self {
            // The rest of the body is not read: the connection cannot carry another
            // request.
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        let retry_after = match &self {
            ApiError::Run(RunFailure {
                error: InvokeError::Overloaded,
                ..
            }) => Some(1),
            ApiError::RateLimited { retry_after } | ApiError::CompilesBusy { retry_after, .. } => {
                Some(retry_after.as_secs_f64().ceil() as u64)
            }
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
            StoreError::VersionNotFound(id) => ApiError::VersionNotFound(id),
            StoreError::InvalidDeployment(why) => ApiError::BadRequest(why),
            e @ StoreError::QuotaExceeded { .. } => ApiError::TooLarge(e.to_string()),
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
            DeployError::InvalidTag(_)
            | DeployError::InvalidBinding(_)
            | DeployError::InvalidAnnotation(_)
            | DeployError::InvalidSchedule(_)
            | DeployError::MissingScheduledExport(_)
            | DeployError::InvalidConsumer(_)
            | DeployError::MissingQueueExport(_)
            | DeployError::FirstUploadUndeployed(_) => ApiError::BadRequest(message),
            DeployError::TooLarge { .. } => ApiError::TooLarge(message),
            DeployError::Prepare(PrepareError::Artifact(ArtifactError::Store(e))) => e.into(),
            DeployError::Prepare(PrepareError::Artifact(ArtifactError::Compile(e))) => match e {
                CompileError::Timeout { .. } => ApiError::CompileTimeout(message),
                CompileError::TooLarge { .. } | CompileError::ArtifactTooLarge { .. } => {
                    ApiError::CompileTooLarge(message)
                }
                CompileError::MachineOutOfMemory { retry_after } => ApiError::CompilesBusy {
                    message,
                    retry_after,
                },
                CompileError::Overloaded { retry_after } => ApiError::CompilesBusy {
                    message,
                    retry_after,
                },
                CompileError::Failed(_) => ApiError::InvalidWasm(message),
                CompileError::Worker(_) => ApiError::Internal(message),
            },
            DeployError::Prepare(
                PrepareError::Artifact(ArtifactError::Load(_)) | PrepareError::Interrupted(_),
            ) => ApiError::Internal(message),
            DeployError::Prepare(PrepareError::Invalid(
                ValidateError::TooManyFunctions { .. } | ValidateError::NestedTooDeep { .. },
            )) => ApiError::CompileTooLarge(message),
            DeployError::Prepare(_) => ApiError::InvalidWasm(message),
            DeployError::NameTaken(_) | DeployError::Reserved(_) => ApiError::NameTaken(message),
            DeployError::NotFound(name) => ApiError::ScriptNotFound(name),
            DeployError::Store(e) => e.into(),
            DeployError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<RunFailure> for ApiError {
    fn from(failure: RunFailure) -> Self {
        ApiError::Run(failure)
    }
}
