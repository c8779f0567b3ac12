//! Compiling components, and the on-disk cache of compiled artifacts.
//!
//! An artifact is `artifacts/<wasm sha256>-<engine hash>.cwasm` for a script compiled as
//! uploaded, and `artifacts/<wasm sha256>-<platform module sha256 prefix>-<engine
//! hash>.cwasm` for a script composed with the platform module (`compose.rs`), so a new
//! platform module never reuses artifacts composed with an old one, while scripts that do
//! not import it keep theirs. Each engine (`engine.rs`) has its own hash, so a baseline
//! artifact, kept until the optimized one replaces it (`tiering.rs`), never loads into
//! an optimized engine, nor an artifact whose memories start copied into the engine that
//! maps them ([`MemoryInit`], chosen from the component's bytes when it is compiled). Its
//! own SHA-256 is recorded in the store when written, under (wasm sha256, the key's part
//! after the wasm sha256). Loading reads the file through, checks that digest, and only
//! then maps the file it checked (artifacts are written once under a new name and renamed
//! into place, never changed in place) — we never deserialize bytes we did not produce and
//! verify. A mapped artifact's code and data are file pages the kernel may drop and read
//! again, not a copy in the process's own memory, and the pages its load touched are
//! given back at once ([`map_file`]), so idle scripts cost almost no memory; where its
//! engine maps images, its data segments are the image its instances start from. A
//! missing, corrupted or incompatible artifact is rebuilt (optimized) from the stored
//! component bytes (checked against their digest, composed again when the script needs
//! it). Compiling itself happens in a worker process (`compile_cage.rs`); an upload whose
//! bytes already have a verified artifact (another script's, an earlier version's) reuses
//! it and compiles nothing.

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::compile_cage::{CompileCage, CompileError, Compiled, Queue};
use super::compose::{ComposeError, PlatformModule};
use super::engine::{MemoryInit, Tier};
use crate::metrics::Metrics;
use crate::store::{
    Store, StoreError, sha256_file_hex, sha256_hex, write_durably, write_replaceable,
};

/// The tiers whose artifacts serve a script, the better first.
const BOTH_TIERS: &[Tier] = &[Tier::Optimized, Tier::Baseline];

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
/// module.
pub struct Pending {
    source: Vec<u8>,
    composed: bool,
    /// How the optimized tier starts its memories (from its data segments' size).
    memory: MemoryInit,
}

/// One tier's engine and the keys of its artifacts.
struct TierEngine {
    engine: Engine,
    /// How `engine` starts memories: what its compile workers are told.
    memory: MemoryInit,
    /// The key of artifacts compiled from a script as uploaded.
    plain: String,
    /// The key of artifacts compiled from a script composed with the platform module.
    composed: String,
}

impl TierEngine {
    fn new(engine: Engine, memory: MemoryInit, platform: &PlatformModule) -> TierEngine {
        let plain = super::engine::compatibility_hash(&engine);
        let composed = format!("{}-{plain}", &platform.sha256()[..PLATFORM_HASH_PREFIX]);
        TierEngine {
            engine,
            memory,
            plain,
            composed,
        }
    }

    fn key(&self, pending: &Pending) -> &str {
        if pending.composed {
            &self.composed
        } else {
            &self.plain
        }
    }
}

pub struct ArtifactCache {
    dir: PathBuf,
    /// The optimized tier's engines: the one that copies data segments in, then the one
    /// that maps memory images.
    optimized: [TierEngine; 2],
    baseline: TierEngine,
    platform: Arc<PlatformModule>,
    cage: CompileCage,
}

impl ArtifactCache {
    /// The cache under `data_dir`, loading artifacts into the optimized tier's two
    /// engines (memories copied, memories mapped) and the baseline tier's.
    pub fn new(
        data_dir: &std::path::Path,
        optimized_copy: &Engine,
        optimized_image: &Engine,
        baseline: &Engine,
        platform: Arc<PlatformModule>,
        cage: CompileCage,
    ) -> std::io::Result<ArtifactCache> {
        let dir = data_dir.join("artifacts");
        std::fs::create_dir_all(&dir)?;
        Ok(ArtifactCache {
            dir,
            optimized: [
                TierEngine::new(optimized_copy.clone(), MemoryInit::Copy, &platform),
                TierEngine::new(optimized_image.clone(), MemoryInit::Image, &platform),
            ],
            baseline: TierEngine::new(baseline.clone(), MemoryInit::Image, &platform),
            platform,
            cage,
        })
    }

    /// The engine `pending` compiles for and loads into, in `tier`. The baseline tier's
    /// maps images whatever the data: it serves large components, whose data is large too.
    fn engine_for(&self, tier: Tier, pending: &Pending) -> &TierEngine {
        match (tier, pending.memory) {
            (Tier::Optimized, MemoryInit::Copy) => &self.optimized[0],
            (Tier::Optimized, MemoryInit::Image) => &self.optimized[1],
            (Tier::Baseline, _) => &self.baseline,
        }
    }

    /// The engines of `tier`.
    fn engines(&self, tier: Tier) -> &[TierEngine] {
        match tier {
            Tier::Optimized => &self.optimized,
            Tier::Baseline => std::slice::from_ref(&self.baseline),
        }
    }

    /// The tier whose engine `component` was loaded into.
    pub fn tier_of(&self, component: &Component) -> Tier {
        if Engine::same(component.engine(), &self.baseline.engine) {
            Tier::Baseline
        } else {
            Tier::Optimized
        }
    }

    fn path(&self, wasm_sha256: &str, key: &str) -> PathBuf {
        self.dir.join(format!("{wasm_sha256}-{key}.cwasm"))
    }

    /// The verified artifact of `wasm_sha256` when one is stored (counted as a cache
    /// hit), the optimized one first; `None` when it must be compiled.
    pub fn reuse(&self, store: &Store, metrics: &Metrics, wasm_sha256: &str) -> Option<Component> {
        match self.load_verified(store, wasm_sha256, BOTH_TIERS) {
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
                memory: MemoryInit::for_component(&source),
                source,
                composed: true,
            },
            None => Pending {
                memory: MemoryInit::for_component(wasm),
                source: wasm.to_vec(),
                composed: false,
            },
        }
    }

    /// What compiling the stored component `wasm_sha256` means (read back, checked
    /// against its digest, composed again when it imports the platform module).
    pub fn pending_stored(
        &self,
        store: &Store,
        wasm_sha256: &str,
    ) -> Result<Pending, ArtifactError> {
        let wasm = store.read_blob(wasm_sha256)?;
        let composed = self.platform.compose(&wasm)?;
        Ok(self.pending(&wasm, composed))
    }

    /// Compiles `pending` for `tier` in a worker, waiting for a compile slot as `queue`
    /// says; the artifact, for `keep_and_load`.
    pub async fn compile(
        &self,
        metrics: &Metrics,
        pending: &Pending,
        tier: Tier,
        queue: Queue,
    ) -> Result<Vec<u8>, ArtifactError> {
        let memory = self.engine_for(tier, pending).memory;
        let compiled = self
            .cage
            .compile(&pending.source, tier, memory, queue)
            .await?;
        Ok(counted(metrics, compiled))
    }

    /// Stores an artifact `compile` produced for `tier` (durably when optimized, see
    /// `keep`), records its digest, and loads it from its file.
    pub fn keep_and_load(
        &self,
        store: &Store,
        wasm_sha256: &str,
        pending: &Pending,
        tier: Tier,
        artifact: &[u8],
    ) -> Result<Component, ArtifactError> {
        let engine = self.engine_for(tier, pending);
        let key = engine.key(pending);
        self.keep(store, wasm_sha256, key, tier, artifact)?;
        self.load_kept(engine, wasm_sha256, key, artifact)
    }

    /// Whether an artifact of `wasm_sha256` is recorded, of either tier (not checked).
    pub fn has_artifact(&self, store: &Store, wasm_sha256: &str) -> bool {
        self.keys(BOTH_TIERS)
            .any(|(_, key)| matches!(store.artifact_digest(wasm_sha256, key), Ok(Some(_))))
    }

    /// The verified optimized artifact of `wasm_sha256`, if one is stored.
    pub fn stored_optimized(&self, store: &Store, wasm_sha256: &str) -> Option<Component> {
        self.load_verified(store, wasm_sha256, &[Tier::Optimized])
            .ok()
    }

    /// Removes the baseline artifact of `pending` (its optimized one is kept now); the
    /// digest recorded for it is left, unused: the optimized key is always tried first.
    pub fn forget_baseline(&self, wasm_sha256: &str, pending: &Pending) {
        let path = self.path(wasm_sha256, self.baseline.key(pending));
        if let Err(error) = std::fs::remove_file(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), %error, "a baseline artifact cannot be removed");
        }
    }

    /// Maps the artifact `keep` just stored, or, should mapping fail, loads its bytes.
    fn load_kept(
        &self,
        engine: &TierEngine,
        wasm_sha256: &str,
        key: &str,
        artifact: &[u8],
    ) -> Result<Component, ArtifactError> {
        let engine = &engine.engine;
        // SAFETY: the file was just written with these bytes, which a worker running
        // this process's own executable produced (see `deserialize_own`).
        unsafe { map_file(engine, &self.path(wasm_sha256, key)) }
            .or_else(|_| deserialize_own(engine, artifact))
    }

    /// Loads the artifact for `wasm_sha256` (the optimized one, else the baseline one),
    /// rebuilding an optimized one from the stored component (composing it again if it
    /// imports the platform module) when there is none, it does not match its recorded
    /// digest, or fails to load. A rebuilt artifact that cannot be stored (a full disk)
    /// still serves; the next load rebuilds it again. Blocking: run it on the async
    /// runtime's blocking pool.
    pub fn load(
        &self,
        store: &Store,
        metrics: &Metrics,
        wasm_sha256: &str,
    ) -> Result<Component, ArtifactError> {
        match self.load_verified(store, wasm_sha256, BOTH_TIERS) {
            Ok(component) => {
                metrics.artifact_cache_hits.inc();
                return Ok(component);
            }
            Err(reason) => {
                tracing::warn!(sha256 = wasm_sha256, %reason, "recompiling component");
                metrics.artifact_rebuilds.inc();
            }
        }
        let pending = self.pending_stored(store, wasm_sha256)?;
        let engine = self.engine_for(Tier::Optimized, &pending);
        let compiled = self.cage.compile_blocking(
            &pending.source,
            Tier::Optimized,
            engine.memory,
            Queue::Unbounded,
        )?;
        let artifact = counted(metrics, compiled);
        let key = engine.key(&pending);
        match self.keep(store, wasm_sha256, key, Tier::Optimized, &artifact) {
            Ok(()) => self.load_kept(engine, wasm_sha256, key, &artifact),
            Err(error) => {
                tracing::warn!(sha256 = wasm_sha256, %error, "the rebuilt artifact cannot be stored");
                deserialize_own(&engine.engine, &artifact)
            }
        }
    }

    /// Stores `artifact` and records its digest: durably for the optimized tier; a
    /// baseline artifact lost in a crash is only compiled again.
    fn keep(
        &self,
        store: &Store,
        wasm_sha256: &str,
        key: &str,
        tier: Tier,
        artifact: &[u8],
    ) -> Result<(), StoreError> {
        let path = self.path(wasm_sha256, key);
        match tier {
            Tier::Optimized => write_durably(&self.dir, &path, artifact)?,
            Tier::Baseline => write_replaceable(&self.dir, &path, artifact)?,
        }
        store.record_artifact(wasm_sha256, key, &sha256_hex(artifact))
    }

    /// Every key an artifact of `tiers` may be under, in that order, with its engine.
    fn keys<'a>(&'a self, tiers: &'a [Tier]) -> impl Iterator<Item = (&'a TierEngine, &'a str)> {
        tiers
            .iter()
            .flat_map(|tier| self.engines(*tier))
            .flat_map(|engine| {
                [
                    (engine, engine.composed.as_str()),
                    (engine, engine.plain.as_str()),
                ]
            })
    }

    /// A script's artifact of one tier is under exactly one of that tier's keys: whether
    /// it is composed depends only on its own imports, and how its memories start only on
    /// its bytes (an artifact from before the optimized tier had two engines is under the
    /// image engine's key, and serves from there). The composed keys name this platform
    /// module. `tiers` are tried in order.
    fn load_verified(
        &self,
        store: &Store,
        wasm_sha256: &str,
        tiers: &[Tier],
    ) -> Result<Component, String> {
        for (tier, key) in self.keys(tiers) {
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
            return unsafe { map_file(&tier.engine, &path) }.map_err(|e| format!("{e:#}"));
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

/// Maps the artifact file at `path` into `engine` and makes its memory images (when its
/// engine maps them) now rather than at the first request; then gives back the pages the
/// load touched: the page cache keeps them (the file was just read to check its digest),
/// but a script nobody calls holds none of them in the process's memory, and the kernel
/// may reclaim an idle script's code before a busy one's. The first request faults in
/// what it runs (minor faults, from the page cache).
///
/// # Safety
/// The file must hold an artifact this process family produced and verified, and must
/// never change in place (see `Component::deserialize_file`).
unsafe fn map_file(engine: &Engine, path: &std::path::Path) -> wasmtime::Result<Component> {
    // SAFETY: as this function's contract says.
    let component = unsafe { Component::deserialize_file(engine, path) }?;
    component.initialize_copy_on_write_image()?;
    let image = component.image_range();
    // SAFETY: `image` is a private mapping of the file, which wasmtime made read-only
    // (and its code executable) as it loaded it, and never wrote: an artifact needs no
    // relocations. Dropping its pages only makes the next access read the same bytes
    // from the file again. Nothing runs from it yet.
    let dropped = unsafe {
        rustix::mm::madvise(
            image.start.cast_mut().cast(),
            image.end.addr() - image.start.addr(),
            rustix::mm::Advice::LinuxDontNeed,
        )
    };
    if let Err(error) = dropped {
        tracing::debug!(path = %path.display(), %error, "an artifact's pages stay mapped");
    }
    Ok(component)
}

/// Loads an artifact a worker of this very binary produced a moment ago (its memory
/// images made now, as in [`map_file`]).
fn deserialize_own(engine: &Engine, artifact: &[u8]) -> Result<Component, ArtifactError> {
    // SAFETY: these bytes were produced, with this engine's configuration, by a compile
    // worker running this process's own executable (`/proc/self/exe`), and came to us
    // over its stdout pipe; they are stored and digested before anything else sees them.
    unsafe { Component::deserialize(engine, artifact) }
        .and_then(|component| {
            component.initialize_copy_on_write_image()?;
            Ok(component)
        })
        .map_err(|e| ArtifactError::Load(format!("{e:#}")))
}
