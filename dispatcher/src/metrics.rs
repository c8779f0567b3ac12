//! Process-wide counters, rendered in the Prometheus text format at `GET /metrics`.
//! Counters are plain atomics: incrementing one on the request path costs one
//! uncontended atomic add.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
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
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::ScriptError,
        Outcome::ExceededCpu,
        Outcome::ExceededMemory,
        Outcome::ExceededWallTime,
        Outcome::Overloaded,
    ];

    /// The status a client gets for a run that ended so, when the script set none.
    pub fn status(self) -> Option<u16> {
        match self {
            Outcome::Ok => None,
            Outcome::ScriptError => Some(500),
            Outcome::ExceededCpu
            | Outcome::ExceededMemory
            | Outcome::ExceededWallTime
            | Outcome::Overloaded => Some(503),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ScriptError => "script_error",
            Outcome::ExceededCpu => "exceeded_cpu",
            Outcome::ExceededMemory => "exceeded_memory",
            Outcome::ExceededWallTime => "exceeded_wall_time",
            Outcome::Overloaded => "overloaded",
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    pub compiles: Counter,
    pub artifact_cache_hits: Counter,
    pub artifact_rebuilds: Counter,
    requests: [Counter; Outcome::ALL.len()],
    pub scripts_loaded: AtomicU64,
}

impl Metrics {
    pub fn request(&self, outcome: Outcome) {
        let i = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.requests[i].inc();
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
            "Components compiled by this process (uploads and artifact rebuilds).",
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
        let _ = writeln!(
            out,
            "# HELP dispatcher_requests_total Dispatched requests by outcome.\n\
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
            "# HELP dispatcher_scripts_loaded Scripts ready to serve.\n\
             # TYPE dispatcher_scripts_loaded gauge\ndispatcher_scripts_loaded {}",
            self.scripts_loaded.load(Ordering::Relaxed)
        );
        out
    }
}
