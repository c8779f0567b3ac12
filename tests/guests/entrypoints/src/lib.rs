//! Test guest with a named entrypoint.
//!
//! - The default handler (`wasi:http/incoming-handler`, what eyeballs reach) answers
//!   `default: PATH`.
//! - `admin-interface` (reached only by a service binding with
//!   `"entrypoint": "admin-interface"`) answers `admin: PATH`.
//! - `GET /call/BINDING/PATH` on the default handler calls the service binding `BINDING`
//!   with `GET /PATH` and answers what it answered, so one component can be both the
//!   caller and the callee.

use sdk::{Context, Env, Request, Response, Result};

mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "test:entrypoints/entrypoints",
        with: {
            "wasi:http/types@0.2.12": sdk::__private::wasip2::http::types,
        },
        generate_all,
    });
}

struct Admin;

impl bindings::exports::admin_interface::Guest for Admin {
    fn handle(
        request: sdk::__private::wasip2::http::types::IncomingRequest,
        response_out: sdk::__private::wasip2::http::types::ResponseOutparam,
    ) {
        sdk::__private::serve(request, response_out, admin);
    }
}

bindings::export!(Admin with_types_in bindings);

async fn admin(req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    Ok(Response::text(format!("admin: {}", req.uri().path())))
}

#[sdk::fetch]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix("/call/") {
        let (binding, target) = rest.split_once('/').unwrap_or((rest, ""));
        let answer = env.service(binding).get(&format!("/{target}")).await?;
        let status = answer.status();
        let text = answer.into_text().await?;
        return Ok(Response::text(text).with_status(status));
    }
    Ok(Response::text(format!("default: {path}")))
}
