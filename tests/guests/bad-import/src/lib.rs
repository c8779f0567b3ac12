//! Test guest that imports `acme:evil/backdoor`, an interface no platform provides.
//! The upload must be refused with a message naming that import.

use wasip2::http::types::{IncomingRequest, ResponseOutparam};

wit_bindgen::generate!({
    inline: "
        package acme:evil;
        interface backdoor { open: func() -> u32; }
        world guest { import backdoor; }
    ",
});

struct BadImport;

impl wasip2::exports::http::incoming_handler::Guest for BadImport {
    fn handle(_request: IncomingRequest, _response_out: ResponseOutparam) {
        let door = acme::evil::backdoor::open();
        panic!("the backdoor opened: {door}");
    }
}

wasip2::http::proxy::export!(BadImport);
