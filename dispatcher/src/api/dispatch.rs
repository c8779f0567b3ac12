//! The dispatch pipeline. Three resolvers turn a request into a [`Target`] and the path
//! its script sees — `ANY /dispatch/{name}/{path...}` (prefix removed), host routing
//! (`{name}.{dispatch_domain}`, [`for_host`]) and the gateway (a platform service, after
//! its access checks) — and all three go through [`serve`]: resolve the script in the
//! in-memory index, hand the request (method, headers, query, streamed body) to the
//! runtime, answer the script's response (streamed back unchanged) or the error envelope.
//! The version a request runs is picked from the script's live deployment by its share,
//! by the bucket of `X-Version-Key` when it has one, or is the kept version
//! `X-Version-Override` names when the script's owner asks with its token.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts as _, Request, State};
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::Customer;
use super::error::ApiError;
use crate::deploy::blocking;
use crate::runtime::{Deployed, LoadedScript};
use crate::store::{CUSTOMER_NAMESPACE, PLATFORM_NAMESPACE};
use platform_names::valid_name;

/// Sticks a request to one version of a split: the same key, the same version.
const VERSION_KEY: &str = "x-version-key";
/// Runs a kept version by its id; only for the script's owner, with its token.
const VERSION_OVERRIDE: &str = "x-version-override";

/// `ANY /dispatch/{name}` and `ANY /dispatch/{name}/{*path}`.
pub async fn by_path(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    let rest = path.strip_prefix("/dispatch/").unwrap_or_default();
    let (name, script_path) = match rest.split_once('/') {
        Some((name, tail)) => (name.to_string(), format!("/{tail}")),
        None => (rest.to_string(), "/".to_string()),
    };
    serve(&state, Target::Customer(&name), &script_path, request).await
}

/// The resolver of host routing: the customer script a request for
/// `{name}.{dispatch_domain}` is for, whatever its path.
pub fn for_host<'a>(host: Option<&'a str>, dispatch_domain: &str) -> Option<Target<'a>> {
    host.and_then(|host| script_for_host(host, dispatch_domain))
        .map(Target::Customer)
}

/// The script name when `host` (lowercase) is `{name}.{dispatch_domain}` (port ignored).
fn script_for_host<'a>(host: &'a str, dispatch_domain: &str) -> Option<&'a str> {
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

/// Which script a request runs: a customer's, or one of the platform's own services.
pub enum Target<'a> {
    Customer(&'a str),
    Platform(&'a str),
}

/// The one entry of every request to a script — `/dispatch/{name}`, host routing and the
/// gateway: resolve the target, run the request with `path` as the path the script sees,
/// and answer its response or the error envelope.
pub async fn serve(state: &AppState, target: Target<'_>, path: &str, request: Request) -> Response {
    let served = match resolve(state, &target) {
        Ok(deployed) => match pick_version(state, &target, &deployed, request).await {
            Ok((script, request)) => run(state, script, path, request).await,
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    served.unwrap_or_else(IntoResponse::into_response)
}

/// The version `request` runs: the one its owner names with `X-Version-Override` (the
/// header and the token removed before the script sees them), else one of the live
/// deployment by share or by `X-Version-Key`.
async fn pick_version(
    state: &AppState,
    target: &Target<'_>,
    deployed: &Deployed,
    request: Request,
) -> Result<(Arc<LoadedScript>, Request), ApiError> {
    let overriding =
        matches!(target, Target::Customer(_)) && request.headers().contains_key(VERSION_OVERRIDE);
    if !overriding {
        let key = request.headers().get(VERSION_KEY).map(|key| key.as_bytes());
        return Ok((deployed.pick(key).clone(), request));
    }
    let (mut parts, body) = request.into_parts();
    let wanted = parts.headers.remove(VERSION_OVERRIDE);
    let wanted = wanted
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let Customer(customer) = Customer::from_request_parts(&mut parts, state).await?;
    crate::identity::strip_customer_token(&mut parts.headers);
    let live = deployed.pick(None);
    if live.customer_id.as_deref() != Some(customer.id.as_str()) {
        return Err(ApiError::Unauthorized);
    }
    let script = match deployed.version(&wanted) {
        Some(script) => script.clone(),
        None => {
            let (runtime, store, live) = (state.runtime.clone(), state.store.clone(), live.clone());
            let not_found = ApiError::VersionNotFound(wanted.clone());
            let kept = blocking(move || {
                Ok(runtime
                    .index
                    .kept_version(&store, &runtime, &live, &wanted)?)
            })
            .await?;
            Arc::new(kept.ok_or(not_found)?)
        }
    };
    Ok((script, Request::from_parts(parts, body)))
}

/// The live deployment of `target`; `503 script_unavailable` when it is stored but could
/// not be loaded, `404` when there is none.
pub fn resolve(state: &AppState, target: &Target<'_>) -> Result<Arc<Deployed>, ApiError> {
    let (namespace, name) = match *target {
        Target::Customer(name) => (CUSTOMER_NAMESPACE, name),
        Target::Platform(name) => (PLATFORM_NAMESPACE, name),
    };
    let index = &state.runtime.index;
    index
        .deployed(namespace, name)
        .ok_or_else(|| match index.unavailable(namespace, name) {
            Some(unavailable) => ApiError::ScriptUnavailable {
                script: name.to_string(),
                reason: unavailable.reason,
            },
            None => match target {
                Target::Customer(name) => ApiError::ScriptNotFound(name.to_string()),
                Target::Platform(name) => {
                    ApiError::NotFound(format!("the `{name}` service is not installed"))
                }
            },
        })
}

/// Runs `request` through `script`, which sees `path` and the request's query; the
/// body streams in and the script's response streams back.
async fn run(
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
