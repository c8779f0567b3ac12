//! `kv_namespace` bindings: key-value namespaces of the script's customer
//! (`platform:worker/kv`, a `namespace` resource opened by binding name). Every row is
//! keyed by (owner, namespace, key), where the owner is the calling script's customer, so
//! a namespace name never reaches another customer's data. A namespace exists as soon as
//! something is put in it. Limits follow Cloudflare KV: keys up to 512 bytes, values up
//! to 25 MiB. A write on a full disk fails with `limit-exceeded` and changes nothing.
//! The store itself is `store.rs`.

mod store;

use std::sync::Arc;

use platform_names::valid_name;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::platform::worker::kv::{
    Host as KvHost, HostNamespace, ListPage, Namespace, add_to_linker as link_kv,
};
use super::platform::worker::types::Error as BindingError;
use super::{OwnedResources, ResourceBinding};
use crate::store::sqlite_is_full;
pub use store::{KvStore, MAX_KEY_BYTES, MAX_VALUE_BYTES};

const MAX_LIST_LIMIT: u32 = 1000;
/// Largest value a get reads on the async thread it runs on.
const INLINE_VALUE_BYTES: usize = 64 << 10;

fn check_key(key: &str) -> Result<(), BindingError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(BindingError::Invalid(format!(
            "a key is 1 to {MAX_KEY_BYTES} bytes; this one is {}",
            key.len()
        )));
    }
    Ok(())
}

/// The namespace a binding call works on: the store, the owner and the namespace name.
pub(super) struct Target {
    kv: Arc<KvStore>,
    owner: String,
    namespace: String,
}

impl Target {
    /// Runs a blocking KV operation off the async threads.
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce(&KvStore, &str, &str) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, BindingError> {
        tokio::task::spawn_blocking(move || work(&self.kv, &self.owner, &self.namespace))
            .await
            .map_err(|e| BindingError::Internal(e.to_string()))?
            .map_err(store_error)
    }
}

fn store_error(error: rusqlite::Error) -> BindingError {
    tracing::error!(%error, "kv store error");
    if sqlite_is_full(&error) {
        BindingError::LimitExceeded("the platform's storage is full; nothing was written".into())
    } else {
        BindingError::Internal("the KV store failed".into())
    }
}

/// A point read of a small value runs inline: one row from the page cache takes
/// microseconds, less than a hop to the blocking pool and back. A value over
/// `INLINE_VALUE_BYTES` is read on the blocking pool, so a tenant reading large values
/// holds no async thread other tenants' requests need.
async fn read(
    kv: &Arc<KvStore>,
    owner: &str,
    namespace: &str,
    key: String,
) -> Result<Option<Vec<u8>>, BindingError> {
    check_key(&key)?;
    let small = kv
        .get_small(owner, namespace, &key, INLINE_VALUE_BYTES)
        .map_err(store_error)?;
    match small {
        None => Ok(None),
        Some(Ok(value)) => Ok(Some(value)),
        Some(Err(_large)) => {
            let target = Target {
                kv: kv.clone(),
                owner: owner.to_string(),
                namespace: namespace.to_string(),
            };
            target
                .run(move |kv, owner, ns| kv.get(owner, ns, &key))
                .await
        }
    }
}

impl Target {
    pub(super) async fn get(self, key: String) -> Result<Option<Vec<u8>>, BindingError> {
        read(&self.kv, &self.owner, &self.namespace, key).await
    }

    pub(super) async fn put(
        self,
        key: String,
        value: Vec<u8>,
        expiration_ttl: Option<u64>,
    ) -> Result<(), BindingError> {
        check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(BindingError::LimitExceeded(format!(
                "a value is at most {MAX_VALUE_BYTES} bytes; this one is {}",
                value.len()
            )));
        }
        if expiration_ttl == Some(0) {
            return Err(BindingError::Invalid(
                "expiration-ttl must be at least 1 second".into(),
            ));
        }
        self.run(move |kv, owner, ns| kv.put(owner, ns, &key, &value, expiration_ttl))
            .await
    }

    pub(super) async fn delete(self, key: String) -> Result<(), BindingError> {
        check_key(&key)?;
        self.run(move |kv, owner, ns| kv.delete(owner, ns, &key))
            .await
    }

    pub(super) async fn list(
        self,
        prefix: Option<String>,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<ListPage, BindingError> {
        let limit = limit.unwrap_or(MAX_LIST_LIMIT).clamp(1, MAX_LIST_LIMIT);
        let prefix = prefix.unwrap_or_default();
        self.run(move |kv, owner, ns| kv.list(owner, ns, &prefix, cursor.as_deref(), limit))
            .await
    }
}

/// The `kv_namespace` binding unit: `{"type": "kv_namespace", "name": "CACHE",
/// "namespace": "cache"}`; the namespace is the owner's own and comes into being on first
/// use.
pub const KV_NAMESPACE: ResourceBinding = ResourceBinding {
    kind: "kv_namespace",
    field: "namespace",
    valid: valid_name,
    rule: "use 1-63 of a-z, 0-9 and -",
    resources: |bindings| &mut bindings.kv,
};

/// One run's view of KV: the store and the script's namespaces.
pub struct KvCtx {
    kv: Arc<KvStore>,
    namespaces: OwnedResources,
}

impl KvCtx {
    pub fn new(kv: &Arc<KvStore>, namespaces: &OwnedResources) -> KvCtx {
        KvCtx {
            kv: kv.clone(),
            namespaces: namespaces.clone(),
        }
    }

    /// The customer namespace behind the script's KV binding `binding`.
    pub(super) fn target(&self, binding: &str) -> Result<Target, BindingError> {
        let namespace = self.namespaces.get(KV_NAMESPACE.kind, binding)?;
        Ok(Target {
            kv: self.kv.clone(),
            owner: self.namespaces.owner.to_string(),
            namespace: namespace.to_string(),
        })
    }
}

/// An opened namespace: the customer namespace its binding named.
pub struct NamespaceHandle {
    namespace: String,
}

/// What the `kv` interface is linked with: this run's KV context and its resources.
pub struct KvView<'a> {
    pub ctx: &'a mut KvCtx,
    pub table: &'a mut ResourceTable,
}

impl KvView<'_> {
    fn handle_of(&self, namespace: &Resource<Namespace>) -> Result<&NamespaceHandle, BindingError> {
        self.table
            .get(namespace)
            .map_err(|e| BindingError::Internal(e.to_string()))
    }

    fn target_of(&self, namespace: &Resource<Namespace>) -> Result<Target, BindingError> {
        let handle = self.handle_of(namespace)?;
        Ok(Target {
            kv: self.ctx.kv.clone(),
            owner: self.ctx.namespaces.owner.to_string(),
            namespace: handle.namespace.clone(),
        })
    }
}

struct HasKv;

impl HasData for HasKv {
    type Data<'a> = KvView<'a>;
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> KvView<'_>,
) -> wasmtime::Result<()> {
    link_kv::<T, HasKv>(linker, get)
}

impl KvHost for KvView<'_> {}

impl HostNamespace for KvView<'_> {
    async fn open(&mut self, binding: String) -> Result<Resource<Namespace>, BindingError> {
        let target = self.ctx.target(&binding)?;
        let handle = NamespaceHandle {
            namespace: target.namespace,
        };
        self.table
            .push(handle)
            .map_err(|e| BindingError::Internal(e.to_string()))
    }

    async fn get(
        &mut self,
        namespace: Resource<Namespace>,
        key: String,
    ) -> Result<Option<Vec<u8>>, BindingError> {
        // Borrowed, not copied: a get is the hottest binding call.
        let handle = self.handle_of(&namespace)?;
        let owner = &self.ctx.namespaces.owner;
        read(&self.ctx.kv, owner, &handle.namespace, key).await
    }

    async fn put(
        &mut self,
        namespace: Resource<Namespace>,
        key: String,
        value: Vec<u8>,
        expiration_ttl: Option<u64>,
    ) -> Result<(), BindingError> {
        self.target_of(&namespace)?
            .put(key, value, expiration_ttl)
            .await
    }

    async fn delete(
        &mut self,
        namespace: Resource<Namespace>,
        key: String,
    ) -> Result<(), BindingError> {
        self.target_of(&namespace)?.delete(key).await
    }

    async fn list(
        &mut self,
        namespace: Resource<Namespace>,
        prefix: Option<String>,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<ListPage, BindingError> {
        self.target_of(&namespace)?
            .list(prefix, cursor, limit)
            .await
    }

    async fn drop(&mut self, namespace: Resource<Namespace>) -> wasmtime::Result<()> {
        self.table.delete(namespace)?;
        Ok(())
    }
}
