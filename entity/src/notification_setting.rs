use sea_orm::entity::prelude::*;

/// A person's language and which notifications also go by email.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: i64,
    /// `zh-Hans` or `zh-Hant`.
    pub locale: String,
    /// A JSON array of kinds also emailed; `None`: the defaults.
    pub email_kinds: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
