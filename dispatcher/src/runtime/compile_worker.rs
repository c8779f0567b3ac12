//! The child side of a caged compile (`dispatcher compile-worker`, started by
//! `compile_cage.rs`): it puts itself under the limits it is given (memory, CPU time, a
//! lower priority, death with its parent), reads one component on stdin, compiles it
//! with the server's engine configuration for the tier and memory start it is told
//! (`engine.rs`) and writes the serialized artifact to stdout. A compile error is written to stderr with
//! exit status 1; running out of memory aborts the process (the allocator's failure), the
//! CPU limit kills it (SIGXCPU, then SIGKILL), and when the machine runs out of memory the
//! OOM killer takes it first (SIGKILL). A successful compile ends its stderr with one
//! JSON line of [`CacheStats`] and closes both pipes, which tells the server it is done;
//! with a code cache (`code_cache.rs`, optimized tier only), which it compiles through,
//! it then writes the cache back before it exits.

use std::io::{Read as _, Write as _};
use std::sync::Arc;

use rustix::process::{Resource, Rlimit, Signal};

use super::code_cache::{CacheStats, CodeCache, CodeCacheSpec};
use super::engine::{EngineLimits, MemoryInit, Tier, compile_engine};

/// What a worker is told on its command line (one JSON argument).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct WorkerSpec {
    /// The server's engine sizing, so the worker's engine compiles exactly as the
    /// server's would.
    pub engine: EngineLimits,
    /// The compiler to compile with.
    pub tier: Tier,
    /// How the engine the artifact is for starts memories (part of its compatibility).
    pub memory: MemoryInit,
    /// How much lower than the server's the worker's priority is (`nice`).
    pub niceness: i32,
    /// Most writable memory (heap and anonymous mappings) the worker may map, in bytes.
    pub memory_bytes: u64,
    /// Most CPU time the worker may use, all threads together, in seconds.
    pub cpu_seconds: u64,
    /// The compiled-function cache to compile through, if any.
    pub code_cache: Option<CodeCacheSpec>,
}

/// The exit status of a compile the component itself made fail.
pub const COMPILE_FAILED: i32 = 1;

/// Runs the worker; the exit status is the outcome, the artifact is on stdout.
pub fn run(spec: &str) -> anyhow::Result<()> {
    let spec: WorkerSpec = serde_json::from_str(spec)?;
    confine(&spec)?;
    let mut component = Vec::new();
    std::io::stdin().lock().read_to_end(&mut component)?;
    let cache = spec
        .code_cache
        .map(|cache| Arc::new(CodeCache::open(cache)));
    let store = cache.clone().map(|c| c as Arc<dyn wasmtime::CacheStore>);
    let engine = compile_engine(&spec.engine, spec.tier, spec.memory, store)?;
    match engine.precompile_component(&component) {
        Ok(artifact) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&artifact)?;
            out.flush()?;
            drop(out);
            let stats = cache
                .as_ref()
                .map_or(CacheStats::default(), |cache| cache.stats());
            eprintln!("{}", serde_json::to_string(&stats)?);
            // The server takes the artifact as soon as both pipes end: end them, then
            // write the pack while it goes on, and exit without freeing the compile's
            // memory piece by piece.
            let null = std::fs::File::options().write(true).open("/dev/null")?;
            rustix::stdio::dup2_stdout(&null)?;
            rustix::stdio::dup2_stderr(&null)?;
            if let Some(cache) = &cache {
                // A pack that cannot be written (a full disk) only makes later compiles
                // colder.
                let _ = cache.write();
            }
            std::process::exit(0);
        }
        Err(error) => {
            eprint!("{error:#}");
            std::process::exit(COMPILE_FAILED);
        }
    }
}

/// Puts this process under `spec`'s limits. RLIMIT_DATA, not RLIMIT_AS: it counts the
/// memory the compile writes to (the heap and anonymous mappings) and not the address
/// space merely reserved (thread arenas, the binary's own mappings).
fn confine(spec: &WorkerSpec) -> std::io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
    // The OOM killer's first choice, before the server (raising one's own score needs no
    // privilege).
    std::fs::write("/proc/self/oom_score_adj", "1000")?;
    rustix::process::nice(spec.niceness)?;
    rustix::process::setrlimit(
        Resource::Data,
        Rlimit {
            current: Some(spec.memory_bytes),
            maximum: Some(spec.memory_bytes),
        },
    )?;
    // Past the soft limit the kernel sends SIGXCPU, a second later SIGKILL.
    rustix::process::setrlimit(
        Resource::Cpu,
        Rlimit {
            current: Some(spec.cpu_seconds),
            maximum: Some(spec.cpu_seconds + 1),
        },
    )?;
    Ok(())
}
