//! The in-memory index of ready scripts: (namespace, name) → pre-instantiated component.
//! Reads are lock-free (`ArcSwap`); every change to the store that affects scripts goes
//! through `ScriptIndex::writer`, so an upload's commit and its index update are one step
//! and the next request after a `2xx` already sees the new version. Changes made by other
//! processes (the CLI) are picked up by `sync_from_store`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::outbound::{AllowList, Outbound};
use super::{Host, Limits, Runtime};
use crate::store::{
    OutboundPolicy, ResolvedBindings, ScriptHead, ScriptSettings, Store, StoreError,
};

/// A script ready to serve requests.
pub struct LoadedScript {
    pub namespace: String,
    pub name: String,
    pub sha256: String,
    pub customer_id: Option<String>,
    /// The store's `updated_at` of the version loaded (bytes, tags or bindings).
    pub updated_at: String,
    pub bindings: Arc<ResolvedBindings>,
    pub pre: ProxyPre<Host>,
    /// What the admin set for the script's name, as stored.
    pub settings: ScriptSettings,
    /// The server's default limits with the admin's overrides applied.
    pub limits: Limits,
    pub outbound: Outbound,
}

impl LoadedScript {
    pub fn new(
        runtime: &Runtime,
        head: ScriptHead,
        bindings: ResolvedBindings,
        pre: ProxyPre<Host>,
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
        LoadedScript {
            namespace: head.namespace,
            name: head.name,
            sha256: head.sha256,
            customer_id: head.customer_id,
            updated_at: head.updated_at,
            bindings: Arc::new(bindings),
            pre,
            settings: head.settings,
            limits,
            outbound,
        }
    }
}

type Scripts = HashMap<String, HashMap<String, Arc<LoadedScript>>>;

#[derive(Default)]
pub struct ScriptIndex {
    scripts: ArcSwap<Scripts>,
    /// Held across "commit to the store + update the index" so changes apply in order.
    pub writer: tokio::sync::Mutex<()>,
}

impl ScriptIndex {
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<LoadedScript>> {
        self.scripts.load().get(namespace)?.get(name).cloned()
    }

    /// Puts a script in the index (caller holds `writer`).
    pub fn insert(&self, script: LoadedScript, runtime: &Runtime) {
        let mut next = Scripts::clone(&self.scripts.load());
        next.entry(script.namespace.clone())
            .or_default()
            .insert(script.name.clone(), Arc::new(script));
        self.publish(next, runtime);
    }

    /// Removes scripts from the index (caller holds `writer`).
    pub fn remove(&self, namespace: &str, names: &[String], runtime: &Runtime) {
        let mut next = Scripts::clone(&self.scripts.load());
        if let Some(scripts) = next.get_mut(namespace) {
            for name in names {
                scripts.remove(name);
            }
        }
        self.publish(next, runtime);
    }

    /// Rebuilds the index from the store, reusing every script whose bytes did not change
    /// and loading the others from their compiled artifacts (caller holds `writer`).
    /// Blocking: run it on the blocking pool.
    pub fn sync_from_store(&self, store: &Store, runtime: &Runtime) -> Result<(), StoreError> {
        let current = self.scripts.load_full();
        let mut by_sha: HashMap<String, ProxyPre<Host>> = current
            .values()
            .flat_map(|scripts| scripts.values())
            .map(|s| (s.sha256.clone(), s.pre.clone()))
            .collect();
        let mut next = Scripts::new();
        for head in store.script_heads()? {
            let unchanged = current
                .get(&head.namespace)
                .and_then(|scripts| scripts.get(&head.name))
                .filter(|s| {
                    s.sha256 == head.sha256
                        && s.customer_id == head.customer_id
                        && s.updated_at == head.updated_at
                        && s.settings == head.settings
                });
            let script = match unchanged {
                Some(script) => script.clone(),
                None => {
                    let pre = match by_sha.get(&head.sha256) {
                        Some(pre) => pre.clone(),
                        None => match runtime.load(store, &head.sha256) {
                            Ok(pre) => pre,
                            Err(error) => {
                                tracing::error!(
                                    script = %head.name, namespace = %head.namespace, %error,
                                    "script cannot be loaded; it will not serve"
                                );
                                continue;
                            }
                        },
                    };
                    by_sha.insert(head.sha256.clone(), pre.clone());
                    let bindings = match store.resolved_bindings(&head.namespace, &head.name) {
                        Ok(bindings) => bindings,
                        Err(error) => {
                            tracing::error!(
                                script = %head.name, namespace = %head.namespace, %error,
                                "script bindings cannot be read; it will not serve"
                            );
                            continue;
                        }
                    };
                    Arc::new(LoadedScript::new(runtime, head.clone(), bindings, pre))
                }
            };
            next.entry(head.namespace)
                .or_default()
                .insert(head.name, script);
        }
        self.publish(next, runtime);
        Ok(())
    }

    fn publish(&self, scripts: Scripts, runtime: &Runtime) {
        let count = scripts.values().map(HashMap::len).sum::<usize>();
        runtime
            .metrics
            .scripts_loaded
            .store(count as u64, Ordering::Relaxed);
        self.scripts.store(Arc::new(scripts));
    }
}
