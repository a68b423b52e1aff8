use sea_orm::entity::prelude::*;

/// One thing that happened, appended by the transaction that made it happen. Rows are never
/// updated; old ones are purged by retention (`keep_forever` rows never are).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "domain_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The writing transaction's id on PostgreSQL (0 on SQLite): positions are `(tx, id)`.
    pub tx: i64,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: i64,
    /// `ACCOUNT`, `PARTNER_KEY`, `ANONYMOUS`, `CLI` or `SYSTEM`.
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_label: Option<String>,
    pub actor_address: Option<String>,
    /// The account the event concerns (its donor, registrant, requester, reviewer).
    pub account_id: Option<i64>,
    /// The organization the event concerns.
    pub organization_id: Option<i64>,
    pub payload: Json,
    pub keep_forever: bool,
    pub occurred_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
