//! `queue` bindings: queues of the script's customer (`platform:worker/queue`, a
//! `producer` resource opened by binding name). Every message is keyed by (owner, queue),
//! the owner being the calling script's customer, so a queue name never reaches another
//! customer's messages, and a consumer (`crate::queues`) only ever gets its own
//! customer's. Bounded as Cloudflare Queues: a message is at most 128 KiB, a batch at
//! most 100 messages, a delay at most 12 hours; a queue holds at most
//! `max_queue_backlog` messages and a customer's queues at most
//! `max_queue_bytes_per_customer` bytes (config). The store is `store.rs`.

mod store;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use platform_names::valid_name;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::platform::worker::queue::{Host as QueueHost, HostProducer, Producer, SendOptions};
use super::platform::worker::types::Error as BindingError;
use super::{OwnedResources, ResourceBinding};
use crate::store::sqlite_is_full;
pub use store::{QueueCaps, QueueStats, QueueStore, SendError, StoredMessage};

/// Largest message body, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 128 << 10;
/// Most messages in one `send-batch`.
pub const MAX_BATCH_MESSAGES: usize = 100;
/// Longest delay, in seconds.
pub const MAX_DELAY_SECONDS: u32 = 12 * 60 * 60;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The `queue` binding unit: `{"type": "queue", "name": "JOBS", "queue_name": "jobs"}`;
/// the queue is the owner's own and comes into being with its first message.
pub const QUEUE: ResourceBinding = ResourceBinding {
    kind: "queue",
    field: "queue_name",
    valid: valid_name,
    rule: "use 1-63 of a-z, 0-9 and -",
    resources: |bindings| &mut bindings.queues,
};

/// The queues every run can send to: the store and its bounds.
pub struct Queues {
    pub store: QueueStore,
    pub caps: QueueCaps,
}

/// One run's view of queues: the store and the script's queue bindings.
pub struct QueueCtx {
    queues: Arc<Queues>,
    bindings: OwnedResources,
}

impl QueueCtx {
    pub fn new(queues: &Arc<Queues>, bindings: &OwnedResources) -> QueueCtx {
        QueueCtx {
            queues: queues.clone(),
            bindings: bindings.clone(),
        }
    }
}

/// An opened producer: the customer queue its binding named.
pub struct ProducerHandle {
    queue: String,
}

/// What the `queue` interface is linked with: this run's queue context and resources.
pub struct QueueView<'a> {
    pub ctx: &'a mut QueueCtx,
    pub table: &'a mut ResourceTable,
}

struct HasQueue;

impl HasData for HasQueue {
    type Data<'a> = QueueView<'a>;
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> QueueView<'_>,
) -> wasmtime::Result<()> {
    super::platform::worker::queue::add_to_linker::<T, HasQueue>(linker, get)
}

impl QueueView<'_> {
    /// Checks and stores `bodies` for the queue of `producer`, off the async threads.
    async fn send(
        &mut self,
        producer: &Resource<Producer>,
        bodies: Vec<Vec<u8>>,
        options: SendOptions,
    ) -> Result<(), BindingError> {
        if let Some(large) = bodies.iter().find(|b| b.len() > MAX_MESSAGE_BYTES) {
            return Err(BindingError::LimitExceeded(format!(
                "a message is at most {MAX_MESSAGE_BYTES} bytes; this one is {}",
                large.len()
            )));
        }
        let delay = options.delay_seconds.unwrap_or(0);
        if delay > MAX_DELAY_SECONDS {
            return Err(BindingError::Invalid(format!(
                "delay-seconds is at most {MAX_DELAY_SECONDS}"
            )));
        }
        let queue = self
            .table
            .get(producer)
            .map_err(|e| BindingError::Internal(e.to_string()))?
            .queue
            .clone();
        let queues = self.ctx.queues.clone();
        let owner = self.ctx.bindings.owner.to_string();
        tokio::task::spawn_blocking(move || {
            let now = now_ms();
            let visible = now + i64::from(delay) * 1000;
            queues
                .store
                .send((&owner, &queue), &bodies, now, visible, queues.caps)
        })
        .await
        .map_err(|e| BindingError::Internal(e.to_string()))?
        .map_err(send_error)
    }
}

fn send_error(error: SendError) -> BindingError {
    match error {
        full @ (SendError::BacklogFull { .. } | SendError::OwnerFull { .. }) => {
            BindingError::LimitExceeded(full.to_string())
        }
        SendError::Sqlite(error) if sqlite_is_full(&error) => {
            BindingError::LimitExceeded("the platform's storage is full; nothing was sent".into())
        }
        SendError::Sqlite(error) => {
            tracing::error!(%error, "queue store error");
            BindingError::Internal("the queue store failed".into())
        }
    }
}

impl QueueHost for QueueView<'_> {}

impl HostProducer for QueueView<'_> {
    async fn open(&mut self, binding: String) -> Result<Resource<Producer>, BindingError> {
        let queue = self.ctx.bindings.get(QUEUE.kind, &binding)?.to_string();
        self.table
            .push(ProducerHandle { queue })
            .map_err(|e| BindingError::Internal(e.to_string()))
    }

    async fn send(
        &mut self,
        producer: Resource<Producer>,
        body: Vec<u8>,
        options: SendOptions,
    ) -> Result<(), BindingError> {
        QueueView::send(self, &producer, vec![body], options).await
    }

    async fn send_batch(
        &mut self,
        producer: Resource<Producer>,
        bodies: Vec<Vec<u8>>,
        options: SendOptions,
    ) -> Result<(), BindingError> {
        if bodies.len() > MAX_BATCH_MESSAGES {
            return Err(BindingError::LimitExceeded(format!(
                "a batch is at most {MAX_BATCH_MESSAGES} messages; this one has {}",
                bodies.len()
            )));
        }
        QueueView::send(self, &producer, bodies, options).await
    }

    async fn drop(&mut self, producer: Resource<Producer>) -> wasmtime::Result<()> {
        self.table.delete(producer)?;
        Ok(())
    }
}
