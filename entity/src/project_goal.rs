use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An impact goal of a service project and how far it has come.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "project_goals")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: i64,
    pub goal_type: String,
    pub unit: String,
    pub target: i64,
    /// The latest progress update's value.
    pub achieved: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
