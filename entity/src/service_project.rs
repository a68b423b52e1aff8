use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "service_projects")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub title: String,
    pub description: String,
    pub source: FundingSource,
    #[sea_orm(unique)]
    pub proposal_id: Option<i64>,
    /// A crowdfunding campaign; no foreign key (campaigns are another domain).
    pub campaign_id: Option<i64>,
    pub purchaser: Option<String>,
    pub purchaser_kind: Option<PurchaserKind>,
    pub contract_number: Option<String>,
    /// What the project may be paid: the award, the contract amount, or the campaign's money.
    pub funded_fen: i64,
    /// Sum of the ledger; only changed by a conditional update that keeps it ≤ funded.
    pub disbursed_fen: i64,
    pub starts_on: Date,
    pub ends_on: Date,
    /// JSON: `[{ "item", "amountFen" }]`.
    pub budget_lines: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
pub enum FundingSource {
    #[sea_orm(string_value = "AWARD")]
    Award,
    #[sea_orm(string_value = "GOVERNMENT_PURCHASE")]
    GovernmentPurchase,
    #[sea_orm(string_value = "CAMPAIGN")]
    Campaign,
}

/// Who bought a government-purchased service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
pub enum PurchaserKind {
    /// 街道办事处
    #[sea_orm(string_value = "STREET_OFFICE")]
    StreetOffice,
    /// 社区居委会
    #[sea_orm(string_value = "COMMUNITY")]
    Community,
    /// 区、市政府部门
    #[sea_orm(string_value = "GOVERNMENT_DEPARTMENT")]
    GovernmentDepartment,
    /// 妇联
    #[sea_orm(string_value = "WOMENS_FEDERATION")]
    WomensFederation,
    #[sea_orm(string_value = "OTHER")]
    Other,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
