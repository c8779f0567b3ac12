//! Queue delivery: the task that hands each queue's messages to its consumer. Every
//! `TICK` it looks at the queues that have an idle consumer (one bounded index seek each);
//! such a queue gets a batch once it holds `max_batch_size` ready messages or its oldest
//! ready one has waited `max_batch_timeout_ms`. The batch is leased (hidden) for
//! the run's wall time and a minute more, and run on the consumer's live deployment.
//! Then each message is acked (deleted) or retried: ready again after the delay the
//! consumer asked for, or a backoff of 2^attempts seconds (at most 5 minutes); past
//! `max_retries` it moves to the dead letter queue, or is dropped. A run that fails
//! retries its whole batch; a server that dies mid-batch redelivers it when the lease
//! ends. At least once, never lost.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::deploy::Deployer;
use crate::runtime::bindings::queue::{StoredMessage, now_ms};
use crate::runtime::queue_run::{Outcome, QueueMessage};
use crate::store::StoredConsumer;

/// How often the task looks for ready messages.
const TICK: Duration = Duration::from_millis(100);
/// How often it re-reads the consumers.
const RELOAD: Duration = Duration::from_secs(1);
/// The longest backoff of a retry, in seconds.
const MAX_BACKOFF_SECONDS: u32 = 300;

type QueueKey = (String, String);

pub fn spawn(deployer: Deployer) {
    tokio::spawn(async move {
        let running: Arc<Mutex<HashSet<QueueKey>>> = Arc::default();
        let mut consumers: HashMap<QueueKey, StoredConsumer> = HashMap::new();
        let mut loaded_at: Option<Instant> = None;
        loop {
            tokio::time::sleep(TICK).await;
            if loaded_at.is_none_or(|at| at.elapsed() >= RELOAD) {
                let store = deployer.store.clone();
                match tokio::task::spawn_blocking(move || store.all_consumers()).await {
                    Ok(Ok(all)) => {
                        consumers = all
                            .into_iter()
                            .map(|c| ((c.owner.clone(), c.spec.queue.clone()), c))
                            .collect();
                    }
                    Ok(Err(error)) => tracing::error!(%error, "reading the queue consumers failed"),
                    Err(error) => tracing::error!(%error, "reading the queue consumers died"),
                }
                loaded_at = Some(Instant::now());
            }
            if consumers.is_empty() {
                continue;
            }
            // Only the queues that have a consumer are looked at, each by one bounded
            // index seek: a queue nobody consumes costs nothing however long it is.
            let idle: Vec<StoredConsumer> = {
                let running = running.lock().expect("queue lock");
                consumers
                    .iter()
                    .filter(|(key, _)| !running.contains(*key))
                    .map(|(_, consumer)| consumer.clone())
                    .collect()
            };
            let queues = deployer.runtime.queues().clone();
            let now = now_ms();
            let due = tokio::task::spawn_blocking(move || {
                idle.into_iter()
                    .filter(|c| {
                        let key = (c.owner.as_str(), c.spec.queue.as_str());
                        match queues.store.ready(key, now, c.spec.max_batch_size) {
                            Ok((count, Some(earliest))) => {
                                count >= u64::from(c.spec.max_batch_size)
                                    || now - earliest >= i64::from(c.spec.max_batch_timeout_ms)
                            }
                            _ => false,
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for consumer in due {
                let key = (consumer.owner.clone(), consumer.spec.queue.clone());
                if !running.lock().expect("queue lock").insert(key.clone()) {
                    continue;
                }
                let (deployer, running) = (deployer.clone(), running.clone());
                tokio::spawn(async move {
                    deliver(&deployer, &consumer).await;
                    running.lock().expect("queue lock").remove(&key);
                });
            }
        }
    });
}

/// Leases one batch for `consumer`, runs it, and settles every message of it.
async fn deliver(deployer: &Deployer, consumer: &StoredConsumer) {
    let Some(deployed) = deployer
        .runtime
        .index
        .deployed(&consumer.namespace, &consumer.name)
    else {
        return;
    };
    let script = deployed.pick(None).clone();
    let queues = deployer.runtime.queues().clone();
    let lease = deployer.runtime.scheduled_wall() + Duration::from_secs(60);
    let (owner, queue, max) = (
        consumer.owner.clone(),
        consumer.spec.queue.clone(),
        consumer.spec.max_batch_size,
    );
    let leased = tokio::task::spawn_blocking(move || {
        let now = now_ms();
        queues
            .store
            .lease((&owner, &queue), max, now, now + lease.as_millis() as i64)
    })
    .await;
    let batch = match leased {
        Ok(Ok(batch)) if !batch.is_empty() => batch,
        _ => return,
    };
    let messages = batch
        .iter()
        .map(|m| QueueMessage {
            id: m.id.to_string(),
            body: m.body.clone(),
            attempts: m.attempts,
            timestamp: m.sent_ms.max(0) as u64,
        })
        .collect();
    // A failed run (reported to the tail and usage by the run) retries the whole batch.
    let outcomes = deployer
        .runtime
        .run_queue(script, &consumer.spec.queue, messages)
        .await
        .unwrap_or_default();
    let queues = deployer.runtime.queues().clone();
    let queue = consumer.spec.queue.clone();
    let consumer = consumer.clone();
    let settled = tokio::task::spawn_blocking(move || {
        for (i, message) in batch.iter().enumerate() {
            let outcome = outcomes.get(i).copied().unwrap_or(Outcome::Retry(None));
            settle(&queues.store, &consumer, message, outcome)?;
        }
        Ok::<_, rusqlite::Error>(())
    })
    .await;
    if !matches!(settled, Ok(Ok(()))) {
        tracing::error!(%queue, "settling a queue batch failed; its messages come back when their lease ends");
    }
}

/// What one message's outcome does to it.
fn settle(
    store: &crate::runtime::bindings::queue::QueueStore,
    consumer: &StoredConsumer,
    message: &StoredMessage,
    outcome: Outcome,
) -> rusqlite::Result<()> {
    let delay = match outcome {
        Outcome::Ack => return store.ack(message.id),
        Outcome::Retry(delay) => delay,
    };
    if message.attempts + 1 > consumer.spec.max_retries {
        return match &consumer.spec.dead_letter_queue {
            Some(dlq) => store.move_to(message.id, dlq, now_ms()),
            None => store.ack(message.id),
        };
    }
    let backoff = 1u32
        .checked_shl(message.attempts)
        .unwrap_or(u32::MAX)
        .min(MAX_BACKOFF_SECONDS);
    let seconds = delay.unwrap_or(backoff);
    store.retry(message.id, now_ms() + i64::from(seconds) * 1000)
}
