//! The R2 object store: objects keyed by (owner, bucket, key), where the owner is the
//! calling script's customer, so a bucket name never reaches another customer's objects.
//!
//! Bodies are content-addressed files, `<data_dir>/r2/objects/<sha256[0..2]>/<sha256>`:
//! identical bodies under several keys are one file, removed when the last row naming it
//! goes. Metadata is one SQLite file, `<data_dir>/r2/r2.db` (WAL, `synchronous=NORMAL`).
//! A put streams into `r2/tmp/` while hashing (`put.rs`), then fsyncs, renames the file
//! into place, fsyncs its directory and only then commits the row, so a crash leaves the
//! old object or the new one, never a part; `open` sweeps what a crash can leave (temp
//! files, blobs no row names). Placing a blob with its row, and removing a row with its
//! now unused blob, happen under the connection's mutex, so a put of the same bytes can
//! never lose its blob to a concurrent delete.
//!
//! Each owner's logical bytes (the sum of its objects' sizes, every bucket) are kept by
//! triggers in `usage` and capped at `max_bytes_per_owner`. A full disk is
//! `R2Error::StorageFull` and leaves nothing behind. Listing is in `listing.rs`.

mod listing;
mod put;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::{Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use tokio::io::{AsyncRead, AsyncReadExt as _, ReadBuf};

use crate::store::{io_is_full, plan_statements_once, sqlite_is_full};

pub use listing::{ListOptions, ListPage, MAX_LIST_LIMIT};
pub use put::PendingPut;

/// The largest object, as in R2 (5 GiB).
pub const MAX_OBJECT_BYTES: u64 = 5 << 30;
/// Keys are 1 to this many bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
/// The custom metadata of an object: keys and values together, at most this many bytes.
pub const MAX_CUSTOM_METADATA_BYTES: usize = 2048;
/// The most keys one `delete` takes.
pub const MAX_DELETE_KEYS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum R2Error {
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("invalid metadata: {0}")]
    InvalidMetadata(String),
    #[error("invalid list cursor")]
    InvalidCursor,
    #[error("an object is at most {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the storage quota of {limit} bytes is used up")]
    QuotaExceeded { limit: u64 },
    #[error("the range starts past the end of the object ({size} bytes)")]
    RangeNotSatisfiable { size: u64 },
    #[error("at most {limit} keys can be deleted at once")]
    TooManyKeys { limit: usize },
    /// The disk is full; nothing was written.
    #[error("the storage is full")]
    StorageFull,
    #[error("object storage I/O error: {0}")]
    Io(std::io::Error),
    #[error("object storage database error: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<std::io::Error> for R2Error {
    fn from(error: std::io::Error) -> Self {
        if io_is_full(&error) {
            R2Error::StorageFull
        } else {
            R2Error::Io(error)
        }
    }
}

impl From<rusqlite::Error> for R2Error {
    fn from(error: rusqlite::Error) -> Self {
        if sqlite_is_full(&error) {
            R2Error::StorageFull
        } else {
            R2Error::Sqlite(error)
        }
    }
}

/// What a put sets besides the body.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    pub custom_metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// The first 32 hex digits of the body's SHA-256, unquoted.
    pub etag: String,
    pub content_type: Option<String>,
    pub custom_metadata: BTreeMap<String, String>,
    /// When the put committed, in Unix milliseconds.
    pub uploaded_ms: i64,
}

/// A byte range of a get, as the caller parsed it (HTTP semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// From `offset`, `length` bytes (cut at the end of the object) or up to the end.
    Range { offset: u64, length: Option<u64> },
    /// The last this many bytes (the whole object when it is shorter).
    Suffix(u64),
}

#[derive(Debug)]
pub enum GetOutcome {
    Found {
        meta: ObjectMeta,
        body: ObjectBody,
        /// The (offset, length) served when a range was asked for.
        range: Option<(u64, u64)>,
    },
    /// `if_none_match` matched the object's etag.
    NotModified {
        meta: ObjectMeta,
    },
    NotFound,
}

/// The served bytes of an object. It holds the blob open, so deleting or overwriting the
/// object meanwhile does not cut it short.
#[derive(Debug)]
pub struct ObjectBody {
    inner: tokio::io::Take<tokio::fs::File>,
}

impl AsyncRead for ObjectBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// The object store behind every script's R2 bindings; shared as `Arc<ObjectStore>`.
pub struct ObjectStore {
    /// `<data_dir>/r2`.
    root: PathBuf,
    conn: Mutex<Connection>,
    max_bytes_per_owner: u64,
}

/// The columns `meta_from_row` reads, in its order.
const META_COLUMNS: &str = "key, size, etag, content_type, custom_metadata, uploaded_ms";

impl ObjectStore {
    /// Opens (creating) the store under `data_dir/r2` and sweeps what a crash left.
    pub fn open(data_dir: &Path, max_bytes_per_owner: u64) -> Result<ObjectStore, R2Error> {
        let root = data_dir.join("r2");
        let objects = root.join("objects");
        std::fs::create_dir_all(root.join("tmp"))?;
        std::fs::create_dir_all(&objects)?;
        // Every fan-out directory exists from the start, so a put never creates one.
        for byte in 0..=u8::MAX {
            match std::fs::create_dir(objects.join(format!("{byte:02x}"))) {
                Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(error.into());
                }
                _ => {}
            }
        }
        sync_dir(&objects)?;
        sync_dir(&root)?;
        sync_dir(data_dir)?;

        let conn = Connection::open(root.join("r2.db"))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        plan_statements_once(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS objects (
                owner           TEXT NOT NULL,
                bucket          TEXT NOT NULL,
                key             TEXT NOT NULL,
                sha256          TEXT NOT NULL,
                size            INTEGER NOT NULL,
                etag            TEXT NOT NULL,
                content_type    TEXT,
                custom_metadata TEXT NOT NULL,
                uploaded_ms     INTEGER NOT NULL,
                PRIMARY KEY (owner, bucket, key)
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS objects_by_sha256 ON objects (sha256);
            CREATE TABLE IF NOT EXISTS usage (
                owner TEXT PRIMARY KEY,
                bytes INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE TRIGGER IF NOT EXISTS usage_insert AFTER INSERT ON objects BEGIN
                INSERT OR IGNORE INTO usage (owner, bytes) VALUES (NEW.owner, 0);
                UPDATE usage SET bytes = bytes + NEW.size WHERE owner = NEW.owner;
            END;
            CREATE TRIGGER IF NOT EXISTS usage_update AFTER UPDATE OF size ON objects BEGIN
                UPDATE usage SET bytes = bytes - OLD.size + NEW.size WHERE owner = NEW.owner;
            END;
            CREATE TRIGGER IF NOT EXISTS usage_delete AFTER DELETE ON objects BEGIN
                UPDATE usage SET bytes = bytes - OLD.size WHERE owner = OLD.owner;
            END;",
        )?;
        let store = ObjectStore {
            root,
            conn: Mutex::new(conn),
            max_bytes_per_owner,
        };
        store.sweep()?;
        Ok(store)
    }

    /// Removes every temp file, and every blob no row names: a crash between a blob's
    /// rename and its row's commit, or between a row's delete and its blob's removal.
    fn sweep(&self) -> Result<(), R2Error> {
        let mut removed = 0usize;
        for entry in std::fs::read_dir(self.root.join("tmp"))? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
            removed += 1;
        }
        let conn = self.conn();
        let mut named = conn.prepare("SELECT EXISTS (SELECT 1 FROM objects WHERE sha256 = ?1)")?;
        for dir in std::fs::read_dir(self.root.join("objects"))? {
            let dir = dir?;
            if !dir.file_type()?.is_dir() {
                continue;
            }
            let fan_out = dir.file_name();
            for entry in std::fs::read_dir(dir.path())? {
                let entry = entry?;
                if !entry.file_type()?.is_file() {
                    continue;
                }
                let name = entry.file_name();
                let in_use = match (name.to_str(), fan_out.to_str()) {
                    (Some(sha256), Some(fan_out)) if sha256.get(..2) == Some(fan_out) => {
                        named.query_row([sha256], |row| row.get::<_, bool>(0))?
                    }
                    _ => false,
                };
                if !in_use {
                    std::fs::remove_file(entry.path())?;
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, "r2: swept temp files and unused blobs");
        }
        Ok(())
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn blob_path(&self, sha256: &str) -> PathBuf {
        self.root.join("objects").join(&sha256[..2]).join(sha256)
    }

    pub fn head(
        &self,
        owner: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectMeta>, R2Error> {
        check_bucket(bucket);
        check_key(key)?;
        Ok(find(&self.conn(), owner, bucket, key)?.map(|(meta, _)| meta))
    }

    /// The object at `key`: its `range` (all of it when `None`), or `NotModified` when
    /// `if_none_match` (an If-None-Match header value) names its etag.
    pub fn get(
        &self,
        owner: &str,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
        if_none_match: Option<&str>,
    ) -> Result<GetOutcome, R2Error> {
        check_bucket(bucket);
        check_key(key)?;
        let conn = self.conn();
        let Some((meta, sha256)) = find(&conn, owner, bucket, key)? else {
            return Ok(GetOutcome::NotFound);
        };
        if if_none_match.is_some_and(|tags| etag_matches(tags, &meta.etag)) {
            return Ok(GetOutcome::NotModified { meta });
        }
        let (offset, length) = match range {
            Some(range) => resolve_range(range, meta.size)?,
            None => (0, meta.size),
        };
        // Opened under the lock: no delete can remove the blob between the row and here.
        let mut file = std::fs::File::open(self.blob_path(&sha256))?;
        drop(conn);
        file.seek(SeekFrom::Start(offset))?;
        Ok(GetOutcome::Found {
            meta,
            body: ObjectBody {
                inner: tokio::fs::File::from_std(file).take(length),
            },
            range: range.map(|_| (offset, length)),
        })
    }

    /// Deletes `keys` (at most `MAX_DELETE_KEYS`); missing keys are no error.
    pub fn delete(&self, owner: &str, bucket: &str, keys: &[String]) -> Result<(), R2Error> {
        check_bucket(bucket);
        if keys.len() > MAX_DELETE_KEYS {
            return Err(R2Error::TooManyKeys {
                limit: MAX_DELETE_KEYS,
            });
        }
        for key in keys {
            check_key(key)?;
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut blobs = Vec::new();
        {
            let mut delete = tx.prepare_cached(
                "DELETE FROM objects WHERE owner = ?1 AND bucket = ?2 AND key = ?3
                 RETURNING sha256",
            )?;
            for key in keys {
                if let Some(sha256) = delete
                    .query_row(params![owner, bucket, key], |row| row.get::<_, String>(0))
                    .optional()?
                {
                    blobs.push(sha256);
                }
            }
        }
        tx.commit()?;
        blobs.sort_unstable();
        blobs.dedup();
        for sha256 in &blobs {
            self.remove_blob_if_unused(&conn, sha256);
        }
        Ok(())
    }

    /// The bytes `owner`'s objects take, every bucket.
    pub fn used_bytes(&self, owner: &str) -> Result<u64, R2Error> {
        Ok(used_bytes(&self.conn(), owner)?)
    }

    /// Removes the blob `sha256` when no row names it any more; called under the lock,
    /// after the commit that dropped a row naming it. That commit stands whatever happens
    /// here: a blob this fails to remove is an orphan the next `open` sweeps.
    fn remove_blob_if_unused(&self, conn: &Connection, sha256: &str) {
        let in_use = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM objects WHERE sha256 = ?1)")
            .and_then(|mut named| named.query_row([sha256], |row| row.get::<_, bool>(0)));
        let removed = match in_use {
            Ok(true) => return,
            Ok(false) => std::fs::remove_file(self.blob_path(sha256)).map_err(R2Error::from),
            Err(error) => Err(error.into()),
        };
        if let Err(error) = removed
            && !matches!(&error, R2Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
        {
            tracing::warn!(sha256, %error, "r2: cannot remove an unused blob");
        }
    }
}

fn used_bytes(conn: &Connection, owner: &str) -> rusqlite::Result<u64> {
    Ok(conn
        .prepare_cached("SELECT bytes FROM usage WHERE owner = ?1")?
        .query_row([owner], |row| get_u64(row, 0))
        .optional()?
        .unwrap_or(0))
}

/// The object at (owner, bucket, key) and its blob's digest.
fn find(
    conn: &Connection,
    owner: &str,
    bucket: &str,
    key: &str,
) -> rusqlite::Result<Option<(ObjectMeta, String)>> {
    conn.prepare_cached(&format!(
        "SELECT {META_COLUMNS}, sha256 FROM objects WHERE owner = ?1 AND bucket = ?2 AND key = ?3"
    ))?
    .query_row(params![owner, bucket, key], |row| {
        Ok((meta_from_row(row)?, row.get(6)?))
    })
    .optional()
}

/// An `ObjectMeta` from a row whose first columns are `META_COLUMNS`.
fn meta_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectMeta> {
    let custom_metadata: String = row.get(4)?;
    Ok(ObjectMeta {
        key: row.get(0)?,
        size: get_u64(row, 1)?,
        etag: row.get(2)?,
        content_type: row.get(3)?,
        custom_metadata: serde_json::from_str(&custom_metadata).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e.into())
        })?,
        uploaded_ms: row.get(5)?,
    })
}

/// A byte count (stored as SQLite's signed integer).
fn get_u64(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(idx)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, value))
}

/// The (offset, length) `range` serves of an object of `size` bytes.
fn resolve_range(range: ByteRange, size: u64) -> Result<(u64, u64), R2Error> {
    match range {
        ByteRange::Range { offset, length } if offset < size => {
            let rest = size - offset;
            Ok((offset, length.map_or(rest, |length| length.min(rest))))
        }
        ByteRange::Suffix(length) if length > 0 => {
            let length = length.min(size);
            Ok((size - length, length))
        }
        _ => Err(R2Error::RangeNotSatisfiable { size }),
    }
}

/// True when the If-None-Match value `tags` (a list of etags, quoted or not, weak or
/// not, or `*`) names `etag`.
fn etag_matches(tags: &str, etag: &str) -> bool {
    tags.split(',').map(str::trim).any(|tag| {
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        let tag = tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(tag);
        tag == "*" || tag == etag
    })
}

fn check_key(key: &str) -> Result<(), R2Error> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(R2Error::InvalidKey(format!(
            "a key is 1 to {MAX_KEY_BYTES} bytes; this one is {}",
            key.len()
        )));
    }
    Ok(())
}

/// Bucket names are the caller's to check (`^[a-z0-9][a-z0-9-]{2,62}$`).
fn check_bucket(bucket: &str) {
    debug_assert!(
        (3..=63).contains(&bucket.len())
            && bucket.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && b == b'-')
            }),
        "invalid bucket name {bucket:?}"
    );
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
