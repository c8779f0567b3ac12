//! `kv_namespace` bindings: key-value namespaces in one SQLite file (`kv.db`, WAL,
//! `synchronous=NORMAL`: a committed put survives a process restart) in the data
//! directory. Every row is keyed by (owner, namespace, key), where the owner is the
//! calling script's customer, so a namespace name never reaches another customer's data.
//! A namespace exists as soon as something is put in it. Limits follow Cloudflare KV:
//! keys up to 512 bytes, values up to 25 MiB. Expired keys are invisible at once and
//! swept from their namespace on the next write to it. A write on a full disk fails with
//! `limit-exceeded` and changes nothing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension as _, params};

use platform_names::valid_name;
use wasmtime::component::{HasData, Linker};

use super::platform::worker::kv::{Host as KvHost, Key, ListPage, add_to_linker as link_kv};
use super::platform::worker::types::Error as BindingError;
use super::{
    Accepted, BindingKind, ScriptBindings, UploadContext, no_such_binding, required_string, spec_of,
};
use crate::store::{BindingFields, StoredBinding, sqlite_is_full};

pub const MAX_KEY_BYTES: usize = 512;
pub const MAX_VALUE_BYTES: usize = 25 << 20;
const MAX_LIST_LIMIT: u32 = 1000;

/// The KV store every script's `kv_namespace` bindings go through.
pub struct KvStore {
    conn: Mutex<Connection>,
}

impl KvStore {
    pub fn open(data_dir: &Path) -> rusqlite::Result<KvStore> {
        let conn = Connection::open(data_dir.join("kv.db"))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (
                owner      TEXT NOT NULL,
                namespace  TEXT NOT NULL,
                key        TEXT NOT NULL,
                value      BLOB NOT NULL,
                expires_at INTEGER,
                PRIMARY KEY (owner, namespace, key)
            ) WITHOUT ROWID",
        )?;
        Ok(KvStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(
        &self,
        owner: &str,
        namespace: &str,
        key: &str,
    ) -> rusqlite::Result<Option<Vec<u8>>> {
        self.conn()
            .prepare_cached(
                "SELECT value FROM kv WHERE owner = ?1 AND namespace = ?2 AND key = ?3
                   AND (expires_at IS NULL OR expires_at > ?4)",
            )?
            .query_row(params![owner, namespace, key, now()], |row| row.get(0))
            .optional()
    }

    pub fn put(
        &self,
        owner: &str,
        namespace: &str,
        key: &str,
        value: &[u8],
        ttl_seconds: Option<u64>,
    ) -> rusqlite::Result<()> {
        let now = now();
        let expires_at = ttl_seconds.map(expiration_after);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM kv WHERE owner = ?1 AND namespace = ?2 AND expires_at <= ?3",
            params![owner, namespace, now],
        )?;
        tx.execute(
            "INSERT INTO kv (owner, namespace, key, value, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (owner, namespace, key) DO UPDATE SET
                value = excluded.value, expires_at = excluded.expires_at",
            params![owner, namespace, key, value, expires_at],
        )?;
        tx.commit()
    }

    pub fn delete(&self, owner: &str, namespace: &str, key: &str) -> rusqlite::Result<()> {
        self.conn().execute(
            "DELETE FROM kv WHERE owner = ?1 AND namespace = ?2 AND key = ?3",
            params![owner, namespace, key],
        )?;
        Ok(())
    }

    /// Keys after `cursor` (exclusive) starting with `prefix`, in order; the page's cursor
    /// is its last key when more may follow.
    pub fn list(
        &self,
        owner: &str,
        namespace: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> rusqlite::Result<ListPage> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT key, expires_at FROM kv
             WHERE owner = ?1 AND namespace = ?2 AND key >= ?3 AND (?4 IS NULL OR key > ?4)
               AND substr(key, 1, length(?3)) = ?3
               AND (expires_at IS NULL OR expires_at > ?5)
             ORDER BY key LIMIT ?6",
        )?;
        let rows = stmt.query_map(
            params![owner, namespace, prefix, cursor, now(), limit as i64 + 1],
            |row| {
                Ok(Key {
                    name: row.get(0)?,
                    expiration: row.get::<_, Option<i64>>(1)?.map(|t| t as u64),
                })
            },
        )?;
        let mut keys = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let cursor = (keys.len() > limit as usize).then(|| {
            keys.truncate(limit as usize);
            keys.last().map(|k| k.name.clone()).unwrap_or_default()
        });
        Ok(ListPage { keys, cursor })
    }
}

/// Whole Unix seconds; a key with `expires_at = E` is live while `now() < E`.
fn now() -> i64 {
    since_epoch().as_secs() as i64
}

/// The first whole second at least `ttl` seconds from now, so a key lives for at least its
/// TTL (never less because the put happened late in a second).
fn expiration_after(ttl: u64) -> i64 {
    let since = since_epoch();
    let ceil = since.as_secs() + u64::from(since.subsec_nanos() > 0);
    ceil.saturating_add(ttl).min(i64::MAX as u64) as i64
}

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

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
struct Target {
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
            .map_err(|e| {
                tracing::error!(error = %e, "kv store error");
                if sqlite_is_full(&e) {
                    BindingError::LimitExceeded(
                        "the platform's storage is full; nothing was written".into(),
                    )
                } else {
                    BindingError::Internal("the KV store failed".into())
                }
            })
    }
}

/// The `kv_namespace` binding unit: `{"type": "kv_namespace", "name": "CACHE",
/// "namespace": "cache"}`; the namespace is the owner's own and comes into being on first
/// use.
pub struct KvNamespace;

impl BindingKind for KvNamespace {
    fn kind(&self) -> &'static str {
        "kv_namespace"
    }

    fn accept(
        &self,
        _name: &str,
        fields: &BindingFields,
        _upload: &UploadContext<'_>,
    ) -> Result<Accepted, String> {
        let namespace = required_string(fields, "namespace")?;
        if !valid_name(namespace) {
            return Err(format!(
                "invalid namespace name `{namespace}` (use 1-63 of a-z, 0-9 and -)"
            ));
        }
        Ok(Accepted {
            spec: spec_of("namespace", namespace),
            secret: None,
        })
    }

    fn resolve(&self, binding: StoredBinding, into: &mut ScriptBindings) {
        if let Some(serde_json::Value::String(namespace)) = binding.spec.get("namespace") {
            Arc::make_mut(&mut into.kv.namespaces).insert(binding.name, namespace.clone());
        }
    }
}

/// A script's KV namespaces by binding name, and whose data they are.
#[derive(Default)]
pub struct KvNamespaces {
    owner: Arc<str>,
    namespaces: Arc<HashMap<String, String>>,
}

impl KvNamespaces {
    pub fn owned_by(owner: &str) -> KvNamespaces {
        KvNamespaces {
            owner: owner.into(),
            namespaces: Arc::default(),
        }
    }
}

/// One run's view of KV: the store and the script's namespaces.
pub struct KvCtx {
    kv: Arc<KvStore>,
    owner: Arc<str>,
    namespaces: Arc<HashMap<String, String>>,
}

impl KvCtx {
    pub fn new(kv: &Arc<KvStore>, bindings: &KvNamespaces) -> KvCtx {
        KvCtx {
            kv: kv.clone(),
            owner: bindings.owner.clone(),
            namespaces: bindings.namespaces.clone(),
        }
    }

    /// The customer namespace behind the script's KV binding `binding`.
    fn target(&self, binding: &str) -> Result<Target, BindingError> {
        let namespace = self
            .namespaces
            .get(binding)
            .ok_or_else(|| no_such_binding("kv_namespace", binding))?;
        Ok(Target {
            kv: self.kv.clone(),
            owner: self.owner.to_string(),
            namespace: namespace.clone(),
        })
    }
}

struct HasKv;

impl HasData for HasKv {
    type Data<'a> = &'a mut KvCtx;
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut KvCtx,
) -> wasmtime::Result<()> {
    link_kv::<T, HasKv>(linker, get)
}

impl KvHost for &mut KvCtx {
    async fn get(&mut self, binding: String, key: String) -> Result<Option<Vec<u8>>, BindingError> {
        let target = self.target(&binding)?;
        check_key(&key)?;
        target
            .run(move |kv, owner, ns| kv.get(owner, ns, &key))
            .await
    }

    async fn put(
        &mut self,
        binding: String,
        key: String,
        value: Vec<u8>,
        expiration_ttl: Option<u64>,
    ) -> Result<(), BindingError> {
        let target = self.target(&binding)?;
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
        target
            .run(move |kv, owner, ns| kv.put(owner, ns, &key, &value, expiration_ttl))
            .await
    }

    async fn delete(&mut self, binding: String, key: String) -> Result<(), BindingError> {
        let target = self.target(&binding)?;
        check_key(&key)?;
        target
            .run(move |kv, owner, ns| kv.delete(owner, ns, &key))
            .await
    }

    async fn list(
        &mut self,
        binding: String,
        prefix: Option<String>,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<ListPage, BindingError> {
        let target = self.target(&binding)?;
        let limit = limit.unwrap_or(MAX_LIST_LIMIT).clamp(1, MAX_LIST_LIMIT);
        let prefix = prefix.unwrap_or_default();
        target
            .run(move |kv, owner, ns| kv.list(owner, ns, &prefix, cursor.as_deref(), limit))
            .await
    }
}
