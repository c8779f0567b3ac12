//! Live tails: one event per finished run of a script, to whoever listens — a customer
//! following one of its scripts (`GET /script/{name}/tail`) or the operator following
//! one script or all (`dispatcher tail`). When nobody listens, a run pays one atomic
//! load; events are built only for scripts someone follows.
//!
//! A customer's tail is keyed by the script's owner as well as its name, so a script
//! deleted and re-created under the same name by another customer never reaches it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use super::LoadedScript;

/// Events a slow listener may fall behind by before it misses some (and is told).
const BACKLOG: usize = 256;

/// What one run did, as a tail shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TailEvent {
    /// The id a client is shown when the run fails.
    pub request_id: String,
    /// When the run began (RFC 3339, UTC).
    pub time: String,
    pub script: String,
    pub namespace: String,
    /// The version that ran.
    pub version_id: String,
    /// What started the run: `fetch` or `scheduled`.
    pub event: &'static str,
    #[serde(skip)]
    pub customer_id: Option<String>,
    /// The request's method and path; for a scheduled run `SCHEDULED` and the cron.
    pub method: String,
    pub path: String,
    /// The status the client got; `None` when it got none (the connection was cut).
    pub status: Option<u16>,
    pub outcome: &'static str,
    pub cpu_ms: f64,
    pub wall_ms: f64,
    pub subrequests: u32,
    pub memory_bytes: u64,
    /// The script's console output and log lines.
    pub logs: Vec<String>,
    /// Why the run failed, in full (trap text, backtrace); `None` when it did not.
    pub error: Option<String>,
}

/// Which runs a listener follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TailScope {
    /// One script of one owner (`None`: the platform's).
    Script {
        namespace: String,
        name: String,
        customer_id: Option<String>,
    },
    /// Every script (the operator).
    All,
}

impl TailScope {
    fn of(script: &LoadedScript) -> TailScope {
        TailScope::Script {
            namespace: script.namespace.clone(),
            name: script.name.clone(),
            customer_id: script.customer_id.clone(),
        }
    }
}

#[derive(Default)]
pub struct TailHub {
    listeners: AtomicUsize,
    channels: Mutex<HashMap<TailScope, broadcast::Sender<Arc<TailEvent>>>>,
}

/// A listener's end: events arrive on `events`; dropping it stops the tail.
pub struct Tail {
    pub events: broadcast::Receiver<Arc<TailEvent>>,
    hub: Arc<TailHub>,
    scope: TailScope,
}

impl TailHub {
    /// Whether anyone follows `script` (cheap when nobody tails at all).
    pub fn follows(&self, script: &LoadedScript) -> bool {
        if self.listeners.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let channels = self.channels.lock().expect("tail lock");
        channels.contains_key(&TailScope::All) || channels.contains_key(&TailScope::of(script))
    }

    /// Starts following `scope`.
    pub fn subscribe(self: &Arc<Self>, scope: TailScope) -> Tail {
        let mut channels = self.channels.lock().expect("tail lock");
        let events = channels
            .entry(scope.clone())
            .or_insert_with(|| broadcast::channel(BACKLOG).0)
            .subscribe();
        self.listeners.fetch_add(1, Ordering::Relaxed);
        Tail {
            events,
            hub: self.clone(),
            scope,
        }
    }

    /// Hands `event` of `script`'s run to its listeners and the operator's.
    pub fn publish(&self, script: &LoadedScript, event: TailEvent) {
        let event = Arc::new(event);
        let channels = self.channels.lock().expect("tail lock");
        for scope in [TailScope::of(script), TailScope::All] {
            if let Some(sender) = channels.get(&scope) {
                let _ = sender.send(event.clone());
            }
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let mut channels = self.hub.channels.lock().expect("tail lock");
        self.hub.listeners.fetch_sub(1, Ordering::Relaxed);
        // This receiver is still alive here, so the last listener sees a count of 1.
        if channels
            .get(&self.scope)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            channels.remove(&self.scope);
        }
    }
}
