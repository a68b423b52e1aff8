//! Input checks every service shares: text fields trimmed, required or optional, bounded in
//! characters (not bytes: names are Chinese), with errors that name the field.
use chrono::{DateTime, Duration, Utc};

use crate::error::{AppError, AppResult};

/// Trimmed, not empty, at most `max` characters.
pub fn required_text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(AppError::bad_input(field, format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(AppError::bad_input(field, format!("{field} is at most {max} characters")));
    }
    Ok(v.to_owned())
}

/// Trimmed; absent or blank is `None`; at most `max` characters.
pub fn optional_text(field: &str, value: Option<String>, max: usize) -> AppResult<Option<String>> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => required_text(field, v, max).map(Some),
    }
}

/// Optional; when given, an http(s) URL of at most 500 characters.
pub fn optional_url(field: &str, value: Option<String>) -> AppResult<Option<String>> {
    let v = optional_text(field, value, 500)?;
    if let Some(url) = &v {
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
            return Err(AppError::bad_input(field, format!("{field} must be an http(s) URL")));
        }
    }
    Ok(v)
}

/// A period that ends after it starts and lasts at most `longest`; the error is on `field`,
/// saying `(wrong_order, too_long)`.
pub fn period(
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    longest: Duration,
    field: &str,
    (wrong_order, too_long): (&str, &str),
) -> AppResult<()> {
    if to <= from {
        return Err(AppError::bad_input(field, wrong_order));
    }
    if to - from > longest {
        return Err(AppError::bad_input(field, too_long));
    }
    Ok(())
}
