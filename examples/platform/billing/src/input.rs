//! Checks of request fields beyond their JSON type (ranges, lengths), each failing with a
//! `400 bad_request` that names the field.

use platform_kit::ApiError;

/// The largest amount of credits one request may move (spend, check, adjust).
pub const MAX_CREDITS: u64 = 1_000_000_000;

/// The longest id a request may name (a user, an app, an order).
pub const MAX_ID_CHARS: usize = 100;

/// `value` as a number of credits in `1..=max`.
pub fn credits(field: &str, value: u64, max: u64) -> Result<i64, ApiError> {
    if value == 0 || value > max {
        return Err(ApiError::field(
            field,
            format!("must be between 1 and {max}"),
        ));
    }
    i64::try_from(value).map_err(|_| ApiError::field(field, "is too large"))
}

/// `value` as a change of a balance: not zero, and at most [`MAX_CREDITS`] either way.
pub fn delta(field: &str, value: i64) -> Result<i64, ApiError> {
    if value == 0 || value.unsigned_abs() > MAX_CREDITS {
        return Err(ApiError::field(
            field,
            format!("must be a non-zero integer between -{MAX_CREDITS} and {MAX_CREDITS}"),
        ));
    }
    Ok(value)
}
