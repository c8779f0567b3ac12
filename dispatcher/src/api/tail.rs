//! Live tails over Server-Sent Events: `GET /script/{name}/tail` for a customer's own
//! script (its token), and `GET /operator/tail[?script=NAME&namespace=..]` for the
//! operator (`X-Operator-Key`, the key in the data directory; `dispatcher tail` uses
//! it). One `data:` event, a JSON object, per finished run; a `: connected` comment
//! first, and a comment when a slow reader missed events.

use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use subtle::ConstantTimeEq as _;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::auth::Customer;
use super::error::ApiError;
use crate::deploy::blocking;
use crate::local::OPERATOR_KEY_HEADER;
use crate::runtime::tail::{Tail, TailScope};
use crate::store::{CUSTOMER_NAMESPACE, PLATFORM_NAMESPACE};

/// `GET /script/{name}/tail`: the customer's own script, else `404`.
#[utoipa::path(
    get,
    path = "/script/{name}/tail",
    tag = "observability",
    summary = "Follow a script's runs (Server-Sent Events)",
    description = "One `data:` event per finished run, a JSON `TailEvent`; a `: connected` comment first.",
    params(("name" = String, Path, description = "The script's name: 1-63 of a-z, 0-9 and -")),
    responses(
        (status = 200, description = "`text/event-stream` of `TailEvent`s", body = crate::runtime::tail::TailEvent, content_type = "text/event-stream"),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
        (status = 404, description = "`script_not_found`", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn customer_tail(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Customer(customer): Customer,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let (script, owner) = (name.clone(), customer.id.clone());
    let found =
        blocking(move || Ok(store.get_script(CUSTOMER_NAMESPACE, &script, Some(&owner))?)).await?;
    if found.is_none() {
        return Err(ApiError::ScriptNotFound(name));
    }
    let tail = state.runtime.tails.subscribe(TailScope::Script {
        namespace: CUSTOMER_NAMESPACE.into(),
        name,
        customer_id: Some(customer.id),
    });
    Ok(stream(tail))
}

#[derive(serde::Deserialize)]
pub struct OperatorTail {
    script: Option<String>,
    namespace: Option<String>,
}

/// `GET /operator/tail`: any script (or all), for the holder of the operator key.
#[utoipa::path(
    get,
    path = "/operator/tail",
    tag = "operator",
    summary = "Follow one script's runs, or every script's (the operator)",
    params(
        ("script" = Option<String>, Query, description = "The script; every script when absent"),
        ("namespace" = Option<String>, Query, description = "`customers` (default) or `platform`"),
    ),
    responses(
        (status = 200, description = "`text/event-stream` of `TailEvent`s", body = crate::runtime::tail::TailEvent, content_type = "text/event-stream"),
        (status = 403, description = "`forbidden`: no or a wrong operator key", body = super::openapi::ErrorEnvelope),
        (status = 404, description = "`script_not_found`", body = super::openapi::ErrorEnvelope),
    ),
    security(("operator_key" = []))
)]
pub async fn operator_tail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<OperatorTail>,
) -> Result<Response, ApiError> {
    let presented = headers
        .get(OPERATOR_KEY_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !bool::from(presented.ct_eq(state.operator_key.as_bytes())) {
        return Err(ApiError::Forbidden(
            "the operator key (in the data directory) is required".into(),
        ));
    }
    let scope = match query.script {
        None => TailScope::All,
        Some(name) => {
            let namespace = query.namespace.unwrap_or_else(|| CUSTOMER_NAMESPACE.into());
            if namespace != CUSTOMER_NAMESPACE && namespace != PLATFORM_NAMESPACE {
                return Err(ApiError::BadRequest(format!("no namespace `{namespace}`")));
            }
            let store = state.store.clone();
            let (ns, script) = (namespace.clone(), name.clone());
            let record = blocking(move || Ok(store.get_script(&ns, &script, None)?))
                .await?
                .ok_or_else(|| ApiError::ScriptNotFound(name.clone()))?;
            TailScope::Script {
                namespace,
                name,
                customer_id: record.customer_id,
            }
        }
    };
    Ok(stream(state.runtime.tails.subscribe(scope)))
}

/// The events of `tail` as an event stream; it ends when the client goes away.
fn stream(tail: Tail) -> Response {
    let connected = futures::stream::once(async { Ok(Event::default().comment("connected")) });
    let events = futures::stream::unfold(tail, |mut tail| async move {
        let event = match tail.events.recv().await {
            Ok(event) => Event::default()
                .json_data(&*event)
                .unwrap_or_else(|_| Event::default().comment("an event could not be encoded")),
            Err(RecvError::Lagged(missed)) => {
                Event::default().comment(format!("{missed} events missed: this reader fell behind"))
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(event), tail))
    });
    Sse::new(connected.chain(events))
        .keep_alive(KeepAlive::default())
        .into_response()
}
