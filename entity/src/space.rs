use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A bookable space of the base. `equipment`, `photo_urls`, `opening_hours` and `closures`
/// are JSON text, read and replaced whole by the service.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "spaces")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub kind: SpaceKind,
    pub floor: i32,
    pub capacity: i32,
    pub description: String,
    pub equipment: String,
    pub photo_urls: String,
    pub requires_approval: bool,
    /// IANA zone the opening hours and closures are written in.
    pub time_zone: String,
    pub opening_hours: String,
    pub closures: String,
    pub min_notice_minutes: i32,
    pub max_advance_days: i32,
    pub setup_minutes: i32,
    pub teardown_minutes: i32,
    pub resident_organization_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum SpaceKind {
    #[sea_orm(string_value = "TRAINING_ROOM")]
    TrainingRoom,
    #[sea_orm(string_value = "MEETING_ROOM")]
    MeetingRoom,
    #[sea_orm(string_value = "HALL")]
    Hall,
    #[sea_orm(string_value = "EXHIBITION_AREA")]
    ExhibitionArea,
    #[sea_orm(string_value = "OFFICE")]
    Office,
    #[sea_orm(string_value = "ACTIVITY_ROOM")]
    ActivityRoom,
    #[sea_orm(string_value = "COUNSELING_ROOM")]
    CounselingRoom,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::booking::Entity")]
    Bookings,
}

impl Related<super::booking::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Bookings.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
