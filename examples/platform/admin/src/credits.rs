//! The body of `POST /admin/credits`, checked here so that a bad one is a `400` naming
//! the field before billing is asked.

use platform_kit::{self as kit, ApiError};
use sdk::Request;
use serde::{Deserialize, Serialize};

/// The most characters the reason of an adjustment may have.
const MAX_REASON_CHARS: usize = 200;

/// A change to one user's credits in one app, as billing's `POST /credits/adjust`
/// takes it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    user_id: String,
    app_key: String,
    delta: i64,
    reason: String,
}

impl Adjustment {
    /// Reads and checks the body of `req`: a user id as auth makes them, an app key as
    /// auth accepts them, a delta other than zero and a reason of 1 to 200 characters
    /// (trimmed).
    pub async fn read(req: &mut Request) -> Result<Adjustment, ApiError> {
        let mut adjustment: Adjustment = kit::body(req).await?;
        if !is_user_id(&adjustment.user_id) {
            return Err(ApiError::field(
                "user_id",
                "is not a user id (`usr_` and 16 hex digits)",
            ));
        }
        if !is_app_key(&adjustment.app_key) {
            return Err(ApiError::field("app_key", "use 1-63 of a-z, 0-9 and -"));
        }
        if adjustment.delta == 0 {
            return Err(ApiError::field("delta", "must not be zero"));
        }
        let reason = adjustment.reason.trim();
        if reason.is_empty() {
            return Err(ApiError::field("reason", "must not be empty"));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            let why = format!("must be at most {MAX_REASON_CHARS} characters");
            return Err(ApiError::field("reason", why));
        }
        adjustment.reason = reason.to_owned();
        Ok(adjustment)
    }
}

/// `usr_` followed by 16 lowercase hex digits, as `kit::id` makes user ids.
fn is_user_id(value: &str) -> bool {
    value.strip_prefix("usr_").is_some_and(|digits| {
        digits.len() == 16
            && digits
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// 1 to 63 of `a-z`, `0-9` and `-`, as auth accepts app keys.
fn is_app_key(value: &str) -> bool {
    (1..=63).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
