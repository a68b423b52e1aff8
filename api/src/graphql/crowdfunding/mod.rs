//! Charity crowdfunding in the schema: campaigns, their progress and donor wall, recorded
//! donations with confirmation, refunds and receipts.
use super::common::Fen;
use async_graphql::{
    Context, Enum, ErrorExtensions, ID, InputObject, MaybeUndefined, Object, Result, ResultExt, SimpleObject,
};
use chrono::{DateTime, Utc};
use entity::{campaign_budget_line, campaign_update, donation};

use super::audit::History;
use super::connection::{self, PagedConnection};
use super::identity::viewer;
use super::ids;
use super::loaders::Loaders;
use super::organization::{OrderDirection, Organization};
use super::state;
use crate::auth::Viewer;
use crate::error::AppError;
use crate::events::Aggregate;
use crate::response_cache::{Family, ResponseTags};
use crate::service::crowdfunding::{
    self as service, BudgetLineInput as ServiceBudgetLine, CampaignAction, CampaignFilter as ServiceFilter,
    CampaignPatch, CampaignRecord, CampaignSort, NewCampaign, NewDonation, WallEntry,
};
use crate::service::pagination;
use crate::state::AppState;

pub use super::ids::{CAMPAIGN, DONATION};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::campaign::CampaignStatus")]
pub enum CampaignStatus {
    /// Being written by the organization.
    Draft,
    /// Submitted; a manager approves (→ ACTIVE) or sends it back (→ DRAFT).
    PendingReview,
    /// Published and collecting between its start and end.
    Active,
    Ended,
    Cancelled,
}

/// What a donor sees.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::service::crowdfunding::DonorState")]
pub enum DonorState {
    /// Approved; collection starts at `startsAt`.
    Upcoming,
    Collecting,
    /// The goal is reached; donations are still accepted until the end.
    GoalReached,
    Ended,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::donation::DonationChannel")]
pub enum DonationChannel {
    /// A designated online payment platform.
    OnlinePlatform,
    BankTransfer,
    Cash,
    Other,
}

/// How a donor appears on the donor wall.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::donation::DisplayMode")]
pub enum DisplayMode {
    /// The name as given.
    Public,
    /// The name masked, e.g. 王*明.
    Masked,
    /// 爱心人士; the donor is never revealed.
    Anonymous,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::donation::DonationStatus")]
pub enum DonationStatus {
    /// Recorded; not counted until confirmed.
    Pledged,
    /// The money arrived; counted in the totals, with a receipt number.
    Confirmed,
    Cancelled,
    /// A reversing record of a refunded donation (negative amount).
    Refunded,
    /// A pledge whose money did not arrive within the pledge TTL (`expiresAt`); it never
    /// counted and gets no receipt.
    Expired,
    /// Money arrived that does not count (`holdReason`): staff accept it
    /// (`acceptLatePayment`) or refund it (`refundDonation`); see `refundQueue`.
    Received,
    /// A reversing record of held money sent back (negative amount); it never counted.
    Returned,
}

/// Why received money is held for staff instead of counting.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::donation::HoldReason")]
pub enum HoldReason {
    /// The money came after the pledge expired: accept it or refund it.
    PledgeExpired,
    /// The money came after the pledge was cancelled: accept it or refund it.
    PledgeCancelled,
    /// The money came for a cancelled campaign: refund it.
    CampaignCancelled,
}

/// What recording a payment did.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PaymentOutcome {
    /// The pledge is confirmed: it counts, with a receipt number.
    Confirmed,
    /// The money is recorded and held for staff (see `holdReason`); it counts nowhere.
    Held,
    /// The money was recorded before; nothing changed.
    AlreadyRecorded,
}

impl From<service::PaymentOutcome> for PaymentOutcome {
    fn from(o: service::PaymentOutcome) -> Self {
        match o {
            service::PaymentOutcome::Confirmed => Self::Confirmed,
            service::PaymentOutcome::Held(_) => Self::Held,
            service::PaymentOutcome::AlreadyRecorded => Self::AlreadyRecorded,
        }
    }
}

mod mutations;
mod queries;
mod subscriptions;
mod types;

pub use mutations::*;
pub use queries::*;
pub use subscriptions::*;
pub use types::*;
