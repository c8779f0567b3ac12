//! Test-mode payments. `POST /payment/checkout` starts a payment of the caller's pending
//! order and hands back the event the payment provider would send once it succeeds,
//! signed; `POST /payment/webhook` is that provider's call: its body is verified against
//! `X-Payment-Signature` (hex HMAC-SHA256 under `PAYMENT_WEBHOOK_SECRET`, compared in
//! constant time), then one batch marks the order paid and adds its credits, exactly
//! once per order.

use hmac::{Hmac, Mac as _};
use platform_kit::{self as kit, ApiError, Caller};
use sdk::{Request, RequestExt as _, Response, RouteContext, Sql, Statement};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use crate::input::MAX_ID_CHARS;
use crate::orders::{self, Order, PAID};
use crate::store::{self, Account, Outcome};

const SECRET_BINDING: &str = "PAYMENT_WEBHOOK_SECRET";
const SIGNATURE_HEADER: &str = "x-payment-signature";
/// The one kind of event the webhook acts on.
const SUCCEEDED: &str = "payment.succeeded";

/// What the payment provider posts to the webhook, as JSON.
#[derive(Serialize, Deserialize)]
struct PaymentEvent {
    #[serde(rename = "type")]
    kind: String,
    payment_id: String,
    order_id: String,
    amount_cents: i64,
}

/// A payment of an order, as stored and as answered.
#[derive(Serialize, Deserialize)]
struct Payment {
    id: String,
    order_id: String,
    amount_cents: i64,
    status: String,
    created_at: i64,
}

#[derive(Deserialize)]
struct CheckoutRequest {
    order_id: String,
}

/// `POST /payment/checkout {order_id}` → `{payment, test_event: {payload, signature}}`;
/// `409 order_paid` when the order is paid already, `409 order_expired` when it expired.
pub async fn checkout(mut req: Request, route: RouteContext) -> sdk::Result<Response> {
    let caller = Caller::required(&req)?;
    let request: CheckoutRequest = kit::body(&mut req).await?;
    let order_id = kit::check::text("order_id", &request.order_id, MAX_ID_CHARS)?;
    let secret = webhook_secret(&route)?;
    let db = store::open(&route)?;
    let order = orders::own(&db, &caller, &order_id)?;
    orders::refuse_expired(&order)?;
    if order.status == PAID {
        return Err(ApiError::Conflict {
            code: "order_paid",
            message: format!("order `{}` is paid already", order.id),
        }
        .into());
    }
    let payment = Payment {
        id: kit::id("pay_"),
        order_id: order.id,
        amount_cents: order.amount_cents,
        status: "pending".into(),
        created_at: kit::now(),
    };
    db.execute(
        "INSERT INTO payments (id, order_id, amount_cents, status, created_at)
         VALUES (?, ?, ?, ?, ?)",
        sdk::params![
            &payment.id,
            &payment.order_id,
            payment.amount_cents,
            &payment.status,
            payment.created_at,
        ],
    )?;
    let payload = serde_json::to_string(&PaymentEvent {
        kind: SUCCEEDED.into(),
        payment_id: payment.id.clone(),
        order_id: payment.order_id.clone(),
        amount_cents: payment.amount_cents,
    })?;
    let signature = sign(&secret, payload.as_bytes());
    kit::ok(&json!({
        "payment": payment,
        "test_event": { "payload": payload, "signature": signature },
    }))
}

/// `POST /payment/webhook` with a signed [`PaymentEvent`] → `{credited, order_id,
/// balance}`: `credited` is `false` for an order credited before (a replay), which
/// changes nothing. A missing or bad signature is `401`.
pub async fn webhook(mut req: Request, route: RouteContext) -> sdk::Result<Response> {
    let secret = webhook_secret(&route)?;
    let signature = req.header(SIGNATURE_HEADER).map(str::to_owned);
    let payload = req
        .bytes()
        .await
        .map_err(|e| ApiError::BadRequest(format!("reading the body: {e:#}")))?;
    if !signature.is_some_and(|signature| signature_matches(&secret, &payload, &signature)) {
        return Err(ApiError::Unauthorized("missing or bad `X-Payment-Signature`".into()).into());
    }
    // Parsed as a request body of its own, for the same field-naming `400`s.
    let event: PaymentEvent = kit::body(&mut Request::new(payload.into())).await?;
    if event.kind != SUCCEEDED {
        return Err(ApiError::field("type", format!("must be `{SUCCEEDED}`")).into());
    }
    let db = store::open(&route)?;
    let order = orders::find(&db, &event.order_id)?;
    orders::refuse_expired(&order)?;
    let payment = payment_of(&db, &event.payment_id, &order.id)?;
    if event.amount_cents != order.amount_cents || payment.amount_cents != order.amount_cents {
        return Err(ApiError::field("amount_cents", "does not match the order").into());
    }
    let account = Account {
        user_id: &order.user_id,
        app_key: &order.app_key,
    };
    let now = kit::now();
    let outcome = store::guarded_batch(
        &db,
        || credit_order(&order, &payment.id, now),
        || {
            if !is_credited(&db, &order.id)? {
                return Ok(None);
            }
            let balance = account.balance(&db)?;
            kit::ok(&json!({ "credited": false, "order_id": order.id, "balance": balance }))
                .map(Some)
        },
    )?;
    match outcome {
        Outcome::Applied(results) => kit::ok(&json!({
            "credited": true,
            "order_id": order.id,
            "balance": store::selected_balance(&results)?,
        })),
        Outcome::Explained(answer) => Ok(answer),
    }
}

/// The batch that credits `order` once: the `credited_orders` row (whose primary key
/// refuses a second time) comes first, then the order, the payment and the balance.
fn credit_order(order: &Order, payment_id: &str, now: i64) -> Vec<Statement> {
    let account = Account {
        user_id: &order.user_id,
        app_key: &order.app_key,
    };
    vec![
        Statement::new(
            "INSERT INTO credited_orders (order_id, payment_id, credits, credited_at)
             VALUES (?, ?, ?, ?)",
        )
        .bind(order.id.as_str())
        .bind(payment_id)
        .bind(order.credits)
        .bind(now),
        Statement::new("UPDATE orders SET status = ?, paid_at = ? WHERE id = ?")
            .bind(PAID)
            .bind(now)
            .bind(order.id.as_str()),
        Statement::new("UPDATE payments SET status = 'succeeded' WHERE id = ?").bind(payment_id),
        account.ensure_row(),
        account.change_by(order.credits),
        account.select_balance(),
    ]
}

fn is_credited(db: &Sql, order_id: &str) -> sdk::Result<bool> {
    let credited = db.execute(
        "SELECT 1 FROM credited_orders WHERE order_id = ?",
        sdk::params![order_id],
    )?;
    Ok(!credited.rows.is_empty())
}

/// Payment `id` of order `order_id`; `404` when there is no such payment of that order.
fn payment_of(db: &Sql, id: &str, order_id: &str) -> sdk::Result<Payment> {
    let payment: Option<Payment> = db.first(
        "SELECT id, order_id, amount_cents, status, created_at FROM payments
         WHERE id = ? AND order_id = ?",
        sdk::params![id, order_id],
    )?;
    payment.ok_or_else(|| {
        let shown: String = id.chars().take(MAX_ID_CHARS).collect();
        ApiError::not_found(format_args!("payment `{shown}` of order `{order_id}`")).into()
    })
}

/// The webhook's signing key; its absence is the platform's fault (`500`), not the
/// caller's.
fn webhook_secret(route: &RouteContext) -> sdk::Result<String> {
    route
        .env
        .secret(SECRET_BINDING)
        .ok_or_else(|| sdk::anyhow::anyhow!("the `{SECRET_BINDING}` binding is missing"))
}

/// Lowercase hex HMAC-SHA256 of `payload` under `secret`.
fn sign(secret: &str, payload: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(payload);
    kit::hex(&mac.finalize().into_bytes())
}

/// Whether `signature` is the signature of `payload`, compared in constant time.
fn signature_matches(secret: &str, payload: &[u8], signature: &str) -> bool {
    sign(secret, payload)
        .as_bytes()
        .ct_eq(signature.as_bytes())
        .into()
}
