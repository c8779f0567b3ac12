//! The queues' messages: one SQLite database (`queues.sqlite` in the data directory,
//! WAL, `synchronous=FULL`), a row per message keyed by (owner, queue). A message is
//! committed before `send` returns, so a crash after a send loses nothing. Delivery
//! leases a batch by moving its `visible_at` past the lease, so a consumer that dies
//! mid-batch sees the batch again once the lease ends: at-least-once. `queue_totals`
//! keeps each queue's message count and bytes in the same transactions as the messages,
//! so the caps (per queue, and per owner in bytes) cost a point read per send.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::store::plan_statements_once;

/// A message as delivered.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: i64,
    pub body: Vec<u8>,
    pub attempts: u32,
    pub sent_ms: i64,
}

/// What a queue holds (for `dispatcher queues`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueStats {
    pub owner: String,
    pub queue: String,
    pub messages: u64,
    /// Of them, ready to deliver now.
    pub ready: u64,
}

/// What a send may fill: messages per queue, bytes per owner (all its queues).
#[derive(Debug, Clone, Copy)]
pub struct QueueCaps {
    pub messages_per_queue: u64,
    pub bytes_per_owner: u64,
}

/// Why a send was refused.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("queue `{queue}` holds {backlog} messages, its limit")]
    BacklogFull { queue: String, backlog: u64 },
    #[error("your queues hold {bytes} bytes of messages; the limit is {limit}")]
    OwnerFull { bytes: u64, limit: u64 },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

pub struct QueueStore {
    conn: Mutex<Connection>,
}

impl QueueStore {
    /// Opens (creating) `data_dir/queues.sqlite`.
    pub fn open(data_dir: &Path) -> rusqlite::Result<QueueStore> {
        let conn = Connection::open(data_dir.join("queues.sqlite"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        plan_statements_once(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS messages (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 owner TEXT NOT NULL,
                 queue TEXT NOT NULL,
                 body BLOB NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 sent_at INTEGER NOT NULL,
                 visible_at INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (owner, queue, visible_at);
             CREATE TABLE IF NOT EXISTS queue_totals (
                 owner TEXT NOT NULL,
                 queue TEXT NOT NULL,
                 messages INTEGER NOT NULL,
                 bytes INTEGER NOT NULL,
                 PRIMARY KEY (owner, queue)
             );",
        )?;
        Ok(QueueStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores `bodies` in one transaction, to be delivered from `visible_ms` on; refused
    /// whole when it would pass `caps`.
    pub fn send(
        &self,
        (owner, queue): (&str, &str),
        bodies: &[Vec<u8>],
        now_ms: i64,
        visible_ms: i64,
        caps: QueueCaps,
    ) -> Result<(), SendError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let backlog: i64 = tx
            .query_row(
                "SELECT messages FROM queue_totals WHERE owner = ?1 AND queue = ?2",
                params![owner, queue],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(0);
        if backlog as u64 + bodies.len() as u64 > caps.messages_per_queue {
            return Err(SendError::BacklogFull {
                queue: queue.to_string(),
                backlog: backlog as u64,
            });
        }
        let held: i64 = tx.query_row(
            "SELECT COALESCE(SUM(bytes), 0) FROM queue_totals WHERE owner = ?1",
            params![owner],
            |row| row.get(0),
        )?;
        let adding: u64 = bodies.iter().map(|b| b.len() as u64).sum();
        if held as u64 + adding > caps.bytes_per_owner {
            return Err(SendError::OwnerFull {
                bytes: held as u64,
                limit: caps.bytes_per_owner,
            });
        }
        add_totals(&tx, (owner, queue), bodies.len() as i64, adding as i64)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages (owner, queue, body, sent_at, visible_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for body in bodies {
                insert.execute(params![owner, queue, body, now_ms, visible_ms])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// How many messages of a queue are ready at `now_ms`, counted up to `limit`, and
    /// when the earliest became ready: an index seek that reads at most `limit` rows,
    /// however long the queue.
    pub fn ready(
        &self,
        (owner, queue): (&str, &str),
        now_ms: i64,
        limit: u32,
    ) -> rusqlite::Result<(u64, Option<i64>)> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT visible_at FROM messages
             WHERE owner = ?1 AND queue = ?2 AND visible_at <= ?3
             ORDER BY visible_at LIMIT ?4",
        )?;
        let times: Vec<i64> = stmt
            .query_map(params![owner, queue, now_ms, limit], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok((times.len() as u64, times.first().copied()))
    }

    /// Leases up to `max` ready messages of a queue until `lease_until_ms`.
    pub fn lease(
        &self,
        (owner, queue): (&str, &str),
        max: u32,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> rusqlite::Result<Vec<StoredMessage>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let messages: Vec<StoredMessage> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, body, attempts, sent_at FROM messages
                 WHERE owner = ?1 AND queue = ?2 AND visible_at <= ?3
                 ORDER BY visible_at, id LIMIT ?4",
            )?;
            let rows = stmt.query_map(params![owner, queue, now_ms, max], |row| {
                Ok(StoredMessage {
                    id: row.get(0)?,
                    body: row.get(1)?,
                    attempts: row.get::<_, i64>(2)? as u32,
                    sent_ms: row.get(3)?,
                })
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        {
            let mut lease =
                tx.prepare_cached("UPDATE messages SET visible_at = ?1 WHERE id = ?2")?;
            for message in &messages {
                lease.execute(params![lease_until_ms, message.id])?;
            }
        }
        tx.commit()?;
        Ok(messages)
    }

    /// Deletes a delivered message.
    pub fn ack(&self, id: i64) -> rusqlite::Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let deleted: Option<(String, String, i64)> = tx
            .query_row(
                "DELETE FROM messages WHERE id = ?1 RETURNING owner, queue, length(body)",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        if let Some((owner, queue, bytes)) = deleted {
            add_totals(&tx, (&owner, &queue), -1, -bytes)?;
        }
        tx.commit()
    }

    /// Makes a message ready again at `visible_ms`, one attempt more.
    pub fn retry(&self, id: i64, visible_ms: i64) -> rusqlite::Result<()> {
        self.conn().execute(
            "UPDATE messages SET attempts = attempts + 1, visible_at = ?2 WHERE id = ?1",
            params![id, visible_ms],
        )?;
        Ok(())
    }

    /// Moves a message to another queue of its owner (a dead letter queue), as new.
    pub fn move_to(&self, id: i64, queue: &str, now_ms: i64) -> rusqlite::Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let moved: Option<(String, String, i64)> = tx
            .query_row(
                "SELECT owner, queue, length(body) FROM messages WHERE id = ?1",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        if let Some((owner, from, bytes)) = moved {
            tx.execute(
                "UPDATE messages SET queue = ?2, attempts = 0, visible_at = ?3 WHERE id = ?1",
                params![id, queue, now_ms],
            )?;
            add_totals(&tx, (&owner, &from), -1, -bytes)?;
            add_totals(&tx, (&owner, queue), 1, bytes)?;
        }
        tx.commit()
    }

    /// Every queue that holds messages, or one owner's.
    pub fn stats(&self, owner: Option<&str>, now_ms: i64) -> rusqlite::Result<Vec<QueueStats>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT owner, queue, COUNT(*), SUM(visible_at <= ?2) FROM messages
             WHERE ?1 IS NULL OR owner = ?1 GROUP BY owner, queue ORDER BY owner, queue",
        )?;
        let rows = stmt.query_map(params![owner, now_ms], |row| {
            Ok(QueueStats {
                owner: row.get(0)?,
                queue: row.get(1)?,
                messages: row.get::<_, i64>(2)? as u64,
                ready: row.get::<_, Option<i64>>(3)?.unwrap_or(0) as u64,
            })
        })?;
        rows.collect()
    }

    /// Deletes every message of a queue; how many.
    pub fn purge(&self, (owner, queue): (&str, &str)) -> rusqlite::Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let deleted = tx.execute(
            "DELETE FROM messages WHERE owner = ?1 AND queue = ?2",
            params![owner, queue],
        )?;
        tx.execute(
            "DELETE FROM queue_totals WHERE owner = ?1 AND queue = ?2",
            params![owner, queue],
        )?;
        tx.commit()?;
        Ok(deleted as u64)
    }
}

/// Adds to a queue's totals (negative to take away), dropping the row at zero.
fn add_totals(
    tx: &rusqlite::Transaction<'_>,
    (owner, queue): (&str, &str),
    messages: i64,
    bytes: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO queue_totals (owner, queue, messages, bytes) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (owner, queue) DO UPDATE SET
             messages = messages + excluded.messages, bytes = bytes + excluded.bytes",
        params![owner, queue, messages, bytes],
    )?;
    tx.execute(
        "DELETE FROM queue_totals WHERE owner = ?1 AND queue = ?2 AND messages <= 0",
        params![owner, queue],
    )?;
    Ok(())
}
