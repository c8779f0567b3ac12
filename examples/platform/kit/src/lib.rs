//! What every first-party service shares, so each service is only its own logic:
//!
//! - the API envelope of DESIGN.md (`{"ok":true,"data":..}` / `{"ok":false,"error":{..}}`)
//!   and [`ApiError`], the typed errors a handler returns, mapped to it in [`respond`];
//! - [`Caller`], the identity the gateway injects (`X-User-Id`, `X-User-Role`,
//!   `X-App-Key`), which services trust because the gateway strips whatever a client sent;
//! - [`body`], JSON request bodies whose errors name the field at fault;
//! - [`check`], field checks beyond JSON types (text lengths, ids, app keys);
//! - random tokens and SHA-256 hex digests, and the current time.
//!
//! A service's entry point is `kit::serve(router(), req, env, ctx).await`.

use sdk::{Context, Env, Request, RequestExt as _, Response, Router};
pub mod check;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use sdk;

/// The headers carrying the signed-in user's id, role (`user` or `admin`) and app: the
/// names the gateway sets them under (`platform-names`, shared with the host).
pub use sdk::names::{
    APP_KEY_HEADER as APP_KEY, USER_ID_HEADER as USER_ID, USER_ROLE_HEADER as USER_ROLE,
};

/// The errors a handler answers with; each has its status and envelope code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `bad_request`: the message names the field at fault.
    #[error("{0}")]
    BadRequest(String),
    /// 401 `unauthorized`: no valid session or credential.
    #[error("{0}")]
    Unauthorized(String),
    /// 402 `insufficient_credits`.
    #[error("{0}")]
    InsufficientCredits(String),
    /// 403 `forbidden`: signed in, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404 `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// 413 `too_large`: a body over a limit, or over what the sender may still store.
    #[error("{0}")]
    TooLarge(String),
    /// 409 with a code of its own (`email_taken`, `order_paid`, ...).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 429 `rate_limited`, with `Retry-After: retry_after_secs`.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: i64,
    },
}

impl ApiError {
    /// A 400 naming `field`: "`field`: why".
    pub fn field(field: &str, why: impl std::fmt::Display) -> ApiError {
        ApiError::BadRequest(format!("`{field}`: {why}"))
    }

    /// A 404 for `what` (e.g. "order `ord_1`").
    pub fn not_found(what: impl std::fmt::Display) -> ApiError {
        ApiError::NotFound(format!("{what} not found"))
    }

    fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            ApiError::BadRequest(_) => (400, "bad_request"),
            ApiError::Unauthorized(_) => (401, "unauthorized"),
            ApiError::InsufficientCredits(_) => (402, "insufficient_credits"),
            ApiError::Forbidden(_) => (403, "forbidden"),
            ApiError::NotFound(_) => (404, "not_found"),
            ApiError::Conflict { code, .. } => (409, code),
            ApiError::TooLarge(_) => (413, "too_large"),
            ApiError::RateLimited { .. } => (429, "rate_limited"),
        }
    }
}

/// `200 {"ok":true,"data":data}`.
pub fn ok<T: Serialize + ?Sized>(data: &T) -> sdk::Result<Response> {
    Response::json(&serde_json::json!({ "ok": true, "data": data }))
}

/// `201 {"ok":true,"data":data}`.
pub fn created<T: Serialize + ?Sized>(data: &T) -> sdk::Result<Response> {
    Ok(ok(data)?.with_status(201))
}

/// `status {"ok":false,"error":{"code":code,"message":message}}`.
pub fn failure(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "ok": false, "error": { "code": code, "message": message } });
    Response::new(body.to_string())
        .with_header("content-type", "application/json")
        .expect("a static header is valid")
        .with_status(status)
}

/// The router's own 404 / 405 answers, in the envelope.
fn unmatched(status: u16, message: &str) -> Response {
    let code = if status == 405 {
        "method_not_allowed"
    } else {
        "not_found"
    };
    failure(status, code, message)
}

/// Runs `router` and turns what a handler failed with into the envelope: an [`ApiError`]
/// as itself, anything else as `500 internal` (logged; the details stay in the log).
pub async fn serve(router: Router, req: Request, env: Env, ctx: Context) -> sdk::Result<Response> {
    let result = router.on_unmatched(unmatched).run(req, env, ctx).await;
    Ok(respond(result))
}

/// The response for a handler's result; see [`serve`].
pub fn respond(result: sdk::Result<Response>) -> Response {
    match result {
        Ok(response) => response,
        Err(error) => match error.downcast_ref::<ApiError>() {
            Some(api) => {
                let (status, code) = api.status_and_code();
                let response = failure(status, code, &api.to_string());
                match api {
                    ApiError::RateLimited {
                        retry_after_secs, ..
                    } => response
                        .with_header("retry-after", retry_after_secs.to_string())
                        .expect("a number is a valid header value"),
                    _ => response,
                }
            }
            None => {
                sdk::console_error!("internal error: {error:#}");
                failure(500, "internal", "internal error")
            }
        },
    }
}

/// Who is calling, as the gateway (or a first-party caller) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub user_id: String,
    pub role: String,
    pub app_key: String,
}

impl Caller {
    /// The identity headers of `req`, when a user is signed in.
    pub fn of(req: &Request) -> Option<Caller> {
        let user_id = req.header(USER_ID).filter(|id| !id.is_empty())?;
        Some(Caller {
            user_id: user_id.to_owned(),
            role: req.header(USER_ROLE).unwrap_or("user").to_owned(),
            app_key: req.header(APP_KEY).unwrap_or_default().to_owned(),
        })
    }

    /// The signed-in caller, or `401`.
    pub fn required(req: &Request) -> Result<Caller, ApiError> {
        Caller::of(req).ok_or_else(|| ApiError::Unauthorized("sign in first".into()))
    }

    /// The signed-in caller if an admin; `401` when nobody is signed in, `403` otherwise.
    pub fn admin(req: &Request) -> Result<Caller, ApiError> {
        let caller = Caller::required(req)?;
        if !caller.is_admin() {
            return Err(ApiError::Forbidden("this needs the admin role".into()));
        }
        Ok(caller)
    }

    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }

    /// Headers that pass this identity on to another first-party service.
    pub fn headers(&self) -> [(&'static str, &str); 3] {
        [
            (USER_ID, &self.user_id),
            (USER_ROLE, &self.role),
            (APP_KEY, &self.app_key),
        ]
    }
}

/// Reads the body, a JSON object, into `T`. Bad JSON, another JSON value, a missing
/// field or a wrong type is a `400 bad_request` whose message names the field.
pub async fn body<T: DeserializeOwned>(req: &mut Request) -> Result<T, ApiError> {
    let bytes = req
        .bytes()
        .await
        .map_err(|e| ApiError::BadRequest(format!("reading the body: {e:#}")))?;
    // serde would take `["a", "b"]` for a struct of two fields; only an object will do.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    let mut json = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let why = inner.to_string();
        let why = why.split(" at line ").next().unwrap_or_default();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest(format!("the body is not valid JSON: {why}"))
        } else if path == "." {
            ApiError::BadRequest(why.to_owned())
        } else {
            ApiError::field(&path, why)
        }
    })
}

/// `prefix` + 32 random bytes in hex: a session token, an API key.
pub fn token(prefix: &str) -> String {
    format!("{prefix}{}", random_hex(32))
}

/// An id that does not reveal how many there are: `prefix` + 8 random bytes in hex.
pub fn id(prefix: &str) -> String {
    format!("{prefix}{}", random_hex(8))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the platform provides randomness");
    hex(&buf)
}

/// The SHA-256 of `text` in hex: how tokens and keys are stored.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(text.as_bytes()))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Brings database `db` to the latest schema: `migrations[i]` (statements separated by
/// `;`) takes it from version `i` to `i + 1`, tracked in `PRAGMA user_version`. Each step
/// applies whole or not at all. Costs one read per request once up to date.
pub fn migrate(db: &sdk::Sql, migrations: &[&str]) -> sdk::Result<()> {
    let version = db
        .execute("PRAGMA user_version", [])?
        .rows()
        .next()
        .and_then(|row| row.values().first().and_then(sdk::Value::as_i64))
        .unwrap_or(0);
    for (index, migration) in migrations.iter().enumerate().skip(version.max(0) as usize) {
        let mut statements: Vec<sdk::Statement> = migration
            .split(';')
            .map(str::trim)
            .filter(|sql| !sql.is_empty())
            .map(sdk::Statement::new)
            .collect();
        statements.push(sdk::Statement::new(format!(
            "PRAGMA user_version = {}",
            index + 1
        )));
        // Two first requests may race; the loser's `CREATE TABLE` fails, and it finds the
        // schema in place on its next request.
        db.batch(statements)?;
    }
    Ok(())
}
