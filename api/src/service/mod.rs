//! The rules of the domain as plain async functions over a database connection.
//! Nothing in here knows about GraphQL or HTTP.
pub mod booking;
pub mod credit_code;
pub mod identity;
pub mod organization;
pub mod pagination;
pub mod recurrence;
pub mod space;

/// The current instant at microsecond precision, what PostgreSQL stores: a value written and
/// the same value read back are then equal on both backends.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    let now = chrono::Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(now)
}
