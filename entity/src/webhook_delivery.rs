use sea_orm::entity::prelude::*;

/// One event to deliver to one endpoint (its `webhook-id` is `msg_<event_id>`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub endpoint_id: i64,
    /// The domain event delivered.
    pub event_id: i64,
    pub event_type: String,
    /// `PENDING`, `SUCCEEDED` or `FAILED` (gave up after the last retry).
    pub status: String,
    /// Attempts since it was (re)queued.
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// A deliverer holds it until then.
    pub claimed_until: Option<DateTimeUtc>,
    pub last_status_code: Option<i32>,
    pub created_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
