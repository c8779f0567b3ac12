//! The `auth` service: accounts (email, Argon2id password hash, role, app), sessions
//! and who is calling. The gateway asks `GET /auth/get-session` for every request that
//! carries a session cookie or bearer token and turns the answer into the identity
//! headers the other services trust. Routes and answers: `examples/platform/README.md`.

mod password;
mod session;
mod throttle;
mod users;

use platform_kit as kit;
use sdk::{Context, Env, Request, Response, Result, Router};

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
