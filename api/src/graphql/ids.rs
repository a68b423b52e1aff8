//! Opaque global IDs (`Organization:42`, base64url) for the Relay `Node` interface.
use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::AppError;

pub fn encode(type_name: &str, id: i64) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{type_name}:{id}")))
}

/// Splits a global ID into its type and row id; `None` when it is not one of ours.
pub fn parse(id: &str) -> Option<(String, i64)> {
    let bytes = URL_SAFE_NO_PAD.decode(id.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (type_name, raw) = text.split_once(':')?;
    let row: i64 = raw.parse().ok()?;
    (row > 0).then(|| (type_name.to_owned(), row))
}

/// The row id of a global ID that must name a `type_name`.
pub fn decode(id: &ID, type_name: &str, field: &str) -> Result<i64, AppError> {
    match parse(id) {
        Some((t, row)) if t == type_name => Ok(row),
        _ => Err(AppError::bad_input(field, format!("`{}` is not a valid {type_name} ID", id.as_str()))),
    }
}
