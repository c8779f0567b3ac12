//! Compiling a component outside the server process, under limits: each compile is a
//! child process (this very binary, `dispatcher compile-worker`, see `compile_worker.rs`)
//! with a memory limit, a CPU-time limit and a wall-time limit after which it is killed;
//! at most `max_concurrent` run at once, and an upload that waits longer than the queue
//! time for its turn is refused as overloaded. Dropping a compile's future (the uploader
//! went away) kills its child. The server's own memory never holds a compile's peak, only
//! the artifact it gets back, and no artifact over the artifact limit. The worker offers
//! itself to the kernel's OOM killer first, so a machine out of memory loses the compile,
//! not the server. Workers compile through the shared compiled-function cache
//! (`code_cache.rs`) when one is configured, and say what it saved.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Semaphore;

use super::code_cache::{CacheStats, CodeCacheSpec};
use super::compile_worker::{COMPILE_FAILED, WorkerSpec};
use super::engine::{EngineLimits, MemoryInit, Tier};

/// The hidden subcommand a worker runs as (`cli/mod.rs`).
pub const WORKER_COMMAND: &str = "compile-worker";

/// How much lower than the server a worker runs: requests keep their CPU while it
/// compiles.
const NICENESS: i32 = 10;

/// A background compile's: the lowest, below uploads' compiles too.
const BACKGROUND_NICENESS: i32 = 19;

/// What compiles may cost; from the server configuration.
#[derive(Debug, Clone)]
pub struct CompileLimits {
    /// Longest one compile may take, from its start to its artifact.
    pub timeout: Duration,
    /// Most memory one compile may write to, in bytes.
    pub memory_bytes: u64,
    /// Most compiles running at once.
    pub max_concurrent: usize,
    /// Longest an upload waits for its turn to compile.
    pub queue_timeout: Duration,
    /// Largest compiled artifact kept, in bytes: the server maps all of it to run it.
    pub max_artifact_bytes: u64,
    /// Largest the compiled-function cache may grow, in bytes; 0 for none.
    pub code_cache_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("compiling the component took longer than the compile time limit ({} ms)", .limit.as_millis())]
    Timeout { limit: Duration },
    #[error("compiling the component needs more memory than the compile limit ({} MiB)", .limit_bytes >> 20)]
    TooLarge { limit_bytes: u64 },
    #[error("the compiled component would be larger than the artifact limit ({} MiB)", .limit_bytes >> 20)]
    ArtifactTooLarge { limit_bytes: u64 },
    /// The kernel's OOM killer stopped the worker (it volunteers to be its first choice):
    /// the machine, not the compile limit, ran out of memory.
    #[error("the server ran out of memory while compiling; retry after the time in Retry-After")]
    MachineOutOfMemory { retry_after: Duration },
    /// Every compile slot stayed busy for the whole queue time.
    #[error("the server is busy compiling other components; retry after the time in Retry-After")]
    Overloaded { retry_after: Duration },
    #[error("compilation failed: {0}")]
    Failed(String),
    /// The worker could not be run, or ended in a way no limit explains.
    #[error("the compile worker failed: {0}")]
    Worker(String),
}

/// Whether a compile waits for its turn no longer than the queue time (an upload), or as
/// long as it takes (loading the scripts at start, which has nothing to answer), or is
/// an optimized compile replacing a baseline artifact (`tiering.rs`): those run one at a
/// time beside the others, at the lowest priority, so they never hold an upload's slot.
#[derive(Debug, Clone, Copy)]
pub enum Queue {
    Bounded,
    Unbounded,
    Background,
}

/// A worker's artifact, and what the code cache saved it.
#[derive(Debug)]
pub struct Compiled {
    pub artifact: Vec<u8>,
    pub cache: CacheStats,
}

pub struct CompileCage {
    limits: CompileLimits,
    engine: EngineLimits,
    code_cache: Option<CodeCacheSpec>,
    slots: Semaphore,
    /// The one slot of background compiles.
    background: Semaphore,
    /// Compiler threads per worker: the machine's cores shared among the compiles that
    /// may run at once.
    threads: usize,
}

impl CompileCage {
    pub fn new(
        limits: CompileLimits,
        engine: EngineLimits,
        code_cache: Option<CodeCacheSpec>,
    ) -> CompileCage {
        let max_concurrent = limits.max_concurrent.max(1);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        CompileCage {
            slots: Semaphore::new(max_concurrent),
            background: Semaphore::new(1),
            threads: (cores / max_concurrent).max(1),
            limits,
            engine,
            code_cache,
        }
    }

    /// Compiles `source` for `tier`'s engine starting memories as `memory` says, in a
    /// worker; the serialized artifact.
    pub async fn compile(
        &self,
        source: &[u8],
        tier: Tier,
        memory: MemoryInit,
        queue: Queue,
    ) -> Result<Compiled, CompileError> {
        let _slot = match queue {
            Queue::Unbounded => self.slots.acquire().await.ok(),
            Queue::Background => self.background.acquire().await.ok(),
            Queue::Bounded => tokio::time::timeout(self.limits.queue_timeout, self.slots.acquire())
                .await
                .map_err(|_| CompileError::Overloaded {
                    retry_after: self.limits.queue_timeout,
                })?
                .ok(),
        };
        let limit = self.limits.timeout;
        let niceness = match queue {
            Queue::Background => BACKGROUND_NICENESS,
            Queue::Bounded | Queue::Unbounded => NICENESS,
        };
        tokio::time::timeout(limit, self.run_worker(source, tier, memory, niceness))
            .await
            .map_err(|_| CompileError::Timeout { limit })?
    }

    /// `compile` from blocking code running on the async runtime's blocking pool.
    pub fn compile_blocking(
        &self,
        source: &[u8],
        tier: Tier,
        memory: MemoryInit,
        queue: Queue,
    ) -> Result<Compiled, CompileError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| CompileError::Worker(e.to_string()))?;
        runtime.block_on(self.compile(source, tier, memory, queue))
    }

    async fn run_worker(
        &self,
        source: &[u8],
        tier: Tier,
        memory: MemoryInit,
        niceness: i32,
    ) -> Result<Compiled, CompileError> {
        let spec = WorkerSpec {
            engine: self.engine.clone(),
            tier,
            memory,
            niceness,
            memory_bytes: self.limits.memory_bytes,
            cpu_seconds: self
                .limits
                .timeout
                .as_secs()
                .saturating_add(1)
                .saturating_mul(self.threads as u64),
            // The pack is read into the worker's memory: it may take at most a quarter
            // of the compile's limit.
            code_cache: self
                .code_cache
                .clone()
                .filter(|_| tier == Tier::Optimized)
                .map(|cache| CodeCacheSpec {
                    max_bytes: cache.max_bytes.min(self.limits.memory_bytes / 4),
                    ..cache
                }),
        };
        let spec = serde_json::to_string(&spec).map_err(|e| CompileError::Worker(e.to_string()))?;
        let worker_error = |e: std::io::Error| CompileError::Worker(e.to_string());
        // The running binary itself, even if its file has been replaced since it started:
        // the worker must be the very build whose engine loads the artifact.
        let mut child = tokio::process::Command::new("/proc/self/exe")
            .arg(WORKER_COMMAND)
            .arg(spec)
            .env("RAYON_NUM_THREADS", self.threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(worker_error)?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let feed = async {
            // A worker that dies early closes its end; its exit status says why.
            let _ = stdin.write_all(source).await;
            drop(stdin);
        };
        // One byte past the cap tells that the artifact is over it; the worker is then
        // killed without the server reading the rest (which also ends its stderr).
        let limit = self.limits.max_artifact_bytes;
        let mut artifact = Vec::new();
        let mut message = Vec::new();
        let mut stdout = stdout.take(limit.saturating_add(1));
        let read_artifact = async {
            let read = stdout.read_to_end(&mut artifact).await;
            if artifact.len() as u64 > limit {
                let _ = child.start_kill();
            }
            read
        };
        let read_message = stderr.read_to_end(&mut message);
        let ((), artifact_read, message_read) = tokio::join!(feed, read_artifact, read_message);
        artifact_read.map_err(worker_error)?;
        message_read.map_err(worker_error)?;
        if artifact.len() as u64 > limit {
            return Err(CompileError::ArtifactTooLarge { limit_bytes: limit });
        }
        let message = String::from_utf8_lossy(&message);
        // Both pipes closed after an artifact and its cache report: the worker is done
        // but for writing the code cache, which it finishes on its own (reaped here).
        if !artifact.is_empty()
            && let Some(cache) = cache_report(&message)
        {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            return Ok(Compiled { artifact, cache });
        }
        let status = child.wait().await.map_err(worker_error)?;
        self.outcome(status, artifact, &message)
    }

    fn outcome(
        &self,
        status: std::process::ExitStatus,
        artifact: Vec<u8>,
        message: &str,
    ) -> Result<Compiled, CompileError> {
        use std::os::unix::process::ExitStatusExt as _;
        let message = message.trim();
        if status.success() {
            let cache = cache_report(message).unwrap_or_default();
            return Ok(Compiled { artifact, cache });
        }
        match (status.code(), status.signal()) {
            (Some(COMPILE_FAILED), _) => Err(CompileError::Failed(message.to_string())),
            // The allocator aborts when the memory limit refuses it more.
            (_, Some(libc_signal::ABRT)) => Err(CompileError::TooLarge {
                limit_bytes: self.limits.memory_bytes,
            }),
            (_, Some(libc_signal::XCPU)) => Err(CompileError::Timeout {
                limit: self.limits.timeout,
            }),
            // Past its CPU limit a worker dies of SIGXCPU first (its hard limit is a
            // second later), and the wall clock kills it by dropping this future: a
            // SIGKILL that reaches us is the OOM killer's.
            (_, Some(libc_signal::KILL)) => Err(CompileError::MachineOutOfMemory {
                retry_after: self.limits.queue_timeout,
            }),
            _ if message.contains("memory allocation of") => Err(CompileError::TooLarge {
                limit_bytes: self.limits.memory_bytes,
            }),
            _ => Err(CompileError::Worker(format!("{status}: {message}"))),
        }
    }
}

/// The cache report a successful worker ends its stderr with.
fn cache_report(message: &str) -> Option<CacheStats> {
    let last = message.trim_end().lines().last()?;
    serde_json::from_str(last).ok()
}

/// The signals a worker may die of, as raw numbers (`ExitStatus::signal`).
mod libc_signal {
    use rustix::process::Signal;

    pub const ABRT: i32 = Signal::ABORT.as_raw();
    pub const XCPU: i32 = Signal::XCPU.as_raw();
    pub const KILL: i32 = Signal::KILL.as_raw();
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::ExitStatus;

    use super::*;

    fn cage() -> CompileCage {
        let limits = CompileLimits {
            timeout: Duration::from_secs(60),
            memory_bytes: 2048 << 20,
            max_concurrent: 1,
            queue_timeout: Duration::from_secs(10),
            max_artifact_bytes: 512 << 20,
            code_cache_bytes: 0,
        };
        let engine = EngineLimits {
            max_instances: 1,
            max_memory_bytes: 1 << 20,
            guest_memory_bytes: 1 << 20,
        };
        CompileCage::new(limits, engine, None)
    }

    fn died_of(signal: i32) -> CompileError {
        cage()
            .outcome(ExitStatus::from_raw(signal), Vec::new(), "")
            .unwrap_err()
    }

    #[test]
    fn how_a_worker_ended_names_the_limit_it_hit() {
        assert!(matches!(
            died_of(libc_signal::ABRT),
            CompileError::TooLarge { .. }
        ));
        assert!(matches!(
            died_of(libc_signal::XCPU),
            CompileError::Timeout { .. }
        ));
        // Neither limit sends SIGKILL first: the OOM killer did, the machine is short.
        assert!(matches!(
            died_of(libc_signal::KILL),
            CompileError::MachineOutOfMemory { .. }
        ));
        let failed = cage().outcome(
            ExitStatus::from_raw(COMPILE_FAILED << 8),
            Vec::new(),
            "bad type\n",
        );
        assert!(matches!(failed, Err(CompileError::Failed(m)) if m == "bad type"));
        let ok = cage().outcome(
            ExitStatus::from_raw(0),
            vec![1, 2],
            "{\"hits\":3,\"misses\":4}\n",
        );
        let ok = ok.unwrap();
        assert_eq!(ok.artifact, vec![1, 2]);
        assert_eq!(ok.cache, CacheStats { hits: 3, misses: 4 });
    }
}
