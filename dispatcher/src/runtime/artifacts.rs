//! Compiling components, and the on-disk cache of compiled artifacts.
//!
//! An artifact is `artifacts/<wasm sha256>-<engine hash>.cwasm` for a script compiled as
//! uploaded, and `artifacts/<wasm sha256>-<platform module sha256 prefix>-<engine
//! hash>.cwasm` for a script composed with the platform module (`compose.rs`), so a new
//! platform module never reuses artifacts composed with an old one, while scripts that do
//! not import it keep theirs. Its own SHA-256 is recorded in the store when written, under
//! (wasm sha256, the key's part after the wasm sha256). Loading reads the file, checks that
//! digest, and only then deserializes the very bytes it checked — we never deserialize
//! bytes we did not produce and verify. A missing, corrupted or incompatible artifact is
//! rebuilt from the stored component bytes (checked against their digest, composed again
//! when the script needs it).

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::compose::{ComposeError, PlatformModule};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, sha256_hex, write_durably};

/// How many hex digits of the platform module's SHA-256 name its composed artifacts.
const PLATFORM_HASH_PREFIX: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("compilation failed: {0}")]
    Compile(String),
    /// Reading the component or writing the artifact failed (a full disk among others).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Compose(#[from] ComposeError),
}

pub struct ArtifactCache {
    dir: PathBuf,
    /// The key of artifacts compiled from a script as uploaded.
    engine_hash: String,
    /// The key of artifacts compiled from a script composed with the platform module.
    composed_hash: String,
    platform: Arc<PlatformModule>,
}

impl ArtifactCache {
    pub fn new(
        data_dir: &std::path::Path,
        engine: &Engine,
        platform: Arc<PlatformModule>,
    ) -> std::io::Result<ArtifactCache> {
        let dir = data_dir.join("artifacts");
        std::fs::create_dir_all(&dir)?;
        let engine_hash = super::engine::compatibility_hash(engine);
        let composed_hash = format!(
            "{}-{engine_hash}",
            &platform.sha256()[..PLATFORM_HASH_PREFIX]
        );
        Ok(ArtifactCache {
            dir,
            engine_hash,
            composed_hash,
            platform,
        })
    }

    fn path(&self, wasm_sha256: &str, key: &str) -> PathBuf {
        self.dir.join(format!("{wasm_sha256}-{key}.cwasm"))
    }

    /// Compiles a script and stores the artifact durably, then loads it. `composed` is
    /// the script composed with the platform module (`PlatformModule::compose`), `None`
    /// when it imports nothing from it and `wasm` is compiled as uploaded.
    pub fn compile(
        &self,
        engine: &Engine,
        store: &Store,
        metrics: &Metrics,
        wasm_sha256: &str,
        wasm: &[u8],
        composed: Option<Vec<u8>>,
    ) -> Result<Component, ArtifactError> {
        let (artifact, key) = self.precompile(engine, metrics, wasm, composed.as_deref())?;
        self.keep(store, wasm_sha256, key, &artifact)?;
        deserialize_own(engine, &artifact)
    }

    /// Loads the artifact for `wasm_sha256`, rebuilding it from the stored component
    /// (composing it again if it imports the platform module) when the artifact is
    /// missing, does not match its recorded digest, or fails to load. A rebuilt artifact
    /// that cannot be stored (a full disk) still serves; the next load rebuilds it again.
    pub fn load(
        &self,
        engine: &Engine,
        store: &Store,
        metrics: &Metrics,
        wasm_sha256: &str,
    ) -> Result<Component, ArtifactError> {
        match self.load_verified(engine, store, wasm_sha256) {
            Ok(component) => {
                metrics.artifact_cache_hits.inc();
                return Ok(component);
            }
            Err(reason) => {
                tracing::warn!(sha256 = wasm_sha256, %reason, "recompiling component");
                metrics.artifact_rebuilds.inc();
            }
        }
        let wasm = store.read_blob(wasm_sha256)?;
        let composed = self.platform.compose(&wasm)?;
        let (artifact, key) = self.precompile(engine, metrics, &wasm, composed.as_deref())?;
        if let Err(error) = self.keep(store, wasm_sha256, key, &artifact) {
            tracing::warn!(sha256 = wasm_sha256, %error, "the rebuilt artifact cannot be stored");
        }
        deserialize_own(engine, &artifact)
    }

    /// The compiled artifact of `wasm` (or of `composed`, when given) and its key.
    fn precompile(
        &self,
        engine: &Engine,
        metrics: &Metrics,
        wasm: &[u8],
        composed: Option<&[u8]>,
    ) -> Result<(Vec<u8>, &str), ArtifactError> {
        let (source, key) = match composed {
            Some(composed) => (composed, &self.composed_hash),
            None => (wasm, &self.engine_hash),
        };
        let artifact = engine
            .precompile_component(source)
            .map_err(|e| ArtifactError::Compile(format!("{e:#}")))?;
        metrics.compiles.inc();
        Ok((artifact, key))
    }

    /// Stores `artifact` durably and records its digest.
    fn keep(
        &self,
        store: &Store,
        wasm_sha256: &str,
        key: &str,
        artifact: &[u8],
    ) -> Result<(), StoreError> {
        write_durably(&self.dir, &self.path(wasm_sha256, key), artifact)?;
        store.record_artifact(wasm_sha256, key, &sha256_hex(artifact))
    }

    /// A script's artifact is under exactly one of the two keys (whether it is composed
    /// depends only on its own imports); the composed key names this platform module.
    fn load_verified(
        &self,
        engine: &Engine,
        store: &Store,
        wasm_sha256: &str,
    ) -> Result<Component, String> {
        for key in [&self.composed_hash, &self.engine_hash] {
            let Some(expected) = store
                .artifact_digest(wasm_sha256, key)
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let bytes = std::fs::read(self.path(wasm_sha256, key)).map_err(|e| e.to_string())?;
            if sha256_hex(&bytes) != expected {
                return Err("artifact digest mismatch (corrupted or replaced)".into());
            }
            // SAFETY: the bytes match the digest recorded when this process family wrote
            // them.
            return unsafe { Component::deserialize(engine, &bytes) }.map_err(|e| format!("{e:#}"));
        }
        Err("no artifact recorded for this engine and platform module".into())
    }
}

/// Loads an artifact this engine produced a moment ago.
fn deserialize_own(engine: &Engine, artifact: &[u8]) -> Result<Component, ArtifactError> {
    // SAFETY: these bytes were produced by this engine in this process.
    unsafe { Component::deserialize(engine, artifact) }
        .map_err(|e| ArtifactError::Compile(format!("{e:#}")))
}
