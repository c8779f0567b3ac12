//! Usage metering: what every run of every script costs, added up per script and
//! minute in memory (one short lock per run, no I/O) and written to the store in
//! batches by the server's flush task (`server.rs`). What is not flushed yet is still
//! counted: `GET /usage` adds it to what the store holds.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::metrics::Outcome;
use crate::store::{UsageCounters, UsageKey};

/// One finished run, as metering counts it.
pub struct RunCost {
    pub outcome: Outcome,
    pub cpu_us: u64,
    pub wall_us: u64,
    pub subrequests: u64,
    pub memory_bytes: u64,
}

/// Adds one run to `counters`.
fn add_run(counters: &mut UsageCounters, run: &RunCost) {
    counters.invocations += 1;
    match run.outcome {
        Outcome::Ok => {}
        Outcome::ScriptError => counters.script_error += 1,
        Outcome::ExceededCpu => counters.exceeded_cpu += 1,
        Outcome::ExceededMemory => counters.exceeded_memory += 1,
        Outcome::ExceededWallTime => counters.exceeded_wall_time += 1,
        Outcome::Overloaded => counters.overloaded += 1,
        Outcome::Canceled => counters.canceled += 1,
    }
    counters.cpu_us += run.cpu_us;
    counters.wall_us += run.wall_us;
    counters.subrequests += run.subrequests;
    counters.peak_memory_bytes = counters.peak_memory_bytes.max(run.memory_bytes);
}

#[derive(Default)]
pub struct UsageMeter {
    pending: Mutex<HashMap<UsageKey, UsageCounters>>,
}

impl UsageMeter {
    pub fn record(&self, key: UsageKey, run: &RunCost) {
        let mut pending = self.pending.lock().expect("usage lock");
        add_run(pending.entry(key).or_default(), run);
    }

    /// Everything counted since the last `take`, for the store.
    pub fn take(&self) -> HashMap<UsageKey, UsageCounters> {
        std::mem::take(&mut *self.pending.lock().expect("usage lock"))
    }

    /// Puts back what a failed flush took, so it is written next time.
    pub fn restore(&self, taken: HashMap<UsageKey, UsageCounters>) {
        let mut pending = self.pending.lock().expect("usage lock");
        for (key, counters) in taken {
            pending.entry(key).or_default().merge(&counters);
        }
    }

    /// What is not flushed yet, of the customer `customer_id` (`None`: everyone's), from
    /// minute `since` on.
    pub fn pending(&self, customer_id: Option<&str>, since: i64) -> Vec<(UsageKey, UsageCounters)> {
        let pending = self.pending.lock().expect("usage lock");
        pending
            .iter()
            .filter(|(key, _)| {
                key.minute >= since
                    && customer_id.is_none_or(|id| key.customer_id.as_deref() == Some(id))
            })
            .map(|(key, counters)| (key.clone(), *counters))
            .collect()
    }
}

/// The default start of a usage report: a day ago.
const DEFAULT_WINDOW_SECS: i64 = 24 * 3600;

/// `since` as the first minute (Unix seconds) of a report: Unix seconds, an RFC 3339
/// time (`2026-11-22T06:00:00Z`) or a span back from now (`90s`, `15m`, `2h`, `7d`);
/// a day ago when absent.
pub fn parse_since(since: Option<&str>, now: std::time::SystemTime) -> Result<i64, String> {
    let unix = |time: std::time::SystemTime| {
        time.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    let seconds = match since.map(str::trim) {
        None | Some("") => unix(now) - DEFAULT_WINDOW_SECS,
        Some(text) => {
            if let Ok(seconds) = text.parse::<i64>() {
                seconds
            } else if let Ok(time) = humantime::parse_rfc3339_weak(text) {
                unix(time)
            } else if let Ok(span) = humantime::parse_duration(text) {
                unix(now) - span.as_secs() as i64
            } else {
                return Err(format!(
                    "`since` must be Unix seconds, an RFC 3339 time or a span such as `2h` (got `{text}`)"
                ));
            }
        }
    };
    Ok(seconds.div_euclid(60) * 60)
}

/// Usage as reports show it: milliseconds, errors by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct UsageView {
    pub invocations: u64,
    pub errors: ErrorCounts,
    pub cpu_ms: f64,
    pub wall_ms: f64,
    pub subrequests: u64,
    pub peak_memory_bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorCounts {
    pub script_error: u64,
    pub exceeded_cpu: u64,
    pub exceeded_memory: u64,
    pub exceeded_wall_time: u64,
    pub overloaded: u64,
    /// Runs whose client went away before the whole response.
    pub canceled: u64,
}

impl From<UsageCounters> for UsageView {
    fn from(c: UsageCounters) -> UsageView {
        UsageView {
            invocations: c.invocations,
            errors: ErrorCounts {
                script_error: c.script_error,
                exceeded_cpu: c.exceeded_cpu,
                exceeded_memory: c.exceeded_memory,
                exceeded_wall_time: c.exceeded_wall_time,
                overloaded: c.overloaded,
                canceled: c.canceled,
            },
            cpu_ms: c.cpu_us as f64 / 1000.0,
            wall_ms: c.wall_us as f64 / 1000.0,
            subrequests: c.subrequests,
            peak_memory_bytes: c.peak_memory_bytes,
        }
    }
}

/// One minute of one script.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MinuteUsage {
    /// Unix seconds at the minute's start.
    pub minute: i64,
    #[serde(flatten)]
    pub usage: UsageView,
}

/// One script's (or, grouped by version, one version's) usage over the report's window.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ScriptUsage {
    pub script: String,
    pub namespace: String,
    pub customer_id: Option<String>,
    /// The version, when grouped by version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// What started the runs (`fetch`, `scheduled`), when grouped by event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'static str>,
    pub total: UsageView,
    pub minutes: Vec<MinuteUsage>,
}

/// How usage rows are grouped: per script, or per script and version, or per script and
/// event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    Script,
    Version,
    Event,
}

/// Rows (stored and pending; the same key may come twice) grouped per script (and per
/// version or event), minutes in order.
pub fn per_script(rows: Vec<(UsageKey, UsageCounters)>, by: Grouping) -> Vec<ScriptUsage> {
    type Group = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<&'static str>,
    );
    let mut merged: std::collections::BTreeMap<
        Group,
        std::collections::BTreeMap<i64, UsageCounters>,
    > = Default::default();
    for (key, counters) in rows {
        let version = (by == Grouping::Version).then_some(key.version);
        let event = (by == Grouping::Event).then_some(key.event);
        merged
            .entry((key.namespace, key.script, key.customer_id, version, event))
            .or_default()
            .entry(key.minute)
            .or_default()
            .merge(&counters);
    }
    merged
        .into_iter()
        .map(
            |((namespace, script, customer_id, version_id, event), minutes)| {
                let mut total = UsageCounters::default();
                for counters in minutes.values() {
                    total.merge(counters);
                }
                ScriptUsage {
                    script,
                    namespace,
                    customer_id,
                    version_id,
                    event,
                    total: total.into(),
                    minutes: minutes
                        .into_iter()
                        .map(|(minute, counters)| MinuteUsage {
                            minute,
                            usage: counters.into(),
                        })
                        .collect(),
                }
            },
        )
        .collect()
}
