use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "campaigns")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub title: String,
    pub story: String,
    pub cover_url: Option<String>,
    pub goal_fen: i64,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    pub beneficiaries: String,
    /// The organization's public-fundraising qualification (公开募捐资格).
    pub fundraising_qualification: Option<String>,
    /// Filing number of the fundraising plan (募捐方案备案编号).
    pub filing_number: Option<String>,
    pub status: CampaignStatus,
    pub review_note: String,
    /// Sum of confirmed donations minus refunds; only ever changed by `+ delta` updates.
    pub raised_fen: i64,
    /// Confirmed donations minus refunded ones.
    pub donation_count: i64,
    /// Distinct donors of confirmed, unrefunded donations (each guest donation counts as
    /// one); changed only by `+ delta` updates in the confirming and refunding transactions.
    pub donor_count: i64,
    pub created_by_account_id: Option<i64>,
    pub published_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum CampaignStatus {
    #[sea_orm(string_value = "DRAFT")]
    Draft,
    #[sea_orm(string_value = "PENDING_REVIEW")]
    PendingReview,
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    #[sea_orm(string_value = "ENDED")]
    Ended,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
