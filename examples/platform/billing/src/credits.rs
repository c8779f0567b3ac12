//! The balance routes: `GET /credits`, `POST /credits/check`, `POST /credits/spend`
//! (atomic, never negative, idempotent per key) and `POST /credits/adjust` (admins).

use platform_kit::{self as kit, ApiError, Caller};
use sdk::{Request, Response, RouteContext, Sql, Statement};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::input::{self, MAX_CREDITS};
use crate::store::{self, Account, Outcome};

/// The longest idempotency key a spend may carry.
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// The longest reason an adjustment may give.
const MAX_REASON_CHARS: usize = 500;

/// `GET /credits` → `{balance}` of the caller in its app.
pub async fn balance(req: Request, route: RouteContext) -> sdk::Result<Response> {
    let caller = Caller::required(&req)?;
    let db = store::open(&route)?;
    kit::ok(&json!({ "balance": Account::of(&caller).balance(&db)? }))
}

#[derive(Deserialize)]
struct CheckRequest {
    amount: u64,
}

/// `POST /credits/check {amount}` → `{balance, sufficient}`.
pub async fn check(mut req: Request, route: RouteContext) -> sdk::Result<Response> {
    let caller = Caller::required(&req)?;
    let request: CheckRequest = kit::body(&mut req).await?;
    let amount = input::credits("amount", request.amount, MAX_CREDITS)?;
    let db = store::open(&route)?;
    let balance = Account::of(&caller).balance(&db)?;
    kit::ok(&json!({ "balance": balance, "sufficient": balance >= amount }))
}

#[derive(Deserialize)]
struct SpendRequest {
    amount: u64,
    idempotency_key: String,
}

#[derive(Serialize)]
struct SpendAnswer {
    balance: i64,
    spent: i64,
    replayed: bool,
}

/// A spend as recorded under its idempotency key.
#[derive(Deserialize)]
struct RecordedSpend {
    amount: i64,
    balance_after: i64,
}

/// `POST /credits/spend {amount, idempotency_key}` → `{balance, spent, replayed}`.
///
/// One batch takes the credits (the `CHECK` refuses a negative balance) and records the
/// spend under its key (the primary key refuses a second one). A key seen before answers
/// the first result; with another amount it is `409 idempotency_conflict`.
pub async fn spend(mut req: Request, route: RouteContext) -> sdk::Result<Response> {
    let caller = Caller::required(&req)?;
    let request: SpendRequest = kit::body(&mut req).await?;
    let amount = input::credits("amount", request.amount, MAX_CREDITS)?;
    let key = kit::check::text(
        "idempotency_key",
        &request.idempotency_key,
        MAX_IDEMPOTENCY_KEY_CHARS,
    )?;
    let key = key.as_str();
    let db = store::open(&route)?;
    let account = Account::of(&caller);
    let now = kit::now();
    let outcome = store::guarded_batch(
        &db,
        || {
            vec![
                account.ensure_row(),
                account.change_by(-amount),
                record_spend(account, key, amount, now),
                account.select_balance(),
            ]
        },
        || {
            if let Some(first) = recorded_spend(&db, account, key)? {
                return replay(first, amount, key).map(Some);
            }
            let balance = account.balance(&db)?;
            if balance < amount {
                return Err(ApiError::InsufficientCredits(format!(
                    "spending {amount} credits needs more than the balance of {balance}"
                ))
                .into());
            }
            Ok(None)
        },
    )?;
    match outcome {
        Outcome::Applied(results) => kit::ok(&SpendAnswer {
            balance: store::selected_balance(&results)?,
            spent: amount,
            replayed: false,
        }),
        Outcome::Explained(answer) => Ok(answer),
    }
}

/// Records the spend with the balance it left (run after the balance changed).
fn record_spend(account: Account<'_>, key: &str, amount: i64, now: i64) -> Statement {
    Statement::new(
        "INSERT INTO spends (user_id, app_key, idempotency_key, amount, balance_after, created_at)
         SELECT user_id, app_key, ?, ?, credits, ? FROM balances WHERE user_id = ? AND app_key = ?",
    )
    .bind(key)
    .bind(amount)
    .bind(now)
    .bind(account.user_id)
    .bind(account.app_key)
}

fn recorded_spend(db: &Sql, account: Account<'_>, key: &str) -> sdk::Result<Option<RecordedSpend>> {
    db.first(
        "SELECT amount, balance_after FROM spends
         WHERE user_id = ? AND app_key = ? AND idempotency_key = ?",
        sdk::params![account.user_id, account.app_key, key],
    )
}

/// The answer to a key seen before: its first result, if the amount is the same.
fn replay(first: RecordedSpend, amount: i64, key: &str) -> sdk::Result<Response> {
    if first.amount != amount {
        return Err(ApiError::Conflict {
            code: "idempotency_conflict",
            message: format!(
                "idempotency key `{key}` was used for a spend of {} credits, not {amount}",
                first.amount
            ),
        }
        .into());
    }
    kit::ok(&SpendAnswer {
        balance: first.balance_after,
        spent: first.amount,
        replayed: true,
    })
}

#[derive(Deserialize)]
struct AdjustRequest {
    user_id: String,
    app_key: String,
    delta: i64,
    reason: String,
}

/// `POST /credits/adjust {user_id, app_key, delta, reason}` (admins) → `{balance}`;
/// `409 negative_balance` when the balance would go below zero. Every adjustment is
/// logged with the admin who made it.
pub async fn adjust(mut req: Request, route: RouteContext) -> sdk::Result<Response> {
    let admin = Caller::admin(&req)?;
    let request: AdjustRequest = kit::body(&mut req).await?;
    let user_id = kit::check::id("user_id", &request.user_id, "usr_")?;
    let app_key = kit::check::app_key("app_key", &request.app_key)?;
    let account = Account {
        user_id: &user_id,
        app_key: &app_key,
    };
    let delta = input::delta("delta", request.delta)?;
    let reason = kit::check::text("reason", &request.reason, MAX_REASON_CHARS)?;
    let db = store::open(&route)?;
    let now = kit::now();
    let adjustment_id = kit::id("adj_");
    let outcome = store::guarded_batch(
        &db,
        || {
            vec![
                account.ensure_row(),
                account.change_by(delta),
                log_adjustment(&adjustment_id, account, delta, &reason, &admin.user_id, now),
                account.select_balance(),
            ]
        },
        || {
            let balance = account.balance(&db)?;
            if balance + delta < 0 {
                return Err(ApiError::Conflict {
                    code: "negative_balance",
                    message: format!(
                        "a change of {delta} would take the balance of {balance} below zero"
                    ),
                }
                .into());
            }
            Ok(None)
        },
    )?;
    match outcome {
        Outcome::Applied(results) => {
            kit::ok(&json!({ "balance": store::selected_balance(&results)? }))
        }
        Outcome::Explained(answer) => Ok(answer),
    }
}

/// Logs the adjustment with the balance it left (run after the balance changed).
fn log_adjustment(
    id: &str,
    account: Account<'_>,
    delta: i64,
    reason: &str,
    admin_id: &str,
    now: i64,
) -> Statement {
    Statement::new(
        "INSERT INTO adjustments
             (id, user_id, app_key, delta, reason, admin_id, balance_after, created_at)
         SELECT ?, user_id, app_key, ?, ?, ?, credits, ? FROM balances
         WHERE user_id = ? AND app_key = ?",
    )
    .bind(id)
    .bind(delta)
    .bind(reason)
    .bind(admin_id)
    .bind(now)
    .bind(account.user_id)
    .bind(account.app_key)
}
