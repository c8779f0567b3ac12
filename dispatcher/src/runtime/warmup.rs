//! Scripts' compiled components, loaded off the request path.
//!
//! Loading a component (checking its artifact's digest, mapping it, linking it) costs
//! about a millisecond, so loading every script before serving would make a restart grow
//! with the number of tenants. Instead a sync of the index from the store only reads the
//! scripts' rows: each script gets a [`ScriptComponent`] that is not loaded yet, and a
//! warm-up task ([`Runtime::warm_up`]) then loads them one at a time in the background,
//! leaving the other cores to requests. A request for a script the warm-up has not
//! reached yet loads it at once (requests for the same one wait for that one load), so
//! only requests in the first moments after a start can wait for a load. An upload's
//! component is loaded before the upload commits, so it is never cold.
//!
//! A component that cannot be loaded (its artifact and its stored bytes are both
//! corrupted, say) stays failed: its script answers `503 script_unavailable`, and the
//! next sync, or an upload of the same bytes, makes a new one.

use std::sync::Arc;

use tokio::sync::OnceCell;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::{Host, Runtime};
use crate::store::Store;

/// One script's component (shared by every script with the same bytes).
pub struct ScriptComponent {
    sha256: String,
    store: Arc<Store>,
    loaded: OnceCell<Result<ProxyPre<Host>, String>>,
}

impl ScriptComponent {
    /// A component loaded already (an upload's).
    pub fn loaded(sha256: String, store: Arc<Store>, pre: ProxyPre<Host>) -> Arc<Self> {
        Arc::new(ScriptComponent {
            sha256,
            store,
            loaded: OnceCell::new_with(Some(Ok(pre))),
        })
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

    pub fn is_loaded(&self) -> bool {
        self.loaded.initialized()
    }

    /// True when loading was tried and failed.
    pub fn failed(&self) -> bool {
        matches!(self.loaded.get(), Some(Err(_)))
    }

    /// The component, loaded now on the blocking pool when nothing has loaded it yet;
    /// why it cannot be loaded otherwise (the reason may name internals: log it only).
    pub async fn get(&self, runtime: &Arc<Runtime>) -> Result<&ProxyPre<Host>, &str> {
        let loaded = self
            .loaded
            .get_or_init(|| {
                let (runtime, store, sha256) =
                    (runtime.clone(), self.store.clone(), self.sha256.clone());
                async move {
                    let loaded = tokio::task::spawn_blocking(move || {
                        runtime
                            .load(&store, &sha256)
                            .map_err(|error| error.to_string())
                    })
                    .await
                    .unwrap_or_else(|join| Err(join.to_string()));
                    if let Err(reason) = &loaded {
                        tracing::error!(%reason, "a script's component cannot be loaded; it answers as unavailable");
                    }
                    loaded
                }
            })
            .await;
        loaded.as_ref().map_err(String::as_str)
    }
}

impl Runtime {
    /// Loads, one at a time in the background, every indexed component not loaded yet.
    pub fn warm_up(self: &Arc<Self>) {
        let cold = self.index.cold_components();
        if cold.is_empty() {
            return;
        }
        let runtime = self.clone();
        tokio::spawn(async move {
            for component in cold {
                // A failure is logged by `get` and answered by the script's requests.
                let _ = component.get(&runtime).await;
            }
        });
    }
}
