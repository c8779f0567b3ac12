//! Compiling a component outside the server process, under limits: each compile is a
//! child process (this very binary, `dispatcher compile-worker`, see `compile_worker.rs`)
//! with a memory limit, a CPU-time limit and a wall-time limit after which it is killed;
//! at most `max_concurrent` run at once, and an upload that waits longer than the queue
//! time for its turn is refused as overloaded. Dropping a compile's future (the uploader
//! went away) kills its child. The server's own memory never holds a compile's peak, only
//! the artifact it gets back.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::sync::Semaphore;

use super::compile_worker::{COMPILE_FAILED, WorkerSpec};
use super::engine::EngineLimits;

/// The hidden subcommand a worker runs as (`cli/mod.rs`).
pub const WORKER_COMMAND: &str = "compile-worker";

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
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("compiling the component took longer than the compile time limit ({} ms)", .limit.as_millis())]
    Timeout { limit: Duration },
    #[error("compiling the component needs more memory than the compile limit ({} MiB)", .limit_bytes >> 20)]
    TooLarge { limit_bytes: u64 },
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
/// long as it takes (loading the scripts at start, which has nothing to answer).
#[derive(Debug, Clone, Copy)]
pub enum Queue {
    Bounded,
    Unbounded,
}

pub struct CompileCage {
    limits: CompileLimits,
    engine: EngineLimits,
    slots: Semaphore,
    /// Compiler threads per worker: the machine's cores shared among the compiles that
    /// may run at once.
    threads: usize,
}

impl CompileCage {
    pub fn new(limits: CompileLimits, engine: EngineLimits) -> CompileCage {
        let max_concurrent = limits.max_concurrent.max(1);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        CompileCage {
            slots: Semaphore::new(max_concurrent),
            threads: (cores / max_concurrent).max(1),
            limits,
            engine,
        }
    }

    /// Compiles `source` in a worker; the serialized artifact.
    pub async fn compile(&self, source: &[u8], queue: Queue) -> Result<Vec<u8>, CompileError> {
        let _slot = match queue {
            Queue::Unbounded => self.slots.acquire().await.ok(),
            Queue::Bounded => tokio::time::timeout(self.limits.queue_timeout, self.slots.acquire())
                .await
                .map_err(|_| CompileError::Overloaded {
                    retry_after: self.limits.queue_timeout,
                })?
                .ok(),
        };
        let limit = self.limits.timeout;
        tokio::time::timeout(limit, self.run_worker(source))
            .await
            .map_err(|_| CompileError::Timeout { limit })?
    }

    /// `compile` from blocking code running on the async runtime's blocking pool.
    pub fn compile_blocking(&self, source: &[u8], queue: Queue) -> Result<Vec<u8>, CompileError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| CompileError::Worker(e.to_string()))?;
        runtime.block_on(self.compile(source, queue))
    }

    async fn run_worker(&self, source: &[u8]) -> Result<Vec<u8>, CompileError> {
        let spec = WorkerSpec {
            engine: self.engine.clone(),
            memory_bytes: self.limits.memory_bytes,
            cpu_seconds: self
                .limits
                .timeout
                .as_secs()
                .saturating_add(1)
                .saturating_mul(self.threads as u64),
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
        let output = child.wait_with_output();
        let feed = async {
            // A worker that dies early closes its end; its exit status says why.
            let _ = stdin.write_all(source).await;
            drop(stdin);
        };
        let ((), output) = tokio::join!(feed, output);
        let output = output.map_err(worker_error)?;
        self.outcome(output)
    }

    fn outcome(&self, output: std::process::Output) -> Result<Vec<u8>, CompileError> {
        use std::os::unix::process::ExitStatusExt as _;
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        let status = output.status;
        if status.success() {
            return Ok(output.stdout);
        }
        match (status.code(), status.signal()) {
            (Some(COMPILE_FAILED), _) => Err(CompileError::Failed(stderr)),
            // The allocator aborts when the memory limit refuses it more.
            (_, Some(libc_signal::ABRT)) => Err(CompileError::TooLarge {
                limit_bytes: self.limits.memory_bytes,
            }),
            (_, Some(libc_signal::XCPU | libc_signal::KILL)) => Err(CompileError::Timeout {
                limit: self.limits.timeout,
            }),
            _ if stderr.contains("memory allocation of") => Err(CompileError::TooLarge {
                limit_bytes: self.limits.memory_bytes,
            }),
            _ => Err(CompileError::Worker(format!("{status}: {stderr}"))),
        }
    }
}

/// The signals a worker may die of, as raw numbers (`ExitStatus::signal`).
mod libc_signal {
    use rustix::process::Signal;

    pub const ABRT: i32 = Signal::ABORT.as_raw();
    pub const XCPU: i32 = Signal::XCPU.as_raw();
    pub const KILL: i32 = Signal::KILL.as_raw();
}
