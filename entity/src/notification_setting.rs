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
    /// The phone number SMS go to, as the person registered it; `None`: no SMS.
    pub sms_phone: Option<String>,
    /// A JSON array of kinds also sent by SMS; `None`: the defaults (every kind).
    pub sms_kinds: Option<String>,
    /// The WeChat openid template messages go to (from the partner's mini-program or
    /// official account); `None`: no WeChat messages.
    pub wechat_openid: Option<String>,
    /// A JSON array of kinds also sent as WeChat template messages; `None`: every kind.
    pub wechat_kinds: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
