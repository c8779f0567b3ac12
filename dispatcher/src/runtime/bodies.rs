//! The bodies around a run: the request body as the guest reads it (a length limit told
//! as a body too large, any other error as denied; [`RequestBody`] notes one dropped
//! before its end), and the response body as the runtime
//! hands it out ([`ScriptBody`]), which ends in an error rather than cleanly when the run
//! failed before finishing it ([`UnlessFailed`], set by the run's [`Verdict`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::cancel::WatchedBody;

/// A script's response body as the runtime hands it out: the bytes as the guest writes
/// them, and an error when the run failed before finishing it.
pub struct ScriptBody(pub(super) HyperOutgoingBody);

/// Why a script's response body ended early (its run failed or was stopped).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScriptBodyError(String);

impl Body for ScriptBody {
    type Data = Bytes;
    type Error = ScriptBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ScriptBodyError>>> {
        Pin::new(&mut self.0)
            .poll_frame(cx)
            .map_err(|error| ScriptBodyError(error.to_string()))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

/// A script's response body that ends in an error, not cleanly, when the run failed
/// before finishing it: wasi-http ends a body whose guest went away as if it were
/// complete.
pub(super) struct UnlessFailed {
    pub(super) body: WatchedBody<HyperOutgoingBody>,
    pub(super) failed: Arc<AtomicBool>,
}

impl Body for UnlessFailed {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(None) if self.failed.load(Ordering::Acquire) => {
                Poll::Ready(Some(Err(wasmtime_wasi_http::Error::InternalError(Some(
                    "the script failed before finishing its response".into(),
                )))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Marks the run failed when dropped before the guest's handler returned.
pub(super) struct Verdict {
    pub(super) failed: Arc<AtomicBool>,
    pub(super) succeeded: bool,
}

impl Drop for Verdict {
    fn drop(&mut self) {
        if !self.succeeded {
            self.failed.store(true, Ordering::Release);
        }
    }
}
/// What the guest is told of a request body that failed: too large when it was cut off
/// at a length limit (`http_body_util::Limited`), else denied.
/// An eyeball's request body as the guest reads it. Dropped before its end (the guest
/// answered without reading all of it), it says so in `left_unread`: hyper then closes
/// the connection after the response, and the response must say `connection: close` so
/// that the client sends its next request on a new one.
pub(super) struct RequestBody<B: Body> {
    body: B,
    ended: bool,
    left_unread: Arc<AtomicBool>,
}

impl<B: Body> RequestBody<B> {
    pub(super) fn new(body: B, left_unread: Arc<AtomicBool>) -> Self {
        RequestBody {
            body,
            ended: false,
            left_unread,
        }
    }
}

impl<B: Body + Unpin> Body for RequestBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = frame {
            self.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl<B: Body> Drop for RequestBody<B> {
    fn drop(&mut self) {
        if !self.ended && !self.body.is_end_stream() {
            self.left_unread.store(true, Ordering::Relaxed);
        }
    }
}

pub(super) fn request_body_error(
    error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> wasmtime_wasi_http::Error {
    let error = error.into();
    if is_length_limit(error.as_ref()) {
        wasmtime_wasi_http::Error::HttpRequestBodySize(None)
    } else {
        wasmtime_wasi_http::Error::HttpRequestDenied
    }
}

/// True when a body error is (or wraps) a byte cap being hit (`http_body_util::Limited`).
pub fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}
