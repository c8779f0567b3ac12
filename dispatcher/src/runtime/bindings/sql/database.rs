//! The customer databases behind `d1` bindings: one SQLite file per (customer, database)
//! under `d1/<owner>/<name>.sqlite` in the data directory, opened by the host only,
//! created on first use and kept open.
//!
//! Tenants are hostile, so every connection is locked down before a script's SQL runs:
//! no attached databases (`SQLITE_LIMIT_ATTACHED = 0`, which also stops `VACUUM INTO`),
//! an authorizer that refuses `ATTACH`/`DETACH`, every pragma outside a read-only
//! allowlist, script-issued transactions and savepoints (a transaction left open would
//! hold the database for everyone: use `batch`), and `load_extension`; defensive mode on
//! and untrusted schemas. The file size is capped with `max_page_count`, each statement
//! is interrupted at its time limit by a progress handler, and results are size-capped.
//!
//! A single read-only statement first runs on the caller's thread for at most
//! `INLINE_READ_TIME` (a point read from the page cache takes a few µs), when the
//! connection is free; one that takes longer is interrupted (SQLite rolls a statement
//! back whole) and run again on the blocking pool, as writes and batches always are.
//! Statements are prepared once per connection and cached, and plans do not depend on
//! bound values (`plan_statements_once`), so a cached statement is never parsed again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use platform_names::valid_name;
use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, params_from_iter};

use super::super::platform::worker::sql::{Results, Statement, Value};
use super::super::platform::worker::types::Error as BindingError;
use crate::store::{plan_statements_once, sqlite_is_full};

/// Limits every database and statement is held to.
#[derive(Debug, Clone)]
pub struct SqlLimits {
    pub max_database_bytes: u64,
    pub statement_time: Duration,
    /// Largest result (all rows of one call) handed back to a script.
    pub max_result_bytes: usize,
}

/// Read-only or connection-local pragmas a script may use.
const ALLOWED_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "foreign_keys",
    "defer_foreign_keys",
    "quick_check",
    "integrity_check",
    "user_version",
];

/// Every customer database, opened on first use and kept open.
pub struct SqlDatabases {
    dir: PathBuf,
    pub(super) limits: SqlLimits,
    open: Mutex<HashMap<(String, String), Arc<Database>>>,
}

/// Longest a read runs on the caller's (async) thread before it moves to the blocking pool.
const INLINE_READ_TIME: Duration = Duration::from_micros(500);

/// Where a statement runs, and so for how long.
#[derive(Clone, Copy, PartialEq)]
enum Pass {
    /// On the caller's thread, reads only, up to `INLINE_READ_TIME`.
    Inline,
    /// On the blocking pool, up to the statement time limit.
    Blocking,
}

pub struct Database {
    conn: Mutex<Connection>,
    /// Microseconds since `epoch` after which the running statement is interrupted.
    deadline_us: Arc<AtomicU64>,
    epoch: Instant,
    /// True while the host itself runs BEGIN/COMMIT for a batch.
    host_transaction: Arc<AtomicBool>,
}

impl SqlDatabases {
    pub fn new(data_dir: &Path, limits: SqlLimits) -> SqlDatabases {
        SqlDatabases {
            dir: data_dir.join("d1"),
            limits,
            open: Mutex::default(),
        }
    }

    pub(super) fn database(&self, owner: &str, name: &str) -> Result<Arc<Database>, BindingError> {
        if !valid_name(name)
            || !owner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(BindingError::Invalid(format!(
                "invalid database name `{name}`"
            )));
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let key = (owner.to_string(), name.to_string());
        if let Some(db) = open.get(&key) {
            return Ok(db.clone());
        }
        let dir = self.dir.join(owner);
        std::fs::create_dir_all(&dir).map_err(|e| internal("create the database", &e))?;
        let db = Database::open(&dir.join(format!("{name}.sqlite")), &self.limits)
            .map_err(|e| internal("open the database", &e))?;
        let db = Arc::new(db);
        open.insert(key, db.clone());
        Ok(db)
    }
}

impl Database {
    fn open(path: &Path, limits: &SqlLimits) -> rusqlite::Result<Database> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        let max_pages = limits.max_database_bytes as i64 / page_size.max(512);
        conn.pragma_update(None, "max_page_count", max_pages)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
        plan_statements_once(&conn)?;
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;

        let host_transaction = Arc::new(AtomicBool::new(false));
        let in_host_tx = host_transaction.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            authorize(&ctx, in_host_tx.load(Ordering::Relaxed))
        }))?;

        let epoch = Instant::now();
        let deadline_us = Arc::new(AtomicU64::new(u64::MAX));
        let deadline = deadline_us.clone();
        conn.progress_handler(
            1000,
            Some(move || epoch.elapsed().as_micros() as u64 > deadline.load(Ordering::Relaxed)),
        )?;
        Ok(Database {
            conn: Mutex::new(conn),
            deadline_us,
            epoch,
            host_transaction,
        })
    }

    /// Runs `statement` on the caller's thread when it only reads, the connection is free
    /// and it finishes within `INLINE_READ_TIME`; `None` when it must go to [`run`].
    ///
    /// [`run`]: Database::run
    pub(super) fn try_read_inline(
        &self,
        statement: &Statement,
        limits: &SqlLimits,
    ) -> Option<Result<Results, BindingError>> {
        let conn = match self.conn.try_lock() {
            Ok(conn) => conn,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let mut budget = limits.max_result_bytes;
        self.execute(&conn, statement, limits, &mut budget, 0, Pass::Inline)
            .transpose()
    }

    /// Runs one statement on its own, or several in one transaction that commits only
    /// when every statement succeeded. Blocks: call it on the blocking pool.
    pub(super) fn run(
        &self,
        statements: &[Statement],
        limits: &SqlLimits,
    ) -> Result<Vec<Results>, BindingError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut budget = limits.max_result_bytes;
        let mut execute = |index, statement| {
            self.execute(&conn, statement, limits, &mut budget, index, Pass::Blocking)
                .map(|ran| ran.expect("a blocking pass runs every statement"))
        };
        if let [statement] = statements {
            return Ok(vec![execute(0, statement)?]);
        }
        self.as_host(|| conn.execute_batch("BEGIN IMMEDIATE"))
            .map_err(|e| internal("begin a transaction", &e))?;
        let result: Result<Vec<Results>, BindingError> = statements
            .iter()
            .enumerate()
            .map(|(index, statement)| execute(index, statement))
            .collect();
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = self.as_host(|| conn.execute_batch(end));
        if let Err(error) = ended {
            // Never leave the shared connection inside a transaction.
            let _ = self.as_host(|| conn.execute_batch("ROLLBACK"));
            return Err(sql_error(error, None));
        }
        result
    }

    /// Runs `work` with the host's own transaction statements allowed.
    fn as_host<T>(&self, work: impl FnOnce() -> T) -> T {
        self.host_transaction.store(true, Ordering::Relaxed);
        let result = work();
        self.host_transaction.store(false, Ordering::Relaxed);
        result
    }

    /// Runs one statement; `Ok(None)` when an inline pass may not run it (it writes) or
    /// did not finish it in time (nothing of it is kept).
    fn execute(
        &self,
        conn: &Connection,
        statement: &Statement,
        limits: &SqlLimits,
        budget: &mut usize,
        index: usize,
        pass: Pass,
    ) -> Result<Option<Results>, BindingError> {
        let at = |e| sql_error(e, Some(index));
        let mut stmt = conn.prepare_cached(&statement.sql).map_err(at)?;
        let readonly = stmt.readonly();
        if pass == Pass::Inline && !readonly {
            return Ok(None);
        }
        let columns: Vec<String> = stmt.column_names().map(String::from).collect();
        let params = statement.params.iter().map(to_sql);
        let time = match pass {
            Pass::Inline => INLINE_READ_TIME,
            Pass::Blocking => limits.statement_time,
        };
        let deadline = self.epoch.elapsed() + time;
        self.deadline_us
            .store(deadline.as_micros() as u64, Ordering::Relaxed);
        let result = (|| {
            let mut rows = stmt.query(params_from_iter(params))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut values = Vec::with_capacity(columns.len());
                for i in 0..columns.len() {
                    let value = from_sql(row.get_ref(i)?);
                    *budget = budget
                        .checked_sub(value_size(&value))
                        .ok_or(rusqlite::Error::InvalidQuery)?;
                    values.push(value);
                }
                out.push(values);
            }
            Ok(out)
        })();
        self.deadline_us.store(u64::MAX, Ordering::Relaxed);
        if pass == Pass::Inline && is_interrupted(&result) {
            return Ok(None);
        }
        let rows = result.map_err(|e| match e {
            rusqlite::Error::InvalidQuery => BindingError::LimitExceeded(format!(
                "statement {index}: the result is larger than {} bytes",
                limits.max_result_bytes
            )),
            e => at(e),
        })?;
        Ok(Some(Results {
            columns,
            rows,
            rows_written: if readonly { 0 } else { conn.changes() },
            last_insert_id: conn.last_insert_rowid(),
        }))
    }
}

fn is_interrupted<T>(result: &rusqlite::Result<T>) -> bool {
    matches!(result, Err(rusqlite::Error::SqliteFailure(code, _))
        if code.code == rusqlite::ErrorCode::OperationInterrupted)
}

fn authorize(ctx: &AuthContext<'_>, host_transaction: bool) -> Authorization {
    match ctx.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            let read_only_use = pragma_value.is_none() && name == "page_count";
            if ALLOWED_PRAGMAS.contains(&name.as_str()) || read_only_use {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } if !host_transaction => {
            Authorization::Deny
        }
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension") =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

fn to_sql(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(*i),
        Value::Real(f) => SqlValue::Real(*f),
        Value::Text(s) => SqlValue::Text(s.clone()),
        Value::Blob(b) => SqlValue::Blob(b.clone()),
    }
}

fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::Text(s) => s.len() + 8,
        Value::Blob(b) => b.len() + 8,
        _ => 8,
    }
}

/// A script's SQL error, told to the script (it is about its own statement).
fn sql_error(error: rusqlite::Error, index: Option<usize>) -> BindingError {
    let at = index
        .map(|i| format!("statement {i}: "))
        .unwrap_or_default();
    match &error {
        rusqlite::Error::SqliteFailure(code, _)
            if code.code == rusqlite::ErrorCode::OperationInterrupted =>
        {
            BindingError::LimitExceeded(format!("{at}the statement ran past its time limit"))
        }
        // The database reached its size cap, or the disk is full.
        _ if sqlite_is_full(&error) => {
            BindingError::LimitExceeded(format!("{at}the database is full"))
        }
        _ => BindingError::Invalid(format!("{at}{error}")),
    }
}

fn internal(what: &str, error: &dyn std::fmt::Display) -> BindingError {
    tracing::error!(%error, "sql: cannot {what}");
    BindingError::Internal(format!("cannot {what}"))
}
