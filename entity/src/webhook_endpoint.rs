use sea_orm::entity::prelude::*;

/// A partner's (or the federation's own) receiver of webhooks.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub url: String,
    pub description: Option<String>,
    /// A JSON array of the event type names delivered.
    pub event_types: String,
    /// The partner key the endpoint belongs to: it receives only what that key may read.
    pub api_key_id: Option<i64>,
    /// The signing secret (`whsec_…`, Standard Webhooks), stored sealed (`sealed:v1:…`, see
    /// `api::sealing`); plaintext in rows from before sealing, until the next start.
    pub secret: String,
    /// The secret before the last rotation, still signing until `previous_secret_expires_at`.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Since when every attempt failed (cleared by a success).
    pub failing_since: Option<DateTimeUtc>,
    pub created_by_account_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
