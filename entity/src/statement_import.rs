use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A platform or bank statement applied to the donations, once per identity, with its report.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "statement_imports")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The caller's statement ID (`<profile>:<id>`), or `sha256:<hex>` of the content.
    #[sea_orm(unique)]
    pub identity: String,
    pub profile: String,
    /// `APPLYING` while its batches run, `APPLIED` once done.
    pub status: String,
    pub line_count: i64,
    pub confirmed_count: i64,
    pub held_count: i64,
    pub created_count: i64,
    pub mismatch_count: i64,
    pub confirmed_fen: i64,
    /// The report of an import applied before report pieces (a JSON array of lines with
    /// their action and reason); empty when the report is in `statement_import_report_pieces`.
    pub report: String,
    pub created_by_account_id: Option<i64>,
    pub partner_key_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub applied_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
