use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub slug: String,
    pub name: String,
    pub name_traditional: Option<String>,
    pub name_en: Option<String>,
    pub kind: OrganizationKind,
    #[sea_orm(unique)]
    pub credit_code: Option<String>,
    pub founded_on: Option<Date>,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub contact_email: Option<String>,
    pub website: Option<String>,
    pub description: String,
    pub logo_url: Option<String>,
    pub stage: Stage,
    pub stage_changed_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Where an organization stands with the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Stage {
    #[sea_orm(string_value = "LIAISON")]
    Liaison,
    #[sea_orm(string_value = "APPLIED")]
    Applied,
    #[sea_orm(string_value = "INCUBATING")]
    Incubating,
    #[sea_orm(string_value = "RESIDENT")]
    Resident,
    #[sea_orm(string_value = "GRADUATED")]
    Graduated,
    #[sea_orm(string_value = "EXITED")]
    Exited,
}

/// Legal form under Chinese registration rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum OrganizationKind {
    /// 社会团体
    #[sea_orm(string_value = "SOCIAL_GROUP")]
    SocialGroup,
    /// 社会服务机构 (formerly 民办非企业单位)
    #[sea_orm(string_value = "SOCIAL_SERVICE_AGENCY")]
    SocialServiceAgency,
    /// 基金会
    #[sea_orm(string_value = "FOUNDATION")]
    Foundation,
    /// 社区社会组织: community groups filed with the sub-district rather than registered
    #[sea_orm(string_value = "COMMUNITY_GROUP")]
    CommunityGroup,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::organization_focus_area::Entity")]
    FocusAreas,
    #[sea_orm(has_many = "super::organization_stage_transition::Entity")]
    StageTransitions,
}

impl Related<super::organization_focus_area::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::FocusAreas.def()
    }
}

impl Related<super::organization_stage_transition::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::StageTransitions.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
