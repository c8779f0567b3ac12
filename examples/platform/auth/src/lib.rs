//! The `auth` service: accounts (email, Argon2id password hash, role, app), sessions
//! and who is calling. The gateway asks `platform-services:auth/session.verify` (typed
//! RPC, `wit/world.wit`) for every request that carries a session cookie or bearer token
//! and turns the answer into the identity headers the other services trust; `GET
//! /auth/get-session` answers the same over HTTP. Routes and answers:
//! `examples/platform/README.md`.

mod password;
mod session;
mod throttle;
mod users;

use platform_kit as kit;
use sdk::{Context, Env, Request, Response, Result, Router};

mod rpc {
    wit_bindgen::generate!({ path: "wit", world: "platform-services:auth/auth" });
}

use rpc::exports::platform_services::auth::session::{Guest, Identity};

/// The gateway's question, by typed RPC.
struct SessionApi;

impl Guest for SessionApi {
    fn verify(
        authorization: Option<String>,
        cookies: Vec<String>,
    ) -> std::result::Result<Option<Identity>, String> {
        let cookies: Vec<&str> = cookies.iter().map(String::as_str).collect();
        let Some(token) = session::token_from(authorization.as_deref(), &cookies) else {
            return Ok(None);
        };
        let db = Env::for_export().sql("DB");
        kit::migrate(&db, MIGRATIONS).map_err(|e| format!("{e:#}"))?;
        let found = session::identity_of(&db, &token).map_err(|e| format!("{e:#}"))?;
        Ok(found.map(|(user_id, role, app_key)| Identity {
            user_id,
            role,
            app_key,
        }))
    }
}

rpc::export!(SessionApi with_types_in rpc);

/// The schema, one entry per version (see `kit::migrate`).
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user', 'admin')),
        app_key TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        token_sha256 TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_by_expiry ON sessions (expires_at)
",
    "
    CREATE TABLE login_attempts (
        email TEXT PRIMARY KEY,
        attempts INTEGER NOT NULL,
        window_start INTEGER NOT NULL
    );
    CREATE INDEX login_attempts_by_window ON login_attempts (window_start)
",
];

#[sdk::fetch]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    if let Err(error) = kit::migrate(&env.sql("DB"), MIGRATIONS) {
        return Ok(kit::respond(Err(error)));
    }
    let router = Router::new()
        .post("/auth/signup", users::signup)
        .post("/auth/login", session::login)
        .post("/auth/logout", session::logout)
        .get("/auth/get-session", session::get_session)
        .get("/auth/whoami", session::whoami)
        .get("/auth/users", users::list)
        .post("/auth/role", users::set_role);
    kit::serve(router, req, env, ctx).await
}
