//! Test guest whose own copy of `platform:module@0.1.0` declares an extra function,
//! `unknown-thing`, which the platform module does not export. The upload must be
//! refused with a message naming `unknown-thing`, before anything is compiled.

use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wit_bindgen::generate!({
    path: "wit",
    world: "customer",
});

use platform::module::platform::{platform_thing, unknown_thing};

struct BadPlatformImport;

impl wasip2::exports::http::incoming_handler::Guest for BadPlatformImport {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("a new response has a body");
        ResponseOutparam::set(response_out, Ok(response));
        let text = format!("{} / {}", platform_thing(), unknown_thing());
        let mut out = body.write().expect("a new body has a stream");
        out.write_all(text.as_bytes()).expect("write the text");
        out.flush().expect("flush the text");
        drop(out);
        OutgoingBody::finish(body, None).expect("finish the body");
    }
}

wasip2::http::proxy::export!(BadPlatformImport);
