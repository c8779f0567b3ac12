//! CPU time of guests: measuring it and sharing the cores fairly.
//!
//! [`Metered`] wraps a run's future: the thread CPU time of every poll is charged to the
//! run's budget (time parked on I/O is never charged). It also keeps CPU-heavy runs from
//! crowding out everyone else: once a run has used `HEAVY_AFTER` of CPU, each further
//! poll first takes a permit of the [`HeavyLane`], which has one fewer permit than the
//! machine has cores (at least one). Light requests — almost all — never wait, so a
//! tenant spinning at its CPU limit on every connection leaves at least one core to the
//! others; heavy runs take turns in the lane at every epoch tick. While light runs are in
//! flight, the lane owes idle time for every heavy poll, as long as the poll ran, so heavy
//! work gets at most half of the lane's cores then and light requests keep most of the
//! machine. The debt is paid in one go once it reaches the timer's resolution: a permit
//! held idle for the whole debt. (Paid per poll, a poll of 50 µs would idle its permit for
//! a whole millisecond tick, and a run of many short polls, such as one calling other
//! scripts, would crawl at a twentieth of its share.)
//!
//! Whether a run is heavy is also judged by its script's history ([`CpuHistory`]): a
//! script whose recent runs used more than `HEAVY_AFTER` each starts its next runs in
//! the lane. A run's first poll cannot be interrupted inside one bulk-memory instruction
//! (a `memory.fill` over a large memory), so without this every new run of a script
//! doing that would take a core in its first poll however many such runs there are.
//! A script called by another (a service binding) runs inside its caller's budget, so it
//! starts in the lane when its caller is heavy already.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::limits::Budget;

/// CPU a run may use before its polls go through the heavy lane.
const HEAVY_AFTER: Duration = Duration::from_millis(2);

/// The least idle time the lane pays at once: tokio's timer resolution.
const IDLE_QUANTUM: Duration = Duration::from_millis(1);

/// The calling thread's CPU clock, in nanoseconds (never 0).
pub fn thread_cpu_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64).max(1)
}

/// The CPU its recent runs used, per run: an exponentially weighted average over runs.
#[derive(Default)]
pub struct CpuHistory {
    average_ns: AtomicU64,
}

impl CpuHistory {
    fn is_heavy(&self) -> bool {
        self.average_ns.load(Ordering::Relaxed) >= HEAVY_AFTER.as_nanos() as u64
    }

    /// Adds one run's CPU to the average (weight 1/4: a few light runs make the script
    /// light again).
    fn record(&self, ran: Duration) {
        let ran = ran.as_nanos().min(u64::MAX as u128) as u64;
        let _ = self
            .average_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |average| {
                Some(average - average / 4 + ran / 4)
            });
    }
}

/// The cores CPU-heavy runs may occupy at once, and how many light runs are in flight.
pub struct HeavyLane {
    permits: Arc<Semaphore>,
    light_runs: Arc<AtomicUsize>,
    idle_owed: Arc<IdleOwed>,
}

/// CPU that heavy polls used while light runs were in flight, not yet paid back as idle
/// lane time.
#[derive(Default)]
struct IdleOwed {
    ns: AtomicU64,
}

impl IdleOwed {
    /// Adds a heavy poll's `ran`; the whole debt when it has reached [`IDLE_QUANTUM`]
    /// (the caller pays it), else `None`.
    fn add(&self, ran: u64) -> Option<Duration> {
        let owed = self.ns.fetch_add(ran, Ordering::Relaxed) + ran;
        if owed < IDLE_QUANTUM.as_nanos() as u64 {
            return None;
        }
        // Another poll may have taken the debt meanwhile; pay what is left of it.
        let taken = self.ns.swap(0, Ordering::Relaxed);
        (taken > 0).then(|| Duration::from_nanos(taken))
    }
}

impl HeavyLane {
    /// One fewer permit than the machine has cores, and at least one.
    pub fn for_this_machine() -> HeavyLane {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        HeavyLane {
            permits: Arc::new(Semaphore::new(cores.saturating_sub(1).max(1))),
            light_runs: Arc::default(),
            idle_owed: Arc::default(),
        }
    }
}

/// Counts one run as light for as long as it lives.
struct LightRun(Arc<AtomicUsize>);

impl LightRun {
    fn new(count: &Arc<AtomicUsize>) -> LightRun {
        count.fetch_add(1, Ordering::Relaxed);
        LightRun(count.clone())
    }
}

impl Drop for LightRun {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

type Acquiring = Pin<Box<dyn Future<Output = Option<OwnedSemaphorePermit>> + Send>>;

/// A guest's future, metered (see the module docs).
pub struct Metered<F> {
    inner: Pin<Box<F>>,
    budget: Arc<Budget>,
    history: Arc<CpuHistory>,
    permits: Arc<Semaphore>,
    light_runs: Arc<AtomicUsize>,
    idle_owed: Arc<IdleOwed>,
    /// `Some` until the run turns heavy.
    light: Option<LightRun>,
    acquiring: Option<Acquiring>,
}

impl<F: Future> Metered<F> {
    /// Meters a run of a script with `history`.
    pub fn new(inner: F, budget: Arc<Budget>, lane: &HeavyLane, history: Arc<CpuHistory>) -> Self {
        // A run inside a heavy budget (a call made by a heavy run) is heavy from the start.
        let light = (!history.is_heavy() && budget.cpu_used() < HEAVY_AFTER)
            .then(|| LightRun::new(&lane.light_runs));
        Metered {
            inner: Box::pin(inner),
            budget,
            history,
            permits: lane.permits.clone(),
            light,
            light_runs: lane.light_runs.clone(),
            idle_owed: lane.idle_owed.clone(),
            acquiring: None,
        }
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Held for this poll only, so heavy runs take turns.
        let permit = if self.light.is_none() || self.budget.cpu_used() >= HEAVY_AFTER {
            self.light = None;
            let permits = self.permits.clone();
            let acquiring = self
                .acquiring
                .get_or_insert_with(|| Box::pin(async move { permits.acquire_owned().await.ok() }));
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
        let ran = thread_cpu_ns().saturating_sub(started);
        self.budget.charge_cpu(ran);
        if let Some(permit) = permit
            && self.light_runs.load(Ordering::Relaxed) > 0
            && let Some(idle) = self.idle_owed.add(ran)
        {
            // Light work is waiting: leave the lane idle as long as heavy polls used it.
            tokio::spawn(async move {
                tokio::time::sleep(idle).await;
                drop(permit);
            });
        }
        result
    }
}

impl<F> Drop for Metered<F> {
    fn drop(&mut self) {
        self.history.record(self.budget.cpu_used());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_debt_is_paid_whole_once_it_reaches_the_timer_resolution() {
        let owed = IdleOwed::default();
        let quarter = IDLE_QUANTUM.as_nanos() as u64 / 4;
        for _ in 0..3 {
            assert_eq!(owed.add(quarter), None);
        }
        assert_eq!(
            owed.add(quarter * 2),
            Some(Duration::from_nanos(quarter * 5))
        );
        // Paid: a new debt starts from nothing.
        assert_eq!(owed.add(quarter), None);
        // A single long poll pays its own time.
        assert_eq!(
            owed.add(quarter * 8),
            Some(Duration::from_nanos(quarter * 9))
        );
    }
}
