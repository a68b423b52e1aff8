//! Typed details of a refusal, as the service knows them: row ids and instants. The GraphQL
//! layer turns them into extensions with global IDs (`graphql::errors`).
use chrono::{DateTime, Utc};

/// More than a message and a reason, for refusals a client can do something with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Details {
    /// `BOOKING_OVERLAP`: what the booking collides with and where it would fit.
    Booking(BookingConflict),
    /// `OCCURRENCES_UNAVAILABLE`: the occurrences of a series that cannot be booked.
    Skipped(Vec<SkippedOccurrence>),
    /// `WRONG_STATUS`: the status the record is in (`CONFIRMED`, `CANCELLED`).
    Status(String),
}

/// A booking refused because its blocked time (with buffers) overlaps confirmed bookings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BookingConflict {
    pub conflicts_with: Vec<ConflictingBooking>,
    /// The nearest free slots of the same length in the same space.
    pub suggestions: Vec<FreeSlot>,
    /// The nearest free slots in other spaces that hold the attendees.
    pub other_spaces: Vec<FreeSlot>,
}

/// A confirmed booking in the way: its times and the time it blocks (setup and teardown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConflictingBooking {
    pub booking_id: i64,
    /// Set when the booking holds the room for an event.
    pub event_id: Option<i64>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub blocked_from: DateTime<Utc>,
    pub blocked_until: DateTime<Utc>,
}

/// A slot where the refused booking would fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreeSlot {
    pub space_id: i64,
    pub space_name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// An occurrence of a series that was not booked, and why (`reason` is a booking rule's
/// reason or `BOOKING_OVERLAP`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedOccurrence {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: &'static str,
    pub message: String,
}

impl From<BookingConflict> for Details {
    fn from(conflict: BookingConflict) -> Self {
        Self::Booking(conflict)
    }
}

impl From<Vec<SkippedOccurrence>> for Details {
    fn from(skipped: Vec<SkippedOccurrence>) -> Self {
        Self::Skipped(skipped)
    }
}
