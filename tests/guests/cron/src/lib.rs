//! Test guest with Cron Triggers. Binding: `CACHE` (KV namespace).
//!
//! - `scheduled`: counts the fire under `fires`, and keeps the last event's cron and time
//!   under `last-cron` and `last-time`. A fire of the cron `59 23 31 12 *` fails (an
//!   error), so a test can see a failed scheduled run; one of `0 0 29 2 *` spins until
//!   its CPU limit stops it (`bench/abuse.sh`).
//! - `GET /`: three lines from KV: the number of fires, the last cron, the last time
//!   (empty when there was none).

use sdk::{Context, Env, Request, Response, Result, ScheduledEvent};

#[sdk::scheduled]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: Context) -> Result<()> {
    if event.cron == "59 23 31 12 *" {
        sdk::anyhow::bail!("this schedule always fails");
    }
    if event.cron == "0 0 29 2 *" {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    let kv = env.kv("CACHE");
    let fires: u64 = kv
        .get("fires")?
        .and_then(|n| String::from_utf8(n).ok()?.parse().ok())
        .unwrap_or(0);
    kv.put("fires", (fires + 1).to_string())?;
    kv.put("last-cron", event.cron.clone())?;
    kv.put("last-time", event.scheduled_time.to_string())?;
    sdk::log::info(format!("fired {} at {}", event.cron, event.scheduled_time));
    Ok(())
}

#[sdk::fetch]
async fn fetch(_req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let kv = env.kv("CACHE");
    let text = |key: &str| -> Result<Option<String>> {
        Ok(kv.get(key)?.and_then(|v| String::from_utf8(v).ok()))
    };
    let fires = text("fires")?.unwrap_or_else(|| "0".into());
    let cron = text("last-cron")?.unwrap_or_default();
    let time = text("last-time")?.unwrap_or_default();
    Ok(Response::text(format!("{fires}\n{cron}\n{time}")))
}
