use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A verified notification of a payment platform (WeChat Pay, Alipay), kept once per
/// platform and transaction, with what it did to the donations.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "payment_notifications")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `WECHAT_PAY` or `ALIPAY`.
    pub provider: String,
    /// The platform's transaction ID (WeChat Pay `transaction_id`, Alipay `trade_no`).
    pub transaction_id: String,
    /// The merchant's order number: the pledge's external reference or client key.
    pub out_trade_no: String,
    pub amount_fen: i64,
    /// The donation it matched, if any.
    pub donation_id: Option<i64>,
    /// `CONFIRMED`, `HELD`, `ALREADY_RECORDED`, `AMOUNT_DIFFERS` or `UNKNOWN_REFERENCE`.
    pub outcome: String,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
