use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "delegations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub event_id: i64,
    pub origin: Origin,
    pub name: String,
    pub name_traditional: Option<String>,
    pub leader_name: String,
    /// JSON array of member names.
    pub members: String,
    /// JSON array of organization ids.
    pub host_organization_ids: String,
}

/// Where a delegation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Origin {
    #[sea_orm(string_value = "MAINLAND")]
    Mainland,
    #[sea_orm(string_value = "TAIWAN")]
    Taiwan,
    #[sea_orm(string_value = "HONG_KONG")]
    HongKong,
    #[sea_orm(string_value = "MACAO")]
    Macao,
    #[sea_orm(string_value = "OVERSEAS")]
    Overseas,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
