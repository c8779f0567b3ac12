//! Test guest for queues. Bindings: `JOBS` (queue), `CACHE` (KV namespace).
//!
//! - `POST /send?n=N&prefix=P`: sends N messages `P0` .. `P{N-1}` to `JOBS`, one call
//!   each; `POST /send-batch?n=N&prefix=P` in one `send-batch`; `POST /send-big`: one
//!   message over the size limit. A refused send answers `400` with the error.
//! - `GET /seen?prefix=P`: `DISTINCT TOTAL` — how many messages starting with `P` were
//!   delivered, and how many deliveries that took.
//! - `GET /dead?prefix=P`: how many such messages reached a queue whose name ends in
//!   `-dlq`.
//! - Consumer: counts each delivery under `seen:BODY`; a message whose body starts with
//!   `fail` is retried at once (`retry_after(0)`), others acked. Messages of a `-dlq`
//!   queue are recorded under `dead:BODY` and acked.

use sdk::{Context, Env, MessageBatch, Request, RequestExt as _, Response, Result};

#[sdk::fetch]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let n: usize = req
        .query_param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let prefix = req.query_param("prefix").unwrap_or_default();
    let jobs = env.queue("JOBS");
    let path = req.uri().path().to_owned();
    let sent = match path.as_str() {
        "/send" => (0..n).try_for_each(|i| jobs.send(format!("{prefix}{i}"))),
        "/send-batch" => jobs.send_batch((0..n).map(|i| format!("{prefix}{i}"))),
        "/send-big" => jobs.send(vec![b'x'; 129 << 10]),
        "/seen" => return Ok(Response::text(count(&env, &format!("seen:{prefix}"))?)),
        "/dead" => return Ok(Response::text(count(&env, &format!("dead:{prefix}"))?)),
        _ => return Ok(Response::error("no such route", 404)),
    };
    match sent {
        Ok(()) => Ok(Response::text(format!("sent {n}"))),
        Err(e) => Ok(Response::error(format!("{e:#}"), 400)),
    }
}

/// `DISTINCT TOTAL` of the counters under `prefix`.
fn count(env: &Env, prefix: &str) -> Result<String> {
    let kv = env.kv("CACHE");
    let (mut distinct, mut total, mut cursor) = (0u64, 0u64, None);
    loop {
        let page = kv.list(sdk::kv::ListOptions {
            prefix: Some(prefix.to_string()),
            cursor: cursor.take(),
            limit: None,
        })?;
        for key in &page.keys {
            distinct += 1;
            total += kv
                .get_text(&key.name)?
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(format!("{distinct} {total}"))
}

#[sdk::queue]
async fn queue(batch: MessageBatch, env: Env, _ctx: Context) -> Result<()> {
    let kv = env.kv("CACHE");
    for message in &batch.messages {
        let body = message.text();
        if batch.queue.ends_with("-dlq") {
            kv.put(&format!("dead:{body}"), "1")?;
            message.ack();
            continue;
        }
        let key = format!("seen:{body}");
        let seen: u64 = kv.get_text(&key)?.and_then(|n| n.parse().ok()).unwrap_or(0);
        kv.put(&key, (seen + 1).to_string())?;
        if body.starts_with("fail") {
            message.retry_after(0);
        } else {
            message.ack();
        }
    }
    Ok(())
}
