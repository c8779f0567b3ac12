//! A script's deployments: one or two kept versions with percentages summing to 100.
//! The newest deployment is the live one, and `scripts.sha256` follows the version with
//! the largest share of it (so what reads a script's bytes reads what serves).

use rusqlite::{OptionalExtension as _, Transaction, params};
use serde::{Deserialize, Serialize};

use super::versions::{Page, PageRequest};
use super::{Store, StoreError, random_hex};

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

impl Store {
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
