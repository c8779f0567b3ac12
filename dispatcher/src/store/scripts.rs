//! Scripts and their tags. A script is unique by (namespace, name); its owner's
//! `customer_id:<id>` tag is stored with its custom tags so one query filters both.
//! Each upload adds a version (`versions.rs`), deployed at once unless asked not to.

use rusqlite::{OptionalExtension as _, Transaction, params};
use serde::Serialize;

use super::deployments::{self, DeploymentRecord, VersionShare};
use super::settings::ScriptSettings;
use super::versions::{self, LiveVersion, NewVersionRow, VersionRecord};
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
    /// The bindings of the live deployment's main version.
    pub bindings: Vec<BindingView>,
    /// The live deployment.
    pub deployment: Option<DeploymentRecord>,
}

/// What an upload made: the script, whether it is new, and its new version.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    #[serde(flatten)]
    pub script: ScriptRecord,
    #[serde(skip)]
    pub created: bool,
    pub version: VersionRecord,
}

/// What the runtime index needs to know about every script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptHead {
    pub namespace: String,
    pub name: String,
    pub customer_id: Option<String>,
    /// The live deployment's id: it changes whenever what serves changes.
    pub deployment: String,
    /// The live deployment's versions, with their digests and shares.
    pub versions: Vec<LiveVersion>,
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
    /// The new version's bindings; those of the newest version when `None`.
    pub bindings: Option<&'a [StoredBinding]>,
    /// The version's annotations.
    pub message: Option<&'a str>,
    pub tag: Option<&'a str>,
    /// Deploy the version to 100 % at once (else it serves no traffic yet).
    pub deploy: bool,
    /// How many versions of the script to keep.
    pub keep_versions: usize,
    /// Most bytes of components a customer's kept versions may name.
    pub max_customer_bytes: u64,
    /// Replaces the script's schedules when given; keeps them when `None`.
    pub crons: Option<&'a [String]>,
    /// Replaces the script's queue consumers when given, as `owner`'s (the data owner).
    pub consumers: Option<(&'a str, &'a [super::ConsumerSpec])>,
}

/// The tag every script of a customer carries.
pub fn customer_tag(customer_id: &str) -> String {
    format!("customer_id:{customer_id}")
}

impl Store {
    /// Adds a version of a script atomically, creating the script on its first upload,
    /// and deploys it to 100 % when asked. Fails with `NameTaken` when the name belongs
    /// to another owner, and with `NotFound` for a first upload that is not deployed.
    pub fn put_script(&self, upload: &Upload<'_>) -> Result<Uploaded, StoreError> {
        let (namespace, name) = (upload.namespace, upload.name);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let existing: Option<Option<String>> = tx
            .query_row(
                "SELECT customer_id FROM scripts WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
                |row| row.get(0),
            )
            .optional()?;
        match &existing {
            Some(owner) if owner.as_deref() != upload.customer_id => {
                return Err(StoreError::NameTaken);
            }
            None if !upload.deploy => return Err(StoreError::NotFound),
            _ => {}
        }
        // A new script's row starts with these bytes; a deployment below keeps the row
        // pointing at what serves.
        tx.execute(
            "INSERT INTO scripts (namespace, name, customer_id, sha256, size)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (namespace, name) DO UPDATE SET
                updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            params![
                namespace,
                name,
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
                params![namespace, name, upload.customer_id],
            )?;
        }
        if let Some(tags) = upload.tags {
            replace_custom_tags(&tx, namespace, name, tags)?;
        }
        if let Some(crons) = upload.crons {
            super::schedules::replace_schedules(&tx, namespace, name, crons)?;
        }
        if let Some((owner, consumers)) = upload.consumers {
            super::consumers::replace_consumers(&tx, (namespace, name, owner), consumers)?;
        }
        if let Some(customer_id) = upload.customer_id {
            tx.execute(
                "INSERT OR IGNORE INTO script_tags (namespace, name, tag) VALUES (?1, ?2, ?3)",
                params![namespace, name, customer_tag(customer_id)],
            )?;
        }
        let previous = versions::newest_version(&tx, namespace, name)?;
        let version = Store::insert_version(
            &tx,
            &NewVersionRow {
                namespace,
                name,
                sha256: upload.sha256,
                size: upload.size,
                message: upload.message,
                tag: upload.tag,
            },
        )?;
        match (upload.bindings, &previous) {
            (Some(bindings), _) => {
                self.insert_bindings(&tx, (namespace, name, &version), bindings)?
            }
            (None, Some(previous)) => {
                Store::copy_bindings(&tx, (namespace, name, &version), previous)?
            }
            (None, None) => {}
        }
        if upload.deploy {
            let share = VersionShare {
                version_id: version.clone(),
                percentage: 100,
            };
            deployments::insert_deployment(&tx, namespace, name, &[share], "upload")?;
        }
        Store::prune_versions(&tx, namespace, name, upload.keep_versions.max(1))?;
        if let Some(owner) = upload.customer_id {
            Store::trim_to_bytes(
                &tx,
                (namespace, name, &version),
                owner,
                upload.max_customer_bytes,
            )?;
        }
        let script = read_record(&tx, namespace, name)?.ok_or(StoreError::NotFound)?;
        let version =
            versions::read_version(&tx, namespace, name, &version)?.ok_or(StoreError::NotFound)?;
        tx.commit()?;
        Ok(Uploaded {
            script,
            created: existing.is_none(),
            version,
        })
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

    /// Every script's owner, settings and live versions: what the runtime index is
    /// built from. A script whose live deployment names no kept version is left out
    /// (logged): there is nothing it could serve.
    pub fn script_heads(&self) -> Result<Vec<ScriptHead>, StoreError> {
        self.heads_where(None)
    }

    /// The head of one script, if it has a live deployment.
    pub fn script_head(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ScriptHead>, StoreError> {
        Ok(self.heads_where(Some((namespace, name)))?.pop())
    }

    fn heads_where(&self, only: Option<(&str, &str)>) -> Result<Vec<ScriptHead>, StoreError> {
        let (namespace, name) = only.unzip();
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT s.namespace, s.name, s.customer_id, d.id, d.versions,
                    x.cpu_ms, x.memory_mb, x.subrequests, x.wall_ms, x.outbound_sealed,
                    x.customer_id
             FROM scripts s
             JOIN script_deployments d ON d.namespace = s.namespace AND d.name = s.name
               AND d.number = (SELECT MAX(number) FROM script_deployments
                               WHERE namespace = s.namespace AND name = s.name)
             LEFT JOIN script_settings x ON x.namespace = s.namespace AND x.name = s.name
               AND x.customer_id IS s.customer_id
             WHERE ?1 IS NULL OR (s.namespace = ?1 AND s.name = ?2)",
        )?;
        let rows = stmt.query_map(params![namespace, name], |row| {
            let (namespace, name): (String, String) = (row.get(0)?, row.get(1)?);
            Ok((
                ScriptHead {
                    settings: self.settings_from_row(&namespace, &name, row, 5)?,
                    namespace,
                    name,
                    customer_id: row.get(2)?,
                    deployment: row.get(3)?,
                    versions: Vec::new(),
                },
                row.get::<_, String>(4)?,
            ))
        })?;
        let heads: Vec<(ScriptHead, String)> = rows.collect::<Result<_, _>>()?;
        let mut digest = conn.prepare_cached(
            "SELECT sha256 FROM script_versions WHERE namespace = ?1 AND name = ?2 AND id = ?3",
        )?;
        let mut out = Vec::with_capacity(heads.len());
        for (mut head, shares) in heads {
            for share in deployments::parse_shares(&shares) {
                let sha256: Option<String> = digest
                    .query_row(
                        params![head.namespace, head.name, share.version_id],
                        |row| row.get(0),
                    )
                    .optional()?;
                match sha256 {
                    Some(sha256) => head.versions.push(LiveVersion {
                        id: share.version_id,
                        sha256,
                        percentage: share.percentage,
                    }),
                    None => head.versions.clear(),
                }
            }
            if head.versions.is_empty() {
                tracing::error!(script = %head.name, namespace = %head.namespace,
                    "the live deployment names no kept version; the script is not served");
                continue;
            }
            out.push(head);
        }
        Ok(out)
    }

    /// The kept version `id` of a script, as the runtime needs it.
    pub fn version_head(
        &self,
        namespace: &str,
        name: &str,
        id: &str,
    ) -> Result<Option<LiveVersion>, StoreError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT sha256 FROM script_versions WHERE namespace = ?1 AND name = ?2 AND id = ?3",
                params![namespace, name, id],
                |row| row.get(0),
            )
            .optional()?
            .map(|sha256| LiveVersion {
                id: id.to_string(),
                sha256,
                percentage: 0,
            }))
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
                    deployment: None,
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
    record.deployment = deployments::live_deployment(tx, namespace, name)?;
    let main = record
        .deployment
        .as_ref()
        .and_then(|deployment| deployments::main_share(&deployment.versions));
    if let Some(main) = main {
        record.bindings = Store::binding_views(tx, namespace, name, &main.version_id)?;
    }
    Ok(Some(record))
}
