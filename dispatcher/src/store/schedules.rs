//! A script's Cron Triggers as the store keeps them: its cron expressions in the order
//! given. They belong to the script (whichever version is deployed) and are deleted
//! with it. What a valid expression is, and how many a script may have, is the
//! scheduler's business (`crate::schedules`); the store only keeps them.

use rusqlite::{Transaction, params};

use super::{Store, StoreError};

/// One schedule of one script.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredSchedule {
    pub namespace: String,
    pub name: String,
    pub cron: String,
}

impl Store {
    /// Replaces the schedules of a script (of `owner` when given); `NotFound` when there
    /// is no such script.
    pub fn set_schedules(
        &self,
        namespace: &str,
        name: &str,
        owner: Option<&str>,
        crons: &[String],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let owned: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM scripts WHERE namespace = ?1 AND name = ?2
                              AND (?3 IS NULL OR customer_id = ?3))",
            params![namespace, name, owner],
            |row| row.get(0),
        )?;
        if !owned {
            return Err(StoreError::NotFound);
        }
        replace_schedules(&tx, namespace, name, crons)?;
        tx.commit()?;
        Ok(())
    }

    /// The schedules of a script, in order (none for a script that does not exist).
    pub fn schedules(&self, namespace: &str, name: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT cron FROM script_schedules WHERE namespace = ?1 AND name = ?2
             ORDER BY position",
        )?;
        let rows = stmt.query_map(params![namespace, name], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every schedule of every script: what the scheduler runs.
    pub fn all_schedules(&self) -> Result<Vec<StoredSchedule>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT namespace, name, cron FROM script_schedules
             ORDER BY namespace, name, position",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(StoredSchedule {
                namespace: row.get(0)?,
                name: row.get(1)?,
                cron: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Replaces a script's schedules inside a transaction (an upload's or `set_schedules`').
pub(super) fn replace_schedules(
    tx: &Transaction<'_>,
    namespace: &str,
    name: &str,
    crons: &[String],
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM script_schedules WHERE namespace = ?1 AND name = ?2",
        params![namespace, name],
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO script_schedules (namespace, name, cron, position) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (position, cron) in crons.iter().enumerate() {
        insert.execute(params![namespace, name, cron, position as i64])?;
    }
    Ok(())
}
