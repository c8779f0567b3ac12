//! Scripts' compiled components, loaded off the request path.
//!
//! Loading a component (checking its artifact's digest, mapping it, linking it) costs
//! about a millisecond, so loading every script before serving would make a restart grow
//! with the number of tenants. Instead a sync of the index from the store only reads the
//! scripts' rows: each script gets a [`ScriptComponent`] that is not loaded yet, and a
//! warm-up task ([`Runtime::warm_up`]) then loads them one at a time in the background,
//! the smallest first, leaving the other cores to requests. A request for a script the
//! warm-up has not reached yet loads it at once (requests for the same one wait for that
//! one load), so only requests in the first moments after a start can wait for a load.
//! An upload's component is loaded before the upload commits, so it is never cold.
//!
//! A component served by its baseline tier is replaced by its optimized one when that is
//! compiled (`tiering.rs`); requests running on the old one finish on it.
//!
//! A component that cannot be loaded (its artifact and its stored bytes are both
//! corrupted, say) stays failed: its script answers `503 script_unavailable`, and the
//! next sync, or an upload of the same bytes, makes a new one.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::OnceCell;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::{Host, Prepared, Runtime, Tier};
use crate::store::Store;

/// One script's component (shared by every script with the same bytes).
pub struct ScriptComponent {
    sha256: String,
    store: Arc<Store>,
    /// The linked component once loaded (swapped for the optimized tier's), or why it
    /// cannot be.
    loaded: OnceCell<Result<ArcSwap<ProxyPre<Host>>, String>>,
}

impl ScriptComponent {
    /// A component loaded already (an upload's, committed now): one of the baseline tier
    /// gets its optimized compile started.
    pub fn loaded(
        runtime: &Arc<Runtime>,
        sha256: String,
        store: Arc<Store>,
        prepared: Prepared,
    ) -> Arc<Self> {
        let component = Arc::new(ScriptComponent {
            sha256,
            store,
            loaded: OnceCell::new_with(Some(Ok(ArcSwap::from_pointee(prepared.pre)))),
        });
        if prepared.tier == Tier::Baseline {
            runtime.tier_up(&component);
        }
        component
    }

    /// A component to be loaded from the artifact of `sha256` on first use.
    pub fn cold(sha256: String, store: Arc<Store>) -> Arc<Self> {
        Arc::new(ScriptComponent {
            sha256,
            store,
            loaded: OnceCell::new(),
        })
    }

    /// The digest of the component's bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The store holding the component's bytes and artifacts.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Serves the component from `pre` from now on (its optimized tier).
    pub fn replace(&self, pre: ProxyPre<Host>) {
        if let Some(Ok(current)) = self.loaded.get() {
            current.store(Arc::new(pre));
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.initialized()
    }

    /// True when loading was tried and failed.
    pub fn failed(&self) -> bool {
        matches!(self.loaded.get(), Some(Err(_)))
    }

    /// The component, loaded now on the blocking pool when nothing has loaded it yet (a
    /// baseline artifact then gets its optimized compile started); why it cannot be
    /// loaded otherwise (the reason may name internals: log it only).
    pub async fn get(self: &Arc<Self>, runtime: &Arc<Runtime>) -> Result<ProxyPre<Host>, &str> {
        let loaded = self
            .loaded
            .get_or_init(|| {
                let (runtime, component) = (runtime.clone(), self.clone());
                async move {
                    let (loader, store, sha256) = (
                        runtime.clone(),
                        component.store.clone(),
                        component.sha256.clone(),
                    );
                    let loaded = tokio::task::spawn_blocking(move || {
                        loader
                            .load(&store, &sha256)
                            .map_err(|error| error.to_string())
                    })
                    .await
                    .unwrap_or_else(|join| Err(join.to_string()));
                    match loaded {
                        Ok(prepared) => {
                            if prepared.tier == Tier::Baseline {
                                runtime.tier_up(&component);
                            }
                            Ok(ArcSwap::from_pointee(prepared.pre))
                        }
                        Err(reason) => {
                            tracing::error!(%reason, "a script's component cannot be loaded; it answers as unavailable");
                            Err(reason)
                        }
                    }
                }
            })
            .await;
        match loaded {
            Ok(current) => Ok(ProxyPre::clone(&current.load())),
            Err(reason) => Err(reason),
        }
    }
}

impl Runtime {
    /// Loads, one at a time in the background, every indexed component not loaded yet,
    /// the smallest first: most scripts are small and load in about a millisecond, so
    /// they are all ready soon, while a large one (a JavaScript runtime: its artifact's
    /// digest alone takes a while to check) would hold up every script queued behind it.
    pub fn warm_up(self: &Arc<Self>) {
        let cold = self.index.cold_components();
        if cold.is_empty() {
            return;
        }
        let runtime = self.clone();
        tokio::spawn(async move {
            let Ok(cold) = tokio::task::spawn_blocking(move || smallest_first(cold)).await else {
                return;
            };
            for component in cold {
                // A failure is logged by `get` and answered by the script's requests.
                let _ = component.get(&runtime).await;
            }
        });
    }
}

/// `components` ordered by the size of their stored bytes, smallest first (those whose
/// size cannot be read last).
fn smallest_first(mut components: Vec<Arc<ScriptComponent>>) -> Vec<Arc<ScriptComponent>> {
    components.sort_by_cached_key(|component| {
        component
            .store
            .blob_size(&component.sha256)
            .unwrap_or(u64::MAX)
    });
    components
}
