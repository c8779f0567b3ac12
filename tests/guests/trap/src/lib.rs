//! Test guest that fails on purpose: `/panic` panics, `/exit` calls `wasi:cli/exit`,
//! anything else hits `unreachable`. The dispatcher must answer `500 script_error` and
//! keep serving.

use wasip2::http::types::{IncomingRequest, ResponseOutparam};

struct Trap;

impl wasip2::exports::http::incoming_handler::Guest for Trap {
    fn handle(request: IncomingRequest, _response_out: ResponseOutparam) {
        match request.path_with_query().as_deref() {
            Some("/panic") => panic!("the guest panicked on purpose"),
            Some("/exit") => std::process::exit(3),
            _ => core::arch::wasm32::unreachable(),
        }
    }
}

wasip2::http::proxy::export!(Trap);
