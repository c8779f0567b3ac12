//! Calling the services the admin API fronts: [`Upstream`] is one request, sent through
//! a service binding with the admin's identity headers. The callee's response comes
//! back unchanged (status, headers, body); a call that cannot be made at all (no such
//! binding, the callee not installed) is `502 upstream_error`, and is logged.

use platform_kit::{self as kit, Caller};
use sdk::{Body, Env, Method, Response, Result};
use serde::Serialize;

/// One request to another first-party service.
pub struct Upstream {
    method: Method,
    path: String,
    json: Option<Vec<u8>>,
}

impl Upstream {
    /// `method path` with an empty body.
    pub fn new(method: Method, path: &str) -> Self {
        Self {
            method,
            path: path.to_owned(),
            json: None,
        }
    }

    /// The same request with `body` as its JSON body.
    pub fn json<T: Serialize>(mut self, body: &T) -> Result<Self> {
        self.json = Some(serde_json::to_vec(body)?);
        Ok(self)
    }

    /// Sends the request to the service bound as `binding`, as `caller`.
    pub async fn send(self, env: &Env, binding: &str, caller: &Caller) -> Result<Response> {
        let mut request = sdk::http::Request::builder()
            .method(self.method)
            .uri(&self.path);
        for (name, value) in caller.headers() {
            request = request.header(name, value);
        }
        let body = match self.json {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Body::from(json)
            }
            None => Body::empty(),
        };
        match env.service(binding).fetch(request.body(body)?).await {
            Ok(response) => Ok(response),
            Err(error) => {
                sdk::console_error!("calling `{binding}` for {}: {error:#}", self.path);
                let message = format!("the `{binding}` service could not be reached");
                Ok(kit::failure(502, "upstream_error", &message))
            }
        }
    }
}
