//! What the platform's admin sets for a script: limit overrides and the outbound policy
//! (`dispatcher limits`, `dispatcher outbound`). Settings belong to the script's owner:
//! each row records the owner it was given to and applies only while the script under
//! that name has that owner, and deleting the script removes them in the same
//! transaction (`scripts.rs`), so a customer who later takes a freed name starts with
//! the defaults. Replacing a script keeps them. The outbound policy (an outbound
//! worker's params may carry credentials) is sealed at rest like a secret, bound to the
//! namespace, name and owner. The store keeps settings as given; the runtime checks and
//! applies them.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension as _, params};
use serde::{Deserialize, Serialize};

use super::secrets::{SecretKey, SecretSlot};
use super::{Store, StoreError};

/// Per-script limits; `None` means the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitOverrides {
    pub cpu_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub subrequests: Option<u32>,
    pub wall_ms: Option<u64>,
}

impl LimitOverrides {
    /// `self` with every limit `other` sets replaced.
    pub fn merged(self, other: LimitOverrides) -> LimitOverrides {
        LimitOverrides {
            cpu_ms: other.cpu_ms.or(self.cpu_ms),
            memory_mb: other.memory_mb.or(self.memory_mb),
            subrequests: other.subrequests.or(self.subrequests),
            wall_ms: other.wall_ms.or(self.wall_ms),
        }
    }
}

/// Where a script's outgoing HTTP requests may go (service bindings aside).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundPolicy {
    /// Only to these origins (`scheme://host[:port]`, `*` wildcards).
    Allow(Vec<String>),
    /// Every request is handed to this platform script, which sees `params` as vars.
    Worker {
        script: String,
        params: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScriptSettings {
    pub limits: LimitOverrides,
    /// `None`: the server's default policy.
    pub outbound: Option<OutboundPolicy>,
}

impl Store {
    /// The settings that apply to the script `name` as it is owned now (the defaults
    /// when the admin set none for this owner).
    pub fn script_settings(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<ScriptSettings, StoreError> {
        self.read_settings(&self.conn(), namespace, name)
    }

    fn read_settings(
        &self,
        conn: &rusqlite::Connection,
        namespace: &str,
        name: &str,
    ) -> Result<ScriptSettings, StoreError> {
        let settings = conn
            .query_row(
                "SELECT x.cpu_ms, x.memory_mb, x.subrequests, x.wall_ms, x.outbound_sealed,
                        x.customer_id
                 FROM script_settings x
                 WHERE x.namespace = ?1 AND x.name = ?2
                   AND x.customer_id IS (SELECT s.customer_id FROM scripts s
                                         WHERE s.namespace = ?1 AND s.name = ?2)",
                params![namespace, name],
                |row| self.settings_from_row(namespace, name, row, 0),
            )
            .optional()?;
        Ok(settings.unwrap_or_default())
    }

    /// Sets the limits `limits` names, keeping the others; returns the new settings.
    pub fn set_limits(
        &self,
        namespace: &str,
        name: &str,
        limits: LimitOverrides,
    ) -> Result<ScriptSettings, StoreError> {
        self.change_settings(namespace, name, |settings| {
            settings.limits = settings.limits.merged(limits)
        })
    }

    /// Sets (or with `None` clears) the outbound policy; returns the new settings.
    pub fn set_outbound(
        &self,
        namespace: &str,
        name: &str,
        outbound: Option<OutboundPolicy>,
    ) -> Result<ScriptSettings, StoreError> {
        self.change_settings(namespace, name, |settings| settings.outbound = outbound)
    }

    /// Applies `change` to the settings of the script's current owner (none: a platform
    /// script not deployed yet) and stores them as that owner's, in one transaction.
    fn change_settings(
        &self,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut ScriptSettings),
    ) -> Result<ScriptSettings, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut settings = self.read_settings(&tx, namespace, name)?;
        change(&mut settings);
        let owner: Option<String> = tx
            .query_row(
                "SELECT customer_id FROM scripts WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
                |row| row.get(0),
            )
            .optional()?
            .flatten();
        let limits = settings.limits;
        let outbound = settings.outbound.as_ref().map(|policy| {
            let json = serde_json::to_string(policy).expect("policies serialise");
            let slot = OutboundSlot::new(namespace, name, owner.as_deref());
            self.secrets.seal(&slot.slot(), &json)
        });
        tx.execute(
            "INSERT INTO script_settings (namespace, name, customer_id, cpu_ms, memory_mb,
                subrequests, wall_ms, outbound_sealed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (namespace, name) DO UPDATE SET
                customer_id = excluded.customer_id,
                cpu_ms = excluded.cpu_ms, memory_mb = excluded.memory_mb,
                subrequests = excluded.subrequests, wall_ms = excluded.wall_ms,
                outbound = NULL, outbound_sealed = excluded.outbound_sealed,
                updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            params![
                namespace,
                name,
                owner,
                limits.cpu_ms.map(|v| v as i64),
                limits.memory_mb.map(|v| v as i64),
                limits.subrequests,
                limits.wall_ms.map(|v| v as i64),
                outbound
            ],
        )?;
        tx.commit()?;
        Ok(settings)
    }

    /// Reads `cpu_ms, memory_mb, subrequests, wall_ms, outbound_sealed, customer_id` of
    /// the settings of `namespace`/`name` starting at column `first` (all NULL when the
    /// script has no settings row), opening the sealed outbound policy.
    pub(super) fn settings_from_row(
        &self,
        namespace: &str,
        name: &str,
        row: &rusqlite::Row<'_>,
        first: usize,
    ) -> rusqlite::Result<ScriptSettings> {
        let number = |i: usize| row.get::<_, Option<i64>>(first + i);
        let sealed: Option<Vec<u8>> = row.get(first + 4)?;
        let owner: Option<String> = row.get(first + 5)?;
        let unreadable = |e: Box<dyn std::error::Error + Send + Sync>| {
            rusqlite::Error::FromSqlConversionFailure(first + 4, rusqlite::types::Type::Blob, e)
        };
        let outbound = sealed
            .map(|sealed| {
                let slot = OutboundSlot::new(namespace, name, owner.as_deref());
                let json = self
                    .secrets
                    .open(&slot.slot(), &sealed)
                    .map_err(|e| unreadable(Box::new(e)))?;
                serde_json::from_str(&json).map_err(|e| unreadable(Box::new(e)))
            })
            .transpose()?;
        Ok(ScriptSettings {
            limits: LimitOverrides {
                cpu_ms: number(0)?.map(|v| v as u64),
                memory_mb: number(1)?.map(|v| v as u64),
                subrequests: number(2)?.map(|v| v as u32),
                wall_ms: number(3)?.map(|v| v as u64),
            },
            outbound,
        })
    }
}

/// Seals the outbound policies an older version stored in plaintext (run at open, after
/// the migrations).
pub(super) fn seal_plaintext_policies(
    conn: &mut rusqlite::Connection,
    key: &SecretKey,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let plaintext: Vec<(String, String, Option<String>, String)> = {
        let mut stmt = tx.prepare(
            "SELECT namespace, name, customer_id, outbound FROM script_settings
             WHERE outbound IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let sealed_any = !plaintext.is_empty();
    for (namespace, name, owner, json) in plaintext {
        let slot = OutboundSlot::new(&namespace, &name, owner.as_deref());
        tx.execute(
            "UPDATE script_settings SET outbound = NULL, outbound_sealed = ?3
             WHERE namespace = ?1 AND name = ?2",
            params![namespace, name, key.seal(&slot.slot(), &json)],
        )?;
    }
    tx.commit()?;
    if sealed_any {
        // The plaintext's old pages are overwritten (`secure_delete`) once checkpointed
        // into the database; the write-ahead log holding them is emptied.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(())
}

/// Where a sealed outbound policy belongs: the script and its owner, so a policy copied
/// onto another script, or left behind for another owner, does not open.
struct OutboundSlot<'a> {
    namespace: &'a str,
    script: &'a str,
    /// `outbound` and the owner, NUL-separated: never a binding name.
    binding: String,
}

impl<'a> OutboundSlot<'a> {
    fn new(namespace: &'a str, script: &'a str, owner: Option<&str>) -> OutboundSlot<'a> {
        OutboundSlot {
            namespace,
            script,
            binding: format!("outbound\0{}", owner.unwrap_or_default()),
        }
    }

    fn slot(&self) -> SecretSlot<'_> {
        SecretSlot {
            namespace: self.namespace,
            script: self.script,
            binding: &self.binding,
        }
    }
}
