//! Compiling components, and the on-disk cache of compiled artifacts.
//!
//! An artifact is `artifacts/<wasm sha256>-<engine hash>.cwasm` for a script compiled as
//! uploaded, and `artifacts/<wasm sha256>-<platform module sha256 prefix>-<engine
//! hash>.cwasm` for a script composed with the platform module (`compose.rs`), so a new
//! platform module never reuses artifacts composed with an old one, while scripts that do
//! not import it keep theirs. Its own SHA-256 is recorded in the store when written, under
//! (wasm sha256, the key's part after the wasm sha256). Loading reads the file through,
//! checks that digest, and only then maps the file it checked (artifacts are written once
//! under a new name and renamed into place, never changed in place) — we never
//! deserialize bytes we did not produce and verify. A mapped artifact's code and data are
//! file pages the kernel may drop and read again, not a copy in the process's own memory,
//! so idle scripts cost almost no memory, and its data segments are the memory image its
//! instances start from. A missing, corrupted or incompatible artifact is
//! rebuilt from the stored component bytes (checked against their digest, composed again
//! when the script needs it). Compiling itself happens in a worker process
//! (`compile_cage.rs`); an upload whose bytes already have a verified artifact (another
//! script's, an earlier version's) reuses it and compiles nothing.

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::compile_cage::{CompileCage, CompileError, Compiled, Queue};
use super::compose::{ComposeError, PlatformModule};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, sha256_file_hex, sha256_hex, write_durably};

/// How many hex digits of the platform module's SHA-256 name its composed artifacts.
const PLATFORM_HASH_PREFIX: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The artifact a worker produced does not load (it should always).
    #[error("the compiled artifact cannot be loaded: {0}")]
    Load(String),
    /// Reading the component or writing the artifact failed (a full disk among others).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Compose(#[from] ComposeError),
}

/// A component to be compiled: the upload, or the upload composed with the platform
/// module, and the key its artifact is stored under.
pub struct Pending {
    source: Vec<u8>,
    key: String,
}

pub struct ArtifactCache {
    dir: PathBuf,
    /// The key of artifacts compiled from a script as uploaded.
    engine_hash: String,
    /// The key of artifacts compiled from a script composed with the platform module.
    composed_hash: String,
    platform: Arc<PlatformModule>,
    cage: CompileCage,
}

impl ArtifactCache {
    pub fn new(
        data_dir: &std::path::Path,
        engine: &Engine,
        platform: Arc<PlatformModule>,
        cage: CompileCage,
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
            cage,
        })
    }

    fn path(&self, wasm_sha256: &str, key: &str) -> PathBuf {
        self.dir.join(format!("{wasm_sha256}-{key}.cwasm"))
    }

    /// The verified artifact of `wasm_sha256` when one is stored (counted as a cache
    /// hit); `None` when it must be compiled.
    pub fn reuse(
        &self,
        engine: &Engine,
        store: &Store,
        metrics: &Metrics,
        wasm_sha256: &str,
    ) -> Option<Component> {
        match self.load_verified(engine, store, wasm_sha256) {
            Ok(component) => {
                metrics.artifact_cache_hits.inc();
                Some(component)
            }
            Err(reason) => {
                tracing::debug!(sha256 = wasm_sha256, %reason, "no artifact to reuse");
                None
            }
        }
    }

    /// What compiling `wasm` means: compiling `composed` (the script composed with the
    /// platform module, `PlatformModule::compose`) when given, else `wasm` as uploaded.
    pub fn pending(&self, wasm: &[u8], composed: Option<Vec<u8>>) -> Pending {
        match composed {
            Some(source) => Pending {
                source,
                key: self.composed_hash.clone(),
            },
            None => Pending {
                source: wasm.to_vec(),
                key: self.engine_hash.clone(),
            },
        }
    }

    /// Compiles `pending` in a worker, waiting for a compile slot no longer than the
    /// queue time; the artifact, for `keep_and_load`.
    pub async fn compile(
        &self,
        metrics: &Metrics,
        pending: &Pending,
    ) -> Result<Vec<u8>, ArtifactError> {
        let compiled = self.cage.compile(&pending.source, Queue::Bounded).await?;
        Ok(counted(metrics, compiled))
    }

    /// Stores an artifact `compile` produced durably, records its digest, and loads it
    /// from its file.
    pub fn keep_and_load(
        &self,
        engine: &Engine,
        store: &Store,
        wasm_sha256: &str,
        pending: &Pending,
        artifact: &[u8],
    ) -> Result<Component, ArtifactError> {
        self.keep(store, wasm_sha256, &pending.key, artifact)?;
        self.load_kept(engine, wasm_sha256, &pending.key, artifact)
    }

    /// Maps the artifact `keep` just stored, or, should mapping fail, loads its bytes.
    fn load_kept(
        &self,
        engine: &Engine,
        wasm_sha256: &str,
        key: &str,
        artifact: &[u8],
    ) -> Result<Component, ArtifactError> {
        // SAFETY: the file was just written with these bytes, which a worker running
        // this process's own executable produced (see `deserialize_own`).
        unsafe { Component::deserialize_file(engine, self.path(wasm_sha256, key)) }
            .or_else(|_| deserialize_own(engine, artifact))
    }

    /// Loads the artifact for `wasm_sha256`, rebuilding it from the stored component
    /// (composing it again if it imports the platform module) when the artifact is
    /// missing, does not match its recorded digest, or fails to load. A rebuilt artifact
    /// that cannot be stored (a full disk) still serves; the next load rebuilds it again.
    /// Blocking: run it on the async runtime's blocking pool.
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
        let pending = self.pending(&wasm, composed);
        let compiled = self
            .cage
            .compile_blocking(&pending.source, Queue::Unbounded)?;
        let artifact = counted(metrics, compiled);
        match self.keep(store, wasm_sha256, &pending.key, &artifact) {
            Ok(()) => self.load_kept(engine, wasm_sha256, &pending.key, &artifact),
            Err(error) => {
                tracing::warn!(sha256 = wasm_sha256, %error, "the rebuilt artifact cannot be stored");
                deserialize_own(engine, &artifact)
            }
        }
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
            let path = self.path(wasm_sha256, key);
            if sha256_file_hex(&path).map_err(|e| e.to_string())? != expected {
                return Err("artifact digest mismatch (corrupted or replaced)".into());
            }
            // SAFETY: the file's bytes match the digest recorded when this process family
            // wrote them, and that family never changes an artifact file in place.
            return unsafe { Component::deserialize_file(engine, &path) }
                .map_err(|e| format!("{e:#}"));
        }
        Err("no artifact recorded for this engine and platform module".into())
    }
}

/// Counts a compile, and what the code cache saved it; its artifact.
fn counted(metrics: &Metrics, compiled: Compiled) -> Vec<u8> {
    metrics.compiles.inc();
    metrics.code_cache_hits.inc_by(compiled.cache.hits);
    metrics.code_cache_misses.inc_by(compiled.cache.misses);
    compiled.artifact
}

/// Loads an artifact a worker of this very binary produced a moment ago.
fn deserialize_own(engine: &Engine, artifact: &[u8]) -> Result<Component, ArtifactError> {
    // SAFETY: these bytes were produced, with this engine's configuration, by a compile
    // worker running this process's own executable (`/proc/self/exe`), and came to us
    // over its stdout pipe; they are stored and digested before anything else sees them.
    unsafe { Component::deserialize(engine, artifact) }
        .map_err(|e| ArtifactError::Load(format!("{e:#}")))
}
