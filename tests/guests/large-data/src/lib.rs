//! Test guest with 1 MiB of initialized data (a data segment far over the size the
//! dispatcher copies in, so its memories start from a mapped image). Every request
//! reports whether that data is exactly what the data segment wrote, then overwrites
//! all of it: a host that gave a request anything but a fresh copy would answer
//! `pristine: false` on the next one.

use std::cell::UnsafeCell;
use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

const BYTES: usize = 1 << 20;

/// What every byte of the table starts as: not zero, so the table is a data segment and
/// not zeroed memory.
const INITIAL: u8 = 0x5a;

struct Table(UnsafeCell<[u8; BYTES]>);

// SAFETY: a component instance runs one request on one thread.
unsafe impl Sync for Table {}

static TABLE: Table = Table(UnsafeCell::new([INITIAL; BYTES]));

/// Whether the table is as initialized; then scribbles over all of it.
fn check_and_scribble() -> bool {
    // SAFETY: the only access to the table, on the instance's one thread.
    let table = unsafe { &mut *TABLE.0.get() };
    let pristine = table.iter().all(|b| *b == INITIAL);
    table.fill(0);
    pristine
}

struct LargeData;

impl wasip2::exports::http::incoming_handler::Guest for LargeData {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let report = format!(
            "{{\"pristine\":{},\"bytes\":{BYTES}}}",
            check_and_scribble()
        );
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("a new response has a body");
        ResponseOutparam::set(response_out, Ok(response));
        let mut out = body.write().expect("a new body has a stream");
        out.write_all(report.as_bytes()).expect("write the report");
        out.flush().expect("flush the report");
        drop(out);
        OutgoingBody::finish(body, None).expect("finish the body");
    }
}

wasip2::http::proxy::export!(LargeData);
