//! Usage rows: what each script's runs cost per minute (see `runtime/usage.rs` for
//! how they are counted). `add_usage` adds a batch in one transaction; `usage` reads a
//! customer's (or everyone's) rows from a minute on.

use std::collections::HashMap;

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError};

/// Whose usage, and which minute (Unix seconds at its start).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsageKey {
    pub namespace: String,
    pub script: String,
    pub customer_id: Option<String>,
    /// The version that ran ('' in rows flushed before versions existed).
    pub version: String,
    /// What started the runs: `fetch`, `scheduled` or `queue`.
    pub event: &'static str,
    pub minute: i64,
}

/// The totals of one script in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageCounters {
    pub invocations: u64,
    pub script_error: u64,
    pub exceeded_cpu: u64,
    pub exceeded_memory: u64,
    pub exceeded_wall_time: u64,
    pub overloaded: u64,
    pub cpu_us: u64,
    pub wall_us: u64,
    pub subrequests: u64,
    pub peak_memory_bytes: u64,
    pub canceled: u64,
}

impl UsageCounters {
    /// `self` and `other` together (peaks are the higher of the two).
    pub fn merge(&mut self, other: &UsageCounters) {
        self.invocations += other.invocations;
        self.script_error += other.script_error;
        self.exceeded_cpu += other.exceeded_cpu;
        self.exceeded_memory += other.exceeded_memory;
        self.exceeded_wall_time += other.exceeded_wall_time;
        self.overloaded += other.overloaded;
        self.cpu_us += other.cpu_us;
        self.wall_us += other.wall_us;
        self.subrequests += other.subrequests;
        self.peak_memory_bytes = self.peak_memory_bytes.max(other.peak_memory_bytes);
        self.canceled += other.canceled;
    }
}

/// The columns after the key, in table order.
const COUNTER_COLUMNS: &str = "invocations, script_error, exceeded_cpu, exceeded_memory, \
     exceeded_wall_time, overloaded, cpu_us, wall_us, subrequests, peak_memory_bytes, canceled";

impl Store {
    /// Adds `batch` to the stored totals, all or nothing.
    pub fn add_usage(&self, batch: &HashMap<UsageKey, UsageCounters>) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut add = tx.prepare_cached(&format!(
                "INSERT INTO usage (namespace, script, customer_id, version, event, minute,
                                    {COUNTER_COLUMNS})
                 VALUES (?1, ?2, ?3, ?16, ?17, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
                         ?15)
                 ON CONFLICT (namespace, script, customer_id, version, event, minute)
                 DO UPDATE SET
                    invocations = invocations + excluded.invocations,
                    script_error = script_error + excluded.script_error,
                    exceeded_cpu = exceeded_cpu + excluded.exceeded_cpu,
                    exceeded_memory = exceeded_memory + excluded.exceeded_memory,
                    exceeded_wall_time = exceeded_wall_time + excluded.exceeded_wall_time,
                    overloaded = overloaded + excluded.overloaded,
                    cpu_us = cpu_us + excluded.cpu_us,
                    wall_us = wall_us + excluded.wall_us,
                    subrequests = subrequests + excluded.subrequests,
                    peak_memory_bytes = max(peak_memory_bytes, excluded.peak_memory_bytes),
                    canceled = canceled + excluded.canceled"
            ))?;
            for (key, c) in batch {
                add.execute(params![
                    key.namespace,
                    key.script,
                    key.customer_id.as_deref().unwrap_or_default(),
                    key.minute,
                    c.invocations as i64,
                    c.script_error as i64,
                    c.exceeded_cpu as i64,
                    c.exceeded_memory as i64,
                    c.exceeded_wall_time as i64,
                    c.overloaded as i64,
                    c.cpu_us as i64,
                    c.wall_us as i64,
                    c.subrequests as i64,
                    c.peak_memory_bytes as i64,
                    c.canceled as i64,
                    key.version,
                    key.event,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Stored usage of `customer_id` (`None`: every script's) from minute `since` on,
    /// oldest first.
    pub fn usage(
        &self,
        customer_id: Option<&str>,
        since: i64,
    ) -> Result<Vec<(UsageKey, UsageCounters)>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare_cached(&format!(
            "SELECT namespace, script, customer_id, minute, {COUNTER_COLUMNS}, version, event
             FROM usage
             WHERE minute >= ?1 AND (?2 IS NULL OR customer_id = ?2)
             ORDER BY minute, namespace, script"
        ))?;
        let rows = query.query_map(params![since, customer_id], |row| {
            let customer: String = row.get(2)?;
            let count = |i: usize| row.get::<_, i64>(i).map(|v| v.max(0) as u64);
            Ok((
                UsageKey {
                    namespace: row.get(0)?,
                    script: row.get(1)?,
                    customer_id: (!customer.is_empty()).then_some(customer),
                    version: row.get(15)?,
                    event: event_name(&row.get::<_, String>(16)?),
                    minute: row.get(3)?,
                },
                UsageCounters {
                    invocations: count(4)?,
                    script_error: count(5)?,
                    exceeded_cpu: count(6)?,
                    exceeded_memory: count(7)?,
                    exceeded_wall_time: count(8)?,
                    overloaded: count(9)?,
                    cpu_us: count(10)?,
                    wall_us: count(11)?,
                    subrequests: count(12)?,
                    peak_memory_bytes: count(13)?,
                    canceled: count(14)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The stored name of an event as the one the runtime uses.
fn event_name(stored: &str) -> &'static str {
    match stored {
        "scheduled" => "scheduled",
        "queue" => "queue",
        "rpc" => "rpc",
        _ => "fetch",
    }
}
