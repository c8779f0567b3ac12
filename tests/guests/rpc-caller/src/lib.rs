//! Test guest for typed RPC: imports `test:rpc/api` (`../rpc-callee/wit`), which a
//! service binding with `"entrypoint": "test:rpc/api"` serves, and answers with what its
//! calls returned, in Rust's `Debug` form:
//!
//! - `GET /greet?name=N`: `greet({name: N, tags: [a, b], age: 42})`;
//! - `GET /area`: the areas of a circle of radius 1, a square of side 3 and nothing;
//! - `GET /boom`: `boom()`, whose callee traps.

use sdk::{Context, Env, Request, RequestExt as _, Response, Result};

mod bindings {
    wit_bindgen::generate!({ path: "../rpc-callee/wit", world: "test:rpc/caller" });
}

use bindings::test::rpc::api::{self, Shape, User};

#[sdk::fetch]
async fn fetch(req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    let answer = match req.uri().path() {
        "/greet" => {
            let user = User {
                name: req.query_param("name").unwrap_or_default(),
                tags: vec!["a".into(), "b".into()],
                age: Some(42),
            };
            format!("{:?}", api::greet(&user))
        }
        "/area" => format!(
            "{} {} {}",
            api::area(Shape::Circle(1.0)),
            api::area(Shape::Square(3)),
            api::area(Shape::Nothing)
        ),
        "/boom" => format!("{:?}", api::boom()),
        _ => return Ok(Response::error("no such route", 404)),
    };
    Ok(Response::text(answer))
}
