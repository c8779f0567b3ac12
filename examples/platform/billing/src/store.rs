//! The billing database: its schema, the balance of an [`Account`], and
//! [`guarded_batch`], how every write that must happen once, or never below zero, is made.
//!
//! Scripts cannot open transactions, so those guarantees come from constraints inside one
//! batch (which applies whole or not at all): `CHECK (credits >= 0)` on balances, and a
//! primary key on each record that must exist once (a spend's idempotency key, a credited
//! order). When such a batch fails, the database is read again to tell why.

use platform_kit::{self as kit, Caller};
use sdk::sql::Results;
use sdk::{Env, Response, RouteContext, Sql, Statement};
use serde::Deserialize;

/// The schema. Balances are per user and app and never negative; a spend is recorded once
/// per idempotency key with the balance it left; an order is credited once
/// (`credited_orders`); admins' adjustments are logged.
const SCHEMA_V1: &str = "
CREATE TABLE balances (
    user_id TEXT NOT NULL,
    app_key TEXT NOT NULL,
    credits INTEGER NOT NULL CHECK (credits >= 0),
    PRIMARY KEY (user_id, app_key)
);
CREATE TABLE spends (
    user_id TEXT NOT NULL,
    app_key TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    balance_after INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, app_key, idempotency_key)
);
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    app_key TEXT NOT NULL,
    credits INTEGER NOT NULL CHECK (credits > 0),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    status TEXT NOT NULL CHECK (status IN ('pending', 'paid')),
    created_at INTEGER NOT NULL,
    paid_at INTEGER
);
CREATE INDEX orders_by_owner ON orders (user_id, app_key, created_at);
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders (id),
    amount_cents INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded')),
    created_at INTEGER NOT NULL
);
CREATE TABLE credited_orders (
    order_id TEXT PRIMARY KEY REFERENCES orders (id),
    payment_id TEXT NOT NULL REFERENCES payments (id),
    credits INTEGER NOT NULL,
    credited_at INTEGER NOT NULL
);
CREATE TABLE adjustments (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    app_key TEXT NOT NULL,
    delta INTEGER NOT NULL,
    reason TEXT NOT NULL,
    admin_id TEXT NOT NULL,
    balance_after INTEGER NOT NULL,
    created_at INTEGER NOT NULL
)
";

/// Orders left unpaid expire (the nightly scheduled job marks them).
const SCHEMA_V2: &str = "ALTER TABLE orders ADD COLUMN expired_at INTEGER";

/// The database `DB`, brought to the latest schema.
pub fn open(route: &RouteContext) -> sdk::Result<Sql> {
    open_env(&route.env)
}

/// The same, from a scheduled run's `Env`.
pub fn open_env(env: &Env) -> sdk::Result<Sql> {
    let db = env.sql("DB");
    kit::migrate(&db, &[SCHEMA_V1, SCHEMA_V2])?;
    Ok(db)
}

/// Whose credits: a user within an app.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    pub user_id: &'a str,
    pub app_key: &'a str,
}

impl<'a> Account<'a> {
    /// The caller's own account.
    pub fn of(caller: &'a Caller) -> Self {
        Account {
            user_id: &caller.user_id,
            app_key: &caller.app_key,
        }
    }

    /// The balance; `0` for an account that never had credits.
    pub fn balance(self, db: &Sql) -> sdk::Result<i64> {
        #[derive(Deserialize)]
        struct Row {
            credits: i64,
        }
        let row: Option<Row> = db.first(
            "SELECT credits FROM balances WHERE user_id = ? AND app_key = ?",
            sdk::params![self.user_id, self.app_key],
        )?;
        Ok(row.map_or(0, |row| row.credits))
    }

    /// Creates the balance row at `0` if missing, so that a later `UPDATE` in the same
    /// batch always finds it (and trips the `CHECK` when it would go negative).
    pub fn ensure_row(self) -> Statement {
        Statement::new(
            "INSERT INTO balances (user_id, app_key, credits) VALUES (?, ?, 0)
             ON CONFLICT (user_id, app_key) DO NOTHING",
        )
        .bind(self.user_id)
        .bind(self.app_key)
    }

    /// Adds `delta` (negative to take away) to the balance, which must exist.
    pub fn change_by(self, delta: i64) -> Statement {
        Statement::new(
            "UPDATE balances SET credits = credits + ? WHERE user_id = ? AND app_key = ?",
        )
        .bind(delta)
        .bind(self.user_id)
        .bind(self.app_key)
    }

    /// Reads the balance, as the last statement of a batch; see [`selected_balance`].
    pub fn select_balance(self) -> Statement {
        Statement::new("SELECT credits FROM balances WHERE user_id = ? AND app_key = ?")
            .bind(self.user_id)
            .bind(self.app_key)
    }
}

/// The balance read by the batch's last statement, [`Account::select_balance`].
pub fn selected_balance(results: &[Results]) -> sdk::Result<i64> {
    results
        .last()
        .and_then(|last| last.rows().next())
        .and_then(|row| row.values().first().and_then(sdk::Value::as_i64))
        .ok_or_else(|| sdk::anyhow::anyhow!("the batch did not read the balance back"))
}

/// What came of a [`guarded_batch`].
pub enum Outcome {
    /// The batch applied; its results, in the order of the statements.
    Applied(Vec<Results>),
    /// The batch did not apply, for a reason that has its own answer (a replay).
    Explained(Response),
}

/// How often a guarded batch runs when it fails for a reason that is gone by the time
/// it is looked into (a concurrent request changed the balance in between).
const ATTEMPTS: usize = 2;

/// Runs the batch `statements()`. When it fails, `explain()` reads the database to tell
/// why: `Ok(Some(answer))` for a replay, `Err` for a refusal (too few credits, ...), and
/// `Ok(None)` when nothing explains it, which runs the batch again, then gives up with
/// the batch's own error.
pub fn guarded_batch(
    db: &Sql,
    statements: impl Fn() -> Vec<Statement>,
    explain: impl Fn() -> sdk::Result<Option<Response>>,
) -> sdk::Result<Outcome> {
    let mut attempts_left = ATTEMPTS;
    loop {
        let failure = match db.batch(statements()) {
            Ok(results) => return Ok(Outcome::Applied(results)),
            Err(failure) => failure,
        };
        if let Some(answer) = explain()? {
            return Ok(Outcome::Explained(answer));
        }
        attempts_left -= 1;
        if attempts_left == 0 {
            return Err(failure);
        }
    }
}
