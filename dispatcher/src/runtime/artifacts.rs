//! Compiling components, and the on-disk cache of compiled artifacts.
//!
//! An artifact is `artifacts/<wasm sha256>-<engine hash>.cwasm`; its own SHA-256 is
//! recorded in the store when written. Loading reads the file, checks that digest, and
//! only then deserializes the very bytes it checked — we never deserialize bytes we did
//! not produce and verify. A missing, corrupted or incompatible artifact is recompiled
//! from the stored component bytes.

use std::path::PathBuf;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::metrics::Metrics;
use crate::store::{Store, StoreError, sha256_hex, tempfile_in};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("compilation failed: {0}")]
    Compile(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("artifact I/O error: {0}")]
    Io(#[from] std::io::Error),
}

pub struct ArtifactCache {
    dir: PathBuf,
    engine_hash: String,
}

impl ArtifactCache {
    pub fn new(data_dir: &std::path::Path, engine: &Engine) -> std::io::Result<ArtifactCache> {
        let dir = data_dir.join("artifacts");
        std::fs::create_dir_all(&dir)?;
        Ok(ArtifactCache {
            dir,
            engine_hash: super::engine::compatibility_hash(engine),
        })
    }

    fn path(&self, wasm_sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{wasm_sha256}-{}.cwasm", self.engine_hash))
    }

    /// Compiles `wasm` and stores the artifact durably, then loads it.
    pub fn compile(
        &self,
        engine: &Engine,
        store: &Store,
        metrics: &Metrics,
        wasm_sha256: &str,
        wasm: &[u8],
    ) -> Result<Component, ArtifactError> {
        let artifact = engine
            .precompile_component(wasm)
            .map_err(|e| ArtifactError::Compile(format!("{e:#}")))?;
        metrics.compiles.inc();
        let digest = sha256_hex(&artifact);
        let (tmp, mut file) = tempfile_in(&self.dir)?;
        std::io::Write::write_all(&mut file, &artifact)?;
        file.sync_all()?;
        std::fs::rename(tmp, self.path(wasm_sha256))?;
        store.record_artifact(wasm_sha256, &self.engine_hash, &digest)?;
        // SAFETY: these bytes were produced by this engine a moment ago.
        unsafe { Component::deserialize(engine, &artifact) }
            .map_err(|e| ArtifactError::Compile(format!("{e:#}")))
    }

    /// Loads the artifact for `wasm_sha256`, recompiling from the stored component when
    /// the artifact is missing, does not match its recorded digest, or fails to load.
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
        self.compile(engine, store, metrics, wasm_sha256, &wasm)
    }

    fn load_verified(
        &self,
        engine: &Engine,
        store: &Store,
        wasm_sha256: &str,
    ) -> Result<Component, String> {
        let expected = store
            .artifact_digest(wasm_sha256, &self.engine_hash)
            .map_err(|e| e.to_string())?
            .ok_or("no artifact recorded")?;
        let bytes = std::fs::read(self.path(wasm_sha256)).map_err(|e| e.to_string())?;
        if sha256_hex(&bytes) != expected {
            return Err("artifact digest mismatch (corrupted or replaced)".into());
        }
        // SAFETY: the bytes match the digest recorded when this process family wrote them.
        unsafe { Component::deserialize(engine, &bytes) }.map_err(|e| format!("{e:#}"))
    }
}
