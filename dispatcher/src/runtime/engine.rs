//! The process's wasmtime engines: async, component model, epoch interruption. The
//! optimized tier's (Cranelift) runs nearly every script, with the pooling instance
//! allocator (slots reserved once, copy-on-write memory images), so a fresh instance per
//! request costs microseconds. The baseline tier's (Winch, a single-pass compiler about
//! four times faster to compile with) runs a large component for the seconds between its
//! upload and its optimized artifact (`tiering.rs`); it allocates instances on demand,
//! held to the same limits by the store's memory limiter, so it reserves no second pool.
//!
//! The optimized tier has two engines, one per way a fresh instance's memories get their
//! data segments ([`MemoryInit`]): copied in (small data, nearly every script) or mapped
//! copy-on-write from the artifact's memory image (large data, such as a JavaScript or
//! Python runtime's initialized heap). Which one a script runs on is decided from its
//! bytes at compile time; each engine has its own pool and its own artifacts.
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

/// How a fresh instance's linear memories get their initial contents (data segments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MemoryInit {
    /// Copied in at instantiation. Nothing is mapped or unmapped on the request path,
    /// so a pool slot passes from one script to another at the cost of its reset alone.
    /// Mapping an image in and out costs a TLB shootdown on every core each time a slot
    /// changes scripts: with 1,000 tenants and a random one per request, 211 µs of CPU
    /// per request with images against 144 µs copied (one tenant: 86 and 78).
    Copy,
    /// Mapped copy-on-write from the artifact (wasmtime's memory images): only the pages
    /// a run touches are faulted in. A 3.6 MB componentize-js heap costs 568 µs of CPU per
    /// request this way, 2,744 µs copied.
    Image,
}

impl MemoryInit {
    /// Data segments up to this many bytes in all (every core module of the component
    /// together) are copied; hello has 12 KB, the first-party services under 100 KB.
    pub const COPY_MAX_BYTES: u64 = 256 << 10;

    /// How the optimized tier should start `component`'s memories, from the size of
    /// its data segments. Bytes that do not parse are copied: they never compile.
    pub fn for_component(component: &[u8]) -> MemoryInit {
        let mut data_bytes = 0u64;
        for payload in wasmparser::Parser::new(0).parse_all(component) {
            let Ok(wasmparser::Payload::DataSection(section)) = payload else {
                continue;
            };
            for data in section.into_iter().flatten() {
                data_bytes += data.data.len() as u64;
            }
        }
        if data_bytes > Self::COPY_MAX_BYTES {
            MemoryInit::Image
        } else {
            MemoryInit::Copy
        }
    }
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

/// The engine the server runs `tier`'s artifacts with, starting memories as `memory`
/// says.
pub fn new_engine(
    limits: &EngineLimits,
    tier: Tier,
    memory: MemoryInit,
) -> wasmtime::Result<Engine> {
    let mut config = config(limits, tier, memory);
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
    memory: MemoryInit,
    code_cache: Option<Arc<dyn CacheStore>>,
) -> wasmtime::Result<Engine> {
    let mut config = config(limits, tier, memory);
    config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    if let Some(cache) = code_cache {
        config.enable_incremental_compilation(cache)?;
    }
    Engine::new(&config)
}

fn config(limits: &EngineLimits, tier: Tier, memory: MemoryInit) -> Config {
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
        .memory_init_cow(memory == MemoryInit::Image)
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

/// Reports the sum of `engines`' [`idle_resident_bytes`] to `report` every
/// `RESIDENT_WATCH` for as long as they live.
pub fn spawn_resident_watch(engines: &[&Engine], report: impl Fn(usize) + Send + 'static) {
    let weak: Vec<_> = engines.iter().map(|engine| engine.weak()).collect();
    std::thread::Builder::new()
        .name("resident-watch".into())
        .spawn(move || {
            while let Some(engines) = weak.iter().map(|w| w.upgrade()).collect::<Option<Vec<_>>>() {
                report(engines.iter().map(idle_resident_bytes).sum());
                drop(engines);
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

#[cfg(test)]
mod tests {
    use wasm_encoder::{
        Component, ConstExpr, DataSection, MemorySection, MemoryType, Module, ModuleSection,
    };

    use super::MemoryInit;

    /// A component of one core module whose data segments hold `segments` bytes each.
    fn component_with_data(segments: &[usize]) -> Vec<u8> {
        let mut memories = MemorySection::new();
        memories.memory(MemoryType {
            minimum: 64,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        let mut data = DataSection::new();
        let mut offset = 0;
        for &len in segments {
            data.active(0, &ConstExpr::i32_const(offset), vec![7u8; len]);
            offset += i32::try_from(len).unwrap();
        }
        let mut module = Module::new();
        module.section(&memories).section(&data);
        let mut component = Component::new();
        component.section(&ModuleSection(&module));
        component.finish()
    }

    #[test]
    fn small_data_is_copied_and_large_data_mapped() {
        let limit = usize::try_from(MemoryInit::COPY_MAX_BYTES).unwrap();
        let cases = [
            (vec![], MemoryInit::Copy),
            (vec![12 << 10], MemoryInit::Copy),
            (vec![limit], MemoryInit::Copy),
            (vec![limit + 1], MemoryInit::Image),
            // Segments count together.
            (vec![limit / 2, limit / 2 + 1], MemoryInit::Image),
        ];
        for (segments, expected) in cases {
            let wasm = component_with_data(&segments);
            assert_eq!(MemoryInit::for_component(&wasm), expected, "{segments:?}");
        }
        assert_eq!(MemoryInit::for_component(b"not wasm"), MemoryInit::Copy);
    }
}
