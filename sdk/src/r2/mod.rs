//! Object storage: [`Bucket`], the handle of an `r2_bucket` binding, and its calls. What
//! they take is in [`options`] ([`PutOptions`], [`GetOptions`] with its [`Range`],
//! [`ListOptions`]); what they return is in [`object`] ([`Object`], [`ObjectBody`],
//! [`GetResult`], [`ListPage`]).
//!
//! Bodies stream both ways: a put writes its [`Body`] to the platform chunk by chunk and a
//! get hands back a [`Body`] that reads from the platform as it is sent on, so neither
//! the script nor the platform holds a whole object.

mod object;
mod options;

use wstd::http::BodyExt as _;
use wstd::io::AsyncOutputStream;

use crate::bindings::{Opened, r2, types};
use crate::{BindingError, Body, Result};

pub use object::{GetResult, ListPage, Object, ObjectBody};
pub use options::{GetOptions, ListOptions, PutOptions, Range};

/// An `r2_bucket` binding, from [`Env::bucket`](crate::Env::bucket): an object-storage
/// bucket of the customer. Cheap to clone; clones share the bucket.
///
/// Keys are strings of 1 to 1024 bytes; objects carry a content type and custom metadata.
/// Every call fails with a [`BindingError`] when the platform refuses it (a key too long:
/// [`Invalid`](crate::BindingErrorKind::Invalid); the customer's storage quota or the
/// object size limit: [`LimitExceeded`](crate::BindingErrorKind::LimitExceeded)) or when
/// the binding does not exist (found by the first call, which opens the bucket for the
/// rest).
///
/// ```ignore
/// let files = env.bucket("FILES");
/// // Straight from the request to the bucket, never whole in memory.
/// let object = files.put("report.pdf", req.into_body(), PutOptions::new()).await?;
/// // And back: the stored bytes stream into the response.
/// match files.get("report.pdf").await? {
///     Some(found) => Ok(found.into_response()),
///     None => Ok(Response::error("not found", 404)),
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Bucket {
    bucket: Opened<r2::Bucket>,
}

impl Bucket {
    pub(crate) fn new(binding: &str) -> Self {
        Self {
            bucket: Opened::new(binding),
        }
    }

    /// Stores `body` under `key`, replacing what was there, and returns what is now
    /// stored. The body streams to the platform as it is read: `req.into_body()` stores
    /// a request body of any size within the limits.
    ///
    /// Nothing is stored when the put fails, whether the platform refused it (over the
    /// quota, say) or `body` failed to read to its end.
    pub async fn put(
        &self,
        key: &str,
        body: impl Into<Body>,
        options: PutOptions,
    ) -> Result<Object> {
        let (upload, stream) = self.begin_put(key, options)?;
        let mut body = body.into().into_boxed_body();
        let mut written = Ok(());
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => {
                    // Dropped without `finish`, the upload stores nothing.
                    drop(stream);
                    drop(upload);
                    return Err(e.context(self.reading(key)));
                }
            };
            if let Ok(data) = frame.into_data() {
                written = stream.write_all(&data).await;
                if written.is_err() {
                    break;
                }
            }
        }
        self.finish_put(key, upload, stream, written).await
    }

    /// Stores `bytes` under `key`, replacing what was there; the same as [`put`](Self::put)
    /// with a body in memory.
    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: impl AsRef<[u8]>,
        options: PutOptions,
    ) -> Result<Object> {
        let (upload, stream) = self.begin_put(key, options)?;
        let written = stream.write_all(bytes.as_ref()).await;
        self.finish_put(key, upload, stream, written).await
    }

    /// The object under `key` with its bytes, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<ObjectBody>> {
        Ok(match self.get_with(key, GetOptions::new()).await? {
            GetResult::Found(found) => Some(found),
            _ => None,
        })
    }

    /// The object under `key` as `options` ask: a [`Range`] of its bytes, or no bytes
    /// when it still has the etag of [`GetOptions::if_none_match`]. See [`GetResult`].
    pub async fn get_with(&self, key: &str, options: GetOptions) -> Result<GetResult> {
        let result = self
            .bucket("r2 get")?
            .get(key, &options.into_wit())
            .map_err(|e| self.error("r2 get", e))?;
        Ok(GetResult::from_wit(result))
    }

    /// What is known of the object under `key` (no bytes), or `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<Object>> {
        let object = self
            .bucket("r2 head")?
            .head(key)
            .map_err(|e| self.error("r2 head", e))?;
        Ok(object.map(Object::from_wit))
    }

    /// Removes `keys` (at most 1000 per call); a key that does not exist is no error.
    ///
    /// ```ignore
    /// bucket.delete(["a.txt"]).await?;
    /// bucket.delete(&names).await?; // a Vec<String>
    /// ```
    pub async fn delete<K: AsRef<str>>(&self, keys: impl IntoIterator<Item = K>) -> Result<()> {
        let keys: Vec<String> = keys.into_iter().map(|k| k.as_ref().to_owned()).collect();
        self.bucket("r2 delete")?
            .delete(&keys)
            .map_err(|e| self.error("r2 delete", e))
    }

    /// One page of objects in key order, as `options` ask. Pass the returned
    /// [`ListPage::cursor`] back in [`ListOptions::cursor`] for the next page.
    ///
    /// ```ignore
    /// let page = bucket.list(ListOptions::new().prefix("photos/").delimiter("/")).await?;
    /// ```
    pub async fn list(&self, options: ListOptions) -> Result<ListPage> {
        let page = self
            .bucket("r2 list")?
            .list(&options.into_wit())
            .map_err(|e| self.error("r2 list", e))?;
        Ok(ListPage::from_wit(page))
    }

    /// The bucket, opened by the first call (which finds a missing binding).
    fn bucket(&self, operation: &'static str) -> Result<&r2::Bucket> {
        self.bucket
            .get(r2::Bucket::open)
            .map_err(|e| self.error(operation, e))
    }

    /// An upload of `key` and the stream its bytes go to.
    fn begin_put(&self, key: &str, options: PutOptions) -> Result<(r2::Upload, AsyncOutputStream)> {
        let upload = self
            .bucket("r2 put")?
            .put(key, &options.into_wit())
            .map_err(|e| self.error("r2 put", e))?;
        let stream = upload.body().map_err(|e| self.error("r2 put", e))?;
        Ok((upload, AsyncOutputStream::new(stream)))
    }

    /// Ends an upload whose body was written (`written` is how that went): the stream is
    /// flushed and dropped — the platform stores nothing before it sees the end — and
    /// then the upload finished.
    async fn finish_put(
        &self,
        key: &str,
        upload: r2::Upload,
        stream: AsyncOutputStream,
        written: std::io::Result<()>,
    ) -> Result<Object> {
        let written = match written {
            Ok(()) => stream.flush().await,
            Err(e) => Err(e),
        };
        drop(stream);
        // A write the platform refused (over the quota, say) is explained by `finish`,
        // which then stores nothing; its error is the one that says why.
        let finished = r2::Upload::finish(upload).map_err(|e| self.error("r2 put", e));
        match (finished, written) {
            (Ok(object), Ok(())) => Ok(Object::from_wit(object)),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(crate::Error::new(e).context(format!(
                "r2 put of `{key}` on `{}`: writing the body",
                self.bucket.binding()
            ))),
        }
    }

    fn reading(&self, key: &str) -> String {
        format!(
            "r2 put of `{key}` on `{}`: reading the body to store",
            self.bucket.binding()
        )
    }

    fn error(&self, operation: &'static str, error: types::Error) -> crate::Error {
        BindingError::new(operation, self.bucket.binding(), error).into()
    }
}
