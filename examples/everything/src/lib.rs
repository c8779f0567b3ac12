//! The showcase: every binding kind in one short handler.
//!
//! Bindings: `GREETING` (plain text), `API_KEY` (secret text), `CACHE` (KV namespace),
//! `DB` (SQLite database), `AUTH` (service).
//!
//! A request without header `x-api-key` equal to `API_KEY` gets `401` `bad api key`.
//! Otherwise the script counts the visit in `CACHE` (key `visits`, a JSON number), asks
//! `AUTH` who is calling (`GET /whoami`, answered as text) and answers `200`
//! `<GREETING or Hello>, <whoami, trimmed>! Visit #<count>.` as text. After the response is sent
//! it records the path and the caller in table `visits (path, user)` of `DB` (created if
//! missing).

use sdk::{Context, Env, Request, RequestExt as _, Response, Result};

#[sdk::fetch]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let key = env.secret("API_KEY");
    if key.is_none() || req.header("x-api-key") != key.as_deref() {
        return Ok(Response::error("bad api key", 401));
    }
    let cache = env.kv("CACHE");
    let visits = cache.get_json::<u64>("visits")?.unwrap_or(0) + 1;
    cache.put_json("visits", &visits)?;
    let whoami = env.service("AUTH").get("/whoami").await?;
    let user = whoami.into_text().await?.trim().to_owned();
    let (db, row) = (env.sql("DB"), sdk::params![req.uri().path(), &user]);
    ctx.wait_until(async move {
        let _ = db.execute("CREATE TABLE IF NOT EXISTS visits (path, user)", []);
        if let Err(e) = db.execute("INSERT INTO visits VALUES (?, ?)", row) {
            sdk::console_error!("recording the visit: {e:#}");
        }
    });
    let greeting = env.var("GREETING").unwrap_or_else(|| "Hello".into());
    let text = format!("{greeting}, {user}! Visit #{visits}.");
    Ok(Response::text(text))
}
