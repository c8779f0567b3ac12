//! Checks of request text fields beyond their JSON type, each failing with a
//! `400 bad_request` that names the field.

use platform_kit::ApiError;

/// `value`, which must hold something besides whitespace and be at most `max_chars`
/// characters long.
pub fn text<'a>(field: &str, value: &'a str, max_chars: usize) -> Result<&'a str, ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::field(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(ApiError::field(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    Ok(value)
}
