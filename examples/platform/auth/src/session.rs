//! Sessions: login issues a random token (kept only as its SHA-256), sent as an
//! `HttpOnly` cookie and usable as `Authorization: Bearer`; `get-session` resolves it for
//! the gateway; logout ends it. `whoami` shows the identity headers this service received.

use platform_kit::{self as kit, ApiError, Caller};
use sdk::{Request, RequestExt as _, Response, Result, RouteContext, params};
use serde::{Deserialize, Serialize};

use crate::password;
use crate::throttle;
use crate::users;

/// How long a session lasts: 7 days.
const SESSION_SECONDS: i64 = 7 * 24 * 3600;
const COOKIE: &str = "session";

#[derive(Deserialize)]
struct Login {
    email: String,
    password: String,
}

#[derive(Deserialize)]
struct Credentials {
    password_hash: String,
}

/// `POST /auth/login {email, password}`.
pub async fn login(mut req: Request, route: RouteContext) -> Result<Response> {
    let login: Login = kit::body(&mut req).await?;
    if login.password.is_empty() {
        return Err(ApiError::field("password", "is required").into());
    }
    let email = users::normalize_email(&login.email)?;
    let db = route.env.sql("DB");
    throttle::attempt(&db, &email)?;
    let stored: Option<Credentials> = db.first(
        "SELECT password_hash FROM users WHERE email = ?",
        params![&email],
    )?;
    if !password::verify(
        &login.password,
        stored.as_ref().map(|c| c.password_hash.as_str()),
    ) {
        return Err(ApiError::Unauthorized("wrong email or password".into()).into());
    }
    throttle::succeeded(&db, &email)?;
    let user = users::by_email(&db, &email)?.ok_or_else(|| ApiError::not_found("user"))?;
    let token = kit::token("ses_");
    let now = kit::now();
    let expires_at = now + SESSION_SECONDS;
    db.batch([
        sdk::Statement::new("DELETE FROM sessions WHERE expires_at <= ?").bind(now),
        sdk::Statement::new(
            "INSERT INTO sessions (token_sha256, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(kit::sha256_hex(&token))
        .bind(&user.id)
        .bind(now)
        .bind(expires_at),
    ])?;
    let cookie =
        format!("{COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={SESSION_SECONDS}");
    kit::ok(&serde_json::json!({ "token": token, "expires_at": expires_at, "user": user }))?
        .with_header("set-cookie", cookie)
}

/// `POST /auth/logout`: ends the session of the cookie or bearer token, if any.
pub async fn logout(req: Request, route: RouteContext) -> Result<Response> {
    let ended = match presented_token(&req) {
        Some(token) => {
            let deleted = route.env.sql("DB").execute(
                "DELETE FROM sessions WHERE token_sha256 = ?",
                params![kit::sha256_hex(&token)],
            )?;
            deleted.rows_written > 0
        }
        None => false,
    };
    kit::ok(&serde_json::json!({ "signed_out": ended }))?.with_header(
        "set-cookie",
        format!("{COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
    )
}

#[derive(Serialize, Deserialize)]
struct Session {
    user_id: String,
    role: String,
    app_key: String,
    email: String,
    expires_at: i64,
}

/// `GET /auth/get-session`: the signed-in user of the cookie or bearer token, or `401`.
pub async fn get_session(req: Request, route: RouteContext) -> Result<Response> {
    let unauthorized = || ApiError::Unauthorized("no valid session".into());
    let token = presented_token(&req).ok_or_else(unauthorized)?;
    let session: Option<Session> = route.env.sql("DB").first(
        "SELECT u.id AS user_id, u.role, u.app_key, u.email, s.expires_at \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_sha256 = ? AND s.expires_at > ?",
        params![kit::sha256_hex(&token), kit::now()],
    )?;
    kit::ok(&session.ok_or_else(unauthorized)?)
}

/// `GET /auth/whoami`: the identity this service was given, and every identity header
/// exactly as received (whatever its spelling), so anyone can check what reached it.
pub async fn whoami(req: Request, _route: RouteContext) -> Result<Response> {
    let received: Vec<_> = req
        .headers()
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str().replace('_', "-");
            [kit::USER_ID, kit::USER_ROLE, kit::APP_KEY].contains(&name.as_str())
        })
        .map(|(name, value)| {
            serde_json::json!({ "name": name.as_str(), "value": String::from_utf8_lossy(value.as_bytes()) })
        })
        .collect();
    let caller: Option<Caller> = Caller::of(&req);
    kit::ok(&serde_json::json!({ "caller": caller, "identity_headers": received }))
}

/// The session token of `req`: `Authorization: Bearer …` first, else the `session` cookie.
fn presented_token(req: &Request) -> Option<String> {
    let cookies: Vec<&str> = req
        .headers()
        .get_all("cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    token_from(req.header("authorization"), &cookies)
}

/// The session token of an `Authorization` header (`Bearer …`, first) or of `Cookie`
/// headers (`session=…`).
pub fn token_from(authorization: Option<&str>, cookies: &[&str]) -> Option<String> {
    if let Some(bearer) = authorization.and_then(|value| value.strip_prefix("Bearer ")) {
        return Some(bearer.trim().to_owned());
    }
    cookies
        .iter()
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("session="))
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
}

/// The valid session `token` names: (user id, role, app key).
pub fn identity_of(db: &sdk::Sql, token: &str) -> Result<Option<(String, String, String)>> {
    let session: Option<Session> = db.first(
        "SELECT u.id AS user_id, u.role, u.app_key, u.email, s.expires_at \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_sha256 = ? AND s.expires_at > ?",
        params![kit::sha256_hex(token), kit::now()],
    )?;
    Ok(session.map(|s| (s.user_id, s.role, s.app_key)))
}
