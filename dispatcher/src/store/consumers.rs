//! Queue consumers as the store keeps them: which script receives which queue of its
//! data owner, with its batching and retry settings. A queue has at most one consumer
//! (`UNIQUE (owner, queue)`); consumers are deleted with their script.

use rusqlite::{OptionalExtension as _, Transaction, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// A consumer as an upload's metadata gives it (`consumers`), with Workers' defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    pub queue: String,
    #[serde(default = "default_batch_size")]
    pub max_batch_size: u32,
    #[serde(default = "default_batch_timeout_ms")]
    pub max_batch_timeout_ms: u32,
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    #[serde(default)]
    pub dead_letter_queue: Option<String>,
}

fn default_batch_size() -> u32 {
    10
}
fn default_batch_timeout_ms() -> u32 {
    1000
}
fn default_retries() -> u32 {
    3
}

/// A consumer and the script it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConsumer {
    pub namespace: String,
    pub name: String,
    pub owner: String,
    pub spec: ConsumerSpec,
}

impl Store {
    /// The consumers of a script.
    pub fn consumers(&self, namespace: &str, name: &str) -> Result<Vec<ConsumerSpec>, StoreError> {
        Ok(self
            .all_consumers()?
            .into_iter()
            .filter(|c| c.namespace == namespace && c.name == name)
            .map(|c| c.spec)
            .collect())
    }

    /// The script consuming `owner`'s `queue`, if one does.
    pub fn consumer_of(&self, owner: &str, queue: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name FROM script_consumers WHERE owner = ?1 AND queue = ?2",
                params![owner, queue],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Every consumer: what the delivery task runs.
    pub fn all_consumers(&self) -> Result<Vec<StoredConsumer>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT namespace, name, owner, queue, max_batch_size, max_batch_timeout_ms,
                    max_retries, dead_letter_queue
             FROM script_consumers ORDER BY namespace, name, queue",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(StoredConsumer {
                namespace: row.get(0)?,
                name: row.get(1)?,
                owner: row.get(2)?,
                spec: ConsumerSpec {
                    queue: row.get(3)?,
                    max_batch_size: row.get(4)?,
                    max_batch_timeout_ms: row.get(5)?,
                    max_retries: row.get(6)?,
                    dead_letter_queue: row.get(7)?,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Replaces a script's consumers inside an upload's transaction.
pub(super) fn replace_consumers(
    tx: &Transaction<'_>,
    (namespace, name, owner): (&str, &str, &str),
    consumers: &[ConsumerSpec],
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM script_consumers WHERE namespace = ?1 AND name = ?2",
        params![namespace, name],
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO script_consumers (namespace, name, owner, queue, max_batch_size,
             max_batch_timeout_ms, max_retries, dead_letter_queue)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for c in consumers {
        insert.execute(params![
            namespace,
            name,
            owner,
            c.queue,
            c.max_batch_size,
            c.max_batch_timeout_ms,
            c.max_retries,
            c.dead_letter_queue
        ])?;
    }
    Ok(())
}
