//! Input checks every service shares: text fields trimmed, required or optional, bounded in
//! characters (not bytes: names are Chinese), with errors that name the field.
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
