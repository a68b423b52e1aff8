//! What partner endpoints subscribed to: shared by webhook delivery (`webhooks`) and the
//! per-person message relay (`channels`), so neither imports the other for it.
use entity::webhook_endpoint;

/// The event types an endpoint receives (stored as a JSON list).
pub fn event_types_of(endpoint: &webhook_endpoint::Model) -> Vec<String> {
    serde_json::from_str(&endpoint.event_types).unwrap_or_default()
}
