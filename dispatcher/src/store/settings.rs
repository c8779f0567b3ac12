//! What the platform's admin sets for a script by name: limit overrides and the outbound
//! policy (`dispatcher limits`, `dispatcher outbound`). Settings outlive versions: they
//! are keyed by (namespace, name), so replacing or re-uploading a script keeps them.
//! The store keeps them as given; the runtime checks and applies them.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension as _, params};
use serde::{Deserialize, Serialize};

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
    pub fn script_settings(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<ScriptSettings, StoreError> {
        let conn = self.conn();
        let settings = conn
            .query_row(
                "SELECT cpu_ms, memory_mb, subrequests, wall_ms, outbound FROM script_settings
                 WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
                |row| settings_from_row(row, 0),
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
        let mut settings = self.script_settings(namespace, name)?;
        settings.limits = settings.limits.merged(limits);
        self.write_settings(namespace, name, &settings)?;
        Ok(settings)
    }

    /// Sets (or with `None` clears) the outbound policy; returns the new settings.
    pub fn set_outbound(
        &self,
        namespace: &str,
        name: &str,
        outbound: Option<OutboundPolicy>,
    ) -> Result<ScriptSettings, StoreError> {
        let mut settings = self.script_settings(namespace, name)?;
        settings.outbound = outbound;
        self.write_settings(namespace, name, &settings)?;
        Ok(settings)
    }

    fn write_settings(
        &self,
        namespace: &str,
        name: &str,
        settings: &ScriptSettings,
    ) -> Result<(), StoreError> {
        let limits = settings.limits;
        let outbound = settings
            .outbound
            .as_ref()
            .map(|o| serde_json::to_string(o).expect("policies serialise"));
        self.conn().execute(
            "INSERT INTO script_settings
                (namespace, name, cpu_ms, memory_mb, subrequests, wall_ms, outbound)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (namespace, name) DO UPDATE SET
                cpu_ms = excluded.cpu_ms, memory_mb = excluded.memory_mb,
                subrequests = excluded.subrequests, wall_ms = excluded.wall_ms,
                outbound = excluded.outbound,
                updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            params![
                namespace,
                name,
                limits.cpu_ms.map(|v| v as i64),
                limits.memory_mb.map(|v| v as i64),
                limits.subrequests,
                limits.wall_ms.map(|v| v as i64),
                outbound
            ],
        )?;
        Ok(())
    }
}

/// Reads `cpu_ms, memory_mb, subrequests, wall_ms, outbound` starting at column `first`
/// (all NULL when the script has no settings row).
pub(super) fn settings_from_row(
    row: &rusqlite::Row<'_>,
    first: usize,
) -> rusqlite::Result<ScriptSettings> {
    let number = |i: usize| row.get::<_, Option<i64>>(first + i);
    let outbound: Option<String> = row.get(first + 4)?;
    let outbound = outbound
        .map(|json| {
            serde_json::from_str(&json).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    first + 4,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })
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
