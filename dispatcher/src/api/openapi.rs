//! `GET /openapi.json`: the OpenAPI description of the management, web-page and
//! operator routes and of the envelope. It is generated, not written: each handler's
//! `#[utoipa::path]` attribute both registers its route (`utoipa_axum::routes!` in
//! `mod.rs`) and describes it, so the document and the router cannot drift apart.
//! This file holds what only the document needs: the envelope's shapes and the two
//! credentials.

use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::runtime::usage::ScriptUsage;
use crate::store::{DeploymentRecord, VersionRecord};

/// Every successful JSON answer: `{"ok": true, "data": ...}`.
#[derive(Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Always `true`.
    pub ok: bool,
    pub data: T,
}

/// Every failure: `{"ok": false, "error": {"code": ..., "message": ...}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub ok: bool,
    pub error: ErrorBody,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// `bad_request`, `invalid_wasm`, `invalid_name`, `compile_timeout`,
    /// `compile_too_large`, `unauthorized`, `forbidden`, `not_found`, `script_not_found`,
    /// `version_not_found`, `name_taken`, `too_large`, `script_error`, `upstream_error`, `exceeded_cpu`,
    /// `exceeded_memory`, `exceeded_wall_time`, `overloaded`, `script_unavailable`,
    /// `insufficient_storage`, `internal_error`.
    #[schema(example = "script_not_found")]
    pub code: String,
    /// A sentence for a human.
    pub message: String,
}

/// The answer to a delete.
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    pub name: String,
    pub deleted: bool,
}

/// A demo customer made by Initialize, with its token (shown this once).
#[derive(Serialize, ToSchema)]
pub struct DemoCustomer {
    pub id: String,
    pub name: String,
    pub token: String,
}

/// The answer to Initialize.
#[derive(Serialize, ToSchema)]
pub struct Initialized {
    /// Empty when the demo existed already.
    pub customers: Vec<DemoCustomer>,
    pub script: String,
}

/// The answer to `GET /usage`.
#[derive(Serialize, ToSchema)]
pub struct UsageReport {
    /// The first minute counted (Unix seconds).
    pub since: i64,
    pub scripts: Vec<ScriptUsage>,
}

/// A page of a script's versions, newest first.
#[derive(Serialize, ToSchema)]
pub struct VersionPage {
    pub items: Vec<VersionRecord>,
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
}

/// A page of a script's deployments, newest (the live one) first.
#[derive(Serialize, ToSchema)]
pub struct DeploymentPage {
    pub items: Vec<DeploymentRecord>,
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dispatcher",
        description = "A self-hosted Workers for Platforms: customers upload WebAssembly \
                       components and end users reach them at /dispatch/{name}/ or \
                       {name}.localhost. Every JSON answer is an envelope."
    ),
    modifiers(&Credentials),
    components(schemas(ErrorEnvelope))
)]
pub struct ApiDoc;

/// The customer's token and the operator's key, as security schemes.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "customer_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Customer-Token"))),
        );
        components.add_security_scheme(
            "operator_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(
                crate::local::OPERATOR_KEY_HEADER,
            ))),
        );
    }
}
