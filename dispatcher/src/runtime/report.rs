//! The report of one run, put together from its two sides — the request side learns the
//! status the client got (or the failure it got instead), the run's own task learns the
//! outcome, CPU, memory, subrequests and console lines — and delivered when the second
//! of them is done with it (the report is shared, and sent when dropped): to usage
//! metering always, and as a tail event when someone follows the script. Every run has a
//! request id, the one its client is shown when the run fails; the tail event carries it
//! with the failure's detail, which the client never sees.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::invoke::InvokeError;
use super::limits::Budget;
use super::tail::TailEvent;
use super::usage::RunCost;
use super::{LoadedScript, Runtime};
use crate::metrics::Outcome;
use crate::store::UsageKey;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An HTTP request (from outside, or another script's call).
    Fetch,
    /// A Cron Trigger's fire (or its manual trigger).
    Scheduled,
    /// A batch of a queue, delivered to its consumer.
    Queue,
    /// A typed call from another script.
    Rpc,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Fetch => "fetch",
            Event::Scheduled => "scheduled",
            Event::Queue => "queue",
            Event::Rpc => "rpc",
        }
    }
}

pub struct RunReport {
    /// Names the run in the tail and the server log, and to a client it failed.
    pub request_id: Arc<str>,
    runtime: Arc<Runtime>,
    script: Arc<LoadedScript>,
    event: Event,
    began: SystemTime,
    started: Instant,
    /// Method and path, kept only when someone tails the script.
    request: Option<(String, String)>,
    state: Mutex<Sides>,
}

#[derive(Default)]
struct Sides {
    /// The status of the response the script set.
    status: Option<u16>,
    /// Why the client got no response from the script, as the request side saw it.
    request_failure: Option<(Outcome, String)>,
    finished: Option<Finished>,
}

/// What the run's task knows when the guest is done.
struct Finished {
    /// The outcome and the detail of a failure.
    failure: Option<(Outcome, String)>,
    cpu_us: u64,
    wall_us: u64,
    subrequests: u32,
    memory_bytes: u64,
    logs: Vec<String>,
}

impl RunReport {
    /// The report of a run of `script` for `request`, starting now.
    pub fn new<B>(
        runtime: &Arc<Runtime>,
        script: &Arc<LoadedScript>,
        request: &hyper::Request<B>,
    ) -> Arc<RunReport> {
        RunReport::for_event(runtime, script, Event::Fetch, || {
            (
                request.method().to_string(),
                request.uri().path().to_string(),
            )
        })
    }

    /// The report of a run of `script` for `event`, starting now; `described` is what
    /// the tail shows as its method and path (asked only when someone tails it).
    pub fn for_event(
        runtime: &Arc<Runtime>,
        script: &Arc<LoadedScript>,
        event: Event,
        described: impl FnOnce() -> (String, String),
    ) -> Arc<RunReport> {
        let tailed = runtime.tails.follows(script);
        Arc::new(RunReport {
            request_id: format!("{:016x}", rand::random::<u64>()).into(),
            runtime: runtime.clone(),
            script: script.clone(),
            event,
            began: SystemTime::now(),
            started: Instant::now(),
            request: tailed.then(described),
            state: Mutex::default(),
        })
    }

    /// Whether the console lines are wanted (someone tails the script).
    pub fn wants_logs(&self) -> bool {
        self.request.is_some()
    }

    /// The request side: the script answered with `status`.
    pub fn answered(&self, status: u16) {
        self.state.lock().expect("report lock").status = Some(status);
    }

    /// The request side: the client got `failure` instead of the script's answer.
    pub fn failed(&self, failure: &InvokeError) {
        self.state.lock().expect("report lock").request_failure = Some(described(failure));
    }

    /// The run's task: the guest is done, with `failure` if it failed.
    pub fn finished(&self, failure: Option<&InvokeError>, budget: &Budget, logs: Vec<String>) {
        self.finish(failure.map(described), budget, logs);
    }

    /// The run's task: the guest was dropped because its client went away.
    pub fn canceled(&self, budget: &Budget, logs: Vec<String>) {
        let detail = "the client went away before the response was complete";
        self.finish(Some((Outcome::Canceled, detail.into())), budget, logs);
    }

    fn finish(&self, failure: Option<(Outcome, String)>, budget: &Budget, logs: Vec<String>) {
        let finished = Finished {
            failure,
            cpu_us: budget.cpu_used().as_micros() as u64,
            wall_us: self.started.elapsed().as_micros() as u64,
            subrequests: budget.subrequests_used(),
            memory_bytes: budget.memory_used() as u64,
            logs,
        };
        self.state.lock().expect("report lock").finished = Some(finished);
    }
}

impl Drop for RunReport {
    fn drop(&mut self) {
        let sides = std::mem::take(self.state.get_mut().expect("report lock"));
        let Some(finished) = sides.finished else {
            // The run never started: it was not admitted (`overloaded`), the request
            // could not be handed to the guest, or, neither said, its client went away
            // while it waited for its place.
            let outcome = sides
                .request_failure
                .map_or(Outcome::Canceled, |(outcome, _)| outcome);
            self.count(outcome);
            return;
        };
        let (outcome, error) = finished
            .failure
            .or(sides.request_failure)
            .map_or((Outcome::Ok, None), |(outcome, detail)| {
                (outcome, Some(detail))
            });
        // One outcome for every view of the run: metrics, usage and tail agree.
        self.count(outcome);
        if let Some(split_runs) = &self.script.split_runs {
            split_runs.add(outcome);
        }
        self.runtime
            .metrics
            .run_duration(std::time::Duration::from_micros(finished.wall_us));
        let minute = self
            .began
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64 / 60 * 60);
        self.runtime.usage.record(
            UsageKey {
                namespace: self.script.namespace.clone(),
                script: self.script.name.clone(),
                customer_id: self.script.customer_id.clone(),
                version: self.script.version_id.clone(),
                event: self.event.as_str(),
                minute,
            },
            &RunCost {
                outcome,
                cpu_us: finished.cpu_us,
                wall_us: finished.wall_us,
                subrequests: u64::from(finished.subrequests),
                memory_bytes: finished.memory_bytes,
            },
        );
        let Some((method, path)) = self.request.take() else {
            return;
        };
        let status = sides.status.or_else(|| outcome.status());
        self.runtime.tails.publish(
            &self.script,
            TailEvent {
                request_id: self.request_id.to_string(),
                time: humantime::format_rfc3339_millis(self.began).to_string(),
                script: self.script.name.clone(),
                namespace: self.script.namespace.clone(),
                version_id: self.script.version_id.clone(),
                event: self.event.as_str(),
                customer_id: self.script.customer_id.clone(),
                method,
                path,
                status,
                outcome: outcome.as_str(),
                cpu_ms: finished.cpu_us as f64 / 1000.0,
                wall_ms: finished.wall_us as f64 / 1000.0,
                subrequests: finished.subrequests,
                memory_bytes: finished.memory_bytes,
                logs: finished.logs,
                error,
            },
        );
    }
}

impl RunReport {
    /// The run in the metrics' counters of outcomes.
    fn count(&self, outcome: Outcome) {
        self.runtime.metrics.request(outcome);
        if self.event == Event::Scheduled {
            self.runtime.metrics.scheduled_run(outcome);
        }
    }
}

fn described(failure: &InvokeError) -> (Outcome, String) {
    (failure.outcome(), failure.to_string())
}
