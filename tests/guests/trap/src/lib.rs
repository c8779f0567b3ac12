//! Test guest that fails on purpose, so the tests can check what a failing script's
//! client sees (a generic answer, never trap text) and what its owner sees (the detail,
//! in the tail):
//!
//! - `/panic` panics; `/exit` calls `wasi:cli/exit`;
//! - `/bad-handle` calls a host method on a handle it never got (`fields` 999), which the
//!   host refuses with a trap;
//! - `/stream-then-spin` answers `200`, sends `first part\n` of a chunked body, then
//!   busy-loops until the CPU limit stops it: the client must see an incomplete body;
//! - `/stream-then-trap` the same, ending in `unreachable`;
//! - `/console?lines=N` prints N empty lines, then a line holding a carriage return and
//!   an escape sequence, then answers `200 printed`;
//! - anything else hits `unreachable` inside `secret_internal_fn_name`.

use std::hint::black_box;
use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Trap;

impl wasip2::exports::http::incoming_handler::Guest for Trap {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        match path {
            "/panic" => panic!("the guest panicked on purpose"),
            "/exit" => std::process::exit(3),
            "/bad-handle" => {
                // SAFETY: deliberately wrong; the host must refuse it without harm.
                let forged = unsafe { Fields::from_handle(999) };
                black_box(forged.entries());
            }
            "/stream-then-spin" => {
                stream_first_part(response_out);
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "/stream-then-trap" => {
                stream_first_part(response_out);
                core::arch::wasm32::unreachable();
            }
            "/console" => {
                let lines: usize = query
                    .strip_prefix("lines=")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let mut out = std::io::stdout();
                out.write_all(&vec![b'\n'; lines]).unwrap();
                out.write_all(b"forged\rINFO admin logged in\x1b[2K\n")
                    .unwrap();
                out.flush().unwrap();
                answer(response_out, b"printed");
            }
            _ => secret_internal_fn_name(),
        }
    }
}

#[inline(never)]
fn secret_internal_fn_name() {
    core::arch::wasm32::unreachable()
}

/// Sets a `200` response and sends its first chunk, leaving the body unfinished.
fn stream_first_part(response_out: ResponseOutparam) {
    let response = OutgoingResponse::new(Fields::new());
    let body = response.body().unwrap();
    ResponseOutparam::set(response_out, Ok(response));
    let stream = body.write().unwrap();
    stream.blocking_write_and_flush(b"first part\n").unwrap();
    // Both stay open (not finished) while the guest goes on.
    std::mem::forget(stream);
    std::mem::forget(body);
}

fn answer(response_out: ResponseOutparam, text: &[u8]) {
    let response = OutgoingResponse::new(Fields::new());
    let body = response.body().unwrap();
    ResponseOutparam::set(response_out, Ok(response));
    let stream = body.write().unwrap();
    stream.blocking_write_and_flush(text).unwrap();
    drop(stream);
    OutgoingBody::finish(body, None).unwrap();
}

wasip2::http::proxy::export!(Trap);
