//! Test guest: an outbound worker. The platform hands it every outgoing HTTP request of
//! the scripts it is attached to; the request it receives *is* that outgoing request,
//! with an absolute URI (`http://host:port/path?query`), the script's method, headers and
//! body. Its params come as plain-text vars `TENANT` and `CREDENTIAL` (either may be
//! absent).
//!
//! - A URI path containing `/refuse` → `403` `refused by the outbound worker` (text).
//! - Header `x-answer-locally` present → `200` JSON `{"answered_by": "outbound-worker",
//!   "tenant": <TENANT or null>, "url": "<the full URI>", "method": "<method>"}`.
//! - Otherwise the request is forwarded with `wasi:http` (not a service binding) to the
//!   same URI with the same method, body and headers, minus the hop-by-hop ones and
//!   `host`, plus `x-injected-credential: <CREDENTIAL or "none">` and
//!   `x-outbound-tenant: <TENANT or "none">`; the upstream's response (status, headers,
//!   body) is returned unchanged. When forwarding fails (the body cannot be read, the
//!   request cannot be sent) → `502` with the error as text.

use sdk::http::body::Bytes;
use sdk::http::body::util::Empty;
use sdk::http::{Client, HeaderMap, HeaderName, HeaderValue};
use sdk::{Body, Context, Env, Request, Response, Result};
use serde_json::json;

/// Headers that concern one connection only, never forwarded (with `host`, which the
/// URI's authority replaces).
const HOP_BY_HOP: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "host",
];

#[sdk::fetch]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let tenant = env.var("TENANT");
    if req.uri().path().contains("/refuse") {
        return Ok(Response::error("refused by the outbound worker", 403));
    }
    if req.headers().contains_key("x-answer-locally") {
        return Response::json(&json!({
            "answered_by": "outbound-worker",
            "tenant": tenant,
            "url": req.uri().to_string(),
            "method": req.method().as_str(),
        }));
    }
    let credential = env.var("CREDENTIAL");
    match forward(req, tenant.as_deref(), credential.as_deref()).await {
        Ok(response) => Ok(response),
        Err(e) => Ok(Response::error(format!("{e:#}"), 502)),
    }
}

/// Sends `req` on to its own URI with the injected headers; the upstream's response as
/// it is.
///
/// The body is read whole first, then sent from memory, so it is already written when
/// the upstream answers: an upstream that answers without reading the body (or a refusal
/// by the platform) then shows as its response (or the platform's reason), rather than as
/// a failure to send the rest of the body. An empty body is never written at all.
async fn forward(req: Request, tenant: Option<&str>, credential: Option<&str>) -> Result<Response> {
    let (mut parts, mut body) = req.into_parts();
    let bytes = body.bytes_contents().await?;
    let body = if bytes.is_empty() {
        Body::from_http_body(Empty::<Bytes>::new())
    } else {
        Body::from(bytes)
    };
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(
        HeaderName::from_static("x-injected-credential"),
        HeaderValue::from_str(credential.unwrap_or("none"))?,
    );
    parts.headers.insert(
        HeaderName::from_static("x-outbound-tenant"),
        HeaderValue::from_str(tenant.unwrap_or("none"))?,
    );
    let request = Request::from_parts(parts, body);
    let upstream = Client::new().send(request).await?;
    Ok(upstream.into())
}

/// Removes the hop-by-hop headers, including those that `connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all("connection")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}
