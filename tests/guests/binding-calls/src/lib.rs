//! Benchmark guest: repeats one binding call `n` times (query `n`, default 1) in a
//! request and answers `200` with the number of calls made, so `bench/run.sh` can take
//! the cost of one call as (cost at `n` − cost at `0`) / `n`, free of the request around it.
//!
//! Bindings: `CACHE` (KV namespace), `DB` (SQL database with a table `items`, created
//! by `POST /setup`), `BACKEND` (service).
//!
//! - `GET /kv?n=N`: N gets of the key `key1`.
//! - `GET /sql?n=N`: N point queries `SELECT name FROM items WHERE id = 42`.
//! - `GET /hop?n=N`: N `GET /` requests to `BACKEND`, each body read whole.
//! - `POST /setup`: creates `items` with the row 42 and puts `key1`.
//! - Anything else, or a call that fails → `500` with the error.

use sdk::{Context, Env, Request, RequestExt as _, Response, Result, Statement};

#[sdk::fetch]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let n: usize = req
        .query_param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match (method.as_str(), path.as_str()) {
        ("POST", "/setup") => {
            let db = env.sql("DB");
            db.execute(
                "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT)",
                [],
            )?;
            db.execute("INSERT OR REPLACE INTO items VALUES (42, 'answer')", [])?;
            env.kv("CACHE").put("key1", "value one")?;
        }
        ("GET", "/kv") => {
            let kv = env.kv("CACHE");
            for _ in 0..n {
                kv.get("key1")?
                    .ok_or_else(|| sdk::anyhow::anyhow!("no key1"))?;
            }
        }
        ("GET", "/sql") => {
            let db = env.sql("DB");
            for _ in 0..n {
                let results = db.run(Statement::new("SELECT name FROM items WHERE id = 42"))?;
                if results.rows().count() != 1 {
                    return Ok(Response::error("no row 42", 500));
                }
            }
        }
        ("GET", "/hop") => {
            let backend = env.service("BACKEND");
            for _ in 0..n {
                backend.get("/").await?.into_text().await?;
            }
        }
        _ => return Ok(Response::error("no such route", 404)),
    }
    Ok(Response::text(n.to_string()))
}
