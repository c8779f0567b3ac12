//! `GET /usage?since=..`: the caller's metering per script — invocations, errors by
//! outcome, CPU and wall milliseconds, subrequests, peak memory — in total and per
//! minute. What the server counted but has not flushed yet is included, so the numbers
//! are exact at any moment.

use std::time::SystemTime;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::AppState;
use super::auth::Customer;
use super::error::{ApiError, ok};
use crate::deploy::blocking;
use crate::runtime::usage::{Grouping, parse_since, per_script};

#[derive(serde::Deserialize)]
pub struct UsageQuery {
    since: Option<String>,
    /// `version` or `event`: one entry per version, or per event, of each script.
    group_by: Option<String>,
}

#[utoipa::path(
    get,
    path = "/usage",
    tag = "observability",
    summary = "The caller's metered usage per script, in total and per minute",
    params(
        ("since" = Option<String>, Query, description = "Unix seconds, an RFC 3339 time, or a span back from now (`2h`, `7d`); a day ago by default"),
        ("group_by" = Option<String>, Query, description = "`version` or `event` (`fetch`, `scheduled`): an entry per version, or per event, of each script"),
    ),
    responses(
        (status = 200, body = super::openapi::Envelope<super::openapi::UsageReport>),
        (status = 400, description = "`bad_request`", body = super::openapi::ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn usage(
    State(state): State<AppState>,
    Customer(customer): Customer,
    Query(query): Query<UsageQuery>,
) -> Result<Response, ApiError> {
    let since =
        parse_since(query.since.as_deref(), SystemTime::now()).map_err(ApiError::BadRequest)?;
    let by = match query.group_by.as_deref() {
        None | Some("script") => Grouping::Script,
        Some("version") => Grouping::Version,
        Some("event") => Grouping::Event,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "unknown group_by `{other}`: `script`, `version` or `event`"
            )));
        }
    };
    let store = state.store.clone();
    let id = customer.id.clone();
    let mut rows = blocking(move || Ok(store.usage(Some(&id), since)?)).await?;
    rows.extend(state.runtime.usage.pending(Some(&customer.id), since));
    Ok(ok(
        StatusCode::OK,
        serde_json::json!({ "since": since, "scripts": per_script(rows, by) }),
    ))
}
