//! A customer's Cron Triggers: `GET` and `PUT /script/{name}/schedules` (a JSON list of
//! cron expressions, or of `{"cron": ...}` objects as Workers' API has them), and
//! `POST /script/{name}/schedules/trigger`, which runs the scheduled handler once now
//! and answers how it went (for testing, as `wrangler dev --test-scheduled` does).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Customer;
use super::error::{ApiError, ok};
use super::script::check_name;
use crate::deploy::blocking;
use crate::store::CUSTOMER_NAMESPACE;

/// One schedule and its next fire.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Schedule {
    cron: String,
    /// The next fire (RFC 3339, UTC).
    next: Option<String>,
}

/// `"*/5 * * * *"` or `{"cron": "*/5 * * * *"}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum GivenSchedule {
    Text(String),
    Object { cron: String },
}

async fn listed(state: &AppState, name: &str, customer: &str) -> Result<Vec<Schedule>, ApiError> {
    let (store, script, owner) = (state.store.clone(), name.to_string(), customer.to_string());
    let crons = blocking(move || {
        Ok(store
            .get_script(CUSTOMER_NAMESPACE, &script, Some(&owner))?
            .map(|_| store.schedules(CUSTOMER_NAMESPACE, &script))
            .transpose()?)
    })
    .await?
    .ok_or_else(|| ApiError::ScriptNotFound(name.to_string()))?;
    let now = chrono::Utc::now();
    Ok(crons
        .into_iter()
        .map(|cron| Schedule {
            next: crate::schedules::parse(&cron)
                .ok()
                .and_then(|parsed| crate::schedules::next_after(&parsed, &now))
                .map(|at| at.to_rfc3339()),
            cron,
        })
        .collect())
}

#[utoipa::path(
    get,
    path = "/script/{name}/schedules",
    tag = "schedules",
    summary = "A script's Cron Triggers and their next fires",
    params(("name" = String, Path, description = "The script's name")),
    responses(
        (status = 200, body = super::openapi::Envelope<Vec<Schedule>>),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
        (status = 404, description = "`script_not_found`", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn get_schedules(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Customer(customer): Customer,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    Ok(ok(
        StatusCode::OK,
        listed(&state, &name, &customer.id).await?,
    ))
}

#[utoipa::path(
    put,
    path = "/script/{name}/schedules",
    tag = "schedules",
    summary = "Replace a script's Cron Triggers (5-field cron, UTC)",
    params(("name" = String, Path, description = "The script's name")),
    request_body(content = Vec<String>, description = "Cron expressions (or `{\"cron\": ...}` objects); `[]` clears them"),
    responses(
        (status = 200, body = super::openapi::Envelope<Vec<Schedule>>),
        (status = 400, description = "`bad_request`: an invalid expression, too many, or a script that does not export platform:worker/scheduled", body = super::openapi::ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
        (status = 404, description = "`script_not_found`", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn put_schedules(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Customer(customer): Customer,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let given: Vec<GivenSchedule> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be a JSON list of cron expressions: {e}"
        ))
    })?;
    let crons = given
        .into_iter()
        .map(|given| match given {
            GivenSchedule::Text(cron) | GivenSchedule::Object { cron } => cron,
        })
        .collect();
    state
        .deployer
        .set_schedules(CUSTOMER_NAMESPACE, &name, Some(&customer.id), crons)
        .await?;
    Ok(ok(
        StatusCode::OK,
        listed(&state, &name, &customer.id).await?,
    ))
}

/// How a manual trigger went.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Triggered {
    /// Always `ok` (a failed run answers the error envelope).
    outcome: &'static str,
    /// The cron the event carried.
    cron: String,
    request_id: String,
    cpu_ms: f64,
}

/// `{"cron": "..."}`: which schedule to run (the script's first by default).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Trigger {
    cron: Option<String>,
}

#[utoipa::path(
    post,
    path = "/script/{name}/schedules/trigger",
    tag = "schedules",
    summary = "Run the script's scheduled handler once, now",
    params(("name" = String, Path, description = "The script's name")),
    request_body(content = Option<String>, description = "Optional `{\"cron\": ...}`: the event's cron (default the script's first schedule)"),
    responses(
        (status = 200, description = "It ran", body = super::openapi::Envelope<Triggered>),
        (status = 400, description = "`bad_request`", body = super::openapi::ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
        (status = 404, description = "`script_not_found`", body = super::openapi::ErrorEnvelope),
        (status = 500, description = "`script_error`: the handler failed or trapped (details in the tail)", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn trigger(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Customer(customer): Customer,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let trigger: Trigger = super::optional_json(&body, r#"{"cron": "..."}"#)?;
    let schedules = listed(&state, &name, &customer.id).await?;
    let cron = match trigger.cron {
        Some(cron) => {
            crate::schedules::parse(&cron).map_err(ApiError::BadRequest)?;
            cron
        }
        None => schedules
            .into_iter()
            .next()
            .map(|s| s.cron)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "script `{name}` has no schedules: give the cron to run with {{\"cron\": ...}}"
                ))
            })?,
    };
    let deployed = super::dispatch::resolve(&state, &super::dispatch::Target::Customer(&name))?;
    let script = deployed.pick(None).clone();
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let run = state.runtime.run_scheduled(script, &cron, now_ms).await?;
    Ok(ok(
        StatusCode::OK,
        Triggered {
            outcome: "ok",
            cron,
            request_id: run.request_id,
            cpu_ms: run.cpu_ms,
        },
    ))
}
