use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One service activity of a project and the person-times it served, by group.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "service_records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: i64,
    /// The local (Asia/Shanghai) date of the service.
    pub served_on: Date,
    pub activity: String,
    pub women: i32,
    pub children: i32,
    pub families: i32,
    pub elderly: i32,
    pub others: i32,
    pub location: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
