//! A script's versions. A version is immutable: an upload's component digest, its
//! bindings (`bindings.rs`), the tags and annotations it came with. Only the newest
//! `keep` versions of a script are kept, and no more than a customer's share of
//! component bytes, never one the live or the previous deployment uses
//! (`deployments.rs`); a blob or artifact stays while any kept version names it.

use rusqlite::{OptionalExtension as _, Transaction, params};
use serde::Serialize;

use super::{BindingView, Store, StoreError, random_hex};

/// The versions of the script (`?1`, `?2`) its live and its previous deployment use:
/// those no pruning takes.
const DEPLOYED_VERSIONS: &str = "SELECT j.value ->> 'version_id'
     FROM (SELECT versions FROM script_deployments
           WHERE namespace = ?1 AND name = ?2 ORDER BY number DESC LIMIT 2) d,
          json_each(d.versions) j";

/// A version as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionRecord {
    /// Short, random, URL-safe.
    pub id: String,
    /// 1, 2, 3, ... in upload order.
    pub number: i64,
    pub sha256: String,
    pub size: u64,
    pub created_at: String,
    pub message: Option<String>,
    pub tag: Option<String>,
    /// The script's custom tags after this upload.
    pub tags: Vec<String>,
    pub bindings: Vec<BindingView>,
}

/// A version of a live deployment, as the runtime needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveVersion {
    pub id: String,
    pub sha256: String,
    pub percentage: u8,
}

/// A page of a script's versions or deployments, newest first.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
}

/// Which page: 1-based, at most `MAX_PER_PAGE` items.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

pub const MAX_PER_PAGE: u32 = 100;

impl PageRequest {
    pub(super) fn offset(self) -> i64 {
        i64::from(self.page.saturating_sub(1)) * i64::from(self.per_page)
    }
}

/// Where a new version goes: the script (namespace, name) and its annotations.
pub(super) struct NewVersionRow<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub sha256: &'a str,
    pub size: u64,
    pub message: Option<&'a str>,
    pub tag: Option<&'a str>,
}

impl Store {
    /// A page of the script's versions, newest first.
    pub fn list_versions(
        &self,
        namespace: &str,
        name: &str,
        page: PageRequest,
    ) -> Result<Page<VersionRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let total: i64 = tx.query_row(
            "SELECT COUNT(*) FROM script_versions WHERE namespace = ?1 AND name = ?2",
            params![namespace, name],
            |row| row.get(0),
        )?;
        let ids: Vec<String> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id FROM script_versions WHERE namespace = ?1 AND name = ?2
                 ORDER BY number DESC LIMIT ?3 OFFSET ?4",
            )?;
            let rows = stmt.query_map(
                params![namespace, name, page.per_page, page.offset()],
                |row| row.get(0),
            )?;
            rows.collect::<Result<_, _>>()?
        };
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            items.extend(read_version(&tx, namespace, name, &id)?);
        }
        Ok(Page {
            items,
            page: page.page,
            per_page: page.per_page,
            total: total as u64,
        })
    }

    /// One kept version of the script.
    pub fn get_version(
        &self,
        namespace: &str,
        name: &str,
        id: &str,
    ) -> Result<VersionRecord, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        read_version(&tx, namespace, name, id)?
            .ok_or_else(|| StoreError::VersionNotFound(id.to_string()))
    }

    /// Adds a version row (its bindings are the caller's business) and returns its id.
    pub(super) fn insert_version(
        tx: &Transaction<'_>,
        row: &NewVersionRow<'_>,
    ) -> Result<String, StoreError> {
        let id = random_hex(6);
        tx.execute(
            "INSERT INTO script_versions (namespace, name, id, number, sha256, size, tags,
                                          message, tag)
             VALUES (?1, ?2, ?3,
                     (SELECT COALESCE(MAX(number), 0) + 1 FROM script_versions
                      WHERE namespace = ?1 AND name = ?2),
                     ?4, ?5,
                     (SELECT json_group_array(tag) FROM script_tags
                      WHERE namespace = ?1 AND name = ?2
                        AND tag NOT LIKE 'customer\\_id:%' ESCAPE '\\'),
                     ?6, ?7)",
            params![
                row.namespace,
                row.name,
                id,
                row.sha256,
                row.size as i64,
                row.message,
                row.tag
            ],
        )?;
        Ok(id)
    }

    /// Drops the oldest versions of the script, never `new` nor one the live or the
    /// previous deployment uses, until the components `owner`'s kept versions name
    /// (each distinct one counted once) take at most `max_bytes`; `QuotaExceeded` when
    /// they cannot be made to.
    pub(super) fn trim_to_bytes(
        tx: &Transaction<'_>,
        (namespace, name, new): (&str, &str, &str),
        owner: &str,
        max_bytes: u64,
    ) -> Result<(), StoreError> {
        loop {
            let used: i64 = tx.query_row(
                "SELECT COALESCE(SUM(size), 0) FROM
                   (SELECT DISTINCT v.sha256, v.size FROM script_versions v
                    JOIN scripts s ON s.namespace = v.namespace AND s.name = v.name
                    WHERE s.customer_id = ?1)",
                params![owner],
                |row| row.get(0),
            )?;
            if used as u64 <= max_bytes {
                return Ok(());
            }
            let oldest: Option<String> = tx
                .query_row(
                    &format!(
                        "SELECT id FROM script_versions WHERE namespace = ?1 AND name = ?2
                           AND id != ?3 AND id NOT IN ({DEPLOYED_VERSIONS})
                         ORDER BY number LIMIT 1"
                    ),
                    params![namespace, name, new],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(oldest) = oldest else {
                return Err(StoreError::QuotaExceeded {
                    used: used as u64,
                    limit: max_bytes,
                });
            };
            tx.execute(
                "DELETE FROM script_versions WHERE namespace = ?1 AND name = ?2 AND id = ?3",
                params![namespace, name, oldest],
            )?;
        }
    }

    /// Drops the script's versions past the newest `keep`, except those the live or the
    /// previous deployment uses (their bindings go with them).
    pub(super) fn prune_versions(
        tx: &Transaction<'_>,
        namespace: &str,
        name: &str,
        keep: usize,
    ) -> Result<(), StoreError> {
        tx.execute(
            &format!(
                "DELETE FROM script_versions WHERE namespace = ?1 AND name = ?2
                   AND number <= (SELECT MAX(number) FROM script_versions
                                  WHERE namespace = ?1 AND name = ?2) - ?3
                   AND id NOT IN ({DEPLOYED_VERSIONS})"
            ),
            params![namespace, name, keep as i64],
        )?;
        Ok(())
    }
}

/// The newest version's id, if the script has one.
pub(super) fn newest_version(
    tx: &Transaction<'_>,
    namespace: &str,
    name: &str,
) -> Result<Option<String>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT id FROM script_versions WHERE namespace = ?1 AND name = ?2
             ORDER BY number DESC LIMIT 1",
            params![namespace, name],
            |row| row.get(0),
        )
        .optional()?)
}

pub(super) fn read_version(
    tx: &Transaction<'_>,
    namespace: &str,
    name: &str,
    id: &str,
) -> Result<Option<VersionRecord>, StoreError> {
    let version = tx
        .query_row(
            "SELECT number, sha256, size, created_at, message, tag, tags FROM script_versions
             WHERE namespace = ?1 AND name = ?2 AND id = ?3",
            params![namespace, name, id],
            |row| {
                Ok(VersionRecord {
                    id: id.to_string(),
                    number: row.get(0)?,
                    sha256: row.get(1)?,
                    size: row.get::<_, i64>(2)? as u64,
                    created_at: row.get(3)?,
                    message: row.get(4)?,
                    tag: row.get(5)?,
                    tags: serde_json::from_str(&row.get::<_, String>(6)?).unwrap_or_default(),
                    bindings: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut version) = version else {
        return Ok(None);
    };
    version.bindings = Store::binding_views(tx, namespace, name, id)?;
    Ok(Some(version))
}
