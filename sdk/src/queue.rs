//! Queues: [`Queue`], the handle of a `queue` binding (send messages to one of the
//! customer's queues), and the consumer side: `#[sdk::queue]` exports an
//! `async fn(MessageBatch, Env, Context) -> Result<()>` as the script's
//! `platform:worker/queue-handler`. Each [`Message`] of a batch is acked or retried; one
//! the handler leaves undecided is acked when it returns `Ok`, and retried when it
//! returns an error.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::{Opened, queue};
use crate::{BindingError, Context, Env, Result, log};

/// A `queue` binding, from [`Env::queue`](crate::Env::queue).
///
/// ```ignore
/// env.queue("JOBS").send_json(&job)?;
/// ```
#[derive(Debug, Clone)]
pub struct Queue {
    producer: Opened<queue::Producer>,
}

impl Queue {
    pub(crate) fn new(binding: &str) -> Self {
        Self {
            producer: Opened::new(binding),
        }
    }

    fn producer(&self) -> Result<&queue::Producer> {
        self.producer
            .get(queue::Producer::open)
            .map_err(|e| self.error(e))
    }

    /// Sends one message (at most 128 KiB); it is stored before this returns.
    pub fn send(&self, body: impl AsRef<[u8]>) -> Result<()> {
        self.send_after(body, None)
    }

    /// Sends one message to be delivered no sooner than `delay_seconds` from now.
    pub fn send_after(&self, body: impl AsRef<[u8]>, delay_seconds: Option<u32>) -> Result<()> {
        let options = queue::SendOptions { delay_seconds };
        self.producer()?
            .send(body.as_ref(), options)
            .map_err(|e| self.error(e))
    }

    /// Sends `value` as JSON.
    pub fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        self.send(serde_json::to_vec(value)?)
    }

    /// Sends up to 100 messages at once, all or none.
    pub fn send_batch<B: AsRef<[u8]>>(&self, bodies: impl IntoIterator<Item = B>) -> Result<()> {
        let bodies: Vec<Vec<u8>> = bodies.into_iter().map(|b| b.as_ref().to_vec()).collect();
        let options = queue::SendOptions {
            delay_seconds: None,
        };
        self.producer()?
            .send_batch(&bodies, options)
            .map_err(|e| self.error(e))
    }

    fn error(&self, error: queue::Error) -> crate::Error {
        BindingError::new("queue send", self.producer.binding(), error).into()
    }
}

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "platform:worker/queue-consumer",
        pub_export_macro: true,
        export_macro_name: "export_queue",
        default_bindings_module: "::sdk::__private::queue",
    });
}

use bindings::exports::platform::worker::queue_handler as wit;

/// One message of a batch.
#[derive(Debug)]
pub struct Message {
    /// Unique within its queue.
    pub id: String,
    pub body: Vec<u8>,
    /// How many times it was delivered before this time (0 the first time).
    pub attempts: u32,
    /// When it was sent, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Shared with the runner, which reads it once the handler returns.
    outcome: Rc<Cell<Option<wit::Outcome>>>,
}

impl Message {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// Done with it: it is deleted.
    pub fn ack(&self) {
        self.outcome.set(Some(wit::Outcome::Ack));
    }

    /// Deliver it again (after the queue's backoff).
    pub fn retry(&self) {
        self.outcome.set(Some(wit::Outcome::Retry(None)));
    }

    /// Deliver it again after `seconds`.
    pub fn retry_after(&self, seconds: u32) {
        self.outcome.set(Some(wit::Outcome::Retry(Some(seconds))));
    }
}

/// A batch of messages of one queue.
#[derive(Debug)]
pub struct MessageBatch {
    /// The queue's name.
    pub queue: String,
    pub messages: Vec<Message>,
}

/// The body of the `handle` export that `#[sdk::queue]` generates.
pub fn run<H, F>(queue: String, batch: Vec<wit::Message>, handler: H) -> Vec<wit::Outcome>
where
    H: FnOnce(MessageBatch, Env, Context) -> F,
    F: Future<Output = Result<()>>,
{
    let outcomes: Vec<Rc<Cell<Option<wit::Outcome>>>> =
        batch.iter().map(|_| Rc::default()).collect();
    let batch = MessageBatch {
        queue,
        messages: batch
            .into_iter()
            .zip(&outcomes)
            .map(|(m, outcome)| Message {
                id: m.id,
                body: m.body,
                attempts: m.attempts,
                timestamp: m.timestamp,
                outcome: outcome.clone(),
            })
            .collect(),
    };
    wstd::runtime::block_on(async {
        let ctx = Context::default();
        let result = handler(batch, Env::new(), ctx.clone()).await;
        ctx.finish().await;
        let undecided = match result {
            Ok(()) => wit::Outcome::Ack,
            Err(e) => {
                log::error(format!("queue handler failed: {e:#}"));
                wit::Outcome::Retry(None)
            }
        };
        outcomes
            .iter()
            .map(|outcome| outcome.take().unwrap_or(undecided))
            .collect()
    })
}
