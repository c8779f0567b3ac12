//! Checks of request fields beyond their JSON type, shared by the services: required
//! text within a length bound, ids of the shape [`crate::id`] makes, and app keys. Each
//! failure is a `400 bad_request` naming the field.

use crate::ApiError;

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

/// `value` if it is `prefix` followed by 16 lowercase hex digits, as [`crate::id`] makes
/// them.
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

/// `value` if it is an app key: 1 to 63 of `a-z`, `0-9` and `-`.
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
