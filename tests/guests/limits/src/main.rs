//! Test guest in the `wstd` convention that the end-to-end tests use to hit every
//! per-request limit of the platform on demand. Query parameters are percent-decoded
//! (`%XX`; `+` stays a plus). Every answer is `text/plain` unless said otherwise.
//!
//! - `/spin` → busy-loops forever; never answers (CPU limit).
//! - `/spin-ms?ms=N` → busy-loops (on the CPU, not sleeping) until N ms have passed on
//!   the monotonic clock, then `200 spun N ms`.
//! - `/grow-big?mb=N` → allocates one buffer of N MiB at once and writes a byte in every
//!   page, then `200 allocated N MiB`; aborts when the allocation fails (memory limit).
//! - `/grow-many?mb=N` → allocates N separate 1 MiB buffers, writing a byte in every
//!   page of each and keeping all of them alive, then `200 allocated N chunks`.
//! - `/recurse` → unbounded non-tail recursion, until the wasm call stack overflows.
//! - `/sleep?ms=N` → sleeps N ms (wall-clock limit), then `200 slept N ms`.
//! - `/tick?ms=N` → `200` at once, then a body that never ends: `tick\n` every N ms
//!   (a client that hangs up mid-response).
//! - `/fetch?url=U[&header=Name:Value]...` → one outgoing `GET U` with those extra
//!   headers; answers the upstream's status, `content-type` and body bytes. When the
//!   request cannot be built or sent, `502` with the error as text.
//! - `/fetch-many?url=U&n=N` → N sequential `GET U`, stopping at the first failure;
//!   answers `200` `{"succeeded": k, "first_error": "<message>" | null}` as JSON, where k
//!   counts the sends that got a response (of any status) before the first failure.
//! - `/fetch-parallel?url=U&n=N` → N concurrent `GET U`; answers `200`
//!   `{"succeeded": k, "errors": ["<message>", ...]}` (connection limit).
//! - `/random?bytes=N` → asks the host for N secure random bytes in one
//!   `wasi:random/random.get-random-bytes` call, then `200 got N random bytes`.
//! - `/fill?mb=N&times=K` → allocates one buffer of N MiB and fills all of it K times,
//!   each fill one `memory.fill` instruction, then `200 filled N MiB K times`.
//! - `/poll-spin` → waits on a zero-length timer forever: a busy loop made of polls
//!   that each return at once (CPU limit).
//! - Anything else → `404 no such route`. A missing or malformed parameter (or a
//!   `grow-big` size above 2 GiB, which no allocation can have) → `400`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use percent_encoding::percent_decode_str;
use wstd::http::body::util::Empty;
use wstd::http::body::{Body, Bytes};
use wstd::http::{Client, Error, HeaderName, HeaderValue, Request, Response, StatusCode};

const MIB: usize = 1024 * 1024;
const PAGE: usize = 4096;

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    let params = query_pairs(request.uri().query().unwrap_or_default());
    Ok(match route(request.uri().path(), &params).await {
        Ok(response) => response,
        Err(BadRequest(message)) => text(StatusCode::BAD_REQUEST, message),
    })
}

/// A missing or malformed query parameter, answered with `400` and this message.
struct BadRequest(String);

async fn route(path: &str, params: &[(String, String)]) -> Result<Response<Body>, BadRequest> {
    Ok(match path {
        "/spin" => spin(),
        "/spin-ms" => {
            let ms = number(params, "ms")?;
            spin_for(Duration::from_millis(ms));
            text(StatusCode::OK, format!("spun {ms} ms"))
        }
        "/grow-big" => grow_big(number(params, "mb")?),
        "/grow-many" => grow_many(number(params, "mb")?),
        "/recurse" => {
            let depth = recurse(0);
            text(StatusCode::OK, format!("recursed {depth} times"))
        }
        "/sleep" => {
            let ms = number(params, "ms")?;
            wstd::task::sleep(wstd::time::Duration::from_millis(ms)).await;
            text(StatusCode::OK, format!("slept {ms} ms"))
        }
        "/tick" => tick(number(params, "ms")?),
        "/fetch" => {
            let url = required(params, "url")?;
            let headers = params
                .iter()
                .filter(|(name, _)| name == "header")
                .map(|(_, value)| value.as_str());
            fetch(url, headers).await
        }
        "/fetch-many" => fetch_many(required(params, "url")?, number(params, "n")?).await,
        "/fetch-parallel" => fetch_parallel(required(params, "url")?, number(params, "n")?).await,
        "/random" => random_bytes(number(params, "bytes")?)?,
        "/fill" => fill(number(params, "mb")?, number(params, "times")?),
        "/poll-spin" => loop {
            wstd::task::sleep(wstd::time::Duration::from_millis(0)).await;
        },
        _ => text(StatusCode::NOT_FOUND, "no such route"),
    })
}

/// Fills one buffer of `mb` MiB `times` times, each one `memory.fill` over all of it.
fn fill(mb: u64, times: u64) -> Response<Body> {
    let mut buffer = vec![0u8; mb as usize * MIB];
    for round in 0..times {
        buffer.fill(black_box(round as u8 + 1));
        black_box(&buffer);
    }
    text(StatusCode::OK, format!("filled {mb} MiB {times} times"))
}

/// A `200` whose body is `tick\n` every `ms` milliseconds, without end.
fn tick(ms: u64) -> Response<Body> {
    let ticks = futures::stream::unfold((), move |()| async move {
        wstd::task::sleep(wstd::time::Duration::from_millis(ms)).await;
        Some((Bytes::from_static(b"tick\n"), ()))
    });
    Response::new(Body::from_stream(ticks))
}

/// Busy-loops forever, on the CPU.
fn spin() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Busy-loops until `duration` has passed on the monotonic clock, checking the clock
/// every few thousand iterations so that the time goes to the guest's own code.
fn spin_for(duration: Duration) {
    let start = Instant::now();
    let mut counter: u64 = 0;
    while start.elapsed() < duration {
        for _ in 0..10_000 {
            counter = black_box(counter.wrapping_add(1));
        }
    }
    black_box(counter);
}

/// `len` secure random bytes from one host call. The buffer is allocated zeroed, which
/// for a large one costs no CPU time (fresh wasm pages are zero).
fn random_bytes(len: u64) -> Result<Response<Body>, BadRequest> {
    let size = usize::try_from(len)
        .map_err(|_| BadRequest(format!("{len} bytes do not fit in memory")))?;
    let mut buffer = vec![0u8; size];
    wstd::rand::get_random_bytes(&mut buffer);
    black_box(&buffer);
    Ok(text(StatusCode::OK, format!("got {len} random bytes")))
}

/// One allocation of `mb` MiB, every page written to. A size no allocation can have
/// (above `isize::MAX` bytes, 2 GiB on wasm32) is a `400`, not a capacity-overflow panic.
fn grow_big(mb: u64) -> Response<Body> {
    let size = usize::try_from(mb)
        .ok()
        .and_then(|mb| mb.checked_mul(MIB))
        .filter(|&size| size <= isize::MAX.unsigned_abs());
    let Some(size) = size else {
        return text(StatusCode::BAD_REQUEST, format!("{mb} MiB is too big"));
    };
    let buffer = touched_buffer(size);
    black_box(&buffer);
    text(StatusCode::OK, format!("allocated {mb} MiB"))
}

/// `count` allocations of 1 MiB, every page written to, all alive at the end.
fn grow_many(count: u64) -> Response<Body> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..count {
        chunks.push(touched_buffer(MIB));
    }
    black_box(&chunks);
    text(StatusCode::OK, format!("allocated {count} chunks"))
}

/// A buffer of `size` bytes allocated at once, one byte written in every page. The rest
/// is left uninitialised (the `Vec` stays empty): zeroing it all would only spend CPU
/// time, which the memory tests must not run out of first.
fn touched_buffer(size: usize) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(size);
    for byte in buffer.spare_capacity_mut().iter_mut().step_by(PAGE) {
        byte.write(1);
    }
    buffer
}

/// Recurses without end (the exit condition is never true, but the compiler cannot
/// know it), doing work after each call so it is not a tail call: the wasm call stack
/// overflows and the instance traps.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    black_box(recurse(depth + 1)).wrapping_add(depth)
}

/// One `GET url` with the extra `Name:Value` headers; answers what the upstream answered.
async fn fetch<'a>(url: &str, headers: impl Iterator<Item = &'a str>) -> Response<Body> {
    let request = match get_request(url, headers) {
        Ok(request) => request,
        Err(e) => return text(StatusCode::BAD_GATEWAY, format!("{e:#}")),
    };
    let upstream = match Client::new().send(request).await {
        Ok(upstream) => upstream,
        Err(e) => return text(StatusCode::BAD_GATEWAY, format!("{e:#}")),
    };
    let (parts, mut body) = upstream.into_parts();
    let bytes = match body.contents().await {
        Ok(bytes) => bytes.to_vec(),
        Err(e) => {
            let message = format!("reading the upstream body: {e:#}");
            return text(StatusCode::BAD_GATEWAY, message);
        }
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = parts.status;
    if let Some(content_type) = parts.headers.get("content-type") {
        response.headers_mut().insert(
            HeaderName::from_static("content-type"),
            content_type.clone(),
        );
    }
    response
}

/// `n` sequential `GET url`, stopping at the first failure.
async fn fetch_many(url: &str, n: u64) -> Response<Body> {
    let client = Client::new();
    let mut succeeded: u64 = 0;
    let mut first_error: Option<String> = None;
    for _ in 0..n {
        let sent = match get_request(url, std::iter::empty()) {
            Ok(request) => client.send(request).await,
            Err(e) => Err(e),
        };
        match sent {
            // The body is not needed: dropping the response releases it.
            Ok(_response) => succeeded += 1,
            Err(e) => {
                first_error = Some(format!("{e:#}"));
                break;
            }
        }
    }
    let report = serde_json::json!({ "succeeded": succeeded, "first_error": first_error });
    let mut response = Response::new(Body::from(report.to_string()));
    response.headers_mut().insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `n` concurrent `GET url`; answers how many got a response and the errors of the rest.
async fn fetch_parallel(url: &str, n: u64) -> Response<Body> {
    let client = Client::new();
    let sends = (0..n).map(|_| async {
        match get_request(url, std::iter::empty()) {
            Ok(request) => client.send(request).await.map(drop),
            Err(e) => Err(e),
        }
    });
    let results = futures::future::join_all(sends).await;
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| format!("{e:#}")))
        .collect();
    let report = serde_json::json!({
        "succeeded": results.len() - errors.len(),
        "errors": errors,
    });
    Response::new(Body::from(report.to_string()))
}

/// A `GET url` request with an empty body and the extra `Name:Value` headers.
///
/// The body is a stream that ends at once rather than `Body::empty()`: `wstd` writes the
/// bytes of the latter even when there are none, and a write to a request the platform
/// has already refused fails with `connection reset`, which `Client::send` may report
/// instead of the platform's reason.
fn get_request<'a>(
    url: &str,
    headers: impl Iterator<Item = &'a str>,
) -> Result<Request<Body>, Error> {
    let mut builder = Request::get(url);
    for header in headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| Error::msg(format!("header `{header}` is not `Name:Value`")))?;
        builder = builder.header(name.trim(), value.trim());
    }
    Ok(builder.body(Body::from_http_body(Empty::<Bytes>::new()))?)
}

/// The query's `name=value` pairs in order, percent-decoded (`+` is not a space).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The first value of parameter `name`.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// The first value of parameter `name`, which must be there.
fn required<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, BadRequest> {
    param(params, name).ok_or_else(|| BadRequest(format!("missing query parameter `{name}`")))
}

/// Parameter `name` as a number.
fn number(params: &[(String, String)], name: &str) -> Result<u64, BadRequest> {
    let value = required(params, name)?;
    value.parse().map_err(|_| {
        BadRequest(format!(
            "query parameter `{name}` is not a number: {value:?}"
        ))
    })
}

/// A `text/plain` response.
fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut response = Response::new(Body::from(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
