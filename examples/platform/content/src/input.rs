//! Bounds on what clients send to content, and the list's `?limit=` check (a `400`
//! naming the field); the shared checks are `kit::check`.

use platform_kit::ApiError;

/// The most characters an item's title may have.
pub const MAX_TITLE_CHARS: usize = 200;
/// The most characters an item's body may have.
pub const MAX_BODY_CHARS: usize = 20_000;
/// How many items a list holds when `?limit=` is not given.
pub const DEFAULT_LIMIT: u32 = 20;
/// The most items one list may hold.
pub const MAX_LIMIT: u32 = 100;

/// The `?limit=` of a list: a whole number from 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`]
/// when absent.
pub fn limit(value: Option<&str>) -> Result<u32, ApiError> {
    let Some(value) = value else {
        return Ok(DEFAULT_LIMIT);
    };
    match value.parse::<u32>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        _ => Err(ApiError::field(
            "limit",
            format!("must be a whole number from 1 to {MAX_LIMIT}"),
        )),
    }
}
