//! The content database: its schema (one migration per version), the handle every
//! request opens through [`database`] (which brings the schema up to date first), the
//! [`Item`] row, its ids and looking one up.

use platform_kit::{self as kit, ApiError};
use sdk::{Env, Result, RouteContext, Sql, params};
use serde::{Deserialize, Serialize};

/// What every item id starts with.
pub const ITEM_ID_PREFIX: &str = "cnt_";

/// The schema, one entry per version (see `kit::migrate`).
const MIGRATIONS: &[&str] = &["
    CREATE TABLE items (
        id TEXT PRIMARY KEY,
        app_key TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX items_by_app ON items (app_key, created_at)
"];

/// A content item, as stored and as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub app_key: String,
    pub owner_id: String,
    pub title: String,
    pub body: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The `DB` binding, migrated to the latest schema.
pub fn database(env: &Env) -> Result<Sql> {
    let db = env.sql("DB");
    kit::migrate(&db, MIGRATIONS)?;
    Ok(db)
}

/// The well-formed item id of the path.
pub fn item_id(route: &RouteContext) -> Result<String, ApiError> {
    kit::check::id("id", route.param("id").unwrap_or_default(), ITEM_ID_PREFIX)
}

/// Item `id`, or `404`.
pub fn item(db: &Sql, id: &str) -> Result<Item> {
    let item = db.first::<Item>("SELECT * FROM items WHERE id = ?", params![id])?;
    Ok(item.ok_or_else(|| ApiError::not_found(format!("content item `{id}`")))?)
}
