//! KV namespaces: [`Kv`], the handle of a `kv_namespace` binding, and the types of its
//! listings ([`ListOptions`], [`ListPage`], [`Key`]).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::{Opened, kv};
use crate::{BindingError, Result};

/// A `kv_namespace` binding, from [`Env::kv`](crate::Env::kv): a key-value store of the
/// customer, shared by the scripts bound to it.
///
/// Keys are strings, values are bytes; text and JSON helpers convert on the way. Every
/// call fails with a [`BindingError`] when the platform refuses it (for instance a key
/// that is too long) or when the binding does not exist (found by the first call, which
/// opens the namespace for the rest).
///
/// ```ignore
/// let cache = env.kv("CACHE");
/// cache.put_with_ttl("session", "abc", 3600)?;
/// assert_eq!(cache.get_text("session")?.as_deref(), Some("abc"));
/// ```
#[derive(Debug, Clone)]
pub struct Kv {
    namespace: Opened<kv::Namespace>,
}

impl Kv {
    pub(crate) fn new(binding: &str) -> Self {
        Self {
            namespace: Opened::new(binding),
        }
    }

    fn namespace(&self, operation: &'static str) -> Result<&kv::Namespace> {
        self.namespace
            .get(kv::Namespace::open)
            .map_err(|e| self.error(operation, e))
    }

    /// The value of `key`, or `None` if it does not exist or has expired.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.namespace("kv get")?
            .get(key)
            .map_err(|e| self.error("kv get", e))
    }

    /// The value of `key` as UTF-8 text; a value that is not UTF-8 is an error.
    pub fn get_text(&self, key: &str) -> Result<Option<String>> {
        self.get(key)?
            .map(|v| {
                String::from_utf8(v)
                    .map_err(|e| anyhow::Error::new(e).context(self.not("UTF-8 text", key)))
            })
            .transpose()
    }

    /// The value of `key` parsed as JSON into `T`.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get(key)?
            .map(|v| {
                serde_json::from_slice(&v)
                    .map_err(|e| anyhow::Error::new(e).context(self.not("JSON", key)))
            })
            .transpose()
    }

    /// Stores `value` under `key`, replacing what was there; it does not expire.
    pub fn put(&self, key: &str, value: impl AsRef<[u8]>) -> Result<()> {
        self.put_inner(key, value.as_ref(), None)
    }

    /// Stores `value` under `key`; it expires `ttl_secs` seconds from now.
    pub fn put_with_ttl(&self, key: &str, value: impl AsRef<[u8]>, ttl_secs: u64) -> Result<()> {
        self.put_inner(key, value.as_ref(), Some(ttl_secs))
    }

    /// Stores `value` serialized as JSON under `key`; it does not expire.
    pub fn put_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        self.put_inner(key, &serde_json::to_vec(value)?, None)
    }

    /// Removes `key`; removing a key that does not exist is not an error.
    pub fn delete(&self, key: &str) -> Result<()> {
        self.namespace("kv delete")?
            .delete(key)
            .map_err(|e| self.error("kv delete", e))
    }

    /// One page of keys, in order. Pass the returned [`ListPage::cursor`] back in
    /// [`ListOptions::cursor`] to get the next page.
    ///
    /// ```ignore
    /// let page = env.kv("CACHE").list(ListOptions::new().prefix("user:").limit(10))?;
    /// ```
    pub fn list(&self, options: ListOptions) -> Result<ListPage> {
        let page = self
            .namespace("kv list")?
            .list(
                options.prefix.as_deref(),
                options.cursor.as_deref(),
                options.limit,
            )
            .map_err(|e| self.error("kv list", e))?;
        Ok(ListPage {
            keys: page
                .keys
                .into_iter()
                .map(|k| Key {
                    name: k.name,
                    expiration: k.expiration,
                })
                .collect(),
            cursor: page.cursor,
        })
    }

    fn put_inner(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<()> {
        self.namespace("kv put")?
            .put(key, value, ttl)
            .map_err(|e| self.error("kv put", e))
    }

    fn error(&self, operation: &'static str, error: kv::Error) -> crate::Error {
        BindingError::new(operation, self.namespace.binding(), error).into()
    }

    fn not(&self, what: &str, key: &str) -> String {
        format!(
            "kv value of `{key}` on `{}` is not {what}",
            self.namespace.binding()
        )
    }
}

/// What [`Kv::list`] lists: all fields are optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Where to continue, from a previous [`ListPage::cursor`].
    pub cursor: Option<String>,
    /// At most this many keys (the platform's default and maximum is 1000).
    pub limit: Option<u32>,
}

impl ListOptions {
    /// All keys, from the start, as many as the platform gives in one page.
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

    /// At most `limit` keys.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// One page of a listing. Serializes as
/// `{"keys": [{"name": .., "expiration": ..|null}], "cursor": ..|null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListPage {
    /// The keys of this page, in order.
    pub keys: Vec<Key>,
    /// Pass this to [`ListOptions::cursor`] for the next page; `None` on the last page.
    pub cursor: Option<String>,
}

/// A key of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Key {
    /// The key.
    pub name: String,
    /// When it expires, in Unix seconds, if it does.
    pub expiration: Option<u64>,
}
