//! A version's bindings as the store keeps them: `(script, version, binding name, kind,
//! spec JSON)` and, for a kind that has one, a secret sealed with XChaCha20-Poly1305
//! (opened only for the runtime, never shown). The store knows no kind: what a kind's spec holds and
//! whether it is valid is its binding unit's business (`runtime/bindings/`).

use rusqlite::{Transaction, params};
use serde::{Deserialize, Serialize};

use super::secrets::SecretSlot;
use super::{Store, StoreError};

/// The fields of a binding past its `type` and `name`.
pub type BindingFields = serde_json::Map<String, serde_json::Value>;

/// A binding as an upload's metadata gives it: `{"type": "kv_namespace", "name": "CACHE",
/// "namespace": "cache"}`. Checked by its kind's unit before it is stored.
#[derive(Debug, Clone, Deserialize)]
pub struct BindingRequest {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(flatten)]
    pub fields: BindingFields,
}

/// A binding ready to store, as its unit accepted it.
#[derive(Clone)]
pub struct StoredBinding {
    pub name: String,
    pub kind: String,
    /// What the API shows (never a secret).
    pub spec: BindingFields,
    /// Sealed at rest, never shown.
    pub secret: Option<String>,
}

/// A binding as the API shows it: its type, its name and its spec (no secret).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct BindingView {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub spec: BindingFields,
}

/// A stored row: binding name, kind, spec JSON, sealed secret.
type Row = (String, String, String, Option<Vec<u8>>);

fn read_rows(
    tx: &Transaction<'_>,
    namespace: &str,
    name: &str,
    version: &str,
) -> Result<Vec<Row>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT binding, kind, spec, secret FROM version_bindings
         WHERE namespace = ?1 AND name = ?2 AND version = ?3 ORDER BY binding",
    )?;
    let rows = stmt.query_map(params![namespace, name, version], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn parse_spec(binding: &str, spec: &str) -> BindingFields {
    serde_json::from_str(spec).unwrap_or_else(|error| {
        tracing::warn!(binding, %error, "a stored binding spec is not a JSON object");
        BindingFields::new()
    })
}

impl Store {
    /// Stores the bindings of a new version inside the upload's transaction, sealing
    /// secrets.
    pub(super) fn insert_bindings(
        &self,
        tx: &Transaction<'_>,
        (namespace, name, version): (&str, &str, &str),
        bindings: &[StoredBinding],
    ) -> Result<(), StoreError> {
        let mut insert = tx.prepare_cached(
            "INSERT INTO version_bindings (namespace, name, version, binding, kind, spec, secret)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for binding in bindings {
            let secret = binding.secret.as_deref().map(|text| {
                let slot = SecretSlot {
                    namespace,
                    script: name,
                    binding: &binding.name,
                };
                self.secrets.seal(&slot, text)
            });
            let spec = serde_json::Value::Object(binding.spec.clone()).to_string();
            insert.execute(params![
                namespace,
                name,
                version,
                binding.name,
                binding.kind,
                spec,
                secret
            ])?;
        }
        Ok(())
    }

    /// A new version keeps the bindings of the version before it (sealed values copied
    /// as they are: they are bound to the script, not the version).
    pub(super) fn copy_bindings(
        tx: &Transaction<'_>,
        (namespace, name, version): (&str, &str, &str),
        from: &str,
    ) -> Result<(), StoreError> {
        tx.execute(
            "INSERT INTO version_bindings (namespace, name, version, binding, kind, spec, secret)
             SELECT namespace, name, ?3, binding, kind, spec, secret FROM version_bindings
             WHERE namespace = ?1 AND name = ?2 AND version = ?4",
            params![namespace, name, version, from],
        )?;
        Ok(())
    }

    /// The public view of a version's bindings.
    pub(super) fn binding_views(
        tx: &Transaction<'_>,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> Result<Vec<BindingView>, StoreError> {
        Ok(read_rows(tx, namespace, name, version)?
            .into_iter()
            .map(|(binding, kind, spec, _)| BindingView {
                spec: parse_spec(&binding, &spec),
                kind,
                name: binding,
            })
            .collect())
    }

    /// What the runtime gives a version of the script: every binding, secrets opened.
    pub fn stored_bindings(
        &self,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> Result<Vec<StoredBinding>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        read_rows(&tx, namespace, name, version)?
            .into_iter()
            .map(|(binding, kind, spec, sealed)| {
                let secret = match sealed {
                    Some(sealed) => {
                        let slot = SecretSlot {
                            namespace,
                            script: name,
                            binding: &binding,
                        };
                        Some(self.secrets.open(&slot, &sealed)?)
                    }
                    None => None,
                };
                Ok(StoredBinding {
                    spec: parse_spec(&binding, &spec),
                    name: binding,
                    kind,
                    secret,
                })
            })
            .collect()
    }

    /// The bindings of the live deployment's main version (none when it has none).
    pub fn live_bindings(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<StoredBinding>, StoreError> {
        let main = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            super::deployments::live_deployment(&tx, namespace, name)?.and_then(|deployment| {
                super::deployments::main_share(&deployment.versions).map(|s| s.version_id.clone())
            })
        };
        match main {
            Some(version) => self.stored_bindings(namespace, name, &version),
            None => Ok(Vec::new()),
        }
    }

    /// The bindings of the script's newest version: what an upload that gives none keeps.
    pub fn newest_bindings(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<StoredBinding>, StoreError> {
        let newest = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            super::versions::newest_version(&tx, namespace, name)?
        };
        match newest {
            Some(version) => self.stored_bindings(namespace, name, &version),
            None => Ok(Vec::new()),
        }
    }
}
