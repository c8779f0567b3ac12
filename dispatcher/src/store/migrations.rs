//! Schema migrations: the `migrations/NNNN_name.sql` files, embedded in the binary and
//! applied in order at start, each recorded in `schema_migrations` and never re-applied.

use rusqlite::Connection;

use super::StoreError;

/// (version, name, sql), in the order they must be applied.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "namespace",
        include_str!("../../../migrations/0001_namespace.sql"),
    ),
    (
        2,
        "bindings",
        include_str!("../../../migrations/0002_bindings.sql"),
    ),
    (
        3,
        "script_settings",
        include_str!("../../../migrations/0003_script_settings.sql"),
    ),
    (
        4,
        "usage",
        include_str!("../../../migrations/0004_usage.sql"),
    ),
    (
        5,
        "settings_owner",
        include_str!("../../../migrations/0005_settings_owner.sql"),
    ),
    (
        6,
        "usage_canceled",
        include_str!("../../../migrations/0006_usage_canceled.sql"),
    ),
    (
        7,
        "binding_spec",
        include_str!("../../../migrations/0007_binding_spec.sql"),
    ),
    (
        8,
        "versions",
        include_str!("../../../migrations/0008_versions.sql"),
    ),
];

/// Applies every migration not yet recorded, each in its own transaction.
pub fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )",
    )?;
    for (version, name, sql) in MIGRATIONS {
        let tx = conn.transaction()?;
        let applied: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |row| row.get(0),
        )?;
        if !applied {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?1, ?2)",
                rusqlite::params![version, name],
            )?;
            tracing::info!(version, name, "applied migration");
        }
        tx.commit()?;
    }
    Ok(())
}
