//! Eyeball traffic: `ANY /dispatch/{name}/{path...}` and host-routed
//! `{name}.{dispatch_domain}`. Resolves the script in the in-memory index and hands the
//! request — method, headers, query and streamed body, with the dispatch prefix removed —
//! to the runtime; the script's response streams back unchanged.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::runtime::LoadedScript;
use crate::store::CUSTOMER_NAMESPACE;
use platform_names::valid_name;

/// `ANY /dispatch/{name}` and `ANY /dispatch/{name}/{*path}`.
pub async fn by_path(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    let rest = path.strip_prefix("/dispatch/").unwrap_or_default();
    let (name, script_path) = match rest.split_once('/') {
        Some((name, tail)) => (name.to_string(), format!("/{tail}")),
        None => (rest.to_string(), "/".to_string()),
    };
    dispatch(&state, &name, &script_path, request).await
}

/// The script name when `host` is `{name}.{dispatch_domain}` (port ignored).
pub fn script_for_host<'a>(host: &'a str, dispatch_domain: &str) -> Option<&'a str> {
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let name = host.strip_suffix(dispatch_domain)?.strip_suffix('.')?;
    valid_name(name).then_some(name)
}

/// Runs `request` through script `name` of the customers namespace, with `path` as the
/// path the script sees.
pub async fn dispatch(state: &AppState, name: &str, path: &str, request: Request) -> Response {
    match try_dispatch(state, name, path, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn try_dispatch(
    state: &AppState,
    name: &str,
    path: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let script = find(state, CUSTOMER_NAMESPACE, name, || {
        ApiError::ScriptNotFound(name.to_string())
    })?;
    run(state, script, path, request).await
}

/// The ready script `namespace`/`name`; `503 script_unavailable` when it is stored but
/// could not be loaded, `not_found()` when there is none. Shared with the gateway.
pub fn find(
    state: &AppState,
    namespace: &str,
    name: &str,
    not_found: impl FnOnce() -> ApiError,
) -> Result<Arc<LoadedScript>, ApiError> {
    let index = &state.runtime.index;
    index
        .get(namespace, name)
        .ok_or_else(|| match index.unavailable(namespace, name) {
            Some(unavailable) => ApiError::ScriptUnavailable {
                script: name.to_string(),
                reason: unavailable.reason,
            },
            None => not_found(),
        })
}

/// Runs `request` through `script`, which sees `path` and the request's query; the
/// body streams in and the script's response streams back. Shared with the gateway.
pub async fn run(
    state: &AppState,
    script: Arc<LoadedScript>,
    path: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let authority = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    parts.uri = Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| ApiError::BadRequest(format!("invalid request target: {e}")))?;
    let response = state
        .runtime
        .invoke(script, hyper::Request::from_parts(parts, body))
        .await?;
    Ok(response.map(Body::new))
}
