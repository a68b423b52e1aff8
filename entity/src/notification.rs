use sea_orm::entity::prelude::*;

/// An inbox entry: one event that concerns one person, in their language.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    /// The domain event it tells of.
    pub event_id: i64,
    /// The event's type (`registration.promoted`, …).
    pub kind: String,
    pub title: String,
    pub body: String,
    /// What it is about (a GraphQL type name and row id).
    pub subject_type: String,
    pub subject_id: i64,
    pub read_at: Option<DateTimeUtc>,
    /// `NONE` (no email), `PENDING`, `SENT` or `FAILED`.
    pub email_status: String,
    pub email_attempts: i32,
    pub email_next_at: Option<DateTimeUtc>,
    pub email_claimed_until: Option<DateTimeUtc>,
    pub email_error: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
