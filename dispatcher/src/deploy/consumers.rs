//! Checking the queue consumers of an upload (`metadata.consumers`) before anything is
//! compiled: at most `MAX_CONSUMERS`, each of a valid queue name given once, batches of
//! 1 to 100 messages waited for at most a minute, at most 100 retries, and a dead letter
//! queue that is another valid queue. That a queue has no other consumer, and that the
//! component exports the handler, is checked by the pipeline (`mod.rs`).

use platform_names::valid_name;

use crate::store::ConsumerSpec;

const MAX_CONSUMERS: usize = 10;

pub fn check(consumers: &[ConsumerSpec]) -> Result<(), String> {
    if consumers.len() > MAX_CONSUMERS {
        return Err(format!("a script consumes at most {MAX_CONSUMERS} queues"));
    }
    let mut seen = std::collections::HashSet::new();
    for c in consumers {
        let queue = c.queue.as_str();
        if !valid_name(queue) {
            return Err(format!(
                "consumer: invalid queue `{queue}` (use 1-63 of a-z, 0-9 and -)"
            ));
        }
        if !seen.insert(queue) {
            return Err(format!("consumer: queue `{queue}` is given twice"));
        }
        if !(1..=100).contains(&c.max_batch_size) {
            return Err(format!("consumer of `{queue}`: max_batch_size is 1 to 100"));
        }
        if c.max_batch_timeout_ms > 60_000 {
            return Err(format!(
                "consumer of `{queue}`: max_batch_timeout_ms is at most 60000"
            ));
        }
        if c.max_retries > 100 {
            return Err(format!("consumer of `{queue}`: max_retries is at most 100"));
        }
        if let Some(dlq) = &c.dead_letter_queue
            && (!valid_name(dlq) || dlq == queue)
        {
            return Err(format!(
                "consumer of `{queue}`: dead_letter_queue must be another valid queue name"
            ));
        }
    }
    Ok(())
}
