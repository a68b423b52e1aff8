use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An event of the base; `kind` says which of the per-kind fields apply.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: EventKind,
    pub title: String,
    pub title_traditional: Option<String>,
    pub summary: String,
    pub summary_traditional: Option<String>,
    pub description: String,
    pub description_traditional: Option<String>,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    pub time_zone: String,
    /// A base space (a foreign key); the event's booking of it holds the room.
    pub venue_space_id: Option<i64>,
    pub venue_address: Option<String>,
    pub organizer_id: i64,
    pub status: EventStatus,
    pub capacity: i32,
    /// Persons holding a confirmed seat (registrants plus accompanying persons).
    pub seats_taken: i32,
    /// Most persons one registration may bring, the registrant included.
    pub group_limit: i32,
    pub registration_opens_at: Option<DateTimeUtc>,
    pub registration_closes_at: Option<DateTimeUtc>,
    pub cancellation_deadline: Option<DateTimeUtc>,
    pub requires_approval: bool,
    pub requires_identity_document: bool,
    /// JSON array of strings.
    pub audience_tags: String,
    /// JSON array of questions.
    pub questions: String,
    pub programme_id: Option<i64>,
    pub cohort: Option<i32>,
    /// JSON array of trainer names.
    pub trainers: Option<String>,
    pub syllabus: Option<String>,
    pub hours: Option<i32>,
    pub certificate_threshold_percent: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum EventKind {
    #[sea_orm(string_value = "TRAINING")]
    Training,
    #[sea_orm(string_value = "EXHIBITION")]
    Exhibition,
    #[sea_orm(string_value = "SALON")]
    Salon,
    #[sea_orm(string_value = "PROMOTION")]
    Promotion,
    #[sea_orm(string_value = "EXCHANGE")]
    Exchange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum EventStatus {
    #[sea_orm(string_value = "DRAFT")]
    Draft,
    #[sea_orm(string_value = "PUBLISHED")]
    Published,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
    #[sea_orm(string_value = "COMPLETED")]
    Completed,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
