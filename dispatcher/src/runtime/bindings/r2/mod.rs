//! `r2_bucket` bindings: R2-style object storage of the script's customer
//! (`platform:worker/r2`, a `bucket` resource opened by binding name). The metadata is
//! `{"type": "r2_bucket", "name": "VOUCHERS", "bucket_name": "vouchers"}`; a bucket name
//! is the owner's own (two customers with the same bucket name never meet) and the
//! bucket comes into being with its first object. `objects` is the storage engine.
//!
//! Bodies stream both ways through `wasi:io` streams and 64 KiB buffers, never whole in
//! host memory: a get hands the guest an `input-stream` reading the stored file (range
//! applied); a put gives it an `output-stream` whose bytes a pump task (`upload.rs`)
//! writes to the pending object as they come, and `upload.finish` commits it once the
//! guest has dropped that stream. A put past the quota or the size limit stops early and
//! stores nothing.

pub mod objects;
mod upload;

use std::collections::BTreeMap;
use std::sync::Arc;

use platform_names::valid_bucket_name;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::pipe::AsyncReadStream;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

use super::platform::worker::r2::{
    self as wit, GetOptions, GetResult, Host as R2Host, HostBucket, HostUpload, ListOptions,
    ListPage, Object, ObjectBody as WitObjectBody, PutOptions, add_to_linker as link_r2,
};
use super::platform::worker::types::Error as BindingError;
use super::{OwnedResources, ResourceBinding};
use objects::{ByteRange, GetOutcome, ObjectMeta, ObjectStore, R2Error};
pub use upload::UploadHandle;

/// The `r2_bucket` binding unit.
pub const R2_BUCKET: ResourceBinding = ResourceBinding {
    kind: "r2_bucket",
    field: "bucket_name",
    valid: valid_bucket_name,
    rule: "use 3-63 of a-z, 0-9 and -, starting with a letter or digit",
    resources: |bindings| &mut bindings.r2,
};

/// One run's view of object storage.
pub struct R2Ctx {
    objects: Arc<ObjectStore>,
    buckets: OwnedResources,
}

impl R2Ctx {
    pub fn new(objects: &Arc<ObjectStore>, buckets: &OwnedResources) -> R2Ctx {
        R2Ctx {
            objects: objects.clone(),
            buckets: buckets.clone(),
        }
    }
}

/// An opened bucket: the owner's bucket its binding named.
pub struct BucketHandle {
    bucket: String,
}

/// What the `r2` interface is linked with: this run's R2 context and its resources.
pub struct R2View<'a> {
    pub ctx: &'a mut R2Ctx,
    pub table: &'a mut ResourceTable,
}

struct HasR2;

impl HasData for HasR2 {
    type Data<'a> = R2View<'a>;
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> R2View<'_>,
) -> wasmtime::Result<()> {
    link_r2::<T, HasR2>(linker, get)
}

/// What a guest is told of a storage error; the detail of an internal one is logged.
fn binding_error(error: R2Error) -> BindingError {
    match error {
        R2Error::InvalidKey(_)
        | R2Error::InvalidMetadata(_)
        | R2Error::InvalidCursor
        | R2Error::TooManyKeys { .. }
        | R2Error::RangeNotSatisfiable { .. } => BindingError::Invalid(error.to_string()),
        R2Error::TooLarge { .. } | R2Error::QuotaExceeded { .. } | R2Error::StorageFull => {
            BindingError::LimitExceeded(error.to_string())
        }
        R2Error::Io(_) | R2Error::Sqlite(_) => {
            tracing::error!(%error, "object storage failed");
            BindingError::Internal("object storage failed".into())
        }
    }
}

fn internal(error: impl std::fmt::Display) -> BindingError {
    BindingError::Internal(error.to_string())
}

fn to_wit(meta: ObjectMeta) -> Object {
    Object {
        key: meta.key,
        size: meta.size,
        etag: meta.etag,
        content_type: meta.content_type,
        custom_metadata: meta.custom_metadata.into_iter().collect(),
        uploaded: meta.uploaded_ms,
    }
}

impl R2View<'_> {
    fn bucket(&self, bucket: &Resource<wit::Bucket>) -> Result<String, BindingError> {
        Ok(self.table.get(bucket).map_err(internal)?.bucket.clone())
    }

    /// Runs blocking storage work off the async threads, with the owner and bucket (the
    /// future holds no borrow of the view).
    fn blocking<T: Send + 'static>(
        &self,
        bucket: &Resource<wit::Bucket>,
        work: impl FnOnce(&ObjectStore, &str, &str) -> Result<T, R2Error> + Send + 'static,
    ) -> impl Future<Output = Result<T, BindingError>> + Send + 'static {
        let target = self.bucket(bucket).map(|bucket| {
            let owner = self.ctx.buckets.owner.clone();
            (bucket, self.ctx.objects.clone(), owner)
        });
        async move {
            let (bucket, objects, owner) = target?;
            tokio::task::spawn_blocking(move || work(&objects, &owner, &bucket))
                .await
                .map_err(internal)?
                .map_err(binding_error)
        }
    }
}

impl R2Host for R2View<'_> {}

impl HostBucket for R2View<'_> {
    async fn open(&mut self, binding: String) -> Result<Resource<wit::Bucket>, BindingError> {
        let bucket = self.ctx.buckets.get(R2_BUCKET.kind, &binding)?.to_string();
        self.table.push(BucketHandle { bucket }).map_err(internal)
    }

    async fn head(
        &mut self,
        bucket: Resource<wit::Bucket>,
        key: String,
    ) -> Result<Option<Object>, BindingError> {
        let found = self
            .blocking(&bucket, move |objects, owner, bucket| {
                objects.head(owner, bucket, &key)
            })
            .await?;
        Ok(found.map(to_wit))
    }

    async fn get(
        &mut self,
        bucket: Resource<wit::Bucket>,
        key: String,
        options: GetOptions,
    ) -> Result<GetResult, BindingError> {
        let range = options.range.map(|range| match range {
            wit::ByteRange::Span((offset, length)) => ByteRange::Range { offset, length },
            wit::ByteRange::Suffix(length) => ByteRange::Suffix(length),
        });
        let if_none_match = options.if_none_match;
        let outcome = self
            .blocking(&bucket, move |objects, owner, bucket| {
                match objects.get(owner, bucket, &key, range, if_none_match.as_deref()) {
                    Err(R2Error::RangeNotSatisfiable { size }) => Ok(Err(size)),
                    other => other.map(Ok),
                }
            })
            .await?;
        match outcome {
            Err(size) => Ok(GetResult::RangeNotSatisfiable(size)),
            Ok(GetOutcome::NotFound) => Ok(GetResult::NotFound),
            Ok(GetOutcome::NotModified { meta }) => Ok(GetResult::NotModified(to_wit(meta))),
            Ok(GetOutcome::Found { meta, body, range }) => {
                let range = range.unwrap_or((0, meta.size));
                let stream: DynInputStream = Box::new(AsyncReadStream::new(body));
                let body = self.table.push(stream).map_err(internal)?;
                Ok(GetResult::Found(WitObjectBody {
                    object: to_wit(meta),
                    range,
                    body,
                }))
            }
        }
    }

    async fn put(
        &mut self,
        bucket: Resource<wit::Bucket>,
        key: String,
        options: PutOptions,
    ) -> Result<Resource<wit::Upload>, BindingError> {
        let options = objects::PutOptions {
            content_type: options.content_type,
            custom_metadata: options
                .custom_metadata
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
        };
        let objects = self.ctx.objects.clone();
        let pending = self
            .blocking(&bucket, move |_, owner, bucket| {
                objects.begin_put(owner, bucket, &key, options)
            })
            .await?;
        self.table
            .push(UploadHandle::start(pending))
            .map_err(internal)
    }

    async fn delete(
        &mut self,
        bucket: Resource<wit::Bucket>,
        keys: Vec<String>,
    ) -> Result<(), BindingError> {
        self.blocking(&bucket, move |objects, owner, bucket| {
            objects.delete(owner, bucket, &keys)
        })
        .await
    }

    async fn list(
        &mut self,
        bucket: Resource<wit::Bucket>,
        options: ListOptions,
    ) -> Result<ListPage, BindingError> {
        let options = objects::ListOptions {
            prefix: options.prefix,
            cursor: options.cursor,
            delimiter: options.delimiter,
            limit: options.limit,
        };
        let page = self
            .blocking(&bucket, move |objects, owner, bucket| {
                objects.list(owner, bucket, options)
            })
            .await?;
        Ok(ListPage {
            objects: page.objects.into_iter().map(to_wit).collect(),
            delimited_prefixes: page.delimited_prefixes,
            truncated: page.truncated,
            cursor: page.cursor,
        })
    }

    async fn drop(&mut self, bucket: Resource<wit::Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl HostUpload for R2View<'_> {
    async fn body(
        &mut self,
        upload: Resource<wit::Upload>,
    ) -> Result<Resource<DynOutputStream>, BindingError> {
        let stream = self
            .table
            .get_mut(&upload)
            .map_err(internal)?
            .take_body()
            .ok_or_else(|| BindingError::Invalid("the body of an upload is taken once".into()))?;
        self.table.push(stream).map_err(internal)
    }

    async fn finish(&mut self, upload: Resource<wit::Upload>) -> Result<Object, BindingError> {
        let upload = self.table.delete(upload).map_err(internal)?;
        upload.finish().await.map(to_wit).map_err(binding_error)
    }

    async fn drop(&mut self, upload: Resource<wit::Upload>) -> wasmtime::Result<()> {
        self.table.delete(upload)?;
        Ok(())
    }
}
