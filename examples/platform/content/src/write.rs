//! The writing routes, which need a session: creating an item in the caller's app, and
//! changing or deleting one, which only its owner or an admin may do. Items are public,
//! so anyone else gets `403` rather than a `404` that would hide nothing.

use platform_kit::{self as kit, ApiError, Caller};
use sdk::{Request, Response, Result, RouteContext, params};
use serde::Deserialize;

use crate::input::{MAX_BODY_CHARS, MAX_TITLE_CHARS};
use crate::store::{self, ITEM_ID_PREFIX, Item};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewItem {
    title: String,
    body: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemChanges {
    title: Option<String>,
    body: Option<String>,
}

/// `POST /content {title, body}` → `201 {item}`, owned by the caller, in the caller's app.
pub async fn create(mut req: Request, route: RouteContext) -> Result<Response> {
    let caller = Caller::required(&req)?;
    if caller.app_key.is_empty() {
        return Err(ApiError::field(kit::APP_KEY, "the caller belongs to no app").into());
    }
    let form: NewItem = kit::body(&mut req).await?;
    let title = kit::check::text("title", &form.title, MAX_TITLE_CHARS)?;
    let body = kit::check::text("body", &form.body, MAX_BODY_CHARS)?;
    let db = store::database(&route.env)?;
    let now = kit::now();
    let item = Item {
        id: kit::id(ITEM_ID_PREFIX),
        app_key: caller.app_key,
        owner_id: caller.user_id,
        title,
        body,
        created_at: now,
        updated_at: now,
    };
    db.execute(
        "INSERT INTO items (id, app_key, owner_id, title, body, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![
            &item.id,
            &item.app_key,
            &item.owner_id,
            &item.title,
            &item.body,
            item.created_at,
            item.updated_at
        ],
    )?;
    kit::created(&serde_json::json!({ "item": item }))
}

/// `PUT /content/{id} {title?, body?}` → `{item}` with the given fields replaced; at
/// least one must be given.
pub async fn update(mut req: Request, route: RouteContext) -> Result<Response> {
    let caller = Caller::required(&req)?;
    let id = store::item_id(&route)?;
    let changes: ItemChanges = kit::body(&mut req).await?;
    if changes.title.is_none() && changes.body.is_none() {
        return Err(ApiError::BadRequest("give `title`, `body` or both".into()).into());
    }
    let title = changes
        .title
        .map(|title| kit::check::text("title", &title, MAX_TITLE_CHARS))
        .transpose()?;
    let body = changes
        .body
        .map(|body| kit::check::text("body", &body, MAX_BODY_CHARS))
        .transpose()?;
    let db = store::database(&route.env)?;
    let mut item = store::item(&db, &id)?;
    check_may_change(&caller, &item)?;
    item.title = title.unwrap_or(item.title);
    item.body = body.unwrap_or(item.body);
    item.updated_at = kit::now();
    let updated = db.execute(
        "UPDATE items SET title = ?, body = ?, updated_at = ? WHERE id = ?",
        params![&item.title, &item.body, item.updated_at, &item.id],
    )?;
    if updated.rows_written == 0 {
        // Deleted since it was read.
        return Err(ApiError::not_found(format!("content item `{id}`")).into());
    }
    kit::ok(&serde_json::json!({ "item": item }))
}

/// `DELETE /content/{id}` → `{id, deleted: true}`.
pub async fn delete(req: Request, route: RouteContext) -> Result<Response> {
    let caller = Caller::required(&req)?;
    let id = store::item_id(&route)?;
    let db = store::database(&route.env)?;
    let item = store::item(&db, &id)?;
    check_may_change(&caller, &item)?;
    db.execute("DELETE FROM items WHERE id = ?", params![&item.id])?;
    kit::ok(&serde_json::json!({ "id": item.id, "deleted": true }))
}

/// `403` unless `caller` owns `item` or is an admin.
fn check_may_change(caller: &Caller, item: &Item) -> Result<(), ApiError> {
    if caller.is_admin() || item.owner_id == caller.user_id {
        return Ok(());
    }
    Err(ApiError::Forbidden(
        "only the item's owner or an admin may change or delete it".into(),
    ))
}
