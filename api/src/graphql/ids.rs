//! Opaque global IDs (`Organization:42`, base64url) for the Relay `Node` interface.
use async_graphql::{ErrorExtensions, ID};
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

/// The row id of a global ID that must name a `type_name`; anything else is BAD_USER_INPUT
/// on `field`.
pub fn decode(id: &ID, type_name: &str, field: &str) -> async_graphql::Result<i64> {
    match parse(id) {
        Some((t, row)) if t == type_name => Ok(row),
        _ => Err(AppError::bad_input(field, format!("`{}` is not a valid {type_name} ID", id.as_str())).extend()),
    }
}

/// `decode` of an ID that may be left out.
pub fn decode_optional(id: Option<&ID>, type_name: &str, field: &str) -> async_graphql::Result<Option<i64>> {
    id.map(|id| decode(id, type_name, field)).transpose()
}

/// `decode` of every ID of a list, in order; the first bad one fails it.
pub fn decode_all<'a>(
    ids: impl IntoIterator<Item = &'a ID>,
    type_name: &str,
    field: &str,
) -> async_graphql::Result<Vec<i64>> {
    ids.into_iter().map(|id| decode(id, type_name, field)).collect()
}

// ---------------------------------------------------------------- the type names IDs carry

// One list, so that no two types share a name; each domain re-exports its own.
pub const ACCOUNT: &str = "Account";
pub const API_KEY: &str = "ApiKey";
pub const AUDIT_ENTRY: &str = "AuditEntry";
pub const BOOKING: &str = "Booking";
pub const SERIES: &str = "BookingSeries";
pub const CAMPAIGN: &str = "Campaign";
pub const DELEGATION: &str = "Delegation";
pub const DONATION: &str = "Donation";
pub const EVENT: &str = "Event";
pub const EXHIBIT: &str = "Exhibit";
pub const PROPOSAL: &str = "GrantProposal";
pub const REVIEW: &str = "GrantReview";
pub const ROUND: &str = "GrantRound";
pub const GOAL: &str = "ImpactGoal";
pub const NOTIFICATION: &str = "Notification";
pub const ORGANIZATION: &str = "Organization";
pub const PAYMENT_NOTIFICATION: &str = "PaymentNotification";
pub const REGISTRATION: &str = "Registration";
pub const PROJECT: &str = "ServiceProject";
pub const SPACE: &str = "Space";
pub const STATEMENT_IMPORT: &str = "StatementImport";
pub const PROGRAMME: &str = "TrainingProgramme";
pub const SESSION: &str = "TrainingSession";
pub const DELIVERY: &str = "WebhookDelivery";
pub const ENDPOINT: &str = "WebhookEndpoint";
