//! The process's wasmtime engines: async, component model, epoch interruption. The
//! optimized tier's (Cranelift) runs nearly every script, with the pooling instance
//! allocator (slots reserved once, copy-on-write memory images), so a fresh instance per
//! request costs microseconds. The baseline tier's (Winch, a single-pass compiler about
//! four times faster to compile with) runs a large component for the seconds between its
//! upload and its optimized artifact (`tiering.rs`); it allocates instances on demand,
//! held to the same limits by the store's memory limiter, so it reserves no second pool.
//!
//! Memory is given back as soon as an instance is gone: a freed slot's pages past a small
//! keep-resident amount are decommitted (`madvise(DONTNEED)`) at once, not batched, and
//! what the pool keeps resident in unused slots is counted against the guest-memory
//! budget ([`spawn_resident_watch`]).

use std::sync::Arc;

use wasmtime::{
    CacheStore, Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
    RegallocAlgorithm, Strategy,
};

/// Which compiler an engine compiles with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Tier {
    /// Winch: code in about a quarter of the time, running slower; no code cache.
    Baseline,
    /// Cranelift, through the code cache when there is one.
    Optimized,
}

/// Sizing of the engine; from the server configuration (and handed to compile workers,
/// whose engine must compile exactly as the server's does).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EngineLimits {
    /// Most instances alive at once (one per in-flight request or service call).
    pub max_instances: u32,
    /// Largest linear memory a guest may grow to, in bytes.
    pub max_memory_bytes: usize,
    /// All guests' memory together (the guest-memory budget), in bytes: it sizes how
    /// many freed slots stay warm (see [`warm_slots`]).
    pub guest_memory_bytes: usize,
}

/// How often the epoch ticks; a running guest yields to the scheduler at each tick.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Stack of one running instance (wasm frames, at most wasmtime's default 512 KiB, and
/// the host calls under them); counted against the guest-memory budget while it runs.
pub const ASYNC_STACK_BYTES: usize = 2 << 20;

/// Bytes of a freed linear memory kept resident (zeroed in place) for the next instance.
const KEEP_RESIDENT_MEMORY: usize = 1 << 20;

/// How many freed pool slots (memories, tables, stacks) stay warm for the module that
/// last used them (wasmtime's default is 100): as many as a quarter of the guest-memory
/// budget holds at `KEEP_RESIDENT_MEMORY` each, between 100 and every slot of the
/// pool. A slot taken over by another module must have its memory image mapped anew,
/// and on a multi-threaded process that unmapping costs a TLB shootdown on every core:
/// with many tenants taking turns that dominated a request (100 tenants, one at random per
/// request: 0.30x the req/s of one tenant with 100 warm slots, 0.75x with 2,000; 1,000
/// tenants: 0.39x with the 3,072 of a 12 GiB budget, 0.57x with all). What warm slots
/// keep resident counts against the guest-memory budget (`idle_resident_bytes`), so
/// this bound is what keeps them from crowding out running guests.
fn warm_slots(limits: &EngineLimits, total_memories: u32) -> u32 {
    let fit = limits.guest_memory_bytes / 4 / KEEP_RESIDENT_MEMORY;
    u32::try_from(fit)
        .unwrap_or(u32::MAX)
        .clamp(100, total_memories.max(100))
}

/// How often the pool's idle resident memory is read for the guest-memory budget.
const RESIDENT_WATCH: std::time::Duration = std::time::Duration::from_millis(100);

/// The engine the server runs `tier`'s artifacts with.
pub fn new_engine(limits: &EngineLimits, tier: Tier) -> wasmtime::Result<Engine> {
    let mut config = config(limits, tier);
    if tier == Tier::Baseline {
        config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    }
    Engine::new(&config)
}

/// The engine a compile worker (`compile_worker.rs`) compiles with: the server's
/// configuration without the pooling allocator, whose reservations a worker under a
/// memory limit cannot afford. How instances are allocated is no part of an artifact's
/// compatibility hash, so the server loads what the worker compiled; nor is compiling
/// through a `code_cache` (a hit is what compiling the same function gives).
pub fn compile_engine(
    limits: &EngineLimits,
    tier: Tier,
    code_cache: Option<Arc<dyn CacheStore>>,
) -> wasmtime::Result<Engine> {
    let mut config = config(limits, tier);
    config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    if let Some(cache) = code_cache {
        config.enable_incremental_compilation(cache)?;
    }
    Engine::new(&config)
}

fn config(limits: &EngineLimits, tier: Tier) -> Config {
    let total_memories = limits.max_instances * 4;
    let mut pooling = PoolingAllocationConfig::default();
    // A script composed with the platform module has one memory, one table and a core
    // instance more than a plain one (twice the memories of a one-module script); size
    // the pools so `max_instances` composed scripts, or larger ones, fit.
    pooling
        .total_component_instances(limits.max_instances)
        .total_core_instances(limits.max_instances * 8)
        .total_memories(total_memories)
        .total_tables(limits.max_instances * 8)
        .total_stacks(limits.max_instances)
        .max_memory_size(limits.max_memory_bytes)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        // Reset a returned slot by rewriting its dirty pages in place (found with
        // PAGEMAP_SCAN where the kernel has it) instead of unmapping them, up to these
        // sizes: the next instance in the slot then takes no page faults for its stack
        // and heap. Reset cost stays bounded by these sizes.
        .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(128 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto)
        .max_unused_warm_slots(warm_slots(limits, total_memories))
        // Everything past that is decommitted when the slot is freed. Batched, freed
        // slots would keep all their dirty pages until a batch filled (one per core):
        // 20 runs grown to 128 MiB left 1.3 GiB resident. A small run decommits
        // nothing (its dirty pages fit in the keep-resident amount), so this costs
        // hello nothing.
        .decommit_batch_size(1);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .async_stack_size(ASYNC_STACK_BYTES)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    if tier == Tier::Baseline {
        // Winch lacks some proposals Cranelift enables by default (tail calls,
        // exceptions, GC); a component using them fails this tier's compile and goes
        // straight to the optimized one. Winch still has Cranelift compile the
        // trampolines between host and wasm, one per function a table or an export
        // lets escape, which is thousands in a language runtime: unoptimised and with
        // the single-pass register allocator they compile in about half the time.
        config
            .strategy(Strategy::Winch)
            .cranelift_opt_level(OptLevel::None)
            .cranelift_regalloc_algorithm(RegallocAlgorithm::SinglePass);
    }
    config
}

/// Advances the engine's epoch every `EPOCH_TICK` for as long as the engine lives.
pub fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the epoch ticker thread");
}

/// Bytes the pool keeps resident in memory, table and stack slots no instance uses.
pub fn idle_resident_bytes(engine: &Engine) -> usize {
    engine.pooling_allocator_metrics().map_or(0, |pool| {
        pool.unused_memory_bytes_resident()
            + pool.unused_table_bytes_resident()
            + pool.unused_stack_bytes_resident().unwrap_or(0)
    })
}

/// Reports [`idle_resident_bytes`] to `report` every `RESIDENT_WATCH` for as long as the
/// engine lives.
pub fn spawn_resident_watch(engine: &Engine, report: impl Fn(usize) + Send + 'static) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("resident-watch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                report(idle_resident_bytes(&engine));
                drop(engine);
                std::thread::sleep(RESIDENT_WATCH);
            }
        })
        .expect("spawn the resident-watch thread");
}

/// A stable name for "artifacts this engine can load": compiled artifacts are keyed by it.
pub fn compatibility_hash(engine: &Engine) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}
