//! Everything wasmtime: the engines and their linkers, compiling and caching components,
//! the in-memory index of ready scripts, and running one request in a fresh `Store`.
//! HTTP framework types never enter here; wasmtime types never leave except as
//! `hyper`/`http` requests and responses.

mod admission;
mod artifacts;
pub mod bindings;
mod bodies;
mod cancel;
mod capture;
mod code_cache;
mod compile_cage;
pub mod compile_worker;
pub mod compose;
mod cpu;
pub mod engine;
mod export_run;
mod host;
mod index;
mod inline_run;
mod invoke;
mod limits;
mod outbound;
pub mod queue_run;
mod report;
pub mod rpc;
pub mod scheduled;
pub mod tail;
mod tiering;
pub mod usage;
mod validate;
pub mod warmup;

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::Engine;
use wasmtime::component::Linker;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::metrics::Metrics;
use crate::store::Store;
pub use artifacts::ArtifactError;
pub use bindings::sql::SqlLimits;
pub use bodies::{ScriptBody, ScriptBodyError, is_length_limit};
use compile_cage::Queue;
pub use compile_cage::{CompileError, CompileLimits, WORKER_COMMAND};
pub use compose::{ComposeError, PlatformModule};
pub use engine::{EngineLimits, Tier};
pub use host::Host;
pub use index::{Deployed, LoadedScript, ScriptIndex};
pub use invoke::{InvokeError, RunFailure, named_handler};
pub use limits::Limits;
pub use outbound::{AddressPolicy, AllowList};
use validate::Pass;
pub use validate::{CodeLimits, ValidateError};

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Invalid(#[from] ValidateError),
    #[error(transparent)]
    Compose(#[from] ComposeError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("the component cannot be linked: {0}")]
    Link(String),
    /// Blocking work of the upload died (a panic) or was cut short (shutdown).
    #[error("preparing the component was interrupted: {0}")]
    Interrupted(String),
}

/// What the runtime enforces, from the server's configuration.
pub struct RuntimeConfig {
    pub engine: EngineLimits,
    /// Limits of a script the admin gave none.
    pub defaults: Limits,
    /// All running scripts' memories and tables together, in bytes.
    pub guest_memory_bytes: usize,
    /// Console output kept per request, in bytes.
    pub log_capacity: usize,
    /// Wall time of a scheduled run whose script has no wall-time limit of its own.
    pub scheduled_wall: std::time::Duration,
    pub sql: SqlLimits,
    /// Most bytes one customer may keep in its buckets, all together.
    pub max_bucket_bytes: u64,
    /// What one queue, and one customer's queues, may hold.
    pub queue_caps: bindings::queue::QueueCaps,
    /// Which addresses outgoing requests may reach.
    pub addresses: AddressPolicy,
    /// Most requests of one tenant running at once.
    pub instances_per_tenant: usize,
    /// How long a request over its tenant's share may wait for a place.
    pub admission_queue: std::time::Duration,
    /// What one compile may cost, and how many run at once.
    pub compile: CompileLimits,
    /// How much code a component may hold (checked before compiling).
    pub code: CodeLimits,
    /// Code size from which an upload is served by the baseline tier until its
    /// optimized compile is done (`tiering.rs`).
    pub baseline_min_code_bytes: u64,
}

pub struct Runtime {
    /// One linker per engine: the optimized tier's two, pooling (memories copied in,
    /// which runs nearly every script; memories mapped from images, `engine::MemoryInit`),
    /// then the baseline tier's (`tiering.rs`).
    linkers: [Linker<Host>; 3],
    baseline_min_code_bytes: u64,
    /// Baseline-tier components waiting for their optimized artifact.
    tier_ups: tiering::TierUps,
    artifacts: artifacts::ArtifactCache,
    /// Composed into every script that imports `platform:module/*`, at upload.
    platform: Arc<PlatformModule>,
    code_limits: CodeLimits,
    /// Limits of a script the admin gave none.
    pub defaults: Limits,
    guest_memory: Arc<limits::GuestMemory>,
    /// Each tenant's share of the instances.
    admission: Arc<admission::Admission>,
    /// Where runs that have used much CPU take turns.
    heavy_lane: cpu::HeavyLane,
    log_capacity: usize,
    /// Wall time of a scheduled run whose script has no wall-time limit of its own.
    scheduled_wall: std::time::Duration,
    addresses: AddressPolicy,
    pub metrics: Arc<Metrics>,
    /// Every ready script; service bindings resolve through it.
    pub index: Arc<ScriptIndex>,
    /// The stores behind the bindings (KV, SQL, ...).
    bindings: bindings::BindingServices,
    /// Live tails of scripts' runs.
    pub tails: Arc<tail::TailHub>,
    /// Every run's cost, per script and minute, until flushed to the store.
    pub usage: usage::UsageMeter,
}

impl Runtime {
    pub fn new(
        data_dir: &std::path::Path,
        config: RuntimeConfig,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Runtime> {
        use engine::{MemoryInit, Tier};
        let copy = engine::new_engine(&config.engine, Tier::Optimized, MemoryInit::Copy)?;
        let image = engine::new_engine(&config.engine, Tier::Optimized, MemoryInit::Image)?;
        let baseline = engine::new_engine(&config.engine, Tier::Baseline, MemoryInit::Image)?;
        for engine in [&copy, &image, &baseline] {
            engine::spawn_epoch_ticker(engine);
        }
        let guest_memory = limits::GuestMemory::new(config.guest_memory_bytes);
        let watched = guest_memory.clone();
        engine::spawn_resident_watch(&[&copy, &image], move |bytes| {
            watched.set_idle_resident(bytes)
        });
        let linkers = [
            host::new_linker(&copy)?,
            host::new_linker(&image)?,
            host::new_linker(&baseline)?,
        ];
        let platform = Arc::new(PlatformModule::builtin()?);
        let code_cache = (config.compile.code_cache_bytes > 0).then(|| code_cache::CodeCacheSpec {
            path: data_dir.join("code-cache.pack"),
            temp_dir: data_dir.join("artifacts"),
            max_bytes: config.compile.code_cache_bytes,
            tag: engine::compatibility_hash(&copy),
        });
        let cage = compile_cage::CompileCage::new(config.compile, config.engine, code_cache);
        let artifacts = artifacts::ArtifactCache::new(
            data_dir,
            &copy,
            &image,
            &baseline,
            platform.clone(),
            cage,
        )?;
        Ok(Runtime {
            linkers,
            baseline_min_code_bytes: config.baseline_min_code_bytes,
            tier_ups: tiering::TierUps::default(),
            artifacts,
            platform,
            code_limits: config.code,
            defaults: config.defaults,
            guest_memory,
            admission: Arc::new(admission::Admission::new(
                config.instances_per_tenant,
                config.admission_queue,
            )),
            heavy_lane: cpu::HeavyLane::for_this_machine(),
            log_capacity: config.log_capacity,
            scheduled_wall: config.scheduled_wall,
            addresses: config.addresses,
            metrics,
            index: Arc::default(),
            bindings: bindings::BindingServices {
                kv: Arc::new(bindings::kv::KvStore::open(data_dir)?),
                sql: Arc::new(bindings::sql::SqlDatabases::new(data_dir, config.sql)),
                r2: Arc::new(bindings::r2::objects::ObjectStore::open(
                    data_dir,
                    config.max_bucket_bytes,
                )?),
                queues: Arc::new(bindings::queue::Queues {
                    store: bindings::queue::QueueStore::open(data_dir)?,
                    caps: config.queue_caps,
                }),
            },
            tails: Arc::default(),
            usage: usage::UsageMeter::default(),
        })
    }

    /// The queues' messages (what producers send, what `crate::queues` delivers).
    pub fn queues(&self) -> &Arc<bindings::queue::Queues> {
        &self.bindings.queues
    }

    /// The wall time of a scheduled or queue run whose script has no wall time of its own.
    pub fn scheduled_wall(&self) -> std::time::Duration {
        self.scheduled_wall
    }

    /// Every metric, the engines' instance pools included (both together), in the
    /// Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let mut out = self.metrics.render();
        let (mut instances, mut memories, mut idle_resident) = (0, 0, 0);
        for engine in self.linkers.iter().map(Linker::engine) {
            if let Some(pool) = engine.pooling_allocator_metrics() {
                instances += pool.component_instances();
                memories += pool.memories();
                idle_resident += engine::idle_resident_bytes(engine);
            }
        }
        Metrics::render_pool(&mut out, instances, memories, idle_resident);
        out
    }

    /// Upload path: validates `wasm` (refusing code too large to compile), reuses the
    /// verified artifact of the same bytes when there is one, else composes it with the
    /// platform module when it imports `platform:module/*`, compiles it in a worker
    /// (storing the artifact) and links it. Large code compiles for the baseline tier
    /// first (`tiering.rs`), its worker started as soon as the outline of the bytes has
    /// been read, while the rest is validated; invalid bytes end that compile and are
    /// refused as invalid. Dropping the future kills the worker.
    pub async fn prepare(
        self: &Arc<Self>,
        store: &Arc<Store>,
        sha256: &str,
        wasm: &Bytes,
    ) -> Result<Prepared, PrepareError> {
        let (this, st, sha, bytes) = (
            self.clone(),
            store.clone(),
            sha256.to_string(),
            wasm.clone(),
        );
        let staged = blocking(move || {
            let outline = validate::validate_component(&bytes, this.code_limits, Pass::Outline)?;
            let tier = this.first_tier(outline.code_bytes);
            if tier == Tier::Baseline
                && !outline.imports_platform_module
                && !this.artifacts.has_artifact(&st, &sha)
            {
                // Large, and nothing to reuse: its compile starts now, validated meanwhile.
                let pending = this.artifacts.pending(&bytes, None);
                return Ok(Staged::CompileValidating(pending));
            }
            validate::validate_component(&bytes, this.code_limits, Pass::Full)?;
            if let Some(component) = this.artifacts.reuse(&st, &this.metrics, &sha) {
                return Ok(Staged::Reused(this.prepared(&component)?));
            }
            let composed = if outline.imports_platform_module {
                this.platform.compose(&bytes)?
            } else {
                None
            };
            Ok(Staged::Compile(
                this.artifacts.pending(&bytes, composed),
                tier,
            ))
        })
        .await?;
        let (artifact, pending, tier) = match staged {
            Staged::Reused(prepared) => return Ok(prepared),
            Staged::Compile(pending, tier) => {
                let (artifact, tier) = self.compile_first(&pending, tier).await?;
                (artifact, pending, tier)
            }
            Staged::CompileValidating(pending) => {
                let (this, bytes) = (self.clone(), wasm.clone());
                let validation = blocking(move || {
                    validate::validate_component(&bytes, this.code_limits, Pass::Full)?;
                    Ok(())
                });
                let compile = self.compile_first(&pending, Tier::Baseline);
                let (artifact, tier) = once_valid(validation, compile).await?;
                (artifact, pending, tier)
            }
        };
        let (this, st, sha) = (self.clone(), store.clone(), sha256.to_string());
        blocking(move || {
            let component = this
                .artifacts
                .keep_and_load(&st, &sha, &pending, tier, &artifact)?;
            this.prepared(&component)
        })
        .await
    }

    /// Compiles `pending` for `tier` (waiting for a slot no longer than the queue time);
    /// code Winch cannot compile (a proposal it lacks) goes to the optimized tier. The
    /// artifact, and its tier.
    async fn compile_first(
        &self,
        pending: &artifacts::Pending,
        tier: Tier,
    ) -> Result<(Vec<u8>, Tier), PrepareError> {
        let compiled = self
            .artifacts
            .compile(&self.metrics, pending, tier, Queue::Bounded)
            .await;
        match compiled {
            Err(ArtifactError::Compile(CompileError::Failed(reason))) if tier == Tier::Baseline => {
                tracing::debug!(%reason, "the baseline tier cannot compile this component");
                let artifact = self
                    .artifacts
                    .compile(&self.metrics, pending, Tier::Optimized, Queue::Bounded)
                    .await?;
                Ok((artifact, Tier::Optimized))
            }
            compiled => Ok((compiled?, tier)),
        }
    }

    /// Start and change path: the script's compiled artifact from disk (verified), or a
    /// recompile from its stored bytes (composed again) when the artifact cannot be used.
    pub fn load(&self, store: &Store, sha256: &str) -> Result<Prepared, PrepareError> {
        let component = self.artifacts.load(store, &self.metrics, sha256)?;
        self.prepared(&component)
    }

    /// `component` linked, and which tier it is.
    fn prepared(
        &self,
        component: &wasmtime::component::Component,
    ) -> Result<Prepared, PrepareError> {
        Ok(Prepared {
            pre: self.link(component)?,
            tier: self.artifacts.tier_of(component),
        })
    }

    /// `component` linked by its own engine's linker.
    fn link(
        &self,
        component: &wasmtime::component::Component,
    ) -> Result<ProxyPre<Host>, PrepareError> {
        let base = self
            .linkers
            .iter()
            .find(|linker| Engine::same(linker.engine(), component.engine()))
            .ok_or_else(|| PrepareError::Link("loaded into an engine of no linker".into()))?;
        let imports = rpc::rpc_imports(component);
        let linked = if imports.is_empty() {
            base.instantiate_pre(component)
        } else {
            let mut linker = base.clone();
            rpc::link_imports(&mut linker, &imports)
                .and_then(|()| linker.instantiate_pre(component))
        };
        let pre = linked.map_err(|e| PrepareError::Link(format!("{e:#}")))?;
        ProxyPre::new(pre).map_err(|e| {
            PrepareError::Link(format!(
                "{e:#} (a script must export wasi:http/incoming-handler)"
            ))
        })
    }
}

/// A linked component, ready to serve.
pub struct Prepared {
    pub pre: ProxyPre<Host>,
    /// Baseline when its optimized artifact is still to be compiled (`tiering.rs`).
    pub tier: Tier,
}

/// An upload after validation: linked from the artifact of the same bytes, or to compile
/// for a first tier; or, large and after its outline only, to compile for the baseline
/// tier while it is validated.
enum Staged {
    Reused(Prepared),
    Compile(artifacts::Pending, Tier),
    CompileValidating(artifacts::Pending),
}

/// `compile`'s outcome once `validation` has passed too: a validation that fails first
/// ends the compile (dropping it kills its worker), and its error is the answer even when
/// the compile failed first.
async fn once_valid<T>(
    validation: impl Future<Output = Result<(), PrepareError>>,
    compile: impl Future<Output = Result<T, PrepareError>>,
) -> Result<T, PrepareError> {
    tokio::pin!(validation, compile);
    tokio::select! {
        validated = &mut validation => {
            validated?;
            compile.await
        }
        compiled = &mut compile => {
            validation.await?;
            compiled
        }
    }
}

/// Runs blocking validation, store or load work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PrepareError> + Send + 'static,
) -> Result<T, PrepareError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| PrepareError::Interrupted(e.to_string()))?
}
