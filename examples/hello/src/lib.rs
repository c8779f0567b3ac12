//! The default customer template: a `wasi:http` component that answers every request
//! with `Hello! ` followed by the platform module's text (seed 002's
//! `return new Response("Hello! " + platformThing)`), i.e.
//! `Hello! This module is provided by the platform`.
//!
//! It imports `platform:module/platform`, which the dispatcher satisfies at upload by
//! composing the platform module into it. Otherwise it uses the plain `wasip2` bindings,
//! the same convention any Rust component built for `wasmtime serve` uses.

use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wit_bindgen::generate!({
    path: "../../platform-module/wit",
    world: "customer",
});

use platform::module::platform::platform_thing;

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::from_list(&[(
            "content-type".to_string(),
            b"text/plain; charset=utf-8".to_vec(),
        )])
        .expect("static headers are valid");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("a new response has a body");
        ResponseOutparam::set(response_out, Ok(response));

        let greeting = format!("Hello! {}", platform_thing());
        let mut out = body.write().expect("a new body has a stream");
        out.write_all(greeting.as_bytes())
            .expect("write the greeting");
        out.flush().expect("flush the greeting");
        drop(out);
        OutgoingBody::finish(body, None).expect("finish the body");
    }
}

wasip2::http::proxy::export!(Hello);
