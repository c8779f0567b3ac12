//! What the calls of a [`Bucket`](super::Bucket) take: [`PutOptions`], [`GetOptions`] with
//! its [`Range`] (parsed from an HTTP `Range` header by [`Range::from_header`]) and
//! [`ListOptions`], each with builder methods.

use std::collections::BTreeMap;

use wstd::http::HeaderMap;

use crate::bindings::r2;

/// How [`Bucket::put`](super::Bucket::put) stores an object: its content type and custom
/// metadata, both optional.
///
/// ```ignore
/// let options = PutOptions::new().content_type("image/png").metadata("owner", "alice");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// The `content-type` the object is served with.
    pub content_type: Option<String>,
    /// Pairs kept with the object (at most 2048 bytes of names and values together).
    pub custom_metadata: BTreeMap<String, String>,
}

impl PutOptions {
    /// No content type, no metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores the object with `content_type`.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Adds the custom metadata `name: value` (replacing an earlier value of `name`).
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom_metadata.insert(name.into(), value.into());
        self
    }

    pub(super) fn into_wit(self) -> r2::PutOptions {
        r2::PutOptions {
            content_type: self.content_type,
            custom_metadata: self.custom_metadata.into_iter().collect(),
        }
    }
}

/// What [`Bucket::get_with`](super::Bucket::get_with) returns: all of the object or a
/// [`Range`] of it, or nothing when the caller's copy is still current.
///
/// ```ignore
/// // The `Range` and `If-None-Match` of a request, for an HTTP front end of a bucket.
/// let options = GetOptions::from_headers(req.headers());
/// let options = GetOptions::new().range(Range::Suffix(100));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// Only these bytes.
    pub range: Option<Range>,
    /// An etag (without quotes): while the object still has it, the get answers
    /// [`GetResult::NotModified`](super::GetResult::NotModified) and no bytes.
    pub if_none_match: Option<String>,
}

impl GetOptions {
    /// The whole object, unconditionally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Options from a request's `Range` and `If-None-Match` headers. A `Range` that
    /// [`Range::from_header`] does not take is ignored (the whole object is returned, as
    /// HTTP allows); of an `If-None-Match` list only the first etag is used, and `*` is
    /// ignored.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let mut options = Self {
            range: header("range").and_then(Range::from_header),
            if_none_match: None,
        };
        let first_etag = header("if-none-match").and_then(|v| v.split(',').next());
        if let Some(etag) = first_etag
            .map(str::trim)
            .filter(|e| !e.is_empty() && *e != "*")
        {
            options = options.if_none_match(etag);
        }
        options
    }

    /// Only the bytes of `range`.
    pub fn range(mut self, range: Range) -> Self {
        self.range = Some(range);
        self
    }

    /// No bytes while the object has `etag`, given bare (`abc`) or as HTTP quotes it
    /// (`"abc"`, `W/"abc"`).
    pub fn if_none_match(mut self, etag: &str) -> Self {
        let etag = etag.strip_prefix("W/").unwrap_or(etag);
        let etag = etag
            .strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
            .unwrap_or(etag);
        self.if_none_match = Some(etag.to_owned());
        self
    }

    pub(super) fn into_wit(self) -> r2::GetOptions {
        r2::GetOptions {
            range: self.range.map(Range::into_wit),
            if_none_match: self.if_none_match,
        }
    }
}

/// Which bytes of an object a get returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// From `offset`, `length` bytes, or to the end when `length` is `None`.
    Span { offset: u64, length: Option<u64> },
    /// The last this many bytes (all of them when the object is shorter).
    Suffix(u64),
}

impl Range {
    /// The range of an HTTP `Range` header with one range: `bytes=a-b` (`a` to `b`
    /// inclusive), `bytes=a-` (from `a` to the end) or `bytes=-n` (the last `n` bytes).
    /// `None` for anything else: several ranges, another unit, `b` before `a`, `-0`.
    ///
    /// ```ignore
    /// assert_eq!(Range::from_header("bytes=10-19"), Some(Range::Span { offset: 10, length: Some(10) }));
    /// assert_eq!(Range::from_header("bytes=-5"), Some(Range::Suffix(5)));
    /// ```
    pub fn from_header(value: &str) -> Option<Range> {
        let (unit, spec) = value.trim().split_once('=')?;
        if !unit.trim().eq_ignore_ascii_case("bytes") {
            return None;
        }
        let (first, last) = spec.trim().split_once('-')?;
        let number = |text: &str| {
            let text = text.trim();
            let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
            digits.then(|| text.parse::<u64>().ok()).flatten()
        };
        match (first.trim().is_empty(), last.trim().is_empty()) {
            (true, false) => number(last).filter(|&n| n > 0).map(Range::Suffix),
            (false, true) => Some(Range::Span {
                offset: number(first)?,
                length: None,
            }),
            (false, false) => {
                let (first, last) = (number(first)?, number(last)?);
                let inclusive = last.checked_sub(first)?;
                Some(Range::Span {
                    offset: first,
                    // `0-18446744073709551615` is everything: to the end.
                    length: inclusive.checked_add(1),
                })
            }
            (true, true) => None,
        }
    }

    fn into_wit(self) -> r2::ByteRange {
        match self {
            Range::Span { offset, length } => r2::ByteRange::Span((offset, length)),
            Range::Suffix(n) => r2::ByteRange::Suffix(n),
        }
    }
}

/// What [`Bucket::list`](super::Bucket::list) lists: all fields are optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Where to continue, from a previous [`ListPage::cursor`](super::ListPage::cursor).
    pub cursor: Option<String>,
    /// Keys with this after the prefix are rolled up, up to and including it, into
    /// [`ListPage::delimited_prefixes`](super::ListPage::delimited_prefixes): with `/`,
    /// a listing of one "directory".
    pub delimiter: Option<String>,
    /// At most this many objects and prefixes together (the platform's default and
    /// maximum is 1000).
    pub limit: Option<u32>,
}

impl ListOptions {
    /// All objects, from the start, as many as the platform gives in one page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only keys starting with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Continue after a previous page.
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// Roll keys up at `delimiter`.
    pub fn delimiter(mut self, delimiter: impl Into<String>) -> Self {
        self.delimiter = Some(delimiter.into());
        self
    }

    /// At most `limit` objects and prefixes.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    pub(super) fn into_wit(self) -> r2::ListOptions {
        r2::ListOptions {
            prefix: self.prefix,
            cursor: self.cursor,
            delimiter: self.delimiter,
            limit: self.limit,
        }
    }
}
