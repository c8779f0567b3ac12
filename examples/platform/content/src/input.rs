//! Checks on what clients send: required text within a length bound, ids of the shape
//! `kit::id` makes, app keys and the list's `limit`. Each failure is a `400` naming the
//! field.

use platform_kit::ApiError;

/// The most characters an item's title may have.
pub const MAX_TITLE_CHARS: usize = 200;
/// The most characters an item's body may have.
pub const MAX_BODY_CHARS: usize = 20_000;
/// How many items a list holds when `?limit=` is not given.
pub const DEFAULT_LIMIT: u32 = 20;
/// The most items one list may hold.
pub const MAX_LIMIT: u32 = 100;

/// `value` trimmed, if it is not empty and has at most `max_chars` characters.
pub fn text(field: &str, value: &str, max_chars: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::field(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        let why = format!("must be at most {max_chars} characters");
        return Err(ApiError::field(field, why));
    }
    Ok(value.to_owned())
}

/// `value` if it is `prefix` followed by 16 lowercase hex digits, as `kit::id` makes them.
pub fn id(field: &str, value: &str, prefix: &str) -> Result<String, ApiError> {
    let well_formed = value.strip_prefix(prefix).is_some_and(|digits| {
        digits.len() == 16
            && digits
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if !well_formed {
        let why = format!("is not an id (`{prefix}` and 16 hex digits)");
        return Err(ApiError::field(field, why));
    }
    Ok(value.to_owned())
}

/// `value` if it is an app key as auth accepts them: 1 to 63 of `a-z`, `0-9` and `-`.
pub fn app_key(field: &str, value: &str) -> Result<String, ApiError> {
    let well_formed = (1..=63).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !well_formed {
        return Err(ApiError::field(field, "use 1-63 of a-z, 0-9 and -"));
    }
    Ok(value.to_owned())
}

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
