//! Orders of credits: `POST /orders` (a pending order at one cent per credit), `GET
//! /orders` and `GET /orders/{id}`, each for the caller's own orders only; the lookups
//! payments make; and [`expire_unpaid`], which the nightly scheduled job runs: an order
//! left pending for `UNPAID_TTL_SECONDS` becomes `expired` and can no longer be paid.

use platform_kit::{self as kit, ApiError, Caller};
use sdk::{Request, Response, RouteContext, Sql};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::input::{self, MAX_ID_CHARS};
use crate::store;

/// The status of an order waiting for its payment.
pub const PENDING: &str = "pending";
/// The status of an order whose payment succeeded and whose credits were added.
pub const PAID: &str = "paid";
/// The status of an order left unpaid too long (stored as `expired_at`).
pub const EXPIRED: &str = "expired";

/// How long an order may wait for its payment: a day.
pub const UNPAID_TTL_SECONDS: i64 = 24 * 60 * 60;

/// The most credits one order may buy.
const MAX_ORDER_CREDITS: u64 = 1_000_000;

/// How many orders `GET /orders` lists, the newest first.
const LISTED_ORDERS: i64 = 100;

const COLUMNS: &str = "id, user_id, app_key, credits, amount_cents, status, created_at, paid_at";

/// The columns as read: an expired order reads as `expired`.
const READ_COLUMNS: &str = "id, user_id, app_key, credits, amount_cents,
     CASE WHEN expired_at IS NOT NULL AND status = 'pending' THEN 'expired' ELSE status END
       AS status,
     created_at, paid_at, expired_at";

/// An order, as stored and as answered.
#[derive(Debug, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub app_key: String,
    pub credits: i64,
    pub amount_cents: i64,
    pub status: String,
    pub created_at: i64,
    pub paid_at: Option<i64>,
    #[serde(default)]
    pub expired_at: Option<i64>,
}

#[derive(Deserialize)]
struct CreateRequest {
    credits: u64,
}

/// `POST /orders {credits}` → `201 {order}`, pending.
pub async fn create(mut req: Request, route: RouteContext) -> sdk::Result<Response> {
    let caller = Caller::required(&req)?;
    let request: CreateRequest = kit::body(&mut req).await?;
    let credits = input::credits("credits", request.credits, MAX_ORDER_CREDITS)?;
    let order = Order {
        id: kit::id("ord_"),
        user_id: caller.user_id,
        app_key: caller.app_key,
        credits,
        amount_cents: credits,
        status: PENDING.into(),
        created_at: kit::now(),
        paid_at: None,
        expired_at: None,
    };
    let db = store::open(&route)?;
    db.execute(
        &format!("INSERT INTO orders ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        sdk::params![
            &order.id,
            &order.user_id,
            &order.app_key,
            order.credits,
            order.amount_cents,
            &order.status,
            order.created_at,
            order.paid_at,
        ],
    )?;
    kit::created(&json!({ "order": order }))
}

/// `GET /orders` → `{orders}`: the caller's newest orders in its app.
pub async fn list(req: Request, route: RouteContext) -> sdk::Result<Response> {
    let caller = Caller::required(&req)?;
    let db = store::open(&route)?;
    let orders: Vec<Order> = db.query(
        &format!(
            "SELECT {READ_COLUMNS} FROM orders WHERE user_id = ? AND app_key = ?
             ORDER BY created_at DESC, rowid DESC LIMIT ?"
        ),
        sdk::params![&caller.user_id, &caller.app_key, LISTED_ORDERS],
    )?;
    kit::ok(&json!({ "orders": orders }))
}

/// `GET /orders/{id}` → `{order}`, the caller's own.
pub async fn get(req: Request, route: RouteContext) -> sdk::Result<Response> {
    let caller = Caller::required(&req)?;
    let id = route.param("id").unwrap_or_default();
    let db = store::open(&route)?;
    kit::ok(&json!({ "order": own(&db, &caller, id)? }))
}

/// Order `id` if it belongs to `caller` (in its app); `404` otherwise, whoever owns it.
pub fn own(db: &Sql, caller: &Caller, id: &str) -> sdk::Result<Order> {
    let order: Option<Order> = db.first(
        &format!("SELECT {READ_COLUMNS} FROM orders WHERE id = ? AND user_id = ? AND app_key = ?"),
        sdk::params![id, &caller.user_id, &caller.app_key],
    )?;
    order.ok_or_else(|| not_found(id).into())
}

/// Order `id`, whoever owns it: for the payment provider's webhook.
pub fn find(db: &Sql, id: &str) -> sdk::Result<Order> {
    let order: Option<Order> = db.first(
        &format!("SELECT {READ_COLUMNS} FROM orders WHERE id = ?"),
        sdk::params![id],
    )?;
    order.ok_or_else(|| not_found(id).into())
}

/// Marks the orders left pending since before `now - UNPAID_TTL_SECONDS` expired;
/// returns how many.
pub fn expire_unpaid(db: &Sql, now: i64) -> sdk::Result<u64> {
    let results = db.execute(
        "UPDATE orders SET expired_at = ?
         WHERE status = 'pending' AND expired_at IS NULL AND created_at < ?",
        sdk::params![now, now - UNPAID_TTL_SECONDS],
    )?;
    Ok(results.rows_written)
}

/// `409 order_expired` when `order` can no longer be paid.
pub fn refuse_expired(order: &Order) -> sdk::Result<()> {
    if order.status == EXPIRED {
        return Err(ApiError::Conflict {
            code: "order_expired",
            message: format!("order `{}` expired unpaid; create a new one", order.id),
        }
        .into());
    }
    Ok(())
}

fn not_found(id: &str) -> ApiError {
    let shown: String = id.chars().take(MAX_ID_CHARS).collect();
    ApiError::not_found(format_args!("order `{shown}`"))
}
