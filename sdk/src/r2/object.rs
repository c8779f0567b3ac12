//! What the calls of a [`Bucket`](super::Bucket) return: [`Object`], what is known of a
//! stored object; [`ObjectBody`], an object with its bytes streaming; [`GetResult`], the
//! outcomes of a get; [`ListPage`], a page of a listing. The bodies and results turn into
//! HTTP responses ([`ObjectBody::into_response`], [`GetResult::into_response`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wstd::http::{HeaderName, HeaderValue};
use wstd::io::AsyncInputStream;

use crate::bindings::r2;
use crate::{Body, Response, Result};

/// The most bytes a get's body reads from the platform at a time: wstd's own frame size
/// for request bodies (its `From<AsyncInputStream>` reads 8 KiB, eight times the calls).
const BODY_CHUNK_BYTES: usize = 64 << 10;

/// What is known of a stored object. Serializes as
/// `{"key", "size", "etag", "content_type", "custom_metadata", "uploaded_ms"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Changes whenever the content does; without quotes ([`Object::http_etag`] has them).
    pub etag: String,
    /// The content type it was stored with.
    pub content_type: Option<String>,
    /// The custom metadata it was stored with.
    pub custom_metadata: BTreeMap<String, String>,
    /// When it was stored, in Unix milliseconds.
    pub uploaded_ms: i64,
}

impl Object {
    /// The etag as an HTTP `ETag` header has it: in double quotes.
    pub fn http_etag(&self) -> String {
        format!("\"{}\"", self.etag)
    }

    pub(super) fn from_wit(object: r2::Object) -> Self {
        Self {
            key: object.key,
            size: object.size,
            etag: object.etag,
            content_type: object.content_type,
            custom_metadata: object.custom_metadata.into_iter().collect(),
            uploaded_ms: object.uploaded,
        }
    }

    /// The headers every answer about this object carries.
    fn headers(&self, response: &mut Response) {
        set(response, "etag", &self.http_etag());
        set(response, "accept-ranges", "bytes");
    }
}

/// An object and its bytes (all of them, or those of the [`Range`](super::Range) asked
/// for), which stream from the platform as [`body`](Self::body) is read.
#[derive(Debug)]
pub struct ObjectBody {
    /// The object.
    pub object: Object,
    /// The offset and length of the bytes `body` holds.
    pub range: (u64, u64),
    /// The bytes, streaming: return them in a response ([`into_response`](Self::into_response))
    /// or read them ([`bytes`](Self::bytes), [`text`](Self::text)).
    pub body: Body,
}

impl ObjectBody {
    /// Whether the body holds less than the whole object.
    pub fn is_partial(&self) -> bool {
        self.range != (0, self.object.size)
    }

    /// The bytes as an HTTP answer that streams them: `200`, or `206` with
    /// `content-range` for part of the object; `content-type` (the object's, or
    /// `application/octet-stream`), `content-length`, `etag` and `accept-ranges`.
    pub fn into_response(self) -> Response {
        let (offset, length) = self.range;
        let status = if self.is_partial() { 206 } else { 200 };
        let mut response = Response::new(self.body).with_status(status);
        let content_type = self.object.content_type.as_deref();
        let content_type = content_type.filter(|t| HeaderValue::from_str(t).is_ok());
        set(
            &mut response,
            "content-type",
            content_type.unwrap_or("application/octet-stream"),
        );
        set(&mut response, "content-length", &length.to_string());
        if status == 206 {
            let last = (offset + length).saturating_sub(1);
            let size = self.object.size;
            set(
                &mut response,
                "content-range",
                &format!("bytes {offset}-{last}/{size}"),
            );
        }
        self.object.headers(&mut response);
        response
    }

    /// Reads all of the body.
    pub async fn bytes(mut self) -> Result<Vec<u8>> {
        Ok(self.body.contents().await?.to_vec())
    }

    /// Reads all of the body as UTF-8 text.
    pub async fn text(mut self) -> Result<String> {
        Ok(self.body.str_contents().await?.to_owned())
    }
}

/// The outcomes of [`Bucket::get_with`](super::Bucket::get_with).
#[derive(Debug)]
pub enum GetResult {
    /// The object, with the bytes asked for.
    Found(ObjectBody),
    /// The object still has the etag of
    /// [`GetOptions::if_none_match`](super::GetOptions::if_none_match): no bytes.
    NotModified(Object),
    /// No object has the key.
    NotFound,
    /// The range starts past the end of the object, which is `size` bytes.
    RangeNotSatisfiable { size: u64 },
}

impl GetResult {
    /// The HTTP answer of a get: [`ObjectBody::into_response`] when found, `304` with the
    /// `etag` when not modified, `404` when not found and `416` with
    /// `content-range: bytes */size` when the range is past the end.
    pub fn into_response(self) -> Response {
        match self {
            GetResult::Found(found) => found.into_response(),
            GetResult::NotModified(object) => {
                let mut response = Response::empty(304);
                object.headers(&mut response);
                response
            }
            GetResult::NotFound => Response::error("not found", 404),
            GetResult::RangeNotSatisfiable { size } => {
                let mut response = Response::error("range not satisfiable", 416);
                set(&mut response, "content-range", &format!("bytes */{size}"));
                response
            }
        }
    }

    pub(super) fn from_wit(result: r2::GetResult) -> Self {
        match result {
            r2::GetResult::Found(found) => GetResult::Found(ObjectBody {
                object: Object::from_wit(found.object),
                range: found.range,
                body: Body::from_try_stream(
                    AsyncInputStream::new(found.body).into_stream_of(BODY_CHUNK_BYTES),
                ),
            }),
            r2::GetResult::NotModified(object) => GetResult::NotModified(Object::from_wit(object)),
            r2::GetResult::NotFound => GetResult::NotFound,
            r2::GetResult::RangeNotSatisfiable(size) => GetResult::RangeNotSatisfiable { size },
        }
    }
}

/// One page of a listing. Serializes as
/// `{"objects": [..], "delimited_prefixes": [..], "truncated": .., "cursor": ..|null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPage {
    /// The objects of this page, in key order.
    pub objects: Vec<Object>,
    /// With a [`ListOptions::delimiter`](super::ListOptions::delimiter): the prefixes
    /// keys were rolled up into, each ending with the delimiter.
    pub delimited_prefixes: Vec<String>,
    /// Whether there is more after this page.
    pub truncated: bool,
    /// Pass this to [`ListOptions::cursor`](super::ListOptions::cursor) for the next
    /// page; `None` on the last page.
    pub cursor: Option<String>,
}

impl ListPage {
    pub(super) fn from_wit(page: r2::ListPage) -> Self {
        Self {
            objects: page.objects.into_iter().map(Object::from_wit).collect(),
            delimited_prefixes: page.delimited_prefixes,
            truncated: page.truncated,
            cursor: page.cursor,
        }
    }
}

/// Sets header `name` of `response`; values made here are valid HTTP (checked above where
/// they come from the object).
fn set(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}
