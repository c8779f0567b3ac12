//! Test guest that probes its sandbox: it reports the environment variables and
//! arguments it sees, whether it can list or read files, whether it can open a TCP
//! connection to the address given as `?connect=HOST:PORT`, and whether its initialized
//! data is as its data segment wrote it (it overwrites it after checking, so an instance
//! or memory left over from an earlier request would show). A safe host gives it nothing
//! and fresh data every time.

use std::cell::UnsafeCell;
use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Probe;

/// A little initialized data (a data segment: no byte is zero).
struct Marks(UnsafeCell<[u8; 4096]>);

// SAFETY: a component instance runs one request on one thread.
unsafe impl Sync for Marks {}

static MARKS: Marks = Marks(UnsafeCell::new([0xa5; 4096]));

/// Whether the marks are as initialized; then overwrites them.
fn data_pristine() -> bool {
    // SAFETY: the only access to the marks, on the instance's one thread.
    let marks = unsafe { &mut *MARKS.0.get() };
    let pristine = marks.iter().all(|b| *b == 0xa5);
    marks.fill(0);
    pristine
}

fn probe(query: &str) -> serde_json::Value {
    let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let args: Vec<String> = std::env::args().collect();
    let list_root = std::fs::read_dir("/")
        .map(|d| d.count())
        .map_err(|e| e.to_string());
    let read_passwd = std::fs::read("/etc/passwd")
        .map(|b| b.len())
        .map_err(|e| e.to_string());
    let write_file = std::fs::write("probe.txt", b"x").map_err(|e| e.to_string());
    let connect =
        query
            .strip_prefix("connect=")
            .map(|addr| match std::net::TcpStream::connect(addr) {
                Ok(_) => "connected".to_string(),
                Err(e) => format!("error: {e}"),
            });
    serde_json::json!({
        "env": env,
        "args": args,
        "list_root": format!("{list_root:?}"),
        "read_passwd": format!("{read_passwd:?}"),
        "write_file": format!("{write_file:?}"),
        "connect": connect,
        "data_pristine": data_pristine(),
    })
}

impl wasip2::exports::http::incoming_handler::Guest for Probe {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
        let report = probe(query).to_string();

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

wasip2::http::proxy::export!(Probe);
