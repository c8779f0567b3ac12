//! A script's bindings, stored with it: the WfP upload shape (`{"type": "plain_text",
//! "name": "GREETING", "text": "hi"}`, `secret_text`, `kv_namespace`, `d1`, `service`),
//! their public view (secret values never included), and the resolved form the runtime
//! hands to a script (secrets opened). Checks that need other scripts (does a bound
//! service exist?) belong to the deploy pipeline, not here.

use std::collections::HashMap;

use rusqlite::{Transaction, params};
use serde::{Deserialize, Serialize};

use super::secrets::SecretSlot;
use super::{Store, StoreError};

/// A binding as uploaded in the `metadata` part.
#[derive(Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BindingSpec {
    PlainText { name: String, text: String },
    SecretText { name: String, text: String },
    KvNamespace { name: String, namespace: String },
    D1 { name: String, database: String },
    Service { name: String, service: String },
}

/// A binding as the API shows it: everything but secret values.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BindingView {
    PlainText { name: String, text: String },
    SecretText { name: String },
    KvNamespace { name: String, namespace: String },
    D1 { name: String, database: String },
    Service { name: String, service: String },
}

/// What a script can reach, by binding name, with secrets opened. Never logged: it has
/// no `Debug`.
#[derive(Default)]
pub struct ResolvedBindings {
    pub vars: HashMap<String, String>,
    pub secrets: HashMap<String, String>,
    pub kv_namespaces: HashMap<String, String>,
    pub databases: HashMap<String, String>,
    pub services: HashMap<String, String>,
}

impl BindingSpec {
    pub fn name(&self) -> &str {
        match self {
            BindingSpec::PlainText { name, .. }
            | BindingSpec::SecretText { name, .. }
            | BindingSpec::KvNamespace { name, .. }
            | BindingSpec::D1 { name, .. }
            | BindingSpec::Service { name, .. } => name,
        }
    }
}

/// (kind, text, target) columns of a non-secret binding.
fn columns(spec: &BindingSpec) -> (&'static str, Option<&str>, Option<&str>) {
    match spec {
        BindingSpec::PlainText { text, .. } => ("plain_text", Some(text), None),
        BindingSpec::SecretText { .. } => ("secret_text", None, None),
        BindingSpec::KvNamespace { namespace, .. } => ("kv_namespace", None, Some(namespace)),
        BindingSpec::D1 { database, .. } => ("d1", None, Some(database)),
        BindingSpec::Service { service, .. } => ("service", None, Some(service)),
    }
}

struct Row {
    binding: String,
    kind: String,
    text: Option<String>,
    secret: Option<Vec<u8>>,
    target: Option<String>,
}

fn read_rows(tx: &Transaction<'_>, namespace: &str, name: &str) -> Result<Vec<Row>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT binding, kind, text, secret, target FROM script_bindings
         WHERE namespace = ?1 AND name = ?2 ORDER BY binding",
    )?;
    let rows = stmt.query_map(params![namespace, name], |row| {
        Ok(Row {
            binding: row.get(0)?,
            kind: row.get(1)?,
            text: row.get(2)?,
            secret: row.get(3)?,
            target: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Store {
    /// Replaces the bindings of a script inside the upload's transaction, sealing secrets.
    pub(super) fn replace_bindings(
        &self,
        tx: &Transaction<'_>,
        namespace: &str,
        name: &str,
        bindings: &[BindingSpec],
    ) -> Result<(), StoreError> {
        tx.execute(
            "DELETE FROM script_bindings WHERE namespace = ?1 AND name = ?2",
            params![namespace, name],
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO script_bindings (namespace, name, binding, kind, text, secret, target)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for spec in bindings {
            let (kind, text, target) = columns(spec);
            let secret = match spec {
                BindingSpec::SecretText {
                    name: binding,
                    text,
                } => Some(self.secrets.seal(
                    &SecretSlot {
                        namespace,
                        script: name,
                        binding,
                    },
                    text,
                )),
                _ => None,
            };
            insert.execute(params![
                namespace,
                name,
                spec.name(),
                kind,
                text,
                secret,
                target
            ])?;
        }
        Ok(())
    }

    /// The public view of a script's bindings.
    pub(super) fn binding_views(
        tx: &Transaction<'_>,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<BindingView>, StoreError> {
        Ok(read_rows(tx, namespace, name)?
            .into_iter()
            .filter_map(|row| {
                let name = row.binding;
                Some(match (row.kind.as_str(), row.text, row.target) {
                    ("plain_text", Some(text), _) => BindingView::PlainText { name, text },
                    ("secret_text", _, _) => BindingView::SecretText { name },
                    ("kv_namespace", _, Some(namespace)) => {
                        BindingView::KvNamespace { name, namespace }
                    }
                    ("d1", _, Some(database)) => BindingView::D1 { name, database },
                    ("service", _, Some(service)) => BindingView::Service { name, service },
                    _ => return None,
                })
            })
            .collect())
    }

    /// What the runtime gives the script: every binding, secrets opened.
    pub fn resolved_bindings(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<ResolvedBindings, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut resolved = ResolvedBindings::default();
        for row in read_rows(&tx, namespace, name)? {
            let Row {
                binding,
                kind,
                text,
                secret,
                target,
            } = row;
            match (kind.as_str(), text, secret, target) {
                ("plain_text", Some(text), _, _) => {
                    resolved.vars.insert(binding, text);
                }
                ("secret_text", _, Some(sealed), _) => {
                    let slot = SecretSlot {
                        namespace,
                        script: name,
                        binding: &binding,
                    };
                    let text = self.secrets.open(&slot, &sealed)?;
                    resolved.secrets.insert(binding, text);
                }
                ("kv_namespace", _, _, Some(target)) => {
                    resolved.kv_namespaces.insert(binding, target);
                }
                ("d1", _, _, Some(target)) => {
                    resolved.databases.insert(binding, target);
                }
                ("service", _, _, Some(target)) => {
                    resolved.services.insert(binding, target);
                }
                _ => tracing::warn!(script = name, binding, kind, "skipping a malformed binding"),
            }
        }
        Ok(resolved)
    }
}
