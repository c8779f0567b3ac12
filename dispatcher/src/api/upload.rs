//! Reading an upload body: raw `application/wasm` bytes, or WfP-style
//! `multipart/form-data` with a `metadata` JSON part (`main_module`, `tags`, `bindings`) and
//! the module part, either of them optionally `Content-Encoding: gzip`. The body is read
//! under a hard byte cap (past it `413`) and two clocks: a client that sends nothing for
//! `upload_idle_timeout_ms`, or has not finished after `upload_timeout_ms`, gets `408`.
//! A gzip body is inflated as a stream and stopped one byte past the cap, so a gzip bomb
//! is refused without being inflated whole.

use std::io::Read as _;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;

use super::error::ApiError;
use crate::config::Config;
use crate::deploy::Metadata;
use crate::runtime::is_length_limit;

pub struct UploadBody {
    pub wasm: Bytes,
    pub metadata: Metadata,
}

/// Room for multipart framing and metadata on top of the component size cap.
pub const MULTIPART_OVERHEAD: usize = 64 << 10;

pub async fn read_upload(request: Request, config: &Config) -> Result<UploadBody, ApiError> {
    let max_script_bytes = config.max_script_bytes;
    // Headers that make the upload unusable are answered after the body is read (as
    // every error below), so the client, still sending, gets to read the answer.
    let boundary = match content_type(request.headers()) {
        Some(ct) if ct.starts_with("multipart/form-data") => Some(
            multer::parse_boundary(ct)
                .map_err(|e| ApiError::BadRequest(format!("invalid multipart body: {e}"))),
        ),
        _ => None,
    };
    let gzip = is_gzip(request.headers());
    let cap = max_script_bytes
        + if boundary.is_some() {
            MULTIPART_OVERHEAD
        } else {
            0
        };
    let too_large = move || {
        ApiError::TooLarge(format!(
            "the upload is larger than the limit of {max_script_bytes} bytes"
        ))
    };
    if declares_more_than(request.headers(), cap) {
        return Err(too_large());
    }
    let mut bytes = read_bounded(request.into_body(), cap, config).await?;
    let (boundary, gzip) = (boundary.transpose()?, gzip?);
    if gzip {
        bytes = tokio::task::spawn_blocking(move || gunzip(&bytes, cap))
            .await
            .map_err(|e| ApiError::Internal(format!("inflating an upload: {e}")))?
            .map_err(|e| match e {
                GunzipError::TooLarge => too_large(),
                GunzipError::Invalid(e) => ApiError::BadRequest(format!("invalid gzip body: {e}")),
            })?;
    }
    let Some(boundary) = boundary else {
        return Ok(UploadBody {
            wasm: bytes,
            metadata: Metadata::default(),
        });
    };
    let (wasm, metadata) = multipart(bytes, boundary, max_script_bytes).await?;
    Ok(UploadBody { wasm, metadata })
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::CONTENT_TYPE)?.to_str().ok()
}

/// Whether the body is gzip; any other encoding is refused.
fn is_gzip(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(encoding) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    match encoding.to_str().map(|e| e.trim().to_ascii_lowercase()) {
        Ok(e) if e == "gzip" || e == "x-gzip" => Ok(true),
        Ok(e) if e == "identity" => Ok(false),
        _ => Err(ApiError::BadRequest(
            "unsupported Content-Encoding: send the component as is, or gzip".into(),
        )),
    }
}

/// The whole body, at most `cap` bytes, read before the upload clocks run out.
async fn read_bounded(
    body: axum::body::Body,
    cap: usize,
    config: &Config,
) -> Result<Bytes, ApiError> {
    let idle = Duration::from_millis(config.upload_idle_timeout_ms);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(config.upload_timeout_ms);
    let mut body = body;
    let mut bytes = BytesMut::new();
    loop {
        let until = deadline.min(tokio::time::Instant::now() + idle);
        let frame = match tokio::time::timeout_at(until, body.frame()).await {
            Ok(Some(frame)) => frame.map_err(|e| body_error(e, cap))?,
            Ok(None) => return Ok(bytes.freeze()),
            Err(_) => {
                return Err(ApiError::RequestTimeout(format!(
                    "the upload body was not sent in time (nothing for {} ms, or not all \
                     of it within {} ms)",
                    config.upload_idle_timeout_ms, config.upload_timeout_ms
                )));
            }
        };
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > cap {
                return Err(ApiError::TooLarge(format!(
                    "the upload is larger than the limit of {cap} bytes"
                )));
            }
            bytes.extend_from_slice(&data);
        }
    }
}

enum GunzipError {
    Invalid(std::io::Error),
    TooLarge,
}

/// Inflates `compressed`, stopping one byte past `cap`.
fn gunzip(compressed: &[u8], cap: usize) -> Result<Bytes, GunzipError> {
    let mut inflated = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed)
        .take(cap as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(GunzipError::Invalid)?;
    if inflated.len() > cap {
        return Err(GunzipError::TooLarge);
    }
    Ok(inflated.into())
}

/// The module part and the metadata of a multipart upload.
async fn multipart(
    bytes: Bytes,
    boundary: String,
    max_script_bytes: usize,
) -> Result<(Bytes, Metadata), ApiError> {
    let limits = multer::SizeLimit::new()
        .whole_stream((max_script_bytes + MULTIPART_OVERHEAD) as u64)
        .per_field(max_script_bytes as u64);
    let stream = futures::stream::once(async { Ok::<_, std::convert::Infallible>(bytes) });
    let mut multipart = multer::Multipart::with_constraints(
        stream,
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let invalid = |e: multer::Error| match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            ApiError::TooLarge(format!(
                "the upload is larger than the limit of {max_script_bytes} bytes"
            ))
        }
        other => ApiError::BadRequest(format!("invalid multipart body: {other}")),
    };
    let mut metadata = None;
    let mut modules: Vec<(String, Bytes)> = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(invalid)? {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(invalid)?;
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
    Ok((wasm, metadata))
}

fn body_error(error: axum::Error, cap: usize) -> ApiError {
    if is_length_limit(&error) {
        ApiError::TooLarge(format!(
            "the upload is larger than the limit of {cap} bytes"
        ))
    } else {
        ApiError::BadRequest(format!("the request body could not be read: {error}"))
    }
}

/// True when the request announces (`Content-Length`) a body larger than `cap`, so it
/// can be refused before any of it is read.
pub fn declares_more_than(headers: &HeaderMap, cap: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > cap as u64)
}

/// Reads and discards what is left of a request body (bounded by the body cap and a
/// timeout), so a client still sending gets to read the error answered early.
pub async fn drain(body: axum::body::Body) {
    let discard = async {
        let mut body = body;
        while let Some(Ok(_)) = body.frame().await {}
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), discard).await;
}
