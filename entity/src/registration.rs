use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One registration for an event: a person (an account, or a partner's named guest) and the
/// persons they bring.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "registrations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub event_id: i64,
    pub account_id: Option<i64>,
    pub partner_key_id: Option<i64>,
    pub name: String,
    pub phone: Option<String>,
    /// Persons on this registration, the registrant included.
    pub party_size: i32,
    pub women: i32,
    pub children: i32,
    pub family_members: i32,
    pub professionals: i32,
    /// JSON array of answers to the event's questions.
    pub answers: String,
    pub consent_at: DateTimeUtc,
    pub status: RegistrationStatus,
    /// Place in the waitlist (and in the approval queue): earlier first, then by id.
    pub queued_at: DateTimeUtc,
    /// The registrant's idempotency key, prefixed with who sent it.
    #[sea_orm(unique)]
    pub client_key: Option<String>,
    #[sea_orm(unique)]
    pub ticket_code: String,
    pub checked_in_at: Option<DateTimeUtc>,
    /// Persons actually present at check-in.
    pub attended: Option<i32>,
    pub id_doc_type: Option<IdDocType>,
    pub id_doc_number: Option<String>,
    pub id_doc_purged_at: Option<DateTimeUtc>,
    pub decided_at: Option<DateTimeUtc>,
    pub cancelled_at: Option<DateTimeUtc>,
    /// Trainings with sessions: sessions checked in to (each counts as person-times).
    pub sessions_attended: i32,
    /// Trainings: the certificate issued when the training was completed, if earned.
    pub certificate_number: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum RegistrationStatus {
    /// Waiting for the organizer's decision; holds no seat.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "CONFIRMED")]
    Confirmed,
    #[sea_orm(string_value = "WAITLISTED")]
    Waitlisted,
    #[sea_orm(string_value = "DECLINED")]
    Declined,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum IdDocType {
    /// 居民身份证
    #[sea_orm(string_value = "MAINLAND_ID")]
    MainlandId,
    /// 台湾居民来往大陆通行证 (台胞证)
    #[sea_orm(string_value = "TAIWAN_COMPATRIOT_PERMIT")]
    TaiwanCompatriotPermit,
    #[sea_orm(string_value = "PASSPORT")]
    Passport,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
