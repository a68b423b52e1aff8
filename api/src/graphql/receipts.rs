//! Receipts and statements in the schema: guests' lookups by receipt number and contact, the
//! printable receipt's link, and statements for a period (for accounts and for guests).
use async_graphql::{Context, Object, Result, ResultExt, SimpleObject};
use chrono::{DateTime, Utc};

use super::common::Fen;
use super::crowdfunding::{CAMPAIGN, DONATION, DonationChannel};
use super::identity::viewer;
use super::ids;
use super::state;
use crate::service::receipts::{self as service, Receipt as ServiceReceipt, Statement};

/// A donation's receipt, as the donor (or a guest proving who they are) sees it.
pub struct Receipt(pub ServiceReceipt, pub String);

impl Receipt {
    pub fn of(receipt: ServiceReceipt, settings: &crate::config::Settings) -> Result<Self> {
        let link = service::link_path(settings, receipt.donation.id).extend()?;
        Ok(Receipt(receipt, link))
    }
}

/// A listed donation's receipt through the request's loaders (a page of donations costs one
/// statement for its campaigns and one for their organizations, not two per row).
pub async fn receipt_of_donation(ctx: &Context<'_>, d: &entity::donation::Model) -> Result<Option<Receipt>> {
    if !service::has_receipt(d) {
        return Ok(None);
    }
    let loaders = ctx.data::<super::loaders::Loaders>()?;
    let Some(record) = loaders.campaign.get(d.campaign_id).await? else {
        return Ok(None);
    };
    let org = loaders.organization.get(record.campaign.organization_id).await?;
    let receipt = ServiceReceipt {
        donation: d.clone(),
        organization_name: org.map(|o| o.org.name).unwrap_or_default(),
        campaign: record.campaign,
    };
    Receipt::of(receipt, &state(ctx)?.settings).map(Some)
}

#[Object]
impl Receipt {
    /// Sequential per year (Asia/Shanghai), e.g. `2026-000123`.
    async fn receipt_number(&self) -> &str {
        self.0.number()
    }

    async fn donation_id(&self) -> async_graphql::ID {
        ids::encode(DONATION, self.0.donation.id)
    }

    /// The donor's name as recorded (empty for an anonymous guest).
    async fn donor_name(&self) -> &str {
        &self.0.donation.donor_name
    }

    async fn amount_fen(&self) -> Fen {
        Fen(self.0.donation.amount_fen)
    }

    /// Refunded of it so far.
    async fn refunded_fen(&self) -> Fen {
        Fen(self.0.donation.refunded_fen)
    }

    /// What is left of the gift: `amountFen − refundedFen`.
    async fn net_fen(&self) -> Fen {
        Fen(self.0.net_fen())
    }

    async fn channel(&self) -> DonationChannel {
        self.0.donation.channel.into()
    }

    async fn confirmed_at(&self) -> Option<DateTime<Utc>> {
        self.0.donation.confirmed_at
    }

    async fn campaign_id(&self) -> async_graphql::ID {
        ids::encode(CAMPAIGN, self.0.campaign.id)
    }

    async fn campaign_title(&self) -> &str {
        &self.0.campaign.title
    }

    /// The organization that raised the money.
    async fn organization_name(&self) -> &str {
        &self.0.organization_name
    }

    /// The public-fundraising qualification (公开募捐资格) the campaign raised under.
    async fn fundraising_qualification(&self) -> Option<&str> {
        self.0.campaign.fundraising_qualification.as_deref()
    }

    /// The filing number of the fundraising plan (募捐方案备案编号).
    async fn filing_number(&self) -> Option<&str> {
        self.0.campaign.filing_number.as_deref()
    }

    /// The printable receipt (HTML, zh-Hans), relative to the API's address:
    /// `/receipts/<token>`. The token is unguessable and the same every time; whoever holds
    /// the link can open the page, so share it only with the donor. Never cached publicly.
    async fn link(&self) -> &str {
        &self.1
    }
}

/// One donation on a statement.
#[derive(SimpleObject)]
pub struct StatementLine {
    pub donation_id: async_graphql::ID,
    pub receipt_number: Option<String>,
    pub campaign_title: String,
    pub organization_name: String,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub amount_fen: Fen,
    /// Refunded of it so far (whenever refunded).
    pub refunded_fen: Fen,
    pub net_fen: Fen,
}

/// Giving over a period: the donations confirmed in `[from, to)`, each less what was refunded
/// of it so far. Totals cover every donation of the period; `lines` lists the first 500.
#[derive(SimpleObject)]
pub struct DonationStatement {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub donation_count: i64,
    /// The donations' amounts.
    pub confirmed_fen: Fen,
    /// What was refunded of them.
    pub refunded_fen: Fen,
    /// `confirmedFen − refundedFen`.
    pub net_fen: Fen,
    /// Oldest first, at most 500.
    pub lines: Vec<StatementLine>,
    /// More donations than lines.
    pub truncated: bool,
    pub generated_at: DateTime<Utc>,
}

impl From<Statement> for DonationStatement {
    fn from(s: Statement) -> Self {
        DonationStatement {
            from: s.from,
            to: s.to,
            donation_count: s.donation_count,
            confirmed_fen: Fen(s.confirmed_fen),
            refunded_fen: Fen(s.refunded_fen),
            net_fen: Fen(s.net_fen),
            lines: s
                .lines
                .into_iter()
                .map(|l| StatementLine {
                    donation_id: ids::encode(DONATION, l.donation.id),
                    receipt_number: l.donation.receipt_number.clone(),
                    campaign_title: l.campaign_title,
                    organization_name: l.organization_name,
                    confirmed_at: l.donation.confirmed_at,
                    amount_fen: Fen(l.donation.amount_fen),
                    refunded_fen: Fen(l.donation.refunded_fen),
                    net_fen: Fen((l.donation.amount_fen - l.donation.refunded_fen).max(0)),
                })
                .collect(),
            truncated: s.truncated,
            generated_at: s.generated_at,
        }
    }
}

#[derive(Default)]
pub struct ReceiptQuery;

#[Object]
impl ReceiptQuery {
    /// A guest's receipt by its number and the phone or email the guest was named by when the
    /// donation was recorded (anyone; limited per receipt number and per client address,
    /// `RATE_LIMITED` past it). `null` alike for an unknown number, a wrong contact and a
    /// donation of an account (accounts read theirs under `myDonations`). Phones compare
    /// without spaces, dashes or a `+86` prefix; emails without case.
    async fn receipt_lookup(
        &self,
        ctx: &Context<'_>,
        receipt_number: String,
        contact: String,
    ) -> Result<Option<Receipt>> {
        let state = state(ctx)?;
        let found = service::lookup(
            &state.db,
            &state.settings,
            &state.receipt_lookup_limiter,
            viewer(ctx),
            &receipt_number,
            &contact,
        )
        .await
        .extend()?;
        found.map(|r| Receipt::of(r, &state.settings)).transpose()
    }

    /// The signed-in account's statement for `[from, to)` (at most three years): donations
    /// confirmed in the period, refunds of them subtracted.
    async fn my_donation_statement(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<DonationStatement> {
        let state = state(ctx)?;
        Ok(service::account_statement(&state.db, viewer(ctx), from, to).await.extend()?.into())
    }

    /// A guest's statement for `[from, to)`: every donation recorded under `contact` (phone or
    /// email), once proven by one receipt number of the guest's with that contact (any year).
    /// `null` when the proof fails, the same for an unknown number and a wrong contact;
    /// limited as `receiptLookup`.
    async fn guest_donation_statement(
        &self,
        ctx: &Context<'_>,
        contact: String,
        receipt_number: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<DonationStatement>> {
        let state = state(ctx)?;
        let found = service::guest_statement(
            &state.db,
            &state.settings,
            &state.receipt_lookup_limiter,
            viewer(ctx),
            &contact,
            &receipt_number,
            from,
            to,
        )
        .await
        .extend()?;
        Ok(found.map(Into::into))
    }
}
