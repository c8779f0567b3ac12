//! [`Response`], what a handler answers (and what a service binding returns): a thin
//! wrapper of [`http::Response<Body>`](wstd::http::Response) with workers-style
//! constructors and readers.

use serde::Serialize;
use serde::de::DeserializeOwned;
use wstd::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::{Body, Result};

/// An HTTP response: status, headers and a body that may stream.
///
/// Build one with a constructor, then adjust it:
///
/// ```ignore
/// Response::text("created").with_status(201);
/// Response::json(&note)?.with_header("cache-control", "no-store")?;
/// Response::error("not found", 404);
/// Response::stream(other_response.into_http().into_body());
/// ```
///
/// It converts from and into [`http::Response<Body>`](wstd::http::Response) without
/// touching status, headers or body, so a response from [`Service::fetch`](crate::Service::fetch)
/// or [`wstd::http::Client`] can be returned as is.
///
/// Constructors that take a status code panic when it is not in `100..=999`.
#[derive(Debug)]
pub struct Response {
    inner: wstd::http::Response<Body>,
}

impl Response {
    /// `200` with `body` and no `content-type`.
    pub fn new(body: impl Into<Body>) -> Self {
        Self {
            inner: wstd::http::Response::new(body.into()),
        }
    }

    /// `200` with `text` as `text/plain; charset=utf-8`.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(text.into()).with_content_type("text/plain; charset=utf-8")
    }

    /// `200` with `html` as `text/html; charset=utf-8`.
    pub fn html(html: impl Into<String>) -> Self {
        Self::new(html.into()).with_content_type("text/html; charset=utf-8")
    }

    /// `200` with `value` serialized as `application/json`.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        Ok(Self::new(serde_json::to_vec(value)?).with_content_type("application/json"))
    }

    /// `200` with `bytes` as `application/octet-stream`.
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self::new(bytes.into()).with_content_type("application/octet-stream")
    }

    /// `200` with a body that is sent as it is produced: the body of another response,
    /// or e.g. `Body::from_stream(futures_lite::stream::iter(chunks))` (see
    /// [`Body::from_stream`]).
    pub fn stream(body: Body) -> Self {
        Self::new(body)
    }

    /// `status` with an empty body, e.g. `Response::empty(204)`.
    pub fn empty(status: u16) -> Self {
        Self::new(Body::empty()).with_status(status)
    }

    /// `status` with `message` as `text/plain; charset=utf-8`, e.g.
    /// `Response::error("not found", 404)`.
    pub fn error(message: impl Into<String>, status: u16) -> Self {
        Self::text(message).with_status(status)
    }

    /// The same response with status `status`.
    ///
    /// # Panics
    /// When `status` is not in `100..=999`.
    pub fn with_status(mut self, status: u16) -> Self {
        *self.inner.status_mut() = StatusCode::from_u16(status)
            .unwrap_or_else(|_| panic!("{status} is not an HTTP status code"));
        self
    }

    /// The same response with header `name` set to `value` (replacing earlier values);
    /// fails when either is not valid in HTTP.
    pub fn with_header<N, V>(mut self, name: N, value: V) -> Result<Self>
    where
        N: TryInto<HeaderName>,
        N::Error: Into<crate::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<crate::Error>,
    {
        let name = name.try_into().map_err(Into::into)?;
        let value = value.try_into().map_err(Into::into)?;
        self.inner.headers_mut().insert(name, value);
        Ok(self)
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.inner.status().as_u16()
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The headers, to change them.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.inner.headers_mut()
    }

    /// The first value of header `name`, if it is there and is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers().get(name)?.to_str().ok()
    }

    /// The body, e.g. to read it partially.
    pub fn body_mut(&mut self) -> &mut Body {
        self.inner.body_mut()
    }

    /// Reads the whole body.
    pub async fn into_bytes(mut self) -> Result<Vec<u8>> {
        Ok(self.inner.body_mut().contents().await?.to_vec())
    }

    /// Reads the whole body as UTF-8 text.
    pub async fn into_text(mut self) -> Result<String> {
        Ok(self.inner.body_mut().str_contents().await?.to_owned())
    }

    /// Reads the whole body as JSON into `T`.
    pub async fn into_json<T: DeserializeOwned>(mut self) -> Result<T> {
        self.inner.body_mut().json().await
    }

    /// The underlying [`http::Response`](wstd::http::Response).
    pub fn into_http(self) -> wstd::http::Response<Body> {
        self.inner
    }

    fn with_content_type(mut self, content_type: &'static str) -> Self {
        self.inner.headers_mut().insert(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static(content_type),
        );
        self
    }
}

impl From<wstd::http::Response<Body>> for Response {
    fn from(inner: wstd::http::Response<Body>) -> Self {
        Self { inner }
    }
}

impl From<Response> for wstd::http::Response<Body> {
    fn from(response: Response) -> Self {
        response.inner
    }
}
