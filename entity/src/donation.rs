use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A recorded donation. A refund is another row (status `REFUNDED`, negative amount,
/// `refund_of_id` set), one per partial refund; rows are never deleted.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "donations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub campaign_id: i64,
    pub amount_fen: i64,
    pub channel: DonationChannel,
    pub external_reference: Option<String>,
    pub donor_account_id: Option<i64>,
    pub partner_key_id: Option<i64>,
    /// The donor's name as given (an account's display name, or a guest's name).
    pub donor_name: String,
    pub display_mode: DisplayMode,
    pub message: String,
    pub status: DonationStatus,
    /// Whose idempotency key this is: `account:<id>` or `partner:<id>`.
    pub client_scope: Option<String>,
    pub client_key: Option<String>,
    /// SHA-256 of the request's content, to tell a replay from a reuse of the key.
    pub content_digest: String,
    /// On a reversing record: the donation it refunds (several for partial refunds).
    pub refund_of_id: Option<i64>,
    /// When the donation was refunded in full (it stops counting then).
    pub refunded_at: Option<DateTimeUtc>,
    /// How much of it was refunded so far (0 to `amount_fen`; partial refunds add up).
    pub refunded_fen: i64,
    #[sea_orm(unique)]
    pub receipt_number: Option<String>,
    pub confirmed_at: Option<DateTimeUtc>,
    pub cancelled_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// When the expiry sweep (or a late payment) marked the pledge `EXPIRED`.
    pub expired_at: Option<DateTimeUtc>,
    /// When the money arrived (confirmed, or received and held).
    pub received_at: Option<DateTimeUtc>,
    /// Why received money is held for staff instead of counting (status `RECEIVED`).
    pub hold_reason: Option<HoldReason>,
    /// A guest's phone as named at donation time, normalized and keyed-hashed (HMAC-SHA256
    /// with the receipt secret, hex): only ever compared, never shown or sent.
    pub guest_phone_digest: Option<String>,
    /// A guest's email, likewise.
    pub guest_email_digest: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum HoldReason {
    /// The money came after the pledge expired.
    #[sea_orm(string_value = "PLEDGE_EXPIRED")]
    PledgeExpired,
    /// The money came after the pledge was cancelled.
    #[sea_orm(string_value = "PLEDGE_CANCELLED")]
    PledgeCancelled,
    /// The money came for a cancelled campaign: it must be refunded.
    #[sea_orm(string_value = "CAMPAIGN_CANCELLED")]
    CampaignCancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum DonationChannel {
    #[sea_orm(string_value = "ONLINE_PLATFORM")]
    OnlinePlatform,
    #[sea_orm(string_value = "BANK_TRANSFER")]
    BankTransfer,
    #[sea_orm(string_value = "CASH")]
    Cash,
    #[sea_orm(string_value = "OTHER")]
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum DisplayMode {
    #[sea_orm(string_value = "PUBLIC")]
    Public,
    #[sea_orm(string_value = "MASKED")]
    Masked,
    #[sea_orm(string_value = "ANONYMOUS")]
    Anonymous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum DonationStatus {
    #[sea_orm(string_value = "PLEDGED")]
    Pledged,
    #[sea_orm(string_value = "CONFIRMED")]
    Confirmed,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
    #[sea_orm(string_value = "REFUNDED")]
    Refunded,
    /// A pledge whose money did not arrive within the pledge TTL.
    #[sea_orm(string_value = "EXPIRED")]
    Expired,
    /// Money arrived but does not count (see `hold_reason`): staff accept or refund it.
    #[sea_orm(string_value = "RECEIVED")]
    Received,
    /// A reversing record of money returned that never counted (a refund of `RECEIVED`).
    #[sea_orm(string_value = "RETURNED")]
    Returned,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
