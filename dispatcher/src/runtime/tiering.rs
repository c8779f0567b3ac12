//! Two compiler tiers, so a large upload answers in seconds rather than after its whole
//! optimized compile. A component with at least `baseline_min_code_bytes` of code (a
//! JavaScript or Python component carries its language's whole engine: 10-20 MB) is
//! compiled first by Winch, the baseline tier (`engine.rs`), about four times faster than
//! Cranelift; its upload commits and serves on that artifact, and a background compile
//! by Cranelift, the optimized tier, then replaces it in every script that shares the
//! bytes ([`ScriptComponent::replace`]) and on disk. A server restarted in between loads
//! the baseline artifact and starts the optimized compile again. The baseline compile of
//! an upload starts once its outline is read (`validate.rs`), while the rest of it is
//! validated: bytes that fail validation stop that compile and are refused as before.
//!
//! Both compiles run in the compile cage, under the same limits; the optimized one runs
//! in the cage's background lane (one at a time, at the lowest priority, never taking an
//! upload's slot) and waits for it as long as it takes (it has no client to answer). Should it
//! fail (over the time or memory limit), the component stays on the baseline tier,
//! which runs the same code correctly, only slower: logged and counted in `/metrics`.
//! A component Winch cannot compile (it lacks tail calls, exceptions, GC) goes straight
//! to the optimized tier at upload.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::compile_cage::Queue;
use super::engine::Tier;
use super::warmup::ScriptComponent;
use super::{PrepareError, Runtime, blocking};
use crate::store::Store;

/// The optimized compiles running or waiting, by component digest, with every component
/// waiting for each: a second upload of the same bytes while one runs waits for that one.
pub struct TierUps {
    running: Mutex<HashMap<String, Vec<Weak<ScriptComponent>>>>,
    /// One tier-up at a time reads its component's bytes and compiles: the others wait
    /// holding only a digest, so a tenant uploading large components faster than they
    /// tier up makes a queue of names, not of megabytes.
    turn: tokio::sync::Semaphore,
}

impl Default for TierUps {
    fn default() -> Self {
        TierUps {
            running: Mutex::default(),
            turn: tokio::sync::Semaphore::new(1),
        }
    }
}

impl Runtime {
    /// The tier an upload of `code_bytes` of code compiles for first.
    pub(super) fn first_tier(&self, code_bytes: u64) -> Tier {
        if code_bytes >= self.baseline_min_code_bytes {
            Tier::Baseline
        } else {
            Tier::Optimized
        }
    }

    /// Gives `component`, served by its baseline artifact, its optimized one as soon as
    /// a background compile has it.
    pub(super) fn tier_up(self: &Arc<Self>, component: &Arc<ScriptComponent>) {
        let sha256 = component.sha256().to_string();
        {
            let mut running = self.tier_ups.running.lock().expect("tier-ups lock");
            if let Some(waiting) = running.get_mut(&sha256) {
                waiting.push(Arc::downgrade(component));
                return;
            }
            running.insert(sha256.clone(), vec![Arc::downgrade(component)]);
        }
        let (runtime, store) = (self.clone(), component.store().clone());
        tokio::spawn(async move {
            let optimized = runtime.optimized(&store, &sha256).await;
            let waiting = runtime
                .tier_ups
                .running
                .lock()
                .expect("tier-ups lock")
                .remove(&sha256)
                .unwrap_or_default();
            match optimized {
                Ok(pre) => {
                    runtime.metrics.tier_ups.inc();
                    for component in waiting.iter().filter_map(Weak::upgrade) {
                        // One loading at start may not have its cell set yet: wait for it.
                        let _ = component.get(&runtime).await;
                        component.replace(pre.clone());
                    }
                }
                Err(error) => {
                    runtime.metrics.tier_up_failures.inc();
                    tracing::warn!(%sha256, %error, "the optimized compile failed; the component stays on the baseline tier");
                }
            }
        });
    }

    /// The optimized artifact of the stored component `sha256`, kept (its baseline one
    /// removed) and linked: compiled now unless another tier-up has stored it already.
    async fn optimized(
        self: &Arc<Self>,
        store: &Arc<Store>,
        sha256: &str,
    ) -> Result<wasmtime_wasi_http::p2::bindings::ProxyPre<super::Host>, PrepareError> {
        let _turn = self
            .tier_ups
            .turn
            .acquire()
            .await
            .map_err(|e| PrepareError::Interrupted(e.to_string()))?;
        let (this, st, sha) = (self.clone(), store.clone(), sha256.to_string());
        let stored = blocking(move || match this.artifacts.stored_optimized(&st, &sha) {
            Some(component) => this.link(&component).map(Some),
            None => Ok(None),
        })
        .await?;
        if let Some(pre) = stored {
            return Ok(pre);
        }
        let (this, st, sha) = (self.clone(), store.clone(), sha256.to_string());
        let pending = blocking(move || Ok(this.artifacts.pending_stored(&st, &sha)?)).await?;
        let artifact = self
            .artifacts
            .compile(&self.metrics, &pending, Tier::Optimized, Queue::Background)
            .await?;
        let (this, st, sha) = (self.clone(), store.clone(), sha256.to_string());
        blocking(move || {
            let component =
                this.artifacts
                    .keep_and_load(&st, &sha, &pending, Tier::Optimized, &artifact)?;
            this.artifacts.forget_baseline(&sha, &pending);
            this.link(&component)
        })
        .await
    }
}
