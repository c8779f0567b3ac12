//! The namespace store: one SQLite database (`dispatcher.db`, WAL, `synchronous=FULL`) in
//! the data directory, plus content-addressed component bytes under `blobs/`.
//!
//! It owns persistence only: customers and their hashed tokens, scripts, their tags,
//! versions (each with its bindings, secrets sealed) and deployments, the admin's settings for them (owned, the outbound policy
//! sealed), and the digests of compiled artifacts. It knows nothing about HTTP or
//! wasmtime. Calls are blocking; async callers run them on the blocking pool. A full
//! disk is its own error (`StoreError::StorageFull`), and so is a blob whose bytes no
//! longer match their digest (`StoreError::CorruptBlob`).

mod bindings;
mod blobs;
mod consumers;
mod customers;
mod deployments;
mod durable;
mod full;
mod migrations;
mod schedules;
mod scripts;
mod secrets;
mod settings;
mod usage;
mod versions;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

pub use bindings::{BindingFields, BindingRequest, BindingView, StoredBinding};
pub use consumers::{ConsumerSpec, StoredConsumer};
pub use customers::{Customer, IssuedToken};
pub use deployments::{DeploymentRecord, VersionShare, check_shares, main_share};
pub use schedules::StoredSchedule;
pub use scripts::{ScriptHead, ScriptRecord, Upload, Uploaded};
pub use settings::{LimitOverrides, OutboundPolicy, ScriptSettings};
pub use usage::{UsageCounters, UsageKey};
pub use versions::{LiveVersion, MAX_PER_PAGE, Page, PageRequest, VersionRecord};

/// Namespace of scripts uploaded by customers.
pub const CUSTOMER_NAMESPACE: &str = "customers";
/// Namespace of the platform's own scripts (first-party services, outbound workers).
pub const PLATFORM_NAMESPACE: &str = "platform";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("storage I/O error: {0}")]
    Io(std::io::Error),
    /// The disk (or the quota) is full; nothing was changed.
    #[error("storage is full: {0}")]
    StorageFull(String),
    /// A stored component's bytes no longer hash to the digest that names them.
    #[error("blob {sha256} is corrupted: its bytes hash to {actual}")]
    CorruptBlob { sha256: String, actual: String },
    #[error("the name is taken by another customer")]
    NameTaken,
    #[error("not found")]
    NotFound,
    /// The script has no kept version with this id.
    #[error("version `{0}` not found")]
    VersionNotFound(String),
    /// A customer's kept versions would take more than its share of component storage.
    #[error(
        "your scripts' kept versions would hold {used} bytes of components; the limit is \
         {limit}: delete scripts or deploy so older versions can go"
    )]
    QuotaExceeded { used: u64, limit: u64 },
    /// A deployment or rollback that cannot be made, and why.
    #[error("{0}")]
    InvalidDeployment(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        if full::sqlite_is_full(&error) {
            StoreError::StorageFull(error.to_string())
        } else {
            StoreError::Sqlite(error)
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        if full::io_is_full(&error) {
            StoreError::StorageFull(error.to_string())
        } else {
            StoreError::Io(error)
        }
    }
}

/// The open store. Cheap to share behind an `Arc`; one connection, serialised.
pub struct Store {
    data_dir: PathBuf,
    conn: Mutex<Connection>,
    secrets: secrets::SecretKey,
}

impl Store {
    /// Opens (creating if needed) the data directory and database and applies migrations.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir.join("blobs"))?;
        let mut conn = open_connection(data_dir)?;
        migrations::apply(&mut conn)?;
        let secrets = secrets::SecretKey::load_or_create(data_dir)?;
        settings::seal_plaintext_policies(&mut conn, &secrets)?;
        Ok(Store {
            data_dir: data_dir.to_path_buf(),
            conn: Mutex::new(conn),
            secrets,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A watcher that tells when another connection (the CLI, another process) committed.
    pub fn change_watcher(&self) -> Result<ChangeWatcher, StoreError> {
        let conn = open_connection(&self.data_dir)?;
        let mut watcher = ChangeWatcher { conn, last: 0 };
        watcher.last = watcher.data_version()?;
        Ok(watcher)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back
        // on drop), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn open_connection(data_dir: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        data_dir.join("dispatcher.db"),
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted and overwritten content (a replaced secret, a policy sealed late) is zeroed
    // in the file, not left in free pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    plan_statements_once(&conn)?;
    Ok(conn)
}

/// Makes `conn`'s query plans independent of the values bound to a statement (SQLite's
/// query planner stability guarantee), so a cached statement stays prepared. Without it,
/// a statement whose plan looked at a bound value (a `LIMIT ?`, a join such as `auth`'s
/// session check) is expired whenever another value is bound, and every call parses it
/// again: that was a third of the CPU of the session check. The price: a plan no longer
/// looks at a bound value (a `GLOB ?` prefix, `ANALYZE`'s histograms); a literal in the
/// SQL text still is looked at.
pub fn plan_statements_once(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// Polls SQLite's `data_version`, which changes when another connection commits.
pub struct ChangeWatcher {
    conn: Connection,
    last: i64,
}

impl ChangeWatcher {
    fn data_version(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))?)
    }

    /// True when something was committed since the last call.
    pub fn changed(&mut self) -> Result<bool, StoreError> {
        let now = self.data_version()?;
        let changed = now != self.last;
        self.last = now;
        Ok(changed)
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    hex::encode(buf)
}

pub use blobs::{Swept, sha256_file_hex, sha256_hex};
pub use durable::{write_durably, write_replaceable};
pub use full::{io_is_full, sqlite_is_full};
pub use scripts::customer_tag;
pub use secrets::write_owner_only;

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, StatementStatus, params};

    use super::plan_statements_once;

    /// How often a cached statement shaped like `auth`'s session check was parsed
    /// again, over runs that each bind another token and time.
    fn reprepares(conn: &Connection) -> i32 {
        conn.execute_batch(
            "CREATE TABLE users (id TEXT PRIMARY KEY, role TEXT NOT NULL);
             CREATE TABLE sessions (
                 token TEXT PRIMARY KEY,
                 user_id TEXT NOT NULL REFERENCES users(id),
                 expires_at INTEGER NOT NULL
             );
             CREATE INDEX sessions_by_expiry ON sessions (expires_at);",
        )
        .unwrap();
        let sql = "SELECT u.id, u.role FROM sessions s JOIN users u ON u.id = s.user_id \
                   WHERE s.token = ? AND s.expires_at > ?";
        for run in 0..10 {
            let mut statement = conn.prepare_cached(sql).unwrap();
            let rows = statement
                .query_map(params![format!("token {run}"), run], |row| {
                    row.get::<_, String>(0)
                })
                .unwrap();
            assert_eq!(rows.count(), 0);
        }
        conn.prepare_cached(sql)
            .unwrap()
            .get_status(StatementStatus::RePrepare)
    }

    #[test]
    fn cached_statements_are_not_parsed_again_for_new_values() {
        assert!(reprepares(&Connection::open_in_memory().unwrap()) > 0);
        let conn = Connection::open_in_memory().unwrap();
        plan_statements_once(&conn).unwrap();
        assert_eq!(reprepares(&conn), 0);
    }
}
