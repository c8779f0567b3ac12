//! The gateway in front of the platform's own services (seed `000_*`): every request
//! that no other route takes. It removes every identity header a client sent
//! (`X-User-Id`, `X-User-Role`, `X-App-Key`, `X-Customer-Token`, in any case and with
//! `_` for `-`: `crate::identity`), verifies
//! the session of a cookie or bearer token by a typed call to the first-party `auth`
//! script in-process (`platform-services:auth/session.verify`; its answer remembered
//! briefly, `sessions.rs`), sets the three headers
//! from the session, and hands the request — path, query and streamed body unchanged —
//! to the first-party script that owns its prefix. The service's answer, errors included,
//! streams back unchanged.
//!
//! Who may call what is the table `ROUTES`: unknown prefix `404 not_found`, no valid
//! session on a protected route `401 unauthorized`, an admin route for a non-admin
//! `403 forbidden`. The services check identity again themselves. Sign-ups and logins
//! are counted per client address first (`sign_in_limit.rs`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};

use wasmtime::component::Val;

use super::AppState;
use super::dispatch::{self, Target};
use super::error::ApiError;
use super::sessions::{CredentialsKey, Remembered, Session};
use super::sign_in_limit::SignInLimit;
use crate::identity;

/// The headers that carry a session's identity downstream.
const SESSION_HEADERS: [&str; 3] = [identity::USER_ID, identity::USER_ROLE, identity::APP_KEY];

/// Where a session ends; the gateway forgets it first.
const LOGOUT_PATH: &str = "/auth/logout";

/// Who may call a prefix, as far as the gateway checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone; the service authenticates what it must (sign-in, API keys, webhooks).
    Public,
    /// `GET`/`HEAD` for anyone, other methods signed in.
    PublicRead,
    /// Signed in.
    Session,
    /// Signed in with the `admin` role.
    Admin,
}

/// `(prefix, first-party script, access)`.
const ROUTES: &[(&str, &str, Access)] = &[
    ("/auth", "auth", Access::Public),
    ("/credits", "billing", Access::Session),
    ("/orders", "billing", Access::Session),
    ("/payment", "billing", Access::Session),
    ("/tickets", "support", Access::Session),
    ("/keys", "ai", Access::Session),
    ("/ai", "ai", Access::Public),
    ("/content", "content", Access::PublicRead),
    ("/admin", "admin", Access::Admin),
];

/// Routes inside a protected prefix that are public: the payment provider's webhook
/// carries a signature, not a session.
const PUBLIC_PATHS: &[(Method, &str)] = &[(Method::POST, "/payment/webhook")];

/// What `auth` said about the credentials a request presented.
enum Verified {
    Session(Session),
    /// No such session, or it expired or was ended.
    NoSession,
}

/// Every request no other route took.
pub async fn handle(State(state): State<AppState>, request: Request) -> Response {
    match route(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn route(state: &AppState, mut request: Request) -> Result<Response, ApiError> {
    let path = request.uri().path();
    let Some(&(_, service, access)) = ROUTES.iter().find(|(prefix, _, _)| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }) else {
        return Err(ApiError::NotFound("no such route".into()));
    };
    let access = if PUBLIC_PATHS
        .iter()
        .any(|(method, public)| request.method() == method && path == *public)
    {
        Access::Public
    } else {
        access
    };
    let logging_out = path == LOGOUT_PATH;
    if SignInLimit::applies_to(request.method(), path)
        && let Some(ConnectInfo(client)) = request.extensions().get::<ConnectInfo<SocketAddr>>()
    {
        state
            .sign_in_limit
            .check(client.ip())
            .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    }

    identity::strip(request.headers_mut());
    let credentials = CredentialsKey::of(request.headers());
    // A logout is never answered from, nor remembered in, the session cache.
    let remembered = credentials
        .filter(|_| !logging_out)
        .and_then(|key| state.sessions.get(key));
    let session = match (credentials, remembered) {
        (None, _) => None,
        (Some(_), Some(Remembered::Session(session))) => Some(session),
        (Some(_), Some(Remembered::NoSession)) => None,
        (Some(key), None) => {
            let (remembered, session) = match verify_session(state, request.headers()).await? {
                Verified::Session(session) => (Remembered::Session(session.clone()), Some(session)),
                Verified::NoSession => (Remembered::NoSession, None),
            };
            if !logging_out {
                state.sessions.insert(key, remembered);
            }
            session
        }
    };
    let read_only = matches!(*request.method(), Method::GET | Method::HEAD);
    match (&session, access) {
        (None, Access::Session | Access::Admin) => return Err(sign_in_first()),
        (None, Access::PublicRead) if !read_only => return Err(sign_in_first()),
        (Some(session), Access::Admin) if session.role != "admin" => {
            return Err(ApiError::Forbidden("this needs the admin role".into()));
        }
        _ => {}
    }
    if let Some(session) = &session {
        inject_identity(request.headers_mut(), session)?;
    }
    let path = request.uri().path().to_string();
    let response = dispatch::serve(state, Target::Platform(service), &path, request).await;
    if let Some(key) = credentials.filter(|_| logging_out) {
        // After `auth` ended the session, so a request racing the logout cannot have
        // put it back.
        state.sessions.forget(key);
    }
    Ok(response)
}

fn sign_in_first() -> ApiError {
    ApiError::SignInRequired("sign in first: no valid session cookie or bearer token".into())
}

fn inject_identity(headers: &mut HeaderMap, session: &Session) -> Result<(), ApiError> {
    let values = [&session.user_id, &session.role, &session.app_key];
    for (name, value) in SESSION_HEADERS.into_iter().zip(values) {
        let value = HeaderValue::from_str(value)
            .map_err(|_| ApiError::Internal(format!("auth returned an invalid `{name}`")))?;
        headers.insert(name, value);
    }
    Ok(())
}

/// The interface `auth` answers the gateway's question on (typed RPC, `rpc.rs`).
const AUTH_SESSION: (&str, &str) = ("platform-services:auth/session", "verify");

/// Asks `auth` whose session the request's cookie or bearer token is: one typed call
/// with the `Authorization` and `Cookie` headers, answered with the identity or none.
async fn verify_session(state: &AppState, headers: &HeaderMap) -> Result<Verified, ApiError> {
    let auth = dispatch::resolve(state, &Target::Platform("auth"))?
        .pick(None)
        .clone();
    let text = |value: &HeaderValue| Val::String(String::from_utf8_lossy(value.as_bytes()).into());
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| Box::new(text(v)));
    let cookies = headers.get_all(header::COOKIE).iter().map(text).collect();
    let params = vec![Val::Option(authorization), Val::List(cookies)];
    let answer = state
        .runtime
        .call_export(auth, AUTH_SESSION, params)
        .await
        .map_err(|why| ApiError::Internal(format!("auth: {why}")))?;
    match answer.first() {
        Some(Val::Result(Ok(Some(found)))) => match found.as_ref() {
            Val::Option(None) => Ok(Verified::NoSession),
            Val::Option(Some(identity)) => identity_of(identity)
                .map(Verified::Session)
                .ok_or_else(|| ApiError::Internal("auth answered a malformed identity".into())),
            _ => Err(ApiError::Internal(
                "auth answered a malformed session".into(),
            )),
        },
        Some(Val::Result(Err(Some(why)))) => Err(ApiError::Internal(format!("auth: {why:?}"))),
        _ => Err(ApiError::Internal("auth answered no session result".into())),
    }
}

/// The session of `auth`'s `identity` record.
fn identity_of(identity: &Val) -> Option<Session> {
    let Val::Record(fields) = identity else {
        return None;
    };
    let field = |name: &str| {
        fields.iter().find_map(|(n, v)| match v {
            Val::String(text) if n == name => Some(text.clone()),
            _ => None,
        })
    };
    Some(Session {
        user_id: field("user-id")?,
        role: field("role")?,
        app_key: field("app-key")?,
    })
}
