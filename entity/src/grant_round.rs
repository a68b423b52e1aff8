use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A venture-philanthropy call for proposals. `rubric` and `eligible_stages` are stored as
/// JSON text / a comma list and read by the service.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "grant_rounds")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub title: String,
    pub description: String,
    pub budget_fen: i64,
    pub per_proposal_cap_fen: i64,
    /// Sum of the awards made; only changed by a conditional update that keeps it ≤ budget.
    pub awarded_total_fen: i64,
    pub opens_at: DateTimeUtc,
    pub closes_at: DateTimeUtc,
    pub review_ends_at: DateTimeUtc,
    pub results_at: DateTimeUtc,
    /// Comma-separated organization stages; empty means every stage.
    pub eligible_stages: String,
    /// JSON: `{ "minScore", "maxScore", "criteria": [{ "key", "name", "weight" }] }`.
    pub rubric: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
