//! API keys: `POST /keys` (the secret is shown once and stored as its SHA-256),
//! `GET /keys`, `DELETE /keys/{id}` (revokes), each for the caller's own keys only; and
//! [`owner`], who a secret belongs to. Also the service's database and its schema.

use platform_kit::{self as kit, ApiError, Caller};
use sdk::{Request, Response, RouteContext, Sql};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What every API key secret starts with.
pub const SECRET_PREFIX: &str = "ak_";

/// How much of the secret is kept in the clear, to tell keys apart.
const PREFIX_CHARS: usize = 10;

/// The longest name a key may have.
const MAX_NAME_CHARS: usize = 100;

/// How many keys `GET /keys` lists, the newest first.
const LISTED_KEYS: i64 = 100;

/// The schema: keys of a user in an app, found by the SHA-256 of their secret.
const SCHEMA_V1: &str = "
CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    app_key TEXT NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX keys_by_owner ON keys (user_id, app_key, created_at)
";

/// The columns of a key that may be shown (never its hash).
const SHOWN_COLUMNS: &str = "id, name, prefix, created_at, revoked_at";

/// The database `DB`, brought to the latest schema.
pub fn open(route: &RouteContext) -> sdk::Result<Sql> {
    let db = route.env.sql("DB");
    kit::migrate(&db, &[SCHEMA_V1])?;
    Ok(db)
}

/// A key as its owner sees it.
#[derive(Serialize, Deserialize)]
struct Key {
    id: String,
    name: String,
    prefix: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

#[derive(Deserialize)]
struct CreateRequest {
    name: String,
}

/// `POST /keys {name}` → `201 {key, secret}`.
pub async fn create(mut req: Request, route: RouteContext) -> sdk::Result<Response> {
    let caller = Caller::required(&req)?;
    let request: CreateRequest = kit::body(&mut req).await?;
    let name = kit::check::text("name", &request.name, MAX_NAME_CHARS)?;
    let secret = kit::token(SECRET_PREFIX);
    let key = Key {
        id: kit::id("key_"),
        name,
        prefix: secret.chars().take(PREFIX_CHARS).collect(),
        created_at: kit::now(),
        revoked_at: None,
    };
    let db = open(&route)?;
    db.execute(
        "INSERT INTO keys (id, user_id, app_key, name, prefix, secret_sha256, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        sdk::params![
            &key.id,
            &caller.user_id,
            &caller.app_key,
            &key.name,
            &key.prefix,
            kit::sha256_hex(&secret),
            key.created_at,
        ],
    )?;
    kit::created(&json!({ "key": key, "secret": secret }))
}

/// `GET /keys` → `{keys}`: the caller's newest keys in its app, revoked ones included.
pub async fn list(req: Request, route: RouteContext) -> sdk::Result<Response> {
    let caller = Caller::required(&req)?;
    let db = open(&route)?;
    let keys: Vec<Key> = db.query(
        &format!(
            "SELECT {SHOWN_COLUMNS} FROM keys WHERE user_id = ? AND app_key = ?
             ORDER BY created_at DESC, rowid DESC LIMIT ?"
        ),
        sdk::params![&caller.user_id, &caller.app_key, LISTED_KEYS],
    )?;
    kit::ok(&json!({ "keys": keys }))
}

/// `DELETE /keys/{id}` → `{key}`, revoked (revoking twice keeps the first time); another
/// user's key is `404`.
pub async fn revoke(req: Request, route: RouteContext) -> sdk::Result<Response> {
    let caller = Caller::required(&req)?;
    let id = route.param("id").unwrap_or_default();
    let db = open(&route)?;
    let revoked: Option<Key> = db.first(
        &format!(
            "UPDATE keys SET revoked_at = COALESCE(revoked_at, ?)
             WHERE id = ? AND user_id = ? AND app_key = ?
             RETURNING {SHOWN_COLUMNS}"
        ),
        sdk::params![kit::now(), id, &caller.user_id, &caller.app_key],
    )?;
    let key = revoked.ok_or_else(|| {
        let shown: String = id.chars().take(MAX_NAME_CHARS).collect();
        ApiError::not_found(format_args!("key `{shown}`"))
    })?;
    kit::ok(&json!({ "key": key }))
}

/// Who `secret` belongs to, as a caller with the `user` role; `None` when it is no key
/// or a revoked one.
pub fn owner(db: &Sql, secret: &str) -> sdk::Result<Option<Caller>> {
    #[derive(Deserialize)]
    struct Owner {
        user_id: String,
        app_key: String,
    }
    let owner: Option<Owner> = db.first(
        "SELECT user_id, app_key FROM keys WHERE secret_sha256 = ? AND revoked_at IS NULL",
        sdk::params![kit::sha256_hex(secret)],
    )?;
    Ok(owner.map(|owner| Caller {
        user_id: owner.user_id,
        role: "user".into(),
        app_key: owner.app_key,
    }))
}
