//! Login throttling: at most [`ATTEMPTS`] password checks per email in a
//! [`WINDOW_SECONDS`] window, so nobody can guess a password online and a flood of
//! logins for one account cannot make auth spend an Argon2 hash on each. An attempt is
//! counted before the password is checked, in one atomic upsert, so concurrent guesses
//! cannot slip past the count; a successful login clears it, and past windows are
//! dropped. Refused attempts get `429 rate_limited` with `Retry-After` and cost no hash.

use platform_kit::{self as kit, ApiError};
use sdk::{Sql, params};
use serde::Deserialize;

/// Password checks allowed per email and window.
const ATTEMPTS: i64 = 5;
/// The window, in seconds: 15 minutes.
const WINDOW_SECONDS: i64 = 15 * 60;

#[derive(Deserialize)]
struct Counted {
    attempts: i64,
    window_start: i64,
}

/// Counts one login attempt for `email`; refuses it past the limit.
pub fn attempt(db: &Sql, email: &str) -> sdk::Result<()> {
    let now = kit::now();
    // Counts of past windows say nothing any more; dropping them keeps the table as
    // small as the last 15 minutes' attempts, however many emails were tried.
    db.execute(
        "DELETE FROM login_attempts WHERE window_start + ? <= ?",
        params![WINDOW_SECONDS, now],
    )?;
    let counted: Option<Counted> = db.first(
        "INSERT INTO login_attempts (email, attempts, window_start) VALUES (?1, 1, ?2) \
         ON CONFLICT (email) DO UPDATE SET \
           attempts = CASE WHEN window_start + ?3 <= ?2 THEN 1 ELSE attempts + 1 END, \
           window_start = CASE WHEN window_start + ?3 <= ?2 THEN ?2 ELSE window_start END \
         RETURNING attempts, window_start",
        params![email, now, WINDOW_SECONDS],
    )?;
    let counted = counted.ok_or_else(|| sdk::anyhow::anyhow!("the upsert returned no row"))?;
    if counted.attempts > ATTEMPTS {
        return Err(ApiError::RateLimited {
            message: format!(
                "too many login attempts for this account; try again in {} minutes or less",
                WINDOW_SECONDS / 60
            ),
            retry_after_secs: (counted.window_start + WINDOW_SECONDS - now).max(1),
        }
        .into());
    }
    Ok(())
}

/// `email` signed in: its count starts over.
pub fn succeeded(db: &Sql, email: &str) -> sdk::Result<()> {
    db.execute("DELETE FROM login_attempts WHERE email = ?", params![email])?;
    Ok(())
}
