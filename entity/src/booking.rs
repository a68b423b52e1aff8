use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A request for, or a reservation of, a space. `blocked_start..blocked_end` is the booking
/// widened by the space's setup and teardown buffers: what must not overlap.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "bookings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub space_id: i64,
    pub booked_by_account_id: i64,
    pub organization_id: Option<i64>,
    pub purpose: String,
    pub attendees: i32,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    pub blocked_start: DateTimeUtc,
    pub blocked_end: DateTimeUtc,
    pub status: BookingStatus,
    pub status_reason: Option<String>,
    pub manager_note: String,
    pub client_key: Option<String>,
    pub request_digest: Option<String>,
    /// The recurring series this booking is an occurrence of.
    pub series_id: Option<i64>,
    pub decided_by_account_id: Option<i64>,
    /// The event this booking holds the room for (at most one booking per event); written only
    /// by the event's commands.
    pub event_id: Option<i64>,
    pub decided_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum BookingStatus {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "CONFIRMED")]
    Confirmed,
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::space::Entity",
        from = "Column::SpaceId",
        to = "super::space::Column::Id",
        on_delete = "Cascade"
    )]
    Space,
}

impl Related<super::space::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Space.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
