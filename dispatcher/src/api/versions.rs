//! A customer's versions and deployments of its scripts: list and read versions, list
//! deployments, deploy a split of one or two versions, roll back. Another customer's
//! script answers `404 script_not_found`, as everywhere; an unknown version
//! `404 version_not_found`; a split that breaks a rule `400 bad_request` saying which.
//! A failed request changes nothing.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::AppState;
use super::auth::Customer;
use super::error::{ApiError, ok};
use super::script::check_name;
use crate::deploy::blocking;
use crate::store::{
    CUSTOMER_NAMESPACE, DeploymentRecord, MAX_PER_PAGE, PageRequest, VersionRecord, VersionShare,
};

#[derive(Deserialize)]
pub struct Paging {
    page: Option<u32>,
    per_page: Option<u32>,
}

impl Paging {
    fn checked(query: Result<Query<Paging>, QueryRejection>) -> Result<PageRequest, ApiError> {
        let Query(paging) =
            query.map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
        let page = paging.page.unwrap_or(1);
        let per_page = paging.per_page.unwrap_or(20);
        if page == 0 || per_page == 0 || per_page > MAX_PER_PAGE {
            return Err(ApiError::BadRequest(format!(
                "`page` starts at 1 and `per_page` is 1 to {MAX_PER_PAGE}"
            )));
        }
        Ok(PageRequest { page, per_page })
    }
}

/// The script exists and is the customer's, or `script_not_found`.
async fn owned(state: &AppState, name: &str, customer: &str) -> Result<(), ApiError> {
    check_name(name)?;
    let (store, script, owner) = (state.store.clone(), name.to_string(), customer.to_string());
    let found =
        blocking(move || Ok(store.get_script(CUSTOMER_NAMESPACE, &script, Some(&owner))?)).await?;
    found
        .map(|_| ())
        .ok_or_else(|| ApiError::ScriptNotFound(name.to_string()))
}

#[utoipa::path(
    get,
    path = "/script/{name}/versions",
    tag = "versions",
    summary = "A script's kept versions, newest first",
    params(
        ("name" = String, Path, description = "The script's name"),
        ("page" = Option<u32>, Query, description = "From 1"),
        ("per_page" = Option<u32>, Query, description = "1 to 100, 20 by default"),
    ),
    responses(
        (status = 200, body = super::openapi::Envelope<super::openapi::VersionPage>),
        (status = 400, description = "`bad_request`", body = super::openapi::ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
        (status = 404, description = "`script_not_found`", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn list_versions(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Customer(customer): Customer,
    query: Result<Query<Paging>, QueryRejection>,
) -> Result<Response, ApiError> {
    let page = Paging::checked(query)?;
    owned(&state, &name, &customer.id).await?;
    let store = state.store.clone();
    let versions =
        blocking(move || Ok(store.list_versions(CUSTOMER_NAMESPACE, &name, page)?)).await?;
    Ok(ok(StatusCode::OK, versions))
}

#[utoipa::path(
    get,
    path = "/script/{name}/versions/{id}",
    tag = "versions",
    summary = "One kept version of a script",
    params(
        ("name" = String, Path, description = "The script's name"),
        ("id" = String, Path, description = "The version's id"),
    ),
    responses(
        (status = 200, body = super::openapi::Envelope<VersionRecord>),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
        (status = 404, description = "`script_not_found` or `version_not_found`", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn get_version(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    Customer(customer): Customer,
) -> Result<Response, ApiError> {
    owned(&state, &name, &customer.id).await?;
    let store = state.store.clone();
    let version = blocking(move || Ok(store.get_version(CUSTOMER_NAMESPACE, &name, &id)?)).await?;
    Ok(ok(StatusCode::OK, version))
}

#[utoipa::path(
    get,
    path = "/script/{name}/deployments",
    tag = "versions",
    summary = "A script's deployments, newest (the live one) first",
    params(
        ("name" = String, Path, description = "The script's name"),
        ("page" = Option<u32>, Query, description = "From 1"),
        ("per_page" = Option<u32>, Query, description = "1 to 100, 20 by default"),
    ),
    responses(
        (status = 200, body = super::openapi::Envelope<super::openapi::DeploymentPage>),
        (status = 400, description = "`bad_request`", body = super::openapi::ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
        (status = 404, description = "`script_not_found`", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn list_deployments(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Customer(customer): Customer,
    query: Result<Query<Paging>, QueryRejection>,
) -> Result<Response, ApiError> {
    let page = Paging::checked(query)?;
    owned(&state, &name, &customer.id).await?;
    let store = state.store.clone();
    let deployments =
        blocking(move || Ok(store.list_deployments(CUSTOMER_NAMESPACE, &name, page)?)).await?;
    Ok(ok(StatusCode::OK, deployments))
}

/// `{"strategy": "percentage", "versions": [{"version_id": "a", "percentage": 90}, ...]}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeployment {
    /// Only `percentage`.
    strategy: String,
    versions: Vec<VersionShare>,
}

#[utoipa::path(
    post,
    path = "/script/{name}/deployments",
    tag = "versions",
    summary = "Deploy one or two versions by percentage; live on the next request",
    params(("name" = String, Path, description = "The script's name")),
    request_body = NewDeployment,
    responses(
        (status = 201, body = super::openapi::Envelope<DeploymentRecord>),
        (status = 400, description = "`bad_request`: percentages not summing to 100, more than two versions, a version of another script", body = super::openapi::ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
        (status = 404, description = "`script_not_found` or `version_not_found`", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn create_deployment(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Customer(customer): Customer,
    body: Result<axum::Json<NewDeployment>, JsonRejection>,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let axum::Json(deployment) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if deployment.strategy != "percentage" {
        return Err(ApiError::BadRequest(format!(
            "unknown strategy `{}`: only `percentage`",
            deployment.strategy
        )));
    }
    let record = state
        .deployer
        .deploy_versions(
            CUSTOMER_NAMESPACE,
            &name,
            Some(&customer.id),
            deployment.versions,
        )
        .await?;
    Ok(ok(StatusCode::CREATED, record))
}

/// `{"version_id": "..."}`, or nothing for the previous deployment's version.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    version_id: Option<String>,
}

#[utoipa::path(
    post,
    path = "/script/{name}/rollback",
    tag = "versions",
    summary = "Deploy a kept version at 100 % at once (by default the previous deployment's); never compiles",
    params(("name" = String, Path, description = "The script's name")),
    request_body(content = Option<Rollback>, description = "Optional"),
    responses(
        (status = 201, body = super::openapi::Envelope<DeploymentRecord>),
        (status = 400, description = "`bad_request`: nothing to roll back to", body = super::openapi::ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
        (status = 404, description = "`script_not_found` or `version_not_found`", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Customer(customer): Customer,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let rollback: Rollback = super::optional_json(&body, r#"{"version_id": "..."}"#)?;
    let record = state
        .deployer
        .rollback(
            CUSTOMER_NAMESPACE,
            &name,
            Some(&customer.id),
            rollback.version_id,
        )
        .await?;
    Ok(ok(StatusCode::CREATED, record))
}
