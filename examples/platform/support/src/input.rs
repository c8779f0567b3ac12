//! Checks on what clients send: required text within a length bound, and ids of the
//! shape `kit::id` makes. Each failure is a `400` naming the field.

use platform_kit::ApiError;

/// The most characters a ticket's subject may have.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// The most characters a ticket's or a comment's body may have.
pub const MAX_BODY_CHARS: usize = 20_000;

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
