use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "organization_focus_areas")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub focus_area: FocusArea,
}

/// Who or what an organization serves.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    EnumIter,
    DeriveActiveEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum FocusArea {
    #[sea_orm(string_value = "WOMEN")]
    Women,
    #[sea_orm(string_value = "CHILDREN")]
    Children,
    #[sea_orm(string_value = "FAMILY")]
    Family,
    #[sea_orm(string_value = "ELDERLY")]
    Elderly,
    #[sea_orm(string_value = "DISABILITY")]
    Disability,
    #[sea_orm(string_value = "LEGAL_AID")]
    LegalAid,
    #[sea_orm(string_value = "MENTAL_HEALTH")]
    MentalHealth,
    #[sea_orm(string_value = "EDUCATION")]
    Education,
    #[sea_orm(string_value = "EMPLOYMENT")]
    Employment,
    #[sea_orm(string_value = "COMMUNITY")]
    Community,
    #[sea_orm(string_value = "VOLUNTEERING")]
    Volunteering,
    #[sea_orm(string_value = "CROSS_STRAIT")]
    CrossStrait,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organization::Entity",
        from = "Column::OrganizationId",
        to = "super::organization::Column::Id"
    )]
    Organization,
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
