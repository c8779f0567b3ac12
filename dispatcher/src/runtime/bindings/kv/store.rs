//! The KV store: every customer's namespaces in one SQLite file (`kv.db`, WAL,
//! `synchronous=NORMAL`: a committed put survives a process restart) in the data
//! directory, every row keyed by (owner, namespace, key). Expired keys are invisible at
//! once and swept from their namespace on the next write to it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};

use super::super::platform::worker::kv::{Key, ListPage};
use crate::store::plan_statements_once;

pub const MAX_KEY_BYTES: usize = 512;
pub const MAX_VALUE_BYTES: usize = 25 << 20;

/// Most idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;

/// The KV store every script's `kv_namespace` bindings go through: one writer connection,
/// and read connections (WAL readers see every committed write) taken from a small pool,
/// so a get waits for no write and no other get.
pub struct KvStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl KvStore {
    pub fn open(data_dir: &Path) -> rusqlite::Result<KvStore> {
        let path = data_dir.join("kv.db");
        let conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        plan_statements_once(&conn)?;
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
            path,
            conn: Mutex::new(conn),
            readers: Mutex::default(),
        })
    }

    /// Runs `read` on a read connection of the pool (opened when none is idle).
    fn with_reader<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let reader = match idle {
            Some(reader) => reader,
            None => {
                let reader = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                reader.busy_timeout(Duration::from_secs(5))?;
                plan_statements_once(&reader)?;
                reader
            }
        };
        let result = read(&reader);
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(reader);
        }
        result
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value of `key` when it is at most `inline_limit` bytes: `Ok(Err(size))` for a
    /// larger one, which the caller reads with [`get`](Self::get) off the async threads.
    /// (SQLite knows a blob's length from its record header without reading the blob.)
    pub fn get_small(
        &self,
        owner: &str,
        namespace: &str,
        key: &str,
        inline_limit: usize,
    ) -> rusqlite::Result<Option<Result<Vec<u8>, usize>>> {
        self.with_reader(|reader| {
            reader
                .prepare_cached(
                    "SELECT CASE WHEN length(value) <= ?5 THEN value END, length(value)
                     FROM kv WHERE owner = ?1 AND namespace = ?2 AND key = ?3
                       AND (expires_at IS NULL OR expires_at > ?4)",
                )?
                .query_row(
                    params![owner, namespace, key, now(), inline_limit as i64],
                    |row| {
                        let value: Option<Vec<u8>> = row.get(0)?;
                        let size: i64 = row.get(1)?;
                        Ok(value.ok_or(size as usize))
                    },
                )
                .optional()
        })
    }

    pub fn get(
        &self,
        owner: &str,
        namespace: &str,
        key: &str,
    ) -> rusqlite::Result<Option<Vec<u8>>> {
        self.with_reader(|reader| {
            reader
                .prepare_cached(
                    "SELECT value FROM kv WHERE owner = ?1 AND namespace = ?2 AND key = ?3
                       AND (expires_at IS NULL OR expires_at > ?4)",
                )?
                .query_row(params![owner, namespace, key, now()], |row| row.get(0))
                .optional()
        })
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
