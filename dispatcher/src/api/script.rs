//! Management routes for a customer's scripts: upload/replace, read, delete, list by
//! tags, replace tags. A customer only ever sees its own scripts: another customer's
//! name answers 404 on read and delete and `409 name_taken` on upload, as does a name
//! reserved for the platform. An upload is refused for its name or token at once,
//! without waiting for its body.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;

use super::AppState;
use super::auth::Customer;
use super::error::{ApiError, ok};
use super::upload::{drain, read_upload};
use platform_names::valid_name;

use crate::deploy::{Annotations, NewVersion, blocking, validate_tags};
use crate::store::{CUSTOMER_NAMESPACE, ScriptRecord, Uploaded};

pub(super) fn check_name(name: &str) -> Result<(), ApiError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(crate::deploy::DeployError::InvalidName(name.to_string()).into())
    }
}

#[utoipa::path(
    put,
    path = "/script/{name}",
    tag = "scripts",
    summary = "Upload or replace a script",
    description = "The body is the component (`application/wasm`), or `multipart/form-data` with a `metadata` JSON part (`main_module`, `tags`, `bindings`, `annotations`) and the module part. Every upload is a new version, deployed to 100 % at once unless `deploy=false`. A failed upload changes nothing.",
    params(
        ("name" = String, Path, description = "The script's name: 1-63 of a-z, 0-9 and -"),
        ("deploy" = Option<bool>, Query, description = "`false`: upload the version without deploying it (not for a script's first upload)"),
        ("X-Version-Message" = Option<String>, Header, description = "The version's message (a raw upload; multipart gives `annotations`)"),
        ("X-Version-Tag" = Option<String>, Header, description = "The version's tag"),
    ),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses(
        (status = 201, description = "Created", body = super::openapi::Envelope<Uploaded>),
        (status = 200, description = "A new version", body = super::openapi::Envelope<Uploaded>),
        (status = 400, description = "`bad_request`, `invalid_wasm` or `invalid_name`", body = super::openapi::ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
        (status = 409, description = "`name_taken`: another customer's name, or one reserved for the platform", body = super::openapi::ErrorEnvelope),
        (status = 413, description = "`too_large`", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn put_script(
    State(state): State<AppState>,
    Path(name): Path<String>,
    customer: Result<Customer, ApiError>,
    query: Result<Query<DeployQuery>, QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let query = query.map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")));
    let header_annotations = header_annotations(request.headers());
    let checked = check_name(&name).and(customer).and_then(|customer| {
        state.deployer.check_name(CUSTOMER_NAMESPACE, &name)?;
        Ok(customer)
    });
    let checked = checked.and_then(|customer| Ok((customer, query?, header_annotations?)));
    let (Customer(customer), Query(query), from_headers) = match checked {
        Ok(checked) => checked,
        Err(error) => return Ok(refused_early(error, request)),
    };
    let upload = read_upload(request, &state.config).await?;
    let annotations = Annotations {
        message: from_headers.message.or(upload.metadata.annotations.message),
        tag: from_headers.tag.or(upload.metadata.annotations.tag),
    };
    let uploaded = state
        .deployer
        .deploy(NewVersion {
            namespace: CUSTOMER_NAMESPACE.into(),
            name,
            customer_id: Some(customer.id),
            wasm: upload.wasm,
            tags: upload.metadata.tags,
            bindings: upload.metadata.bindings,
            annotations,
            deploy: query.deploy.unwrap_or(true),
            crons: upload.metadata.triggers.map(|t| t.crons),
            consumers: upload.metadata.consumers,
        })
        .await?;
    let status = if uploaded.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(ok(status, uploaded))
}

#[derive(Deserialize)]
pub struct DeployQuery {
    deploy: Option<bool>,
}

/// A raw upload's annotations, from `X-Version-Message` and `X-Version-Tag`.
fn header_annotations(headers: &axum::http::HeaderMap) -> Result<Annotations, ApiError> {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|value| {
                value.to_str().map(str::to_string).map_err(|_| {
                    ApiError::BadRequest(format!("the {name} header must be visible ASCII"))
                })
            })
            .transpose()
    };
    Ok(Annotations {
        message: text("x-version-message")?,
        tag: text("x-version-tag")?,
    })
}

/// The answer to an upload refused before its body was read, sent at once. What the
/// client still sends is read and discarded in the background (bounded, `drain`), so a
/// client busy sending gets to read the answer rather than a reset; the connection is
/// closed after it, never reused with a half-read body.
fn refused_early(error: ApiError, request: Request) -> Response {
    tokio::spawn(drain(request.into_body()));
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[utoipa::path(
    get,
    path = "/script/{name}",
    tag = "scripts",
    summary = "A script's record (secret values never included)",
    params(("name" = String, Path, description = "The script's name: 1-63 of a-z, 0-9 and -")),
    responses(
        (status = 200, body = super::openapi::Envelope<ScriptRecord>),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
        (status = 404, description = "`script_not_found` (also for another customer's name)", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn get_script(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Customer(customer): Customer,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let store = state.store.clone();
    let not_found = ApiError::ScriptNotFound(name.clone());
    let record =
        blocking(move || Ok(store.get_script(CUSTOMER_NAMESPACE, &name, Some(&customer.id))?))
            .await?;
    record.map(|r| ok(StatusCode::OK, r)).ok_or(not_found)
}

#[utoipa::path(
    delete,
    path = "/script/{name}",
    tag = "scripts",
    summary = "Delete a script",
    params(("name" = String, Path, description = "The script's name: 1-63 of a-z, 0-9 and -")),
    responses(
        (status = 200, body = super::openapi::Envelope<super::openapi::Deleted>),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
        (status = 404, description = "`script_not_found`", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn delete_script(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Customer(customer): Customer,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let deleted = state
        .deployer
        .delete(CUSTOMER_NAMESPACE, &name, Some(&customer.id))
        .await?;
    if deleted {
        Ok(ok(
            StatusCode::OK,
            serde_json::json!({ "name": name, "deleted": true }),
        ))
    } else {
        Err(ApiError::ScriptNotFound(name))
    }
}

#[derive(Deserialize)]
pub struct TagFilter {
    #[serde(default)]
    tag: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/scripts",
    tag = "scripts",
    summary = "The caller's scripts carrying every given tag",
    params(("tag" = Option<Vec<String>>, Query, description = "Repeat for several: `?tag=a&tag=b`")),
    responses(
        (status = 200, body = super::openapi::Envelope<Vec<ScriptRecord>>),
        (status = 400, description = "`bad_request`", body = super::openapi::ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn list_scripts(
    State(state): State<AppState>,
    Customer(customer): Customer,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    // `serde_html_form` collects repeated keys (`?tag=a&tag=b`) into a Vec.
    let filter: TagFilter = serde_html_form::from_str(query.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
    let tags = filter.tag;
    let store = state.store.clone();
    let records =
        blocking(move || Ok(store.list_scripts(CUSTOMER_NAMESPACE, Some(&customer.id), &tags)?))
            .await?;
    Ok(ok(StatusCode::OK, records))
}

#[utoipa::path(
    put,
    path = "/script/{name}/tags",
    tag = "scripts",
    summary = "Replace a script's custom tags",
    params(("name" = String, Path, description = "The script's name: 1-63 of a-z, 0-9 and -")),
    request_body(content = Vec<String>, description = "The new tags; `customer_id:` tags are refused"),
    responses(
        (status = 200, body = super::openapi::Envelope<ScriptRecord>),
        (status = 400, description = "`bad_request`", body = super::openapi::ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = super::openapi::ErrorEnvelope),
        (status = 404, description = "`script_not_found`", body = super::openapi::ErrorEnvelope),
    ),
    security(("customer_token" = []))
)]
pub async fn put_tags(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Customer(customer): Customer,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let tags: Vec<String> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("the body must be a JSON array of strings: {e}"))
    })?;
    validate_tags(&tags)?;
    let _writer = state.deployer.lock_changes().await;
    let store = state.store.clone();
    let not_found = ApiError::ScriptNotFound(name.clone());
    let record =
        blocking(move || Ok(store.set_tags(CUSTOMER_NAMESPACE, &name, &customer.id, &tags)))
            .await?;
    match record {
        Ok(record) => Ok(ok(StatusCode::OK, record)),
        Err(crate::store::StoreError::NotFound) => Err(not_found),
        Err(e) => Err(e.into()),
    }
}
