//! The in-memory index of ready scripts: (namespace, name) → its live deployment, the
//! one or two versions that serve it, each with its bindings and pre-instantiated
//! component (loaded off the request path, `warmup.rs`). A request picks its version
//! with [`Deployed::pick`].
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

use sha2::Digest as _;

use super::bindings::{ScriptBindings, data_owner};
use super::cpu::CpuHistory;
use super::outbound::{AllowList, Outbound};
use super::warmup::ScriptComponent;
use super::{Limits, Runtime};
use crate::metrics::OutcomeCounts;
use crate::store::{
    LiveVersion, OutboundPolicy, ScriptHead, ScriptSettings, Store, StoreError, StoredBinding,
};

/// One version of a script, ready to serve requests.
pub struct LoadedScript {
    pub namespace: String,
    pub name: String,
    /// The version this is.
    pub version_id: String,
    /// When it shares its script's traffic with another version, where its runs are
    /// counted per version in `/metrics`.
    pub split_runs: Option<Arc<OutcomeCounts>>,
    pub sha256: String,
    pub customer_id: Option<String>,
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
    /// `version` of the script `head`, with its bindings and component.
    pub fn new(
        runtime: &Runtime,
        head: &ScriptHead,
        version: &LiveVersion,
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
            namespace: head.namespace.clone(),
            name: head.name.clone(),
            version_id: version.id.clone(),
            split_runs: (head.versions.len() > 1).then(|| {
                runtime
                    .metrics
                    .split_counts(&head.namespace, &head.name, &version.id)
            }),
            sha256: version.sha256.clone(),
            customer_id: head.customer_id.clone(),
            bindings,
            component,
            settings: head.settings.clone(),
            limits,
            outbound,
            cpu_history: Arc::default(),
        }
    }
}

/// A script's live deployment: one version, or two with the first one's share.
pub struct Deployed {
    /// The deployment's id; a new deployment is a new `Deployed`.
    pub deployment: String,
    versions: Split,
}

enum Split {
    One(Arc<LoadedScript>),
    /// The first version serves `first_percent` of 100 buckets, the second the rest.
    Two {
        first: Arc<LoadedScript>,
        first_percent: u8,
        second: Arc<LoadedScript>,
    },
}

impl Deployed {
    /// A deployment of `versions` (one or two, with their shares, in order).
    pub fn new(deployment: String, mut versions: Vec<(u8, Arc<LoadedScript>)>) -> Deployed {
        let versions = match (versions.pop(), versions.pop()) {
            (Some((_, second)), Some((first_percent, first))) => Split::Two {
                first,
                first_percent,
                second,
            },
            (Some((_, only)), None) => Split::One(only),
            _ => unreachable!("a deployment has one or two versions"),
        };
        Deployed {
            deployment,
            versions,
        }
    }

    /// The version a request runs: by its share, at random, or by `key`'s bucket when
    /// the request names one (`X-Version-Key`), so a key keeps its version while the
    /// split holds.
    pub fn pick(&self, key: Option<&[u8]>) -> &Arc<LoadedScript> {
        match &self.versions {
            Split::One(only) => only,
            Split::Two {
                first,
                first_percent,
                second,
            } => {
                let bucket = key.map_or_else(|| rand::random_range(0..100), bucket_of);
                if bucket < *first_percent {
                    first
                } else {
                    second
                }
            }
        }
    }

    /// The deployed version `id`.
    pub fn version(&self, id: &str) -> Option<&Arc<LoadedScript>> {
        self.all().find(|v| v.version_id == id)
    }

    /// Every deployed version.
    pub fn all(&self) -> impl Iterator<Item = &Arc<LoadedScript>> {
        let (first, second) = match &self.versions {
            Split::One(only) => (only, None),
            Split::Two { first, second, .. } => (first, Some(second)),
        };
        std::iter::once(first).chain(second)
    }
}

/// A key's bucket in 0..100: stable across processes and restarts.
fn bucket_of(key: &[u8]) -> u8 {
    let digest = sha2::Sha256::digest(key);
    let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (head % 100) as u8
}

/// What the index holds at one moment.
#[derive(Clone, Default)]
struct Scripts {
    ready: HashMap<String, HashMap<String, Arc<Deployed>>>,
    /// (namespace, name) of scripts that could not be loaded → why.
    unavailable: HashMap<(String, String), Unavailable>,
}

/// A script of the store that could not be loaded.
#[derive(Clone)]
pub struct Unavailable {
    pub customer_id: Option<String>,
    /// The digests of its live versions.
    sha256: Vec<String>,
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
    /// The live deployment of a script.
    pub fn deployed(&self, namespace: &str, name: &str) -> Option<Arc<Deployed>> {
        self.scripts.load().ready.get(namespace)?.get(name).cloned()
    }

    /// A version of the script's live deployment, picked by its share.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<LoadedScript>> {
        let scripts = self.scripts.load();
        let deployed = scripts.ready.get(namespace)?.get(name)?;
        Some(deployed.pick(None).clone())
    }

    /// The kept version `id` of the script `live` is a version of, when it is not
    /// deployed (an owner's `X-Version-Override`): its bindings read, its component
    /// shared by bytes or loaded on first use. `None` when the script has no such
    /// version. Blocking: reads the store.
    pub fn kept_version(
        &self,
        store: &Arc<Store>,
        runtime: &Runtime,
        live: &LoadedScript,
        id: &str,
    ) -> Result<Option<LoadedScript>, StoreError> {
        let Some(version) = store.version_head(&live.namespace, &live.name, id)? else {
            return Ok(None);
        };
        let head = ScriptHead {
            namespace: live.namespace.clone(),
            name: live.name.clone(),
            customer_id: live.customer_id.clone(),
            deployment: String::new(),
            versions: Vec::new(),
            settings: live.settings.clone(),
        };
        let mut by_sha = HashMap::new();
        if let Some(component) = self.component_with(&version.sha256) {
            by_sha.insert(version.sha256.clone(), component);
        }
        load_version(store, runtime, &head, &version, &mut by_sha)
            .map(Some)
            .map_err(|reason| StoreError::Io(std::io::Error::other(reason)))
    }

    /// A component already known for the bytes `sha256`, if one is.
    pub fn component_with(&self, sha256: &str) -> Option<Arc<ScriptComponent>> {
        let scripts = self.scripts.load();
        all_versions(&scripts)
            .find(|s| s.sha256 == sha256 && !s.component.failed())
            .map(|s| s.component.clone())
    }

    /// The store's script `name` when it is one that could not be loaded.
    pub fn unavailable(&self, namespace: &str, name: &str) -> Option<Unavailable> {
        let key = (namespace.to_string(), name.to_string());
        self.scripts.load().unavailable.get(&key).cloned()
    }

    /// True when a script that could not be loaded has the bytes `sha256`.
    pub fn unavailable_with(&self, sha256: &str) -> bool {
        let scripts = self.scripts.load();
        scripts
            .unavailable
            .values()
            .any(|u| u.sha256.iter().any(|s| s == sha256))
            || all_versions(&scripts).any(|s| s.sha256 == sha256 && s.component.failed())
    }

    /// The components of indexed scripts that nothing has loaded yet, each once.
    pub fn cold_components(&self) -> Vec<Arc<ScriptComponent>> {
        let scripts = self.scripts.load();
        let mut seen = std::collections::HashSet::new();
        all_versions(&scripts)
            .filter(|s| !s.component.is_loaded() && seen.insert(s.sha256.as_str()))
            .map(|s| s.component.clone())
            .collect()
    }

    /// Makes `deployed` the script's live deployment (caller holds `writer`).
    pub fn insert(&self, namespace: &str, name: &str, deployed: Deployed, runtime: &Runtime) {
        let mut next = Scripts::clone(&self.scripts.load());
        next.unavailable
            .remove(&(namespace.to_string(), name.to_string()));
        next.ready
            .entry(namespace.to_string())
            .or_default()
            .insert(name.to_string(), Arc::new(deployed));
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
        let mut by_sha = known_components(&current);
        let mut next = Scripts::default();
        for head in store.script_heads()? {
            next.place(&current, head, store, runtime, &mut by_sha);
        }
        self.publish(next, runtime);
        Ok(())
    }

    /// Re-reads one script from the store (a deployment or rollback of it was just
    /// committed; caller holds `writer`), its versions with the `warmed` components
    /// when they have their bytes. Blocking, as `sync_from_store`.
    pub fn refresh(
        &self,
        store: &Arc<Store>,
        runtime: &Runtime,
        namespace: &str,
        name: &str,
        warmed: Vec<Arc<ScriptComponent>>,
    ) -> Result<(), StoreError> {
        let current = self.scripts.load_full();
        let mut by_sha = known_components(&current);
        by_sha.extend(
            warmed
                .into_iter()
                .filter(|c| !c.failed())
                .map(|c| (c.sha256().to_string(), c)),
        );
        let mut next = Scripts::clone(&current);
        next.unavailable
            .remove(&(namespace.to_string(), name.to_string()));
        if let Some(scripts) = next.ready.get_mut(namespace) {
            scripts.remove(name);
        }
        if let Some(head) = store.script_head(namespace, name)? {
            next.place(&current, head, store, runtime, &mut by_sha);
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

impl Scripts {
    /// Puts the script `head` in: as it was in `current` when its deployment and
    /// settings did not change, else indexed anew (or as unavailable, with why).
    fn place(
        &mut self,
        current: &Scripts,
        head: ScriptHead,
        store: &Arc<Store>,
        runtime: &Runtime,
        by_sha: &mut HashMap<String, Arc<ScriptComponent>>,
    ) {
        let unchanged = current
            .ready
            .get(&head.namespace)
            .and_then(|scripts| scripts.get(&head.name))
            .filter(|deployed| {
                deployed.deployment == head.deployment
                    && deployed.all().all(|s| {
                        s.customer_id == head.customer_id
                            && s.settings == head.settings
                            && !s.component.failed()
                    })
            });
        let loaded = match unchanged {
            Some(deployed) => Ok(deployed.clone()),
            None => index_script(store, runtime, &head, by_sha),
        };
        match loaded {
            Ok(deployed) => {
                self.ready
                    .entry(head.namespace)
                    .or_default()
                    .insert(head.name, deployed);
            }
            Err(reason) => {
                tracing::error!(
                    script = %head.name, namespace = %head.namespace, %reason,
                    "script cannot be loaded; it answers as unavailable"
                );
                let unavailable = Unavailable {
                    customer_id: head.customer_id,
                    sha256: head.versions.iter().map(|v| v.sha256.clone()).collect(),
                    reason,
                };
                self.unavailable
                    .insert((head.namespace, head.name), unavailable);
            }
        }
    }
}

/// The components known by their bytes; one that failed to load is left out, to be
/// tried again (its bytes may have been healed).
fn known_components(scripts: &Scripts) -> HashMap<String, Arc<ScriptComponent>> {
    all_versions(scripts)
        .filter(|s| !s.component.failed())
        .map(|s| (s.sha256.clone(), s.component.clone()))
        .collect()
}

/// Every version of every deployed script.
fn all_versions(scripts: &Scripts) -> impl Iterator<Item = &Arc<LoadedScript>> {
    scripts
        .ready
        .values()
        .flat_map(HashMap::values)
        .flat_map(|deployed| deployed.all())
}

/// The live deployment `head` names, each version with the component of scripts with
/// the same bytes or a new one not loaded yet; on failure, why it cannot be indexed.
fn index_script(
    store: &Arc<Store>,
    runtime: &Runtime,
    head: &ScriptHead,
    by_sha: &mut HashMap<String, Arc<ScriptComponent>>,
) -> Result<Arc<Deployed>, String> {
    let mut versions = Vec::with_capacity(head.versions.len());
    for version in &head.versions {
        let script = load_version(store, runtime, head, version, by_sha)?;
        versions.push((version.percentage, Arc::new(script)));
    }
    Ok(Arc::new(Deployed::new(head.deployment.clone(), versions)))
}

/// One version of the script `head`: its bindings read, its component shared by bytes.
pub fn load_version(
    store: &Arc<Store>,
    runtime: &Runtime,
    head: &ScriptHead,
    version: &LiveVersion,
    by_sha: &mut HashMap<String, Arc<ScriptComponent>>,
) -> Result<LoadedScript, String> {
    let component = by_sha
        .entry(version.sha256.clone())
        .or_insert_with(|| ScriptComponent::cold(version.sha256.clone(), store.clone()))
        .clone();
    let bindings = store
        .stored_bindings(&head.namespace, &head.name, &version.id)
        .map_err(|error| format!("its bindings cannot be read: {error}"))?;
    Ok(LoadedScript::new(
        runtime, head, version, bindings, component,
    ))
}

#[cfg(test)]
mod tests {
    use super::bucket_of;

    #[test]
    fn a_key_has_one_bucket_and_keys_spread_over_all_of_them() {
        assert_eq!(bucket_of(b"user-42"), bucket_of(b"user-42"));
        let buckets: std::collections::HashSet<u8> = (0..2000)
            .map(|i| bucket_of(format!("key-{i}").as_bytes()))
            .collect();
        assert_eq!(buckets.len(), 100);
        assert!(buckets.iter().all(|b| *b < 100));
    }
}
