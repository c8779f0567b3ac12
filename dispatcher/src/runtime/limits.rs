//! Per-request limits and how they are enforced.
//!
//! Every script run (an eyeball's request or a service-binding call) gets a [`Budget`]:
//! its effective [`Limits`] and what it has used so far.
//! - **CPU**: thread CPU time measured around each poll of the guest's future
//!   (`cpu::Metered`); time parked on I/O does not count. The epoch callback
//!   ([`on_epoch_tick`]) runs at every engine tick while wasm runs: over the limit it stops
//!   the guest, otherwise it yields to the scheduler so a busy guest cannot starve others.
//! - **Memory**: [`MemoryLimiter`] sums every linear memory and table of the instance
//!   against the script's limit, and those plus the instance's stack against one
//!   process-wide budget ([`GuestMemory`]), which also counts what the instance pool
//!   keeps resident in unused slots.
//! - **Wall time**: the run's deadline (`Budget::deadline`), enforced by the invoker.
//! - **Subrequests**: counted by the egress path through [`Budget::take_subrequest`].
//!
//! A service-binding callee's budget hangs off its caller's: its limits are the lower of
//! its own and what its caller has left, and what it uses is charged up the chain.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use wasmtime::{ResourceLimiter, UpdateDeadline};

use crate::store::LimitOverrides;

/// The limits one script run is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub cpu: Duration,
    pub memory_bytes: usize,
    pub subrequests: u32,
    pub wall: Duration,
}

impl Limits {
    /// `self` (the server's defaults) with a script's overrides applied.
    pub fn with_overrides(self, overrides: &LimitOverrides) -> Limits {
        Limits {
            cpu: overrides.cpu_ms.map_or(self.cpu, Duration::from_millis),
            memory_bytes: overrides.memory_mb.map_or(self.memory_bytes, |mb| {
                (mb as usize).saturating_mul(1 << 20)
            }),
            subrequests: overrides.subrequests.unwrap_or(self.subrequests),
            wall: overrides.wall_ms.map_or(self.wall, Duration::from_millis),
        }
    }

    /// Refuses memory a run could not touch within its CPU limit: one bulk-memory
    /// instruction (`memory.fill` over all of it) cannot be interrupted, so the memory
    /// limit bounds how far such an instruction can run past the CPU limit. At
    /// `MEMORY_MIB_PER_CPU_MS` (touching fresh memory runs at about 2 MiB/ms here) one
    /// instruction overshoots by at most about 2x.
    pub fn check_memory_fits_cpu(&self) -> Result<(), String> {
        let memory_mib = (self.memory_bytes >> 20) as u128;
        let cpu_ms = self.cpu.as_millis();
        if memory_mib <= cpu_ms * MEMORY_MIB_PER_CPU_MS {
            return Ok(());
        }
        Err(format!(
            "{memory_mib} MiB of memory needs at least {} ms of CPU (a script gets at most \
             {MEMORY_MIB_PER_CPU_MS} MiB per ms of its CPU limit, so that one instruction \
             over all of its memory cannot run far past that limit); with {cpu_ms} ms of \
             CPU it may have {} MiB",
            memory_mib.div_ceil(MEMORY_MIB_PER_CPU_MS),
            cpu_ms * MEMORY_MIB_PER_CPU_MS
        ))
    }
}

/// Most memory a script may have per millisecond of its CPU limit, in MiB.
pub const MEMORY_MIB_PER_CPU_MS: u128 = 4;

/// Which limit stopped a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("the script used more CPU time than its limit")]
    Cpu,
}

/// Most scripts on one call chain (the eyeball's script is depth 0): service-binding
/// callees and outbound workers each add one.
pub const MAX_CALL_DEPTH: u32 = 8;

/// One script run's limits and usage; a service call's budget points at its caller's.
pub struct Budget {
    /// 0 for an eyeball's request, +1 per service-binding hop.
    pub depth: u32,
    /// No script of the chain runs past its own deadline or its caller's.
    pub deadline: Instant,
    pub limits: Limits,
    cpu_used_ns: AtomicU64,
    /// The thread's CPU clock when the poll in progress began; 0 when none is.
    pub(super) poll_started_ns: AtomicU64,
    memory_used: AtomicUsize,
    memory_refused: AtomicBool,
    subrequests_used: AtomicU32,
    caller: Option<Arc<Budget>>,
}

impl Budget {
    /// The budget of an eyeball's request.
    pub fn root(limits: Limits) -> Arc<Budget> {
        Arc::new(Budget::new(0, Instant::now() + limits.wall, limits, None))
    }

    /// The budget of a call from this run to a script whose own limits are `own`: the
    /// lower of those and what this run has left. `None` past `MAX_CALL_DEPTH`.
    pub fn for_callee(self: &Arc<Self>, own: Limits) -> Option<Arc<Budget>> {
        if self.depth + 1 >= MAX_CALL_DEPTH {
            return None;
        }
        let now = Instant::now();
        let limits = Limits {
            cpu: own.cpu.min(self.limits.cpu.saturating_sub(self.cpu_used())),
            memory_bytes: own.memory_bytes.min(
                self.limits
                    .memory_bytes
                    .saturating_sub(self.memory_used.load(Ordering::Relaxed)),
            ),
            subrequests: own.subrequests.min(
                self.limits
                    .subrequests
                    .saturating_sub(self.subrequests_used.load(Ordering::Relaxed)),
            ),
            wall: own.wall.min(self.deadline.saturating_duration_since(now)),
        };
        let deadline = self.deadline.min(now + own.wall);
        Some(Arc::new(Budget::new(
            self.depth + 1,
            deadline,
            limits,
            Some(self.clone()),
        )))
    }

    fn new(depth: u32, deadline: Instant, limits: Limits, caller: Option<Arc<Budget>>) -> Budget {
        Budget {
            depth,
            deadline,
            limits,
            cpu_used_ns: AtomicU64::new(0),
            poll_started_ns: AtomicU64::new(0),
            memory_used: AtomicUsize::new(0),
            memory_refused: AtomicBool::new(false),
            subrequests_used: AtomicU32::new(0),
            caller,
        }
    }

    /// This run and its callers, nearest first.
    fn chain(&self) -> impl Iterator<Item = &Budget> {
        std::iter::successors(Some(self), |b| b.caller.as_deref())
    }

    /// CPU used so far, the poll in progress on this thread included.
    pub fn cpu_used(&self) -> Duration {
        let mut used = self.cpu_used_ns.load(Ordering::Relaxed);
        let started = self.poll_started_ns.load(Ordering::Relaxed);
        if started != 0 {
            used += super::cpu::thread_cpu_ns().saturating_sub(started);
        }
        Duration::from_nanos(used)
    }

    pub(super) fn charge_cpu(&self, ns: u64) {
        for budget in self.chain() {
            budget.cpu_used_ns.fetch_add(ns, Ordering::Relaxed);
        }
    }

    /// Counts one outgoing request against this run and every caller; refuses it (and
    /// names the limit) when any of them has none left.
    pub fn take_subrequest(&self) -> Result<(), u32> {
        for budget in self.chain() {
            let used = budget.subrequests_used.fetch_add(1, Ordering::Relaxed);
            if used >= budget.limits.subrequests {
                return Err(budget.limits.subrequests);
            }
        }
        Ok(())
    }

    /// Outgoing requests and service calls made by this run and its callees.
    pub fn subrequests_used(&self) -> u32 {
        self.subrequests_used.load(Ordering::Relaxed)
    }

    /// The run's memories and tables, in bytes; they never shrink, so also its peak.
    pub fn memory_used(&self) -> usize {
        self.memory_used.load(Ordering::Relaxed)
    }

    /// Whether the memory limiter refused a growth during this run.
    pub fn memory_refused(&self) -> bool {
        self.memory_refused.load(Ordering::Relaxed)
    }
}

/// The engine's epoch callback: stop a guest over its CPU limit, else let others run.
pub fn on_epoch_tick(budget: &Budget) -> wasmtime::Result<UpdateDeadline> {
    if budget.cpu_used() > budget.limits.cpu {
        return Err(wasmtime::Error::new(LimitExceeded::Cpu));
    }
    Ok(UpdateDeadline::YieldCustom(
        1,
        Box::pin(tokio::task::yield_now()),
    ))
}

/// All guests' linear memories and tables together, and the memory the instance pool
/// keeps resident for them when they are gone, may not exceed this many bytes.
pub struct GuestMemory {
    limit: usize,
    used: AtomicUsize,
    /// Kept resident in the pool's unused slots, as last read (`engine::spawn_resident_watch`).
    idle_resident: AtomicUsize,
}

impl GuestMemory {
    pub fn new(limit: usize) -> Arc<GuestMemory> {
        Arc::new(GuestMemory {
            limit,
            used: AtomicUsize::new(0),
            idle_resident: AtomicUsize::new(0),
        })
    }

    /// The pool now keeps `bytes` resident in slots no instance uses.
    pub fn set_idle_resident(&self, bytes: usize) {
        self.idle_resident.store(bytes, Ordering::Relaxed);
    }

    fn try_take(&self, bytes: usize) -> bool {
        let limit = self
            .limit
            .saturating_sub(self.idle_resident.load(Ordering::Relaxed));
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|total| *total <= limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Sums every linear memory and table of one instance against the run's memory limit,
/// and those plus the instance's stack against the guest-memory budget.
pub struct MemoryLimiter {
    budget: Arc<Budget>,
    global: Arc<GuestMemory>,
    held: usize,
    /// The last growth granted, given back if the engine then fails to grow.
    last_grant: usize,
    /// The stack taken from the guest-memory budget with the first growth (instantiation
    /// grows every memory from zero), given back when the instance is gone.
    stack_held: usize,
}

impl MemoryLimiter {
    pub fn new(budget: Arc<Budget>, global: Arc<GuestMemory>) -> Self {
        MemoryLimiter {
            budget,
            global,
            held: 0,
            last_grant: 0,
            stack_held: 0,
        }
    }

    fn give_back_last_grant(&mut self) {
        self.held -= self.last_grant;
        self.global.release(self.last_grant);
        self.last_grant = 0;
        self.budget.memory_used.store(self.held, Ordering::Relaxed);
    }

    fn grow(&mut self, bytes: usize) -> bool {
        let within = self
            .held
            .checked_add(bytes)
            .is_some_and(|total| total <= self.budget.limits.memory_bytes);
        // A running guest's stack is memory too: as much as the engine gives each
        // instance, all of it possibly written by a deep recursion.
        let stack = if self.stack_held == 0 {
            super::engine::ASYNC_STACK_BYTES
        } else {
            0
        };
        if !within || !self.global.try_take(bytes + stack) {
            self.budget.memory_refused.store(true, Ordering::Relaxed);
            return false;
        }
        self.stack_held += stack;
        self.held += bytes;
        self.last_grant = bytes;
        self.budget.memory_used.store(self.held, Ordering::Relaxed);
        true
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(desired.saturating_sub(current)))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.give_back_last_grant();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let elements = desired.saturating_sub(current);
        Ok(self.grow(elements.saturating_mul(size_of::<usize>())))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.give_back_last_grant();
        Ok(())
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.global.release(self.held + self.stack_held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_the_pool_keeps_resident_counts_against_the_guest_budget() {
        let global = GuestMemory::new(10 << 20);
        assert!(global.try_take(8 << 20));
        global.release(8 << 20);
        global.set_idle_resident(4 << 20);
        assert!(!global.try_take(8 << 20));
        assert!(global.try_take(6 << 20));
    }

    #[test]
    fn a_running_instance_holds_its_stack_in_the_guest_budget_until_it_is_gone() {
        use super::super::engine::ASYNC_STACK_BYTES;
        let global = GuestMemory::new(ASYNC_STACK_BYTES + (3 << 20));
        let limits = Limits {
            cpu: Duration::from_millis(50),
            memory_bytes: 128 << 20,
            subrequests: 50,
            wall: Duration::from_secs(30),
        };
        let mut limiter = MemoryLimiter::new(Budget::root(limits), global.clone());
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(limiter.memory_growing(0, 2 << 20, None).unwrap());
        // The stack is charged once: 3 MiB of memories and the stack fill the budget.
        assert!(!limiter.memory_growing(2 << 20, 4 << 20, None).unwrap());
        assert_eq!(limiter.budget.memory_used(), 3 << 20);
        drop(limiter);
        assert!(global.try_take(ASYNC_STACK_BYTES + (3 << 20)));
    }
}
