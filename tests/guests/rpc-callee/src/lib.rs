//! Test guest for typed RPC: exports `test:rpc/api` (see `wit/world.wit`) beside a
//! default fetch handler that answers `callee`.

use sdk::{Context, Env, Request, Response, Result};

mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "test:rpc/callee" });
}

use bindings::exports::test::rpc::api::{Guest, Shape, User};

struct Api;

impl Guest for Api {
    fn greet(user: User) -> std::result::Result<String, String> {
        if user.name.is_empty() {
            return Err("no name".into());
        }
        Ok(format!(
            "hello {} ({}, age {:?})",
            user.name,
            user.tags.join(","),
            user.age
        ))
    }

    fn area(shape: Shape) -> f64 {
        match shape {
            Shape::Circle(r) => std::f64::consts::PI * r * r,
            Shape::Square(side) => f64::from(side) * f64::from(side),
            Shape::Nothing => 0.0,
        }
    }

    fn boom() -> std::result::Result<u32, String> {
        panic!("boom")
    }
}

bindings::export!(Api with_types_in bindings);

#[sdk::fetch]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    Ok(Response::text("callee"))
}
