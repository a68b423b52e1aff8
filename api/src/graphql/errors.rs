//! Errors as GraphQL clients see them: a service [`AppError`] becomes a GraphQL error whose
//! `extensions` hold its stable `code`, and for refusals its `reason`, `field` and typed
//! details with global IDs; internal failures answer a generic message and are logged here.
//! Also the codes of requests refused before execution ([`RequestCode`]), so that no code is
//! ever read back out of a message.
use async_graphql::{ErrorExtensionValues, ErrorExtensions, ServerError, Value};
use serde_json::json;

use super::event::EVENT;
use super::ids;
use super::space::{BOOKING, SPACE};
use crate::error::{AppError, BookingConflict, Details, FreeSlot, SkippedOccurrence};

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        log_internal(self);
        async_graphql::Error::new(self.to_string()).extend_with(|_, e| set_extensions(self, e))
    }
}

/// The `extensions` of `error` as JSON: what GraphQL answers carry, and what the plain HTTP
/// routes answer in their `{"errors": [...]}` bodies.
pub fn extensions_json(error: &AppError) -> serde_json::Value {
    let mut extensions = ErrorExtensionValues::default();
    set_extensions(error, &mut extensions);
    serde_json::to_value(&extensions).unwrap_or_else(|_| json!({ "code": error.code().as_str() }))
}

/// What the client is not told is written to the server's log, once, where the error leaves
/// for a client. (`ServiceUnavailable` is logged where the lost connection is noticed.)
pub(crate) fn log_internal(error: &AppError) {
    match error {
        AppError::Internal(detail) => tracing::error!(%detail, "internal error"),
        AppError::Transient(detail) => tracing::warn!(%detail, "transient database error after retries"),
        _ => {}
    }
}

/// `code`, then what the error's variant carries: `retryAfter`, `reason`, `field`, details.
fn set_extensions(error: &AppError, e: &mut ErrorExtensionValues) {
    e.set("code", error.code().as_str());
    if let AppError::RateLimited { retry_after_secs } = error {
        e.set("retryAfter", *retry_after_secs);
    }
    if let Some(reason) = error.reason() {
        e.set("reason", reason);
    }
    if let Some(field) = error.field() {
        e.set("field", field);
    }
    match error.details() {
        Some(Details::Booking(conflict)) => booking_conflict(conflict, e),
        Some(Details::Skipped(skipped)) => e.set("skipped", json_value(skipped_json(skipped))),
        Some(Details::Status(status)) => e.set("status", status.as_str()),
        None => {}
    }
}

/// `conflictsWith` (the bookings in the way), `suggestions` (free slots in the same space) and
/// `otherSpaces` (free slots elsewhere), every id a global ID.
fn booking_conflict(conflict: &BookingConflict, e: &mut ErrorExtensionValues) {
    let conflicts_with: Vec<serde_json::Value> = conflict
        .conflicts_with
        .iter()
        .map(|b| {
            let mut item = json!({
                "bookingId": ids::encode(BOOKING, b.booking_id).to_string(),
                "startsAt": b.starts_at, "endsAt": b.ends_at,
                "blockedFrom": b.blocked_from, "blockedUntil": b.blocked_until,
            });
            if let Some(event) = b.event_id {
                item["eventId"] = json!(ids::encode(EVENT, event).to_string());
            }
            item
        })
        .collect();
    e.set("conflictsWith", json_value(json!(conflicts_with)));
    e.set("suggestions", json_value(slots_json(&conflict.suggestions)));
    e.set("otherSpaces", json_value(slots_json(&conflict.other_spaces)));
}

fn slots_json(slots: &[FreeSlot]) -> serde_json::Value {
    json!(
        slots
            .iter()
            .map(|s| json!({
                "spaceId": ids::encode(SPACE, s.space_id).to_string(),
                "spaceName": s.space_name, "startsAt": s.starts_at, "endsAt": s.ends_at,
            }))
            .collect::<Vec<_>>()
    )
}

fn skipped_json(skipped: &[SkippedOccurrence]) -> serde_json::Value {
    json!(
        skipped
            .iter()
            .map(|s| json!({ "startsAt": s.starts_at, "endsAt": s.ends_at, "reason": s.reason, "message": s.message }))
            .collect::<Vec<_>>()
    )
}

/// Instants are written as serde writes them (RFC 3339, `Z`), as the rest of the API does.
fn json_value(value: serde_json::Value) -> Value {
    Value::from_json(value).unwrap_or(Value::Null)
}

/// The codes of requests refused before execution: they reach no resolver and carry no
/// `data`. Each is set where the refusal is decided (the transport's checks, the trusted
/// documents, the cost checks, the stage of async-graphql's pipeline that failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestCode {
    /// The document is not GraphQL.
    ParseFailed,
    /// The document does not fit the schema, or names no runnable operation.
    ValidationFailed,
    QueryTooDeep,
    QueryTooComplex,
}

impl RequestCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::ValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::QueryTooDeep => "QUERY_TOO_DEEP",
            Self::QueryTooComplex => "QUERY_TOO_COMPLEX",
        }
    }

    /// `error` with this code, unless it already has one.
    pub fn apply(self, mut error: ServerError) -> ServerError {
        let mut extensions = error.extensions.take().unwrap_or_default();
        if extensions.get("code").is_none() {
            extensions.set("code", self.as_str());
        }
        error.extensions = Some(extensions);
        error
    }

    /// A new request error with this code.
    pub fn error(self, message: impl Into<String>) -> ServerError {
        self.apply(ServerError::new(message, None))
    }
}
