//! The front door's routes: management (`script.rs`, `versions.rs`), dispatch
//! (`dispatch.rs`), operator
//! routes, the web page (`ui.rs`), the gateway to the platform's own services
//! (`gateway.rs`), `/openapi.json` generated from the handlers (`openapi.rs`), host
//! routing for `{name}.{dispatch_domain}`, and byte caps on every request head and
//! body. Errors become the envelope in `error.rs`, and nowhere else.

mod auth;
mod dispatch;
pub mod error;
mod gateway;
mod openapi;
mod operator;
mod schedules;
mod script;
mod sessions;
mod sign_in_limit;
mod tail;
mod ui;
mod upload;
mod usage;
mod versions;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http_body_util::Limited;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Config;
use crate::deploy::Deployer;
use crate::runtime::Runtime;
use crate::store::Store;
use error::ApiError;
use sessions::SessionCache;
pub use sign_in_limit::SignInLimit;

/// What every handler shares: one `Arc`, so the clone axum makes per request (and per
/// layer) is one reference count, not one per service.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What an [`AppState`] shares (reached through `Deref`).
pub struct Shared {
    /// Uploads and deletes (the store and the runtime's index changed together).
    pub deployer: Deployer,
    pub runtime: Arc<Runtime>,
    pub store: Arc<Store>,
    pub config: Config,
    /// The gateway's memory of verified sessions.
    pub sessions: SessionCache,
    /// The key of the operator's routes (`local.rs`).
    pub operator_key: String,
    /// The gateway's count of sign-in attempts per client address.
    pub sign_in_limit: SignInLimit,
}

impl AppState {
    pub fn new(deployer: Deployer, config: Config, operator_key: String) -> AppState {
        AppState(Arc::new(Shared {
            runtime: deployer.runtime.clone(),
            store: deployer.store.clone(),
            deployer,
            operator_key,
            sessions: SessionCache::new(config.session_cache()),
            sign_in_limit: SignInLimit::new(config.sign_in_attempts_per_minute),
            config,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub fn router(state: AppState) -> Router {
    // Management, web-page and operator routes, registered from their handlers'
    // `#[utoipa::path]` attributes, which also make `/openapi.json`.
    let (documented, api) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(
            script::put_script,
            script::get_script,
            script::delete_script
        ))
        .routes(routes!(script::put_tags))
        .routes(routes!(script::list_scripts))
        .routes(routes!(versions::list_versions))
        .routes(routes!(versions::get_version))
        .routes(routes!(
            versions::list_deployments,
            versions::create_deployment
        ))
        .routes(routes!(versions::rollback))
        .routes(routes!(schedules::get_schedules, schedules::put_schedules))
        .routes(routes!(schedules::trigger))
        .routes(routes!(tail::customer_tail))
        .routes(routes!(usage::usage))
        .routes(routes!(ui::initialize))
        .routes(routes!(operator::healthz))
        .routes(routes!(operator::metrics))
        .routes(routes!(tail::operator_tail))
        .split_for_parts();
    let openapi_json = api
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    let dispatch = Router::new()
        .route("/dispatch/{name}", any(dispatch::by_path))
        .route("/dispatch/{name}/", any(dispatch::by_path))
        .route("/dispatch/{name}/{*path}", any(dispatch::by_path));
    let page = Router::new()
        .route("/", get(ui::index))
        .route("/ui/app.js", get(ui::app_js))
        .route("/ui/tail.js", get(ui::tail_js))
        .route("/ui/style.css", get(ui::style_css))
        .route(
            "/openapi.json",
            get(
                move || async move { ([(header::CONTENT_TYPE, "application/json")], openapi_json) },
            ),
        );

    Router::new()
        .merge(documented)
        .merge(dispatch)
        .merge(page)
        // Everything else is the gateway's: the platform's own services, or 404.
        .fallback(gateway::handle)
        .layer(middleware::from_fn_with_state(state.clone(), first_steps))
        .with_state(state)
}

/// What every request goes through before the routes, in one layer (each layer costs
/// every request a clone of the state and of the routes' service): the head limit, the
/// body cap, then host routing.
async fn first_steps(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Err(refused) = head_limit(&state, &request) {
        return refused.into_response();
    }
    let request = match body_limit(&state, request) {
        Ok(request) => request,
        Err(refused) => return refused.into_response(),
    };
    host_routing(&state, request, next).await
}

/// Host routing: a request the host resolver gives a target (`{name}.{dispatch_domain}`)
/// goes to the dispatch pipeline whatever its path; every other request to the routes.
async fn host_routing(state: &AppState, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    if let Some(target) = dispatch::for_host(host.as_deref(), &state.config.dispatch_domain) {
        let path = request.uri().path().to_string();
        return dispatch::serve(state, target, &path, request).await;
    }
    next.run(request).await
}

/// Refuses a request whose head (target and headers) is over `max_header_bytes`. The
/// connection's read buffer is capped at the same size (`front_door.rs`), which bounds a
/// head still arriving; this catches one that arrived whole in a single read.
fn head_limit(state: &AppState, request: &Request) -> Result<(), ApiError> {
    let limit = state.config.max_header_bytes;
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len())
        + request.uri().authority().map_or(0, |a| a.as_str().len());
    let head = target
        + request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>();
    if head > limit {
        return Err(ApiError::HeadTooLarge(format!(
            "the request head is larger than {limit} bytes"
        )));
    }
    Ok(())
}

/// Caps every request body: uploads at the script size limit (plus multipart framing),
/// everything else at the dispatch body limit. A declared length over the cap is refused
/// before reading; a streamed body is cut off at the cap.
fn body_limit(state: &AppState, request: Request) -> Result<Request, ApiError> {
    let limit = state
        .config
        .max_request_body_bytes
        .max(state.config.max_script_bytes + upload::MULTIPART_OVERHEAD);
    if upload::declares_more_than(request.headers(), limit) {
        return Err(ApiError::TooLarge(format!(
            "the request body is larger than {limit} bytes"
        )));
    }
    let (parts, body) = request.into_parts();
    Ok(Request::from_parts(
        parts,
        Body::new(Limited::new(body, limit)),
    ))
}

/// A JSON request body that may be left out (empty or only whitespace: `T::default()`);
/// `shape` is what the error says it must look like.
fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    shape: &str,
) -> Result<T, error::ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| error::ApiError::BadRequest(format!("the body must be empty or {shape}: {e}")))
}
