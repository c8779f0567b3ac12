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
    (
        9,
        "schedules",
        include_str!("../../../migrations/0009_schedules.sql"),
    ),
    (
        10,
        "consumers",
        include_str!("../../../migrations/0010_consumers.sql"),
    ),
];

/// Applies every migration not yet recorded, each in its own transaction.
pub fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    apply_these(conn, MIGRATIONS)
}

fn apply_these(conn: &mut Connection, migrations: &[(u32, &str, &str)]) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )",
    )?;
    for (version, name, sql) in migrations {
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

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, params};

    use super::{MIGRATIONS, apply, apply_these};

    /// A database as the server left it before versions: a script with a sealed
    /// binding and a usage row.
    fn before_versions() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        apply_these(&mut conn, &MIGRATIONS[..7]).unwrap();
        conn.execute_batch(
            "INSERT INTO customers (id, name, token_sha256) VALUES ('cus_1', 'acme', x'00');
             INSERT INTO scripts (namespace, name, customer_id, sha256, size)
               VALUES ('customers', 'app', 'cus_1', 'abc', 10);
             INSERT INTO script_tags VALUES ('customers', 'app', 'customer_id:cus_1');
             INSERT INTO script_tags VALUES ('customers', 'app', 'prod');
             INSERT INTO script_bindings (namespace, name, binding, kind, spec, secret)
               VALUES ('customers', 'app', 'KEY', 'secret_text', '{}', x'0102');
             INSERT INTO usage (namespace, script, customer_id, minute, invocations,
               script_error, exceeded_cpu, exceeded_memory, exceeded_wall_time, overloaded,
               cpu_us, wall_us, subrequests, peak_memory_bytes, canceled)
               VALUES ('customers', 'app', 'cus_1', 60, 5, 1, 0, 0, 0, 0, 10, 20, 0, 0, 0);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn every_script_becomes_its_first_version_deployed_with_its_bindings_and_usage() {
        let mut conn = before_versions();
        apply(&mut conn).unwrap();
        let (id, number, sha256, tags): (String, i64, String, String) = conn
            .query_row(
                "SELECT id, number, sha256, tags FROM script_versions WHERE name = 'app'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!((id.len(), number, sha256.as_str()), (12, 1, "abc"));
        assert_eq!(tags, r#"["prod"]"#);
        let secret: Vec<u8> = conn
            .query_row(
                "SELECT secret FROM version_bindings WHERE version = ?1 AND binding = 'KEY'",
                params![id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(secret, [1, 2]);
        let live: String = conn
            .query_row(
                "SELECT versions FROM script_deployments WHERE name = 'app'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let live: serde_json::Value = serde_json::from_str(&live).unwrap();
        assert_eq!(
            live,
            serde_json::json!([{"version_id": id, "percentage": 100}])
        );
        let (version, invocations): (String, i64) = conn
            .query_row("SELECT version, invocations FROM usage", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((version.as_str(), invocations), ("", 5));
        // Applying again changes nothing.
        apply(&mut conn).unwrap();
        let versions: i64 = conn
            .query_row("SELECT COUNT(*) FROM script_versions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(versions, 1);
    }
}
