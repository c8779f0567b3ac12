//! The KV store: every customer's namespaces in one SQLite file (`kv.db`, WAL,
//! `synchronous=NORMAL`: a committed put survives a process restart) in the data
//! directory, every row keyed by (owner, namespace, key). Expired keys are invisible at
//! once and swept from their namespace on the next write to it.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension as _, params};

use super::super::platform::worker::kv::{Key, ListPage};

pub const MAX_KEY_BYTES: usize = 512;
pub const MAX_VALUE_BYTES: usize = 25 << 20;

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
