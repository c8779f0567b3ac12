//! Test guest for typed RPC: exports a `test:rpc/api` whose types differ from
//! `rpc-callee`'s, so binding `rpc-caller` to it is refused at upload.

use sdk::{Context, Env, Request, Response, Result};

mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "test:rpc/callee" });
}

struct Api;

impl bindings::exports::test::rpc::api::Guest for Api {
    fn greet(name: String) -> String {
        format!("hi {name}")
    }
}

bindings::export!(Api with_types_in bindings);

#[sdk::fetch]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    Ok(Response::text("mismatch"))
}
