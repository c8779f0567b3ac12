//! Process-wide counters, rendered in the Prometheus text format at `GET /metrics`.
//! Counters are plain atomics: incrementing one on the request path costs one
//! uncontended atomic add.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.inc_by(1);
    }
    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How a dispatched request ended; also the `outcome` label of request counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    ScriptError,
    ExceededCpu,
    ExceededMemory,
    ExceededWallTime,
    Overloaded,
    /// The client went away before the whole response; never a status.
    Canceled,
}

impl Outcome {
    const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::ScriptError,
        Outcome::ExceededCpu,
        Outcome::ExceededMemory,
        Outcome::ExceededWallTime,
        Outcome::Overloaded,
        Outcome::Canceled,
    ];

    /// The status a client gets for a run that ended so, when the script set none.
    pub fn status(self) -> Option<u16> {
        match self {
            Outcome::Ok | Outcome::Canceled => None,
            Outcome::ScriptError => Some(500),
            Outcome::ExceededCpu
            | Outcome::ExceededMemory
            | Outcome::ExceededWallTime
            | Outcome::Overloaded => Some(503),
        }
    }

    fn index(self) -> usize {
        Outcome::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ScriptError => "script_error",
            Outcome::ExceededCpu => "exceeded_cpu",
            Outcome::ExceededMemory => "exceeded_memory",
            Outcome::ExceededWallTime => "exceeded_wall_time",
            Outcome::Overloaded => "overloaded",
            Outcome::Canceled => "canceled",
        }
    }
}

/// Upper bounds, in seconds, of the run-duration histogram's buckets.
const DURATION_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0,
];

/// A Prometheus histogram of run durations, in atomics.
#[derive(Default)]
struct DurationHistogram {
    /// Runs at or under each bound (not cumulative; summed when rendered).
    buckets: [Counter; DURATION_BOUNDS.len()],
    count: Counter,
    sum_us: AtomicU64,
}

#[derive(Default)]
pub struct Metrics {
    pub compiles: Counter,
    pub artifact_cache_hits: Counter,
    pub artifact_rebuilds: Counter,
    /// Functions the compiled-function cache gave compiles, and functions it lacked.
    pub code_cache_hits: Counter,
    pub code_cache_misses: Counter,
    /// Components moved from the baseline tier to the optimized one, and tries that failed.
    pub tier_ups: Counter,
    pub tier_up_failures: Counter,
    requests: [Counter; Outcome::ALL.len()],
    /// Of those, the runs of Cron Triggers.
    scheduled: [Counter; Outcome::ALL.len()],
    pub scripts_loaded: AtomicU64,
    durations: DurationHistogram,
    /// Runs of versions under a split, by (namespace, script, version) and outcome.
    split_runs:
        std::sync::Mutex<std::collections::BTreeMap<(String, String, String), Arc<OutcomeCounts>>>,
}

/// Runs of one version, by outcome.
#[derive(Default)]
pub struct OutcomeCounts([Counter; Outcome::ALL.len()]);

impl OutcomeCounts {
    pub fn add(&self, outcome: Outcome) {
        self.0[outcome.index()].inc();
    }
}

impl Metrics {
    pub fn request(&self, outcome: Outcome) {
        self.requests[outcome.index()].inc();
    }

    /// A run of a Cron Trigger (counted in `request` too).
    pub fn scheduled_run(&self, outcome: Outcome) {
        self.scheduled[outcome.index()].inc();
    }

    /// The counters of `version` of a script whose live deployment splits traffic (its
    /// runs add to them without a lock). Only versions under a split are counted apart,
    /// so the series stay as few as the scripts mid-rollout (those of a split that ended
    /// stay until a restart).
    pub fn split_counts(&self, namespace: &str, script: &str, version: &str) -> Arc<OutcomeCounts> {
        let key = (namespace.into(), script.into(), version.into());
        self.split_runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(key)
            .or_default()
            .clone()
    }

    /// A finished run took `wall` from start to its last instruction.
    pub fn run_duration(&self, wall: std::time::Duration) {
        let seconds = wall.as_secs_f64();
        if let Some(i) = DURATION_BOUNDS.iter().position(|bound| seconds <= *bound) {
            self.durations.buckets[i].inc();
        }
        self.durations.count.inc();
        self.durations
            .sum_us
            .fetch_add(wall.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "dispatcher_compiles_total",
            "Components compiled by this process (uploads, tier-ups and artifact rebuilds).",
            self.compiles.get(),
        );
        counter(
            "dispatcher_artifact_cache_hits_total",
            "Compiled artifacts loaded from disk without compiling.",
            self.artifact_cache_hits.get(),
        );
        counter(
            "dispatcher_artifact_rebuilds_total",
            "Artifacts found missing, corrupted or incompatible and rebuilt.",
            self.artifact_rebuilds.get(),
        );
        counter(
            "dispatcher_code_cache_hits_total",
            "Functions whose compiled code a compile took from the compiled-function cache.",
            self.code_cache_hits.get(),
        );
        counter(
            "dispatcher_code_cache_misses_total",
            "Functions compiled because the compiled-function cache lacked them.",
            self.code_cache_misses.get(),
        );
        counter(
            "dispatcher_tier_ups_total",
            "Components first served by the baseline tier, now by their optimized artifact.",
            self.tier_ups.get(),
        );
        counter(
            "dispatcher_tier_up_failures_total",
            "Optimized compiles of baseline-tier components that failed (they stay baseline).",
            self.tier_up_failures.get(),
        );
        let _ = writeln!(
            out,
            "# HELP dispatcher_requests_total Script runs (dispatched requests and the calls they make to other scripts) by how they ended.\n\
             # TYPE dispatcher_requests_total counter"
        );
        for (outcome, count) in Outcome::ALL.iter().zip(&self.requests) {
            let _ = writeln!(
                out,
                "dispatcher_requests_total{{outcome=\"{}\"}} {}",
                outcome.as_str(),
                count.get()
            );
        }
        let _ = writeln!(
            out,
            "# HELP dispatcher_scheduled_runs_total Runs of Cron Triggers (among dispatcher_requests_total) by how they ended.\n\
             # TYPE dispatcher_scheduled_runs_total counter"
        );
        for (outcome, count) in Outcome::ALL.iter().zip(&self.scheduled) {
            let _ = writeln!(
                out,
                "dispatcher_scheduled_runs_total{{outcome=\"{}\"}} {}",
                outcome.as_str(),
                count.get()
            );
        }
        let _ = writeln!(
            out,
            "# HELP dispatcher_scripts_loaded Scripts ready to serve.\n\
             # TYPE dispatcher_scripts_loaded gauge\ndispatcher_scripts_loaded {}",
            self.scripts_loaded.load(Ordering::Relaxed)
        );
        let name = "dispatcher_run_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Wall time of script runs, from instantiation to the guest's return.\n\
             # TYPE {name} histogram"
        );
        let mut cumulative = 0;
        for (bound, bucket) in DURATION_BOUNDS.iter().zip(&self.durations.buckets) {
            cumulative += bucket.get();
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.durations.count.get();
        let sum = self.durations.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
        self.render_split_runs(&mut out);
        out
    }

    fn render_split_runs(&self, out: &mut String) {
        let name = "dispatcher_split_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} Runs of each version of the scripts whose live deployment splits traffic between two versions, by how they ended.\n\
             # TYPE {name} counter"
        );
        let runs = self
            .split_runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Names are `[a-z0-9-]` and version ids hex: nothing to escape.
        for ((namespace, script, version), counts) in runs.iter() {
            for (outcome, count) in Outcome::ALL.iter().zip(&counts.0) {
                let _ = writeln!(
                    out,
                    "{name}{{namespace=\"{namespace}\",script=\"{script}\",version=\"{version}\",outcome=\"{}\"}} {}",
                    outcome.as_str(),
                    count.get()
                );
            }
        }
    }

    /// Gauges of the engine's instance pool: instances and linear memories in use, and
    /// the bytes it keeps resident in unused slots.
    pub fn render_pool(out: &mut String, instances: u64, memories: usize, idle_resident: usize) {
        let _ = writeln!(
            out,
            "# HELP dispatcher_instances_in_use Component instances alive in the pooling allocator.\n\
             # TYPE dispatcher_instances_in_use gauge\ndispatcher_instances_in_use {instances}\n\
             # HELP dispatcher_memories_in_use Linear memories alive in the pooling allocator.\n\
             # TYPE dispatcher_memories_in_use gauge\ndispatcher_memories_in_use {memories}\n\
             # HELP dispatcher_pool_idle_resident_bytes Memory the pooling allocator keeps resident in slots no instance uses (counted in the guest-memory budget).\n\
             # TYPE dispatcher_pool_idle_resident_bytes gauge\ndispatcher_pool_idle_resident_bytes {idle_resident}"
        );
    }
}
