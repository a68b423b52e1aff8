use sea_orm::entity::prelude::*;

/// One per-person message (SMS or WeChat template message) for one relay endpoint: the partner
/// webhook subscribed to `message.sms` / `message.wechat_template` receives it signed and
/// relays it through its own provider account. Its `webhook-id` is `msg_<channel>_<id>`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "channel_messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub endpoint_id: i64,
    pub account_id: i64,
    /// The domain event it tells of.
    pub event_id: i64,
    /// `SMS` or `WECHAT_TEMPLATE`.
    pub channel: String,
    /// The phone number or WeChat openid as the person registered it.
    pub recipient: String,
    /// The kind of notification (`registration.promoted`, …): the relay's template.
    pub template: String,
    pub locale: String,
    pub title: String,
    pub body: String,
    /// A JSON object of the template's variables.
    pub variables: String,
    pub subject_type: String,
    pub subject_id: i64,
    /// `PENDING`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub claimed_until: Option<DateTimeUtc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
