//! The public reading routes: an app's newest items, and one item. Neither needs a
//! session.

use platform_kit::{self as kit, ApiError, Caller};
use sdk::{Request, RequestExt as _, Response, Result, RouteContext, params};

use crate::input;
use crate::store::{self, Item};

/// `GET /content[?app=KEY][&limit=N]` → `{items}`, newest first. The app is `?app=`, or
/// else the signed-in caller's; `limit` is 1 to 100, 20 when absent.
pub async fn list(req: Request, route: RouteContext) -> Result<Response> {
    let app = app_of(&req)?;
    let limit = input::limit(req.query_param("limit").as_deref())?;
    let db = store::database(&route.env)?;
    let items: Vec<Item> = db.query(
        "SELECT * FROM items WHERE app_key = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
        params![app, limit],
    )?;
    kit::ok(&serde_json::json!({ "items": items }))
}

/// `GET /content/{id}` → `{item}`.
pub async fn show(_req: Request, route: RouteContext) -> Result<Response> {
    let id = store::item_id(&route)?;
    let db = store::database(&route.env)?;
    let item = store::item(&db, &id)?;
    kit::ok(&serde_json::json!({ "item": item }))
}

/// The app a list is for: `?app=`, or the signed-in caller's app; `400` naming `app`
/// when there is neither.
fn app_of(req: &Request) -> Result<String, ApiError> {
    if let Some(app) = req.query_param("app") {
        return kit::check::app_key("app", &app);
    }
    Caller::of(req)
        .map(|caller| caller.app_key)
        .filter(|app| !app.is_empty())
        .ok_or_else(|| ApiError::field("app", "give `?app=KEY` or sign in"))
}
