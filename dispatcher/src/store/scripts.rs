//! Scripts and their tags. A script is unique by (namespace, name); its owner's
//! `customer_id:<id>` tag is stored with its custom tags so one query filters both.

use rusqlite::{OptionalExtension as _, Transaction, params};
use serde::Serialize;

use super::settings::ScriptSettings;
use super::{BindingView, Store, StoreError, StoredBinding};

/// The public record of a script, as the API returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScriptRecord {
    pub name: String,
    #[serde(skip)]
    pub namespace: String,
    pub customer_id: Option<String>,
    pub tags: Vec<String>,
    pub sha256: String,
    pub size: u64,
    pub created_at: String,
    pub updated_at: String,
    pub bindings: Vec<BindingView>,
}

/// What the runtime index needs to know about every script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptHead {
    pub namespace: String,
    pub name: String,
    pub sha256: String,
    pub customer_id: Option<String>,
    /// Changes whenever the script's bytes, tags or bindings change.
    pub updated_at: String,
    /// The admin's limits and outbound policy, as given to the script's owner.
    pub settings: ScriptSettings,
}

/// A new version of a script whose bytes are already in the blob store.
pub struct Upload<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub customer_id: Option<&'a str>,
    pub sha256: &'a str,
    pub size: u64,
    /// Replaces the custom tags when given; keeps them when `None`.
    pub tags: Option<&'a [String]>,
    /// Replaces the bindings when given; keeps them when `None`.
    pub bindings: Option<&'a [StoredBinding]>,
}

/// The tag every script of a customer carries.
pub fn customer_tag(customer_id: &str) -> String {
    format!("customer_id:{customer_id}")
}

impl Store {
    /// Creates or replaces a script atomically. Returns the record and whether it is new.
    /// Fails with `NameTaken` when the name belongs to another owner.
    pub fn put_script(&self, upload: &Upload<'_>) -> Result<(ScriptRecord, bool), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let existing: Option<Option<String>> = tx
            .query_row(
                "SELECT customer_id FROM scripts WHERE namespace = ?1 AND name = ?2",
                params![upload.namespace, upload.name],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(owner) = &existing
            && owner.as_deref() != upload.customer_id
        {
            return Err(StoreError::NameTaken);
        }
        tx.execute(
            "INSERT INTO scripts (namespace, name, customer_id, sha256, size)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (namespace, name) DO UPDATE SET
                sha256 = excluded.sha256, size = excluded.size,
                updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            params![
                upload.namespace,
                upload.name,
                upload.customer_id,
                upload.sha256,
                upload.size as i64
            ],
        )?;
        if existing.is_none() {
            // A new script starts with the defaults, whatever was once set for its name.
            tx.execute(
                "DELETE FROM script_settings WHERE namespace = ?1 AND name = ?2
                   AND customer_id IS NOT ?3",
                params![upload.namespace, upload.name, upload.customer_id],
            )?;
        }
        if let Some(tags) = upload.tags {
            replace_custom_tags(&tx, upload.namespace, upload.name, tags)?;
        }
        if let Some(bindings) = upload.bindings {
            self.replace_bindings(&tx, upload.namespace, upload.name, bindings)?;
        }
        if let Some(customer_id) = upload.customer_id {
            tx.execute(
                "INSERT OR IGNORE INTO script_tags (namespace, name, tag) VALUES (?1, ?2, ?3)",
                params![upload.namespace, upload.name, customer_tag(customer_id)],
            )?;
        }
        let record =
            read_record(&tx, upload.namespace, upload.name)?.ok_or(StoreError::NotFound)?;
        tx.commit()?;
        Ok((record, existing.is_none()))
    }

    /// The script, if it exists and (when `owner` is given) belongs to that customer.
    pub fn get_script(
        &self,
        namespace: &str,
        name: &str,
        owner: Option<&str>,
    ) -> Result<Option<ScriptRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let record = read_record(&tx, namespace, name)?;
        Ok(record.filter(|r| owner.is_none() || r.customer_id.as_deref() == owner))
    }

    /// Deletes the script if it exists and (when `owner` is given) belongs to that
    /// customer, with its settings.
    pub fn delete_script(
        &self,
        namespace: &str,
        name: &str,
        owner: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let deleted = tx.execute(
            "DELETE FROM scripts WHERE namespace = ?1 AND name = ?2
               AND (?3 IS NULL OR customer_id = ?3)",
            params![namespace, name, owner],
        )?;
        if deleted > 0 {
            delete_settings(&tx, namespace, name)?;
        }
        tx.commit()?;
        Ok(deleted > 0)
    }

    /// Deletes every script of the namespace carrying `tag`, with their settings;
    /// returns their names.
    pub fn delete_scripts_tagged(
        &self,
        namespace: &str,
        tag: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let names: Vec<String> = {
            let mut stmt = tx.prepare(
                "DELETE FROM scripts WHERE namespace = ?1 AND name IN
                   (SELECT name FROM script_tags WHERE namespace = ?1 AND tag = ?2)
                 RETURNING name",
            )?;
            let names = stmt.query_map(params![namespace, tag], |row| row.get(0))?;
            names.collect::<Result<_, _>>()?
        };
        for name in &names {
            delete_settings(&tx, namespace, name)?;
        }
        tx.commit()?;
        Ok(names)
    }

    /// Scripts of the namespace (of one customer when given) that carry every tag in `tags`.
    pub fn list_scripts(
        &self,
        namespace: &str,
        owner: Option<&str>,
        tags: &[String],
    ) -> Result<Vec<ScriptRecord>, StoreError> {
        let tags_json = serde_json::to_string(tags).expect("strings serialise");
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let names: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT s.name FROM scripts s
                 WHERE s.namespace = ?1 AND (?2 IS NULL OR s.customer_id = ?2)
                   AND (SELECT COUNT(DISTINCT t.tag) FROM script_tags t
                        WHERE t.namespace = s.namespace AND t.name = s.name
                          AND t.tag IN (SELECT value FROM json_each(?3)))
                       = (SELECT COUNT(DISTINCT value) FROM json_each(?3))
                 ORDER BY s.name",
            )?;
            let rows = stmt.query_map(params![namespace, owner, tags_json], |row| row.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut records = Vec::with_capacity(names.len());
        for name in names {
            records.extend(read_record(&tx, namespace, &name)?);
        }
        Ok(records)
    }

    /// Replaces the custom tags of a customer's script (its `customer_id:` tag stays).
    pub fn set_tags(
        &self,
        namespace: &str,
        name: &str,
        owner: &str,
        tags: &[String],
    ) -> Result<ScriptRecord, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        match read_record(&tx, namespace, name)? {
            Some(r) if r.customer_id.as_deref() == Some(owner) => {}
            _ => return Err(StoreError::NotFound),
        }
        replace_custom_tags(&tx, namespace, name, tags)?;
        tx.execute(
            "UPDATE scripts SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE namespace = ?1 AND name = ?2",
            params![namespace, name],
        )?;
        let record = read_record(&tx, namespace, name)?.ok_or(StoreError::NotFound)?;
        tx.commit()?;
        Ok(record)
    }

    /// Every script's name, owner and digest: what the runtime index is built from.
    pub fn script_heads(&self) -> Result<Vec<ScriptHead>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT s.namespace, s.name, s.sha256, s.customer_id, s.updated_at,
                    x.cpu_ms, x.memory_mb, x.subrequests, x.wall_ms, x.outbound_sealed,
                    x.customer_id
             FROM scripts s
             LEFT JOIN script_settings x ON x.namespace = s.namespace AND x.name = s.name
               AND x.customer_id IS s.customer_id",
        )?;
        let rows = stmt.query_map([], |row| {
            let (namespace, name): (String, String) = (row.get(0)?, row.get(1)?);
            Ok(ScriptHead {
                settings: self.settings_from_row(&namespace, &name, row, 5)?,
                namespace,
                name,
                sha256: row.get(2)?,
                customer_id: row.get(3)?,
                updated_at: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn delete_settings(tx: &Transaction<'_>, namespace: &str, name: &str) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM script_settings WHERE namespace = ?1 AND name = ?2",
        params![namespace, name],
    )?;
    Ok(())
}

fn replace_custom_tags(
    tx: &Transaction<'_>,
    namespace: &str,
    name: &str,
    tags: &[String],
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM script_tags WHERE namespace = ?1 AND name = ?2
           AND tag NOT LIKE 'customer\\_id:%' ESCAPE '\\'",
        params![namespace, name],
    )?;
    for tag in tags {
        tx.execute(
            "INSERT OR IGNORE INTO script_tags (namespace, name, tag) VALUES (?1, ?2, ?3)",
            params![namespace, name, tag],
        )?;
    }
    Ok(())
}

fn read_record(
    tx: &Transaction<'_>,
    namespace: &str,
    name: &str,
) -> Result<Option<ScriptRecord>, StoreError> {
    let record = tx
        .query_row(
            "SELECT customer_id, sha256, size, created_at, updated_at FROM scripts
             WHERE namespace = ?1 AND name = ?2",
            params![namespace, name],
            |row| {
                Ok(ScriptRecord {
                    name: name.to_string(),
                    namespace: namespace.to_string(),
                    customer_id: row.get(0)?,
                    tags: Vec::new(),
                    sha256: row.get(1)?,
                    size: row.get::<_, i64>(2)? as u64,
                    created_at: row.get(3)?,
                    updated_at: row.get(4)?,
                    bindings: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut record) = record else {
        return Ok(None);
    };
    let mut stmt = tx.prepare_cached(
        "SELECT tag FROM script_tags WHERE namespace = ?1 AND name = ?2 ORDER BY tag",
    )?;
    record.tags = stmt
        .query_map(params![namespace, name], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    record.bindings = Store::binding_views(tx, namespace, name)?;
    Ok(Some(record))
}
