//! Versions and deployments of a script. A version is immutable: an upload's component
//! digest, its bindings (`bindings.rs`), the tags and annotations it came with. A
//! deployment is one or two versions with percentages summing to 100; a script's
//! newest deployment is its live one, and `scripts.sha256` follows the version with the
//! largest share of it (so what reads a script's bytes reads what serves). Only the
//! newest `keep` versions of a script are kept, never one the live or the previous
//! deployment uses; a blob or artifact stays while any kept version names it.

use rusqlite::{OptionalExtension as _, Transaction, params};
use serde::{Deserialize, Serialize};

use super::{BindingView, Store, StoreError, random_hex};

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

/// One version's share of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionShare {
    pub version_id: String,
    pub percentage: u8,
}

/// A deployment as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeploymentRecord {
    pub id: String,
    pub created_at: String,
    /// `upload` (an upload deployed at once), `api` (a deployment request) or `rollback`.
    pub source: String,
    /// Always `percentage`.
    pub strategy: &'static str,
    pub versions: Vec<VersionShare>,
}

/// A version of a live deployment, as the runtime needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveVersion {
    pub id: String,
    pub sha256: String,
    pub percentage: u8,
}

/// Checks a deployment's shares: one or two distinct versions, each at least 1 %,
/// summing to 100. The error says which rule is broken.
pub fn check_shares(shares: &[VersionShare]) -> Result<(), String> {
    match shares {
        [] => return Err("a deployment needs one or two versions".into()),
        [_] | [_, _] => {}
        _ => {
            return Err(format!(
                "a deployment has at most two versions, not {}",
                shares.len()
            ));
        }
    }
    if let [a, b] = shares
        && a.version_id == b.version_id
    {
        return Err(format!("version `{}` is given twice", a.version_id));
    }
    if let Some(zero) = shares.iter().find(|s| s.percentage == 0) {
        return Err(format!(
            "version `{}` has 0 %; leave it out instead",
            zero.version_id
        ));
    }
    let sum: u32 = shares.iter().map(|s| u32::from(s.percentage)).sum();
    if sum != 100 {
        return Err(format!("the percentages sum to {sum}, not 100"));
    }
    Ok(())
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
    fn offset(self) -> i64 {
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

    /// A page of the script's deployments, newest (the live one) first.
    pub fn list_deployments(
        &self,
        namespace: &str,
        name: &str,
        page: PageRequest,
    ) -> Result<Page<DeploymentRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let total: i64 = tx.query_row(
            "SELECT COUNT(*) FROM script_deployments WHERE namespace = ?1 AND name = ?2",
            params![namespace, name],
            |row| row.get(0),
        )?;
        let items = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, created_at, source, versions FROM script_deployments
                 WHERE namespace = ?1 AND name = ?2 ORDER BY number DESC LIMIT ?3 OFFSET ?4",
            )?;
            let rows = stmt.query_map(
                params![namespace, name, page.per_page, page.offset()],
                deployment_from_row,
            )?;
            rows.collect::<Result<_, _>>()?
        };
        Ok(Page {
            items,
            page: page.page,
            per_page: page.per_page,
            total: total as u64,
        })
    }

    /// Makes `shares` the script's live deployment (checked: see [`check_shares`]; every
    /// version must be a kept version of this script). `owner` as in `get_script`.
    pub fn deploy_versions(
        &self,
        namespace: &str,
        name: &str,
        owner: Option<&str>,
        shares: &[VersionShare],
        source: &str,
    ) -> Result<DeploymentRecord, StoreError> {
        check_shares(shares).map_err(StoreError::InvalidDeployment)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        check_owner(&tx, namespace, name, owner)?;
        for share in shares {
            if version_sha256(&tx, namespace, name, &share.version_id)?.is_none() {
                return Err(not_this_scripts(
                    &tx,
                    namespace,
                    name,
                    owner,
                    &share.version_id,
                )?);
            }
        }
        let deployment = insert_deployment(&tx, namespace, name, shares, source)?;
        tx.commit()?;
        Ok(deployment)
    }

    /// A new 100 % deployment of `to`, or of the first version of the deployment before
    /// the live one. Never compiles: the version's artifact is kept with it.
    pub fn rollback(
        &self,
        namespace: &str,
        name: &str,
        owner: Option<&str>,
        to: Option<&str>,
    ) -> Result<DeploymentRecord, StoreError> {
        let target = match to {
            Some(id) => id.to_string(),
            None => {
                let mut conn = self.conn();
                let tx = conn.transaction()?;
                check_owner(&tx, namespace, name, owner)?;
                let previous: Option<String> = tx
                    .query_row(
                        "SELECT versions FROM script_deployments WHERE namespace = ?1 AND name = ?2
                         ORDER BY number DESC LIMIT 1 OFFSET 1",
                        params![namespace, name],
                        |row| row.get(0),
                    )
                    .optional()?;
                let previous = previous.map(|json| parse_shares(&json)).unwrap_or_default();
                let Some(first) = previous.into_iter().next() else {
                    return Err(StoreError::InvalidDeployment(
                        "there is no earlier deployment to roll back to".into(),
                    ));
                };
                first.version_id
            }
        };
        let shares = [VersionShare {
            version_id: target,
            percentage: 100,
        }];
        self.deploy_versions(namespace, name, owner, &shares, "rollback")
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
                    "SELECT id FROM script_versions WHERE namespace = ?1 AND name = ?2
                       AND id != ?3 AND id NOT IN (
                           SELECT j.value ->> 'version_id'
                           FROM (SELECT versions FROM script_deployments
                                 WHERE namespace = ?1 AND name = ?2
                                 ORDER BY number DESC LIMIT 2) d,
                                json_each(d.versions) j)
                     ORDER BY number LIMIT 1",
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
            "DELETE FROM script_versions WHERE namespace = ?1 AND name = ?2
               AND number <= (SELECT MAX(number) FROM script_versions
                              WHERE namespace = ?1 AND name = ?2) - ?3
               AND id NOT IN (
                   SELECT j.value ->> 'version_id'
                   FROM (SELECT versions FROM script_deployments
                         WHERE namespace = ?1 AND name = ?2 ORDER BY number DESC LIMIT 2) d,
                        json_each(d.versions) j)",
            params![namespace, name, keep as i64],
        )?;
        Ok(())
    }
}

/// Adds a deployment and points the script's row at its main version.
pub(super) fn insert_deployment(
    tx: &Transaction<'_>,
    namespace: &str,
    name: &str,
    shares: &[VersionShare],
    source: &str,
) -> Result<DeploymentRecord, StoreError> {
    let id = random_hex(6);
    let versions = serde_json::to_string(shares).expect("shares serialise");
    tx.execute(
        "INSERT INTO script_deployments (namespace, name, id, number, versions, source)
         VALUES (?1, ?2, ?3,
                 (SELECT COALESCE(MAX(number), 0) + 1 FROM script_deployments
                  WHERE namespace = ?1 AND name = ?2),
                 ?4, ?5)",
        params![namespace, name, id, versions, source],
    )?;
    let main = main_share(shares).ok_or(StoreError::NotFound)?;
    tx.execute(
        "UPDATE scripts SET (sha256, size) =
             (SELECT sha256, size FROM script_versions
              WHERE namespace = ?1 AND name = ?2 AND id = ?3),
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE namespace = ?1 AND name = ?2",
        params![namespace, name, main.version_id],
    )?;
    live_deployment(tx, namespace, name)?.ok_or(StoreError::NotFound)
}

/// The version with the largest share (the first of equals).
pub fn main_share(shares: &[VersionShare]) -> Option<&VersionShare> {
    shares.iter().reduce(|best, s| {
        if s.percentage > best.percentage {
            s
        } else {
            best
        }
    })
}

/// The script's live deployment.
pub(super) fn live_deployment(
    tx: &Transaction<'_>,
    namespace: &str,
    name: &str,
) -> Result<Option<DeploymentRecord>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT id, created_at, source, versions FROM script_deployments
             WHERE namespace = ?1 AND name = ?2 ORDER BY number DESC LIMIT 1",
            params![namespace, name],
            deployment_from_row,
        )
        .optional()?)
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

pub(super) fn parse_shares(json: &str) -> Vec<VersionShare> {
    serde_json::from_str(json).unwrap_or_else(|error| {
        tracing::error!(%error, "a stored deployment is not a list of shares");
        Vec::new()
    })
}

fn deployment_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeploymentRecord> {
    Ok(DeploymentRecord {
        id: row.get(0)?,
        created_at: row.get(1)?,
        source: row.get(2)?,
        strategy: "percentage",
        versions: parse_shares(&row.get::<_, String>(3)?),
    })
}

fn version_sha256(
    tx: &Transaction<'_>,
    namespace: &str,
    name: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT sha256 FROM script_versions WHERE namespace = ?1 AND name = ?2 AND id = ?3",
            params![namespace, name, id],
            |row| row.get(0),
        )
        .optional()?)
}

/// The script exists and (when `owner` is given) is that customer's.
fn check_owner(
    tx: &Transaction<'_>,
    namespace: &str,
    name: &str,
    owner: Option<&str>,
) -> Result<(), StoreError> {
    let found: Option<Option<String>> = tx
        .query_row(
            "SELECT customer_id FROM scripts WHERE namespace = ?1 AND name = ?2",
            params![namespace, name],
            |row| row.get(0),
        )
        .optional()?;
    match found {
        Some(customer) if owner.is_none() || customer.as_deref() == owner => Ok(()),
        _ => Err(StoreError::NotFound),
    }
}

/// Why `id` is no version of this script: a version of another script of the same
/// owner is named as such; anything else is not found.
fn not_this_scripts(
    tx: &Transaction<'_>,
    namespace: &str,
    name: &str,
    owner: Option<&str>,
    id: &str,
) -> Result<StoreError, StoreError> {
    let other: Option<String> = tx
        .query_row(
            "SELECT v.name FROM script_versions v
             JOIN scripts s ON s.namespace = v.namespace AND s.name = v.name
             WHERE v.namespace = ?1 AND v.id = ?2 AND v.name != ?3 AND s.customer_id IS ?4
             LIMIT 1",
            params![namespace, id, name, owner],
            |row| row.get(0),
        )
        .optional()?;
    Ok(match other {
        Some(other) => StoreError::InvalidDeployment(format!(
            "version `{id}` is a version of script `{other}`, not of `{name}`"
        )),
        None => StoreError::VersionNotFound(id.to_string()),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn share(id: &str, percentage: u8) -> VersionShare {
        VersionShare {
            version_id: id.into(),
            percentage,
        }
    }

    #[test]
    fn shares_must_be_one_or_two_distinct_versions_summing_to_100() {
        assert!(check_shares(&[share("a", 100)]).is_ok());
        assert!(check_shares(&[share("a", 90), share("b", 10)]).is_ok());
        assert!(check_shares(&[]).unwrap_err().contains("one or two"));
        let three = [share("a", 50), share("b", 25), share("c", 25)];
        assert!(check_shares(&three).unwrap_err().contains("at most two"));
        let twice = [share("a", 50), share("a", 50)];
        assert!(check_shares(&twice).unwrap_err().contains("twice"));
        let zero = [share("a", 100), share("b", 0)];
        assert!(check_shares(&zero).unwrap_err().contains("0 %"));
        let short = [share("a", 90), share("b", 5)];
        assert!(check_shares(&short).unwrap_err().contains("sum to 95"));
        assert!(
            check_shares(&[share("a", 99)])
                .unwrap_err()
                .contains("sum to 99")
        );
    }

    #[test]
    fn the_main_share_is_the_largest_and_the_first_of_equals() {
        let main = |shares: &[VersionShare]| main_share(shares).unwrap().version_id.clone();
        assert_eq!(main(&[share("a", 10), share("b", 90)]), "b");
        assert_eq!(main(&[share("a", 50), share("b", 50)]), "a");
        assert!(main_share(&[]).is_none());
    }
}
