//! Test guest built against `platform:worker@0.1.0` (`sdk/wit-0.1.0`), as a component of
//! the first SDK was: every KV and SQL call names its binding. Bindings: `GREETING`
//! (plain text), `CACHE` (KV namespace), `DB` (d1).
//!
//! - `GET /` → `200` JSON: `greeting` (the var), `cached` (the value of KV key `hits`
//!   after putting `"1"` there), `listed` (the keys of a listing), `sum` (an SQL
//!   `SELECT ? + ?` of 2 and 3), `batched` (rows written by a two-statement batch) and
//!   `missing` (the error kind of a KV get on a binding that does not exist).

use serde_json::json;
use wstd::http::body::Body;
use wstd::http::{Error, Request, Response};

wit_bindgen::generate!({
    path: "../../../sdk/wit-0.1.0",
    world: "platform:worker/worker",
    generate_all,
});

use platform::worker::{kv, log, sql, types, vars};

#[wstd::http_server]
async fn main(_request: Request<Body>) -> Result<Response<Body>, Error> {
    log::log(log::Level::Info, "legacy guest running");
    kv::put("CACHE", "hits", b"1", None).map_err(to_error)?;
    let cached = kv::get("CACHE", "hits").map_err(to_error)?;
    let listed = kv::list("CACHE", None, None, None).map_err(to_error)?;
    let statement = sql::Statement {
        sql: "SELECT ? + ?".into(),
        params: vec![sql::Value::Integer(2), sql::Value::Integer(3)],
    };
    let sum = match sql::execute("DB", &statement).map_err(to_error)?.rows[0][0] {
        sql::Value::Integer(sum) => sum,
        _ => -1,
    };
    let batch = [
        sql::Statement {
            sql: "CREATE TABLE IF NOT EXISTS t (x INTEGER)".into(),
            params: vec![],
        },
        sql::Statement {
            sql: "INSERT INTO t VALUES (1)".into(),
            params: vec![],
        },
    ];
    let batched: u64 = sql::batch("DB", &batch)
        .map_err(to_error)?
        .iter()
        .map(|results| results.rows_written)
        .sum();
    let missing = match kv::get("NOPE", "x") {
        Err(types::Error::NoSuchBinding(_)) => "no-such-binding",
        Err(_) => "other error",
        Ok(_) => "found",
    };
    let body = json!({
        "greeting": vars::get("GREETING"),
        "cached": cached.map(|value| String::from_utf8_lossy(&value).into_owned()),
        "listed": listed.keys.iter().map(|key| key.name.clone()).collect::<Vec<_>>(),
        "sum": sum,
        "batched": batched,
        "missing": missing,
    });
    Ok(Response::new(body.to_string().into()))
}

fn to_error(error: types::Error) -> Error {
    Error::msg(format!("{error:?}"))
}
