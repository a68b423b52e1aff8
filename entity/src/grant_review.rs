use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One reviewer's assignment to one proposal, and their scores once they give them.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "grant_reviews")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub proposal_id: i64,
    pub reviewer_id: i64,
    pub status: ReviewStatus,
    /// JSON: `{ criterionKey: score }`.
    pub scores: String,
    pub comment: String,
    pub conflict_reason: Option<String>,
    pub assigned_at: DateTimeUtc,
    pub submitted_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ReviewStatus {
    /// Assigned, nothing saved yet.
    #[sea_orm(string_value = "ASSIGNED")]
    Assigned,
    #[sea_orm(string_value = "DRAFT")]
    Draft,
    #[sea_orm(string_value = "SUBMITTED")]
    Submitted,
    /// The reviewer declared a conflict of interest; the review does not count.
    #[sea_orm(string_value = "CONFLICT")]
    Conflict,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
