//! The body of `POST /admin/credits`, checked here so that a bad one is a `400` naming
//! the field before billing is asked.

use platform_kit::{self as kit, ApiError, check};
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
        let adjustment: Adjustment = kit::body(req).await?;
        if adjustment.delta == 0 {
            return Err(ApiError::field("delta", "must not be zero"));
        }
        Ok(Adjustment {
            user_id: check::id("user_id", &adjustment.user_id, "usr_")?,
            app_key: check::app_key("app_key", &adjustment.app_key)?,
            delta: adjustment.delta,
            reason: check::text("reason", &adjustment.reason, MAX_REASON_CHARS)?,
        })
    }
}
