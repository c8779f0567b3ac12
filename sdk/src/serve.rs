//! What one `wasi:http/incoming-handler.handle` call does for `#[sdk::fetch]`: run the
//! handler in the `wstd` runtime, turn an error into a `500` whose body says nothing of
//! it (the error goes to the script's log, which its owner reads in the tail), send the
//! response, then finish the [`Context::wait_until`] work.

use std::future::Future;

use wstd::__internal::wasip2::http::types::{IncomingRequest, ResponseOutparam};
use wstd::http::server::Responder;

use crate::{Context, Env, Request, Response, Result, log};

/// The whole body of the `500` a handler's error becomes: an error's text (an SQL error,
/// a path, a key) is for the script's owner, not for whoever sent the request.
const INTERNAL_ERROR: &str = "internal error";

/// The body of the `handle` export that `#[sdk::fetch]` generates.
pub fn serve<H, F>(request: IncomingRequest, response_out: ResponseOutparam, handler: H)
where
    H: FnOnce(Request, Env, Context) -> F,
    F: Future<Output = Result<Response>>,
{
    let responder = Responder::new(response_out);
    wstd::runtime::block_on(async move {
        let ctx = Context::default();
        let response = match wstd::http::request::try_from_incoming(request) {
            Ok(request) => match handler(request, Env::new(), ctx.clone()).await {
                Ok(response) => response,
                Err(e) => {
                    log::error(format!("fetch failed: {e:#}"));
                    Response::error(INTERNAL_ERROR, 500)
                }
            },
            Err(e) => {
                log::warn(format!("unreadable request: {e:#}"));
                Response::error("unreadable request", 400)
            }
        };
        if let Err(e) = responder.respond(response.into_http()).await {
            log::warn(format!("sending the response failed: {e:#}"));
        }
        ctx.finish().await;
    });
}
