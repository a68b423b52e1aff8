//! Payment notifications in the schema: what the platforms notified, kept for staff
//! (`paymentNotifications`), so amounts that differ and orders nobody pledged are seen.
use async_graphql::{Context, Enum, ID, Object, Result, ResultExt};
use chrono::{DateTime, Utc};
use entity::payment_notification;

use super::common::Fen;
use super::connection::{self, PagedConnection};
use super::identity::viewer;
use super::ids;
use crate::service::payments::{self as service, NotifyOutcome};

pub use super::ids::PAYMENT_NOTIFICATION;

/// What a verified notification did.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PaymentNotificationOutcome {
    /// Its pledge was confirmed (receipt number, totals).
    Confirmed,
    /// The money was recorded and held for staff (see `refundQueue`).
    Held,
    /// The pledge's money had been recorded before (a statement, staff, another transaction).
    AlreadyRecorded,
    /// The amount is not the pledge's: nothing was confirmed.
    AmountDiffers,
    /// The money is in another currency than yuan: nothing was confirmed.
    OtherCurrency,
    /// No pledge has the order number.
    UnknownReference,
}

impl PaymentNotificationOutcome {
    fn service(self) -> NotifyOutcome {
        match self {
            Self::Confirmed => NotifyOutcome::Confirmed,
            Self::Held => NotifyOutcome::Held,
            Self::AlreadyRecorded => NotifyOutcome::AlreadyRecorded,
            Self::AmountDiffers => NotifyOutcome::AmountDiffers,
            Self::OtherCurrency => NotifyOutcome::OtherCurrency,
            Self::UnknownReference => NotifyOutcome::UnknownReference,
        }
    }

    fn parse(stored: &str) -> Option<Self> {
        [
            Self::Confirmed,
            Self::Held,
            Self::AlreadyRecorded,
            Self::AmountDiffers,
            Self::OtherCurrency,
            Self::UnknownReference,
        ]
        .into_iter()
        .find(|o| o.service().as_str() == stored)
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PaymentPlatform {
    WechatPay,
    Alipay,
}

/// A payment a platform notified (`POST /payments/notify/*`), verified and kept once per
/// platform transaction.
pub struct PaymentNotification(pub payment_notification::Model);

#[Object]
impl PaymentNotification {
    pub async fn id(&self) -> ID {
        ids::encode(PAYMENT_NOTIFICATION, self.0.id)
    }

    async fn platform(&self) -> PaymentPlatform {
        if self.0.provider == service::Provider::Alipay.as_str() {
            PaymentPlatform::Alipay
        } else {
            PaymentPlatform::WechatPay
        }
    }

    /// The platform's transaction ID (WeChat Pay `transaction_id`, Alipay `trade_no`).
    async fn transaction_id(&self) -> &str {
        &self.0.transaction_id
    }

    /// The merchant order number the payment named (a pledge's external reference or client key).
    async fn out_trade_no(&self) -> &str {
        &self.0.out_trade_no
    }

    async fn amount_fen(&self) -> Fen {
        Fen(self.0.amount_fen)
    }

    /// The donation it matched, if any.
    async fn donation_id(&self) -> Option<ID> {
        self.0.donation_id.map(|id| ids::encode(super::crowdfunding::DONATION, id))
    }

    async fn outcome(&self) -> Result<PaymentNotificationOutcome> {
        PaymentNotificationOutcome::parse(&self.0.outcome)
            .ok_or_else(|| crate::error::AppError::Internal(format!("stored outcome {}", self.0.outcome)))
            .extend()
    }

    async fn received_at(&self) -> DateTime<Utc> {
        self.0.received_at
    }
}

#[derive(Default)]
pub struct PaymentQuery;

#[Object]
impl PaymentQuery {
    /// Staff and RECONCILE keys: verified payment notifications, newest first, optionally only
    /// some outcomes (`[AMOUNT_DIFFERS, OTHER_CURRENCY, UNKNOWN_REFERENCE]`: payments that confirmed
    /// nothing).
    async fn payment_notifications(
        &self,
        ctx: &Context<'_>,
        outcome: Option<Vec<PaymentNotificationOutcome>>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<PaymentNotification>> {
        viewer(ctx).require_reconcile_donations().extend()?;
        let outcomes: Vec<NotifyOutcome> = outcome.unwrap_or_default().into_iter().map(|o| o.service()).collect();
        connection::list(ctx, connection::args(first, after, last, before), PaymentNotification, async |db, page| {
            service::kept(db, &outcomes, page).await
        })
        .await
    }
}
