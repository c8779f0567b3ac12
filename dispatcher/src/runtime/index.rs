//! The in-memory index of ready scripts: (namespace, name) → the script and its
//! pre-instantiated component (loaded off the request path, `warmup.rs`).
//! Reads are lock-free (`ArcSwap`); every change to the store that affects scripts goes
//! through `ScriptIndex::writer`, so an upload's commit and its index update are one step
//! and the next request after a `2xx` already sees the new version. Changes made by other
//! processes (the CLI) are picked up by `sync_from_store`. A script the store has but that
//! cannot be loaded (its bindings cannot be read, or its component fails to load) is
//! answered as broken rather than as missing; uploading its bytes again makes it, and
//! every script that shares them, ready again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;

use super::bindings::{ScriptBindings, data_owner};
use super::cpu::CpuHistory;
use super::outbound::{AllowList, Outbound};
use super::warmup::ScriptComponent;
use super::{Limits, Runtime};
use crate::store::{OutboundPolicy, ScriptHead, ScriptSettings, Store, StoreError, StoredBinding};

/// A script ready to serve requests.
pub struct LoadedScript {
    pub namespace: String,
    pub name: String,
    pub sha256: String,
    pub customer_id: Option<String>,
    /// The store's `updated_at` of the version loaded (bytes, tags or bindings).
    pub updated_at: String,
    pub bindings: ScriptBindings,
    pub component: Arc<ScriptComponent>,
    /// What the admin set for the script's name, as stored.
    pub settings: ScriptSettings,
    /// The server's default limits with the admin's overrides applied.
    pub limits: Limits,
    pub outbound: Outbound,
    /// The CPU its recent runs used, which decides whether its next runs start heavy.
    pub cpu_history: Arc<CpuHistory>,
}

impl LoadedScript {
    pub fn new(
        runtime: &Runtime,
        head: ScriptHead,
        bindings: Vec<StoredBinding>,
        component: Arc<ScriptComponent>,
    ) -> LoadedScript {
        let limits = runtime.defaults.with_overrides(&head.settings.limits);
        let outbound = match &head.settings.outbound {
            None => Outbound::Default,
            Some(OutboundPolicy::Allow(patterns)) => {
                // Checked when set; a list that no longer parses allows nothing.
                Outbound::Allow(AllowList::parse(patterns).unwrap_or_else(|error| {
                    tracing::error!(script = %head.name, %error, "stored allow list is invalid; refusing all egress");
                    AllowList::default()
                }))
            }
            Some(OutboundPolicy::Worker { script, params }) => Outbound::Worker {
                script: script.clone(),
                params: Arc::new(params.clone()),
            },
        };
        let bindings = ScriptBindings::resolve(data_owner(head.customer_id.as_deref()), bindings);
        LoadedScript {
            namespace: head.namespace,
            name: head.name,
            sha256: head.sha256,
            customer_id: head.customer_id,
            updated_at: head.updated_at,
            bindings,
            component,
            settings: head.settings,
            limits,
            outbound,
            cpu_history: Arc::default(),
        }
    }
}

/// What the index holds at one moment.
#[derive(Clone, Default)]
struct Scripts {
    ready: HashMap<String, HashMap<String, Arc<LoadedScript>>>,
    /// (namespace, name) of scripts that could not be loaded → why.
    unavailable: HashMap<(String, String), Unavailable>,
}

/// A script of the store that could not be loaded.
#[derive(Clone)]
pub struct Unavailable {
    pub customer_id: Option<String>,
    sha256: String,
    /// Why it could not be loaded (for the log; it may name internals).
    pub reason: String,
}

#[derive(Default)]
pub struct ScriptIndex {
    scripts: ArcSwap<Scripts>,
    /// Held across "commit to the store + update the index" so changes apply in order.
    pub writer: tokio::sync::Mutex<()>,
}

impl ScriptIndex {
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<LoadedScript>> {
        self.scripts.load().ready.get(namespace)?.get(name).cloned()
    }

    /// The store's script `name` when it is one that could not be loaded.
    pub fn unavailable(&self, namespace: &str, name: &str) -> Option<Unavailable> {
        let key = (namespace.to_string(), name.to_string());
        self.scripts.load().unavailable.get(&key).cloned()
    }

    /// True when a script that could not be loaded has the bytes `sha256`.
    pub fn unavailable_with(&self, sha256: &str) -> bool {
        let scripts = self.scripts.load();
        scripts.unavailable.values().any(|u| u.sha256 == sha256)
            || scripts
                .ready
                .values()
                .flat_map(HashMap::values)
                .any(|s| s.sha256 == sha256 && s.component.failed())
    }

    /// The components of indexed scripts that nothing has loaded yet, each once.
    pub fn cold_components(&self) -> Vec<Arc<ScriptComponent>> {
        let scripts = self.scripts.load();
        let mut seen = std::collections::HashSet::new();
        scripts
            .ready
            .values()
            .flat_map(HashMap::values)
            .filter(|s| !s.component.is_loaded() && seen.insert(s.sha256.as_str()))
            .map(|s| s.component.clone())
            .collect()
    }

    /// Puts a script in the index (caller holds `writer`).
    pub fn insert(&self, script: LoadedScript, runtime: &Runtime) {
        let mut next = Scripts::clone(&self.scripts.load());
        next.unavailable
            .remove(&(script.namespace.clone(), script.name.clone()));
        next.ready
            .entry(script.namespace.clone())
            .or_default()
            .insert(script.name.clone(), Arc::new(script));
        self.publish(next, runtime);
    }

    /// Removes scripts from the index (caller holds `writer`).
    pub fn remove(&self, namespace: &str, names: &[String], runtime: &Runtime) {
        let mut next = Scripts::clone(&self.scripts.load());
        for name in names {
            next.unavailable
                .remove(&(namespace.to_string(), name.clone()));
        }
        if let Some(scripts) = next.ready.get_mut(namespace) {
            for name in names {
                scripts.remove(name);
            }
        }
        self.publish(next, runtime);
    }

    /// Rebuilds the index from the store, reusing every script that did not change and
    /// the component of bytes already known; other components are left to load later
    /// (`warmup.rs`), so this reads rows only (caller holds `writer`). A script whose
    /// bindings cannot be read is logged and kept as unavailable. Blocking: run it on the
    /// blocking pool.
    pub fn sync_from_store(&self, store: &Arc<Store>, runtime: &Runtime) -> Result<(), StoreError> {
        let current = self.scripts.load_full();
        // A component that failed to load is tried again: its bytes may have been healed.
        let mut by_sha: HashMap<String, Arc<ScriptComponent>> = current
            .ready
            .values()
            .flat_map(|scripts| scripts.values())
            .filter(|s| !s.component.failed())
            .map(|s| (s.sha256.clone(), s.component.clone()))
            .collect();
        let mut next = Scripts::default();
        for head in store.script_heads()? {
            let unchanged = current
                .ready
                .get(&head.namespace)
                .and_then(|scripts| scripts.get(&head.name))
                .filter(|s| {
                    s.sha256 == head.sha256
                        && s.customer_id == head.customer_id
                        && s.updated_at == head.updated_at
                        && s.settings == head.settings
                        && !s.component.failed()
                });
            let loaded = match unchanged {
                Some(script) => Ok(script.clone()),
                None => index_script(store, runtime, &head, &mut by_sha),
            };
            match loaded {
                Ok(script) => {
                    next.ready
                        .entry(head.namespace)
                        .or_default()
                        .insert(head.name, script);
                }
                Err(reason) => {
                    tracing::error!(
                        script = %head.name, namespace = %head.namespace, %reason,
                        "script cannot be loaded; it answers as unavailable"
                    );
                    let unavailable = Unavailable {
                        customer_id: head.customer_id,
                        sha256: head.sha256,
                        reason,
                    };
                    next.unavailable
                        .insert((head.namespace, head.name), unavailable);
                }
            }
        }
        self.publish(next, runtime);
        Ok(())
    }

    fn publish(&self, scripts: Scripts, runtime: &Runtime) {
        let count = scripts.ready.values().map(HashMap::len).sum::<usize>();
        runtime
            .metrics
            .scripts_loaded
            .store(count as u64, Ordering::Relaxed);
        self.scripts.store(Arc::new(scripts));
    }
}

/// The script `head` names, with the component of scripts with the same bytes or a new
/// one not loaded yet; on failure, why it cannot be indexed.
fn index_script(
    store: &Arc<Store>,
    runtime: &Runtime,
    head: &ScriptHead,
    by_sha: &mut HashMap<String, Arc<ScriptComponent>>,
) -> Result<Arc<LoadedScript>, String> {
    let component = by_sha
        .entry(head.sha256.clone())
        .or_insert_with(|| ScriptComponent::cold(head.sha256.clone(), store.clone()))
        .clone();
    let bindings = store
        .stored_bindings(&head.namespace, &head.name)
        .map_err(|error| format!("its bindings cannot be read: {error}"))?;
    Ok(Arc::new(LoadedScript::new(
        runtime,
        head.clone(),
        bindings,
        component,
    )))
}
