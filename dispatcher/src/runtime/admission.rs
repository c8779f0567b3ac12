//! Fair admission to the sandbox: every tenant — a customer, or one of the platform's
//! own scripts — may have at most `per_tenant` requests running at once out of the
//! server's `max_instances`, so one tenant flooding the server (slow requests, thousands
//! of connections on a CPU-bound script) fills its own share and the others still get
//! in. A request over its tenant's share waits in a first-come queue for up to
//! `queue_wait`, then is refused (`503 overloaded` with `Retry-After`). Only a request
//! from outside counts: the scripts it calls run inside its admission.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::LoadedScript;

/// Who a run is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Tenant {
    Customer(String),
    /// A script of the platform namespace: each is its own tenant.
    Platform(String),
}

impl Tenant {
    fn of(script: &LoadedScript) -> Tenant {
        match &script.customer_id {
            Some(customer) => Tenant::Customer(customer.clone()),
            None => Tenant::Platform(script.name.clone()),
        }
    }
}

pub struct Admission {
    per_tenant: usize,
    queue_wait: Duration,
    /// The share of each tenant with requests running or waiting; dropped when idle.
    shares: Mutex<HashMap<Tenant, Arc<Semaphore>>>,
}

/// A request's place in its tenant's share, held until its run is over.
pub struct Admitted {
    admission: Arc<Admission>,
    tenant: Tenant,
    permit: Option<OwnedSemaphorePermit>,
}

impl Admission {
    pub fn new(per_tenant: usize, queue_wait: Duration) -> Admission {
        Admission {
            per_tenant: per_tenant.max(1),
            queue_wait,
            shares: Mutex::default(),
        }
    }

    /// A place for a request to `script`, waiting up to the queue time; `None` when its
    /// tenant's share stayed full.
    pub async fn admit(self: &Arc<Self>, script: &LoadedScript) -> Option<Admitted> {
        let tenant = Tenant::of(script);
        let share = self
            .lock()
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
            .clone();
        let permit = match share.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => tokio::time::timeout(self.queue_wait, share.acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
        };
        let admitted = Admitted {
            admission: self.clone(),
            tenant,
            permit,
        };
        // Refused: dropping `admitted` forgets the share if nobody else holds it.
        admitted.permit.is_some().then_some(admitted)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Tenant, Arc<Semaphore>>> {
        self.shares.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut shares = self.admission.lock();
        // Only the map holds the share: no request of this tenant runs or waits.
        if shares
            .get(&self.tenant)
            .is_some_and(|share| Arc::strong_count(share) == 1)
        {
            shares.remove(&self.tenant);
        }
    }
}
