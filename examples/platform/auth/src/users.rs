//! Accounts: sign-up (validated email, password and app), the admin's list of users and
//! role changes.

use platform_kit::{self as kit, ApiError, Caller};
use sdk::{Request, Response, Result, RouteContext, params};
use serde::{Deserialize, Serialize};

use crate::password;

const DEFAULT_APP: &str = "default";

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: String,
    pub app_key: String,
    pub created_at: i64,
}

#[derive(Deserialize)]
struct SignUp {
    email: String,
    password: String,
    app_key: Option<String>,
}

/// `POST /auth/signup {email, password, app_key?}`.
pub async fn signup(mut req: Request, route: RouteContext) -> Result<Response> {
    let form: SignUp = kit::body(&mut req).await?;
    let email = normalize_email(&form.email)?;
    check_password(&form.password)?;
    let app_key = kit::check::app_key("app_key", form.app_key.as_deref().unwrap_or(DEFAULT_APP))?;
    let db = route.env.sql("DB");
    if by_email(&db, &email)?.is_some() {
        return Err(email_taken());
    }
    let user = User {
        id: kit::id("usr_"),
        email,
        role: "user".into(),
        app_key,
        created_at: kit::now(),
    };
    let hash = password::hash(&form.password)?;
    let inserted = db.execute(
        "INSERT INTO users (id, email, password_hash, role, app_key, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        params![&user.id, &user.email, hash, &user.role, &user.app_key, user.created_at],
    );
    if inserted.is_err() && by_email(&db, &user.email)?.is_some() {
        // Two sign-ups raced for the address; the other one won.
        return Err(email_taken());
    }
    inserted?;
    kit::created(&serde_json::json!({ "user": user }))
}

/// `GET /auth/users` (admin): every user, oldest first.
pub async fn list(req: Request, route: RouteContext) -> Result<Response> {
    Caller::admin(&req)?;
    let users: Vec<User> = route.env.sql("DB").query(
        "SELECT id, email, role, app_key, created_at FROM users ORDER BY created_at, rowid",
        [],
    )?;
    kit::ok(&serde_json::json!({ "users": users }))
}

#[derive(Deserialize)]
struct RoleChange {
    email: String,
    role: String,
}

/// `POST /auth/role {email, role}` (admin).
pub async fn set_role(mut req: Request, route: RouteContext) -> Result<Response> {
    Caller::admin(&req)?;
    let change: RoleChange = kit::body(&mut req).await?;
    let email = normalize_email(&change.email)?;
    if change.role != "user" && change.role != "admin" {
        return Err(ApiError::field("role", "must be `user` or `admin`").into());
    }
    let db = route.env.sql("DB");
    db.execute(
        "UPDATE users SET role = ? WHERE email = ?",
        params![&change.role, &email],
    )?;
    let user = by_email(&db, &email)?.ok_or_else(|| ApiError::not_found("user"))?;
    kit::ok(&serde_json::json!({ "user": user }))
}

/// The user with `email`, if any.
pub fn by_email(db: &sdk::Sql, email: &str) -> Result<Option<User>> {
    db.first(
        "SELECT id, email, role, app_key, created_at FROM users WHERE email = ?",
        params![email],
    )
}

/// `email` trimmed and lowercased, if it looks like an address.
pub fn normalize_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_lowercase();
    let well_formed = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if !well_formed {
        return Err(ApiError::field("email", "is not an email address"));
    }
    Ok(email)
}

fn check_password(password: &str) -> Result<(), ApiError> {
    let length = password.chars().count();
    if !(8..=256).contains(&length) {
        return Err(ApiError::field("password", "must be 8 to 256 characters"));
    }
    Ok(())
}

fn email_taken() -> sdk::Error {
    ApiError::Conflict {
        code: "email_taken",
        message: "an account with this email exists".into(),
    }
    .into()
}
