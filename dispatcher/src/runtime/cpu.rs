//! CPU time of guests: measuring it and sharing the cores fairly.
//!
//! [`Metered`] wraps a run's future: the thread CPU time of every poll is charged to the
//! run's budget (time parked on I/O is never charged). It also keeps CPU-heavy runs from
//! crowding out everyone else: once a run has used `HEAVY_AFTER` of CPU, each further
//! poll first takes a permit of the [`HeavyLane`], which has one fewer permit than the
//! machine has cores (at least one). Light requests — almost all — never wait, so a
//! tenant spinning at its CPU limit on every connection leaves at least one core to the
//! others; heavy runs take turns in the lane at every epoch tick.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::limits::Budget;

/// CPU a run may use before its polls go through the heavy lane.
const HEAVY_AFTER: Duration = Duration::from_millis(2);

/// The calling thread's CPU clock, in nanoseconds (never 0).
pub fn thread_cpu_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64).max(1)
}

/// The cores CPU-heavy runs may occupy at once.
pub struct HeavyLane(Arc<Semaphore>);

impl HeavyLane {
    /// One fewer permit than the machine has cores, and at least one.
    pub fn for_this_machine() -> HeavyLane {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        HeavyLane(Arc::new(Semaphore::new(cores.saturating_sub(1).max(1))))
    }
}

type Acquiring = Pin<Box<dyn Future<Output = Option<OwnedSemaphorePermit>> + Send>>;

/// A guest's future, metered (see the module docs).
pub struct Metered<F> {
    inner: Pin<Box<F>>,
    budget: Arc<Budget>,
    lane: Arc<Semaphore>,
    acquiring: Option<Acquiring>,
}

impl<F: Future> Metered<F> {
    pub fn new(inner: F, budget: Arc<Budget>, lane: &HeavyLane) -> Self {
        Metered {
            inner: Box::pin(inner),
            budget,
            lane: lane.0.clone(),
            acquiring: None,
        }
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Held for this poll only, so heavy runs take turns.
        let _permit = if self.budget.cpu_used() >= HEAVY_AFTER {
            let lane = self.lane.clone();
            let acquiring = self
                .acquiring
                .get_or_insert_with(|| Box::pin(async move { lane.acquire_owned().await.ok() }));
            let permit = ready!(acquiring.as_mut().poll(cx));
            self.acquiring = None;
            permit
        } else {
            None
        };
        let started = thread_cpu_ns();
        self.budget
            .poll_started_ns
            .store(started, Ordering::Relaxed);
        let result = self.inner.as_mut().poll(cx);
        self.budget.poll_started_ns.store(0, Ordering::Relaxed);
        self.budget
            .charge_cpu(thread_cpu_ns().saturating_sub(started));
        result
    }
}
