use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One piece of an applied statement's report, in order (`seq` from 0); the report is the
/// pieces joined.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "statement_import_report_pieces")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub import_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i32,
    pub piece: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
