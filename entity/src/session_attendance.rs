use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A registration checked in to one training session (one row per pair, unique).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "session_attendances")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub session_id: i64,
    pub registration_id: i64,
    /// Persons present at this session.
    pub attended: i32,
    pub checked_in_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
