//! Reading an upload body: raw `application/wasm` bytes, or WfP-style
//! `multipart/form-data` with a `metadata` JSON part (`main_module`, `tags`, `bindings`) and the
//! module part. The body is read under a hard byte cap; past it the answer is `413`.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use bytes::Bytes;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use super::error::ApiError;
use crate::deploy::Metadata;

pub struct UploadBody {
    pub wasm: Bytes,
    pub metadata: Metadata,
}

/// Room for multipart framing and metadata on top of the component size cap.
const MULTIPART_OVERHEAD: usize = 64 << 10;

pub async fn read_upload(
    request: Request,
    max_script_bytes: usize,
) -> Result<UploadBody, ApiError> {
    let is_multipart = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    let too_large = || {
        ApiError::TooLarge(format!(
            "the upload is larger than the limit of {max_script_bytes} bytes"
        ))
    };
    let cap = max_script_bytes + if is_multipart { MULTIPART_OVERHEAD } else { 0 };
    if declares_more_than(request.headers(), cap) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    let request = Request::from_parts(parts, Body::new(Limited::new(body, cap)));

    // Read the whole body (bounded) before parsing, so every error below is answered
    // after the client finished sending, and it can read the answer.
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|e| body_error(e, too_large))?
        .to_bytes();
    if !is_multipart {
        return Ok(UploadBody {
            wasm: bytes,
            metadata: Metadata::default(),
        });
    }

    let request = Request::from_parts(parts, Body::from(bytes));
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::BadRequest(format!("invalid multipart body: {e}")))?;
    let mut metadata = None;
    let mut modules: Vec<(String, Bytes)> = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::BadRequest(format!("invalid multipart body: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::BadRequest(format!("invalid multipart part `{name}`: {e}")))?;
        if name == "metadata" {
            let parsed: Metadata = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::BadRequest(format!("invalid metadata JSON: {e}")))?;
            metadata = Some(parsed);
        } else {
            modules.push((name, bytes));
        }
    }
    let metadata = metadata.unwrap_or_default();
    let wasm = match &metadata.main_module {
        Some(main) => modules
            .into_iter()
            .find(|(name, _)| name == main)
            .map(|(_, bytes)| bytes)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "metadata.main_module names `{main}`, but no part has that name"
                ))
            })?,
        None if modules.len() == 1 => modules.remove(0).1,
        None => {
            return Err(ApiError::BadRequest(
                "a multipart upload needs exactly one module part, or metadata.main_module naming it".into(),
            ));
        }
    };
    if wasm.len() > max_script_bytes {
        return Err(too_large());
    }
    Ok(UploadBody { wasm, metadata })
}

fn body_error(error: axum::Error, too_large: impl Fn() -> ApiError) -> ApiError {
    if is_length_limit(&error) {
        too_large()
    } else {
        ApiError::BadRequest(format!("the request body could not be read: {error}"))
    }
}

/// True when the request announces (`Content-Length`) a body larger than `cap`, so it
/// can be refused before any of it is read.
pub fn declares_more_than(headers: &axum::http::HeaderMap, cap: usize) -> bool {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > cap as u64)
}

/// Reads and discards what is left of a request body (bounded by the body cap and a
/// timeout), so a client still sending gets to read the error answered early.
pub async fn drain(body: Body) {
    let discard = async {
        let mut body = body;
        while let Some(Ok(_)) = body.frame().await {}
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), discard).await;
}

/// True when a body error is (or wraps) the byte cap being hit.
pub fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}
