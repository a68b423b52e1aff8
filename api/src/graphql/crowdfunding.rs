//! Charity crowdfunding in the schema: campaigns, their progress and donor wall, recorded
//! donations with confirmation, refunds and receipts.
use super::common::Fen;
use async_graphql::{
    Context, Enum, ErrorExtensions, ID, InputObject, MaybeUndefined, Object, Result, ResultExt, SimpleObject,
};
use chrono::{DateTime, Utc};
use entity::{campaign_budget_line, campaign_update, donation};

use super::connection::{self, PagedConnection};
use super::identity::viewer;
use super::ids;
use super::loaders::Loaders;
use super::organization::{OrderDirection, Organization};
use super::state;
use crate::auth::Viewer;
use crate::error::AppError;
use crate::response_cache::{Family, ResponseTags};
use crate::service::crowdfunding::{
    self as service, BudgetLineInput as ServiceBudgetLine, CampaignAction, CampaignFilter as ServiceFilter,
    CampaignPatch, CampaignRecord, CampaignSort, NewCampaign, NewDonation, WallEntry,
};
use crate::service::pagination;
use crate::state::AppState;

pub const CAMPAIGN: &str = "Campaign";
pub const DONATION: &str = "Donation";

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

/// A public fundraising campaign of an organization.
pub struct Campaign(pub CampaignRecord);

/// A campaign's totals, counting confirmed donations only (refunds subtracted).
#[derive(SimpleObject)]
pub struct CampaignProgress {
    pub campaign_id: ID,
    pub raised_fen: Fen,
    pub goal_fen: Fen,
    /// Confirmed donations not refunded.
    pub donation_count: i64,
    /// Distinct donors (each guest donation counts as one donor).
    pub donor_count: i64,
    /// Percent of the goal raised, two decimals; may exceed 100.
    pub percent_of_goal: f64,
    /// Whole days until the end, rounded up; 0 once ended.
    pub days_left: i64,
    /// `null` while the campaign is not published.
    pub donor_state: Option<DonorState>,
}

impl CampaignProgress {
    pub fn of(r: &CampaignRecord) -> Self {
        let now = crate::service::now();
        Self {
            campaign_id: ids::encode(CAMPAIGN, r.campaign.id),
            raised_fen: r.campaign.raised_fen.into(),
            goal_fen: r.campaign.goal_fen.into(),
            donation_count: r.campaign.donation_count,
            donor_count: r.campaign.donor_count,
            percent_of_goal: r.percent_of_goal(),
            days_left: r.days_left(now),
            donor_state: r.donor_state(now).map(Into::into),
        }
    }
}

pub use super::common::BudgetLine;

/// A news post of a campaign.
pub struct CampaignUpdate(pub campaign_update::Model);

#[Object]
impl CampaignUpdate {
    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn body(&self) -> &str {
        &self.0.body
    }

    async fn published_at(&self) -> DateTime<Utc> {
        self.0.published_at
    }
}

/// Whether `viewer` may see a campaign at all: published ones are public; drafts only to
/// staff and the organization's members.
pub(crate) fn visible(viewer: &Viewer, r: &CampaignRecord) -> bool {
    r.is_published() || viewer.can_manage_campaigns_of(r.campaign.organization_id)
}

#[Object]
impl Campaign {
    pub async fn id(&self) -> ID {
        ids::encode(CAMPAIGN, self.0.campaign.id)
    }

    /// What happened to it, newest first: who created, changed, decided or paid what, and
    /// when. `null` unless the viewer is staff (and, for donations, reconcilers).
    #[graphql(complexity = "connection::cost(first, None, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<PagedConnection<super::audit::AuditEntry>>> {
        let allowed = viewer(ctx).can_see_history();
        super::audit::history_of(ctx, crate::events::Aggregate::Campaign, self.0.campaign.id, allowed, first, after)
            .await
    }

    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let loaders = ctx.data::<Loaders>()?;
        let org = loaders.organization.load_one(self.0.campaign.organization_id).await.map_err(|e| e.extend())?;
        Ok(org.map(Organization))
    }

    async fn title(&self) -> &str {
        &self.0.campaign.title
    }

    async fn story(&self) -> &str {
        &self.0.campaign.story
    }

    async fn cover_url(&self) -> Option<&str> {
        self.0.campaign.cover_url.as_deref()
    }

    async fn goal_fen(&self) -> Fen {
        Fen(self.0.campaign.goal_fen)
    }

    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.campaign.starts_at
    }

    async fn ends_at(&self) -> DateTime<Utc> {
        self.0.campaign.ends_at
    }

    /// Who the money helps.
    async fn beneficiaries(&self) -> &str {
        &self.0.campaign.beneficiaries
    }

    /// The organization's public-fundraising qualification (公开募捐资格), required by the
    /// Charity Law to be shown on public fundraising.
    async fn fundraising_qualification(&self) -> Option<&str> {
        self.0.campaign.fundraising_qualification.as_deref()
    }

    /// The filing number of the fundraising plan (募捐方案备案编号).
    async fn filing_number(&self) -> Option<&str> {
        self.0.campaign.filing_number.as_deref()
    }

    async fn budget(&self, ctx: &Context<'_>) -> Result<Vec<BudgetLine>> {
        let line =
            |l: &campaign_budget_line::Model| BudgetLine { item: l.item.clone(), amount_fen: l.amount_fen.into() };
        if let Some(lines) = &self.0.budget {
            return Ok(lines.iter().map(line).collect());
        }
        // A list leaves the lines out; its page primed them (or they are batched here).
        let loaders = ctx.data::<Loaders>()?;
        let lines = loaders.campaign_budget.load_one(self.0.campaign.id).await.map_err(|e| e.extend())?;
        Ok(lines.unwrap_or_default().iter().map(line).collect())
    }

    async fn status(&self) -> CampaignStatus {
        self.0.campaign.status.into()
    }

    /// The reviewer's note; visible to staff and the organization's members.
    async fn review_note(&self, ctx: &Context<'_>) -> Option<&str> {
        viewer(ctx).can_manage_campaigns_of(self.0.campaign.organization_id).then_some(&self.0.campaign.review_note)
    }

    async fn donor_state(&self) -> Option<DonorState> {
        self.0.donor_state(crate::service::now()).map(Into::into)
    }

    async fn progress(&self) -> CampaignProgress {
        CampaignProgress::of(&self.0)
    }

    /// Published updates, newest first (the latest 50).
    async fn updates(&self, ctx: &Context<'_>) -> Result<Vec<CampaignUpdate>> {
        let loaders = ctx.data::<Loaders>()?;
        let rows = loaders.campaign_updates.load_one(self.0.campaign.id).await.map_err(|e| e.extend())?;
        Ok(rows.unwrap_or_default().into_iter().map(CampaignUpdate).collect())
    }

    async fn published_at(&self) -> Option<DateTime<Utc>> {
        self.0.campaign.published_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.campaign.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.campaign.updated_at
    }

    /// Whether the viewer may edit, submit and cancel this campaign.
    async fn viewer_can_manage(&self, ctx: &Context<'_>) -> bool {
        viewer(ctx).can_manage_campaigns_of(self.0.campaign.organization_id)
    }

    /// Confirmed donations, newest first, with names masked per the donor's display mode.
    async fn donor_wall(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<DonorWallEntry>> {
        let state = state(ctx)?;
        if connection::is_first_page(ctx, &after, last, &before) {
            let (size, _) =
                pagination::validate(&connection::args(first, None, None, None), &state.settings.limits).extend()?;
            // Loaded ahead with the other walls of the list page this campaign is on.
            if let Some(page) = ctx.data::<Loaders>()?.donor_walls.get(&(self.0.campaign.id, size)) {
                return Ok(connection::from_page(page, DonorWallEntry));
            }
        }
        let page = state
            .crowdfunding()
            .donor_wall(self.0.campaign.id, &connection::args(first, after, last, before), connection::wants_total(ctx))
            .await
            .extend()?;
        Ok(connection::from_page(page, DonorWallEntry))
    }

    /// Every donation record with the donor's details, for staff and reconciling partners;
    /// `null` for everyone else.
    async fn donations(
        &self,
        ctx: &Context<'_>,
        status: Option<Vec<DonationStatus>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Option<PagedConnection<Donation>>> {
        if !viewer(ctx).can_reconcile_donations() {
            return Ok(None);
        }
        let state = state(ctx)?;
        let statuses: Vec<donation::DonationStatus> = status.unwrap_or_default().into_iter().map(Into::into).collect();
        let page = service::campaign_donations(
            &state.db,
            self.0.campaign.id,
            &statuses,
            &connection::args(first, after, last, before),
            &state.settings.limits,
            connection::wants_total(ctx),
        )
        .await
        .extend()?;
        Ok(Some(connection::from_page(page, Donation)))
    }
}

/// One line of the donor wall: never more about the donor than their display mode allows.
pub struct DonorWallEntry(pub WallEntry);

#[Object]
impl DonorWallEntry {
    /// The name as the donor chose to show it: full, masked (王*明), or 爱心人士.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    async fn anonymous(&self) -> bool {
        self.0.anonymous
    }

    async fn amount_fen(&self) -> Fen {
        Fen(self.0.amount_fen)
    }

    async fn message(&self) -> &str {
        &self.0.message
    }

    async fn donated_at(&self) -> DateTime<Utc> {
        self.0.donated_at
    }
}

/// A recorded donation, as its donor, staff and reconciling partners see it.
pub struct Donation(pub donation::Model);

#[Object]
impl Donation {
    pub async fn id(&self) -> ID {
        ids::encode(DONATION, self.0.id)
    }

    /// What happened to it, newest first: who created, changed, decided or paid what, and
    /// when. `null` unless the viewer is staff (and, for donations, reconcilers).
    #[graphql(complexity = "connection::cost(first, None, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<PagedConnection<super::audit::AuditEntry>>> {
        let allowed = viewer(ctx).can_reconcile_donations();
        super::audit::history_of(ctx, crate::events::Aggregate::Donation, self.0.id, allowed, first, after).await
    }

    async fn campaign(&self, ctx: &Context<'_>) -> Result<Option<Campaign>> {
        let loaders = ctx.data::<Loaders>()?;
        let record = loaders.campaign.load_one(self.0.campaign_id).await.map_err(|e| e.extend())?;
        Ok(record.map(Campaign))
    }

    /// Negative for a refund's reversing record.
    async fn amount_fen(&self) -> Fen {
        Fen(self.0.amount_fen)
    }

    async fn channel(&self) -> DonationChannel {
        self.0.channel.into()
    }

    /// The payment platform's or bank's reference.
    async fn external_reference(&self) -> Option<&str> {
        self.0.external_reference.as_deref()
    }

    /// The donor's name as recorded (empty for an anonymous guest).
    async fn donor_name(&self) -> &str {
        &self.0.donor_name
    }

    async fn display_mode(&self) -> DisplayMode {
        self.0.display_mode.into()
    }

    async fn message(&self) -> &str {
        &self.0.message
    }

    /// A pledge past its TTL is `EXPIRED` at once, whether or not the expiry sweep has run.
    async fn status(&self, ctx: &Context<'_>) -> Result<DonationStatus> {
        let ttl = state(ctx)?.settings.pledge_ttl;
        Ok(service::effective_status(&self.0, ttl, crate::service::now()).into())
    }

    /// When a pledge expires unless its money arrives (`null` once it is no longer a pledge).
    async fn expires_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        let ttl = state(ctx)?.settings.pledge_ttl;
        let pledge = matches!(self.0.status, donation::DonationStatus::Pledged | donation::DonationStatus::Expired);
        Ok(chrono::Duration::from_std(ttl).ok().filter(|_| pledge).map(|ttl| self.0.created_at + ttl))
    }

    /// When the money arrived (confirmed, or received and held).
    async fn received_at(&self) -> Option<DateTime<Utc>> {
        self.0.received_at
    }

    /// Why received money is held for staff (status `RECEIVED`).
    async fn hold_reason(&self) -> Option<HoldReason> {
        self.0.hold_reason.map(Into::into)
    }

    /// Sequential per year (Asia/Shanghai), e.g. 2026-000123; set on confirmation.
    async fn receipt_number(&self) -> Option<&str> {
        self.0.receipt_number.as_deref()
    }

    /// Its receipt with the printable link, once confirmed (`null` before, and on reversing
    /// records).
    async fn receipt(&self, ctx: &Context<'_>) -> Result<Option<super::receipts::Receipt>> {
        super::receipts::receipt_of_donation(ctx, &self.0).await
    }

    /// The client key it was recorded with (`null` on refund records).
    async fn client_key(&self) -> Option<&str> {
        self.0.client_key.as_deref()
    }

    async fn confirmed_at(&self) -> Option<DateTime<Utc>> {
        self.0.confirmed_at
    }

    async fn cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.0.cancelled_at
    }

    /// When this donation was refunded in full (see its reversing records); it stops
    /// counting then.
    async fn refunded_at(&self) -> Option<DateTime<Utc>> {
        self.0.refunded_at
    }

    /// How much of it was refunded so far (partial refunds add up; 0 on reversing records).
    async fn refunded_fen(&self) -> Fen {
        Fen(self.0.refunded_fen)
    }

    /// What is left to refund: the amount minus `refundedFen` (0 on reversing records).
    async fn remaining_fen(&self) -> Fen {
        Fen(Ord::max(self.0.amount_fen - self.0.refunded_fen, 0))
    }

    /// On a reversing record: the donation it refunds (a donation may have several).
    async fn refund_of_id(&self) -> Option<ID> {
        self.0.refund_of_id.map(|id| ids::encode(DONATION, id))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// An account's giving over a date range.
#[derive(SimpleObject)]
pub struct DonorSummary {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Confirmed minus refunded.
    pub net_fen: Fen,
    pub confirmed_fen: Fen,
    pub refunded_fen: Fen,
    pub confirmed_count: i64,
    /// Campaigns given to.
    pub campaign_count: i64,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum CampaignOrderField {
    /// Newest first by default.
    #[default]
    CreatedAt,
    /// Ending soonest.
    EndsAt,
}

#[derive(InputObject)]
pub struct CampaignOrder {
    #[graphql(default)]
    pub field: CampaignOrderField,
    pub direction: Option<OrderDirection>,
}

#[derive(InputObject, Default)]
pub struct CampaignFilter {
    pub organization_id: Option<ID>,
    /// Any of these statuses. Drafts and campaigns pending review are listed only for staff,
    /// or for an organization's members together with `organizationId`.
    pub status: Option<Vec<CampaignStatus>>,
    /// Substring of the title.
    pub search: Option<String>,
}

/// Loads the relations a page of campaigns selects for the whole page at once, one
/// statement each, and primes the loaders its nested resolvers read (see `loaders`).
async fn load_ahead(ctx: &Context<'_>, page: &[(String, CampaignRecord)]) -> Result<()> {
    if page.is_empty() {
        return Ok(());
    }
    let state = state(ctx)?;
    let loaders = ctx.data::<Loaders>()?;
    let ids: Vec<i64> = page.iter().map(|(_, r)| r.campaign.id).collect();
    let organizations = async {
        if connection::node_selections(ctx, "organization").is_empty() {
            return Ok(());
        }
        let mut org_ids: Vec<i64> = page.iter().map(|(_, r)| r.campaign.organization_id).collect();
        org_ids.sort_unstable();
        org_ids.dedup();
        let orgs = crate::service::organization::find_by_ids(&state.db, &org_ids).await?;
        loaders.organization.prime(orgs.into_iter().map(|o| (o.org.id, o)));
        Ok::<_, AppError>(())
    };
    let walls = async {
        let mut sizes: Vec<u64> = connection::node_selections(ctx, "donorWall")
            .iter()
            .filter_map(|f| connection::first_page_size(f, &state.settings.limits))
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        for size in sizes {
            let walls = state.crowdfunding().recent_donors(&ids, size).await?;
            loaders.donor_walls.put(walls.into_iter().map(|(id, wall)| ((id, size), wall)));
        }
        Ok::<_, AppError>(())
    };
    let updates = async {
        if connection::node_selections(ctx, "updates").is_empty() {
            return Ok(());
        }
        let mut updates = service::updates_of(&state.db, &ids).await?;
        loaders.campaign_updates.prime(ids.iter().map(|id| (*id, updates.remove(id).unwrap_or_default())));
        Ok::<_, AppError>(())
    };
    let budgets = async {
        if connection::node_selections(ctx, "budget").is_empty() {
            return Ok(());
        }
        let mut budgets = state.crowdfunding().budgets(&ids).await?;
        loaders.campaign_budget.prime(ids.iter().map(|id| (*id, budgets.remove(id).unwrap_or_default())));
        Ok::<_, AppError>(())
    };
    futures::try_join!(organizations, walls, updates, budgets).extend()?;
    Ok(())
}

#[derive(Default)]
pub struct CrowdfundingQuery;

#[Object]
impl CrowdfundingQuery {
    /// A campaign by ID; `null` when there is none or the viewer may not see it.
    async fn campaign(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Campaign>> {
        let row = ids::decode(&id, CAMPAIGN, "id").extend()?;
        ResponseTags::entity(ctx, Family::Campaign, row).await;
        let record = state(ctx)?.crowdfunding().campaign(row).await.extend()?;
        let campaign = record.filter(|r| visible(viewer(ctx), r)).map(Campaign);
        if campaign.is_none() {
            ResponseTags::missing(ctx, Family::Campaign);
        }
        Ok(campaign)
    }

    /// Campaigns, newest first unless ordered otherwise. Published ones for everyone.
    #[allow(clippy::too_many_arguments)]
    async fn campaigns(
        &self,
        ctx: &Context<'_>,
        filter: Option<CampaignFilter>,
        order_by: Option<CampaignOrder>,
        #[graphql(desc = "Page size from the start (default 20, at most 100).")] first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<Campaign>> {
        let filter = filter.unwrap_or_default();
        let organization_id = filter
            .organization_id
            .as_ref()
            .map(|id| ids::decode(id, super::organization::TYPE_NAME, "organizationId"))
            .transpose()
            .extend()?;
        let v = viewer(ctx);
        let include_unpublished = v.is_staff() || organization_id.is_some_and(|org| v.can_manage_campaigns_of(org));
        let (sort, default_direction) = match order_by.as_ref().map(|o| o.field).unwrap_or_default() {
            CampaignOrderField::CreatedAt => (CampaignSort::CreatedAt, OrderDirection::Desc),
            CampaignOrderField::EndsAt => (CampaignSort::EndsAt, OrderDirection::Asc),
        };
        let direction = order_by.and_then(|o| o.direction).unwrap_or(default_direction);
        let service_filter = ServiceFilter {
            organization_id,
            statuses: filter.status.unwrap_or_default().into_iter().map(Into::into).collect(),
            search: filter.search,
            include_unpublished,
        };
        let page = state(ctx)?
            .crowdfunding()
            .list(
                &service_filter,
                sort,
                direction.into(),
                &connection::args(first, after, last, before),
                connection::wants_total(ctx),
            )
            .await
            .extend()?;
        load_ahead(ctx, &page.items).await?;
        Ok(connection::from_page(page, Campaign))
    }

    /// The signed-in account's donation records, newest first (refund records included).
    async fn my_donations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<Donation>> {
        let account = viewer(ctx).require_account().extend()?;
        let state = state(ctx)?;
        let page = service::donations_of_account(
            &state.db,
            account.id,
            &connection::args(first, after, last, before),
            &state.settings.limits,
            connection::wants_total(ctx),
        )
        .await
        .extend()?;
        Ok(connection::from_page(page, Donation))
    }

    /// Staff and RECONCILE keys: money received that does not count, oldest first — payments
    /// for cancelled campaigns (to refund) and late payments (to accept or refund). Refunding
    /// one takes it off the queue.
    #[allow(clippy::too_many_arguments)]
    async fn refund_queue(
        &self,
        ctx: &Context<'_>,
        campaign_id: Option<ID>,
        reason: Option<Vec<HoldReason>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<Donation>> {
        viewer(ctx).require_reconcile_donations().extend()?;
        let campaign = campaign_id.as_ref().map(|id| ids::decode(id, CAMPAIGN, "campaignId")).transpose().extend()?;
        let reasons: Vec<donation::HoldReason> = reason.unwrap_or_default().into_iter().map(Into::into).collect();
        let state = state(ctx)?;
        let page = service::refund_queue(
            &state.db,
            campaign,
            &reasons,
            &connection::args(first, after, last, before),
            &state.settings.limits,
            connection::wants_total(ctx),
        )
        .await
        .extend()?;
        Ok(connection::from_page(page, Donation))
    }

    /// The signed-in account's giving confirmed in [from, to) (at most three years).
    async fn my_donation_summary(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<DonorSummary> {
        let account = viewer(ctx).require_account().extend()?;
        let s = service::donor_summary(&state(ctx)?.db, account.id, from, to).await.extend()?;
        Ok(DonorSummary {
            from,
            to,
            net_fen: s.net_fen.into(),
            confirmed_fen: s.confirmed_fen.into(),
            refunded_fen: s.refunded_fen.into(),
            confirmed_count: s.confirmed_count,
            campaign_count: s.campaign_count,
        })
    }
}

// ---------------------------------------------------------------- mutations

pub type BudgetLineInput = super::common::BudgetLine;

fn budget(lines: Vec<BudgetLineInput>) -> Vec<ServiceBudgetLine> {
    lines.into_iter().map(|l| ServiceBudgetLine { item: l.item, amount_fen: l.amount_fen.0 }).collect()
}

#[derive(InputObject)]
pub struct CreateCampaignInput {
    pub organization_id: ID,
    pub title: String,
    pub story: Option<String>,
    pub cover_url: Option<String>,
    /// In fen (1 yuan = 100 fen).
    pub goal_fen: Fen,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub beneficiaries: Option<String>,
    /// Required before the campaign can be submitted and go ACTIVE.
    pub fundraising_qualification: Option<String>,
    /// Required before the campaign can be submitted and go ACTIVE.
    pub filing_number: Option<String>,
    #[graphql(default)]
    pub budget: Vec<BudgetLineInput>,
}

/// Fields left out stay as they are; fields set to `null` are cleared. Once ACTIVE, only
/// title, story, cover and beneficiaries may change.
#[derive(InputObject)]
pub struct UpdateCampaignInput {
    pub id: ID,
    pub title: Option<String>,
    pub story: Option<String>,
    pub cover_url: MaybeUndefined<String>,
    pub goal_fen: Option<Fen>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub beneficiaries: Option<String>,
    pub fundraising_qualification: MaybeUndefined<String>,
    pub filing_number: MaybeUndefined<String>,
    /// Replaces all budget lines.
    pub budget: Option<Vec<BudgetLineInput>>,
}

#[derive(InputObject)]
pub struct CampaignIdInput {
    pub id: ID,
    /// A note kept with the change (shown to the organization for a review).
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct ReviewCampaignInput {
    pub id: ID,
    /// true publishes it (ACTIVE); false sends it back to DRAFT.
    pub approve: bool,
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct PostCampaignUpdateInput {
    pub campaign_id: ID,
    pub title: String,
    pub body: String,
    /// Default now; a later time schedules it.
    pub published_at: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct DonateInput {
    pub campaign_id: ID,
    /// In fen, 1 to 100,000,000 (1,000,000 yuan).
    pub amount_fen: Fen,
    pub channel: DonationChannel,
    pub external_reference: Option<String>,
    /// Signed-in donors: how to show them (default their display name). Partner-recorded
    /// guests: required unless ANONYMOUS.
    pub donor_name: Option<String>,
    #[graphql(default_with = "DisplayMode::Public")]
    pub display_mode: DisplayMode,
    pub message: Option<String>,
    /// Unique per donor (account or partner key): a retry with the same key and content
    /// returns the original donation; the same key with other content is a CONFLICT.
    pub client_key: String,
    /// Staff only: record a guest's offline gift (bank transfer, cash) rather than your own;
    /// `donorName` is then required unless ANONYMOUS. (Partner keys always record guests.)
    #[graphql(default)]
    pub record_for_guest: bool,
    /// Guests only: the phone the guest gives, with which they later find their receipts
    /// (`receiptLookup`). Kept only as a keyed digest, never shown or sent.
    pub guest_phone: Option<String>,
    /// Guests only: the email the guest gives, likewise.
    pub guest_email: Option<String>,
}

#[derive(InputObject)]
pub struct ConfirmDonationInput {
    pub id: ID,
    /// The payment platform's or bank's reference, if not given at pledge time.
    pub external_reference: Option<String>,
}

#[derive(InputObject)]
pub struct DonationIdInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct RefundDonationInput {
    pub id: ID,
    /// How much to refund, 1 fen up to what is left of the donation (`remainingFen`);
    /// default all of it. Each refund is a reversing record of its own.
    pub amount_fen: Option<Fen>,
    pub reason: Option<String>,
}

#[derive(SimpleObject)]
pub struct CampaignPayload {
    pub campaign: Campaign,
}

#[derive(SimpleObject)]
pub struct PostCampaignUpdatePayload {
    pub update: CampaignUpdate,
}

#[derive(SimpleObject)]
pub struct DonatePayload {
    pub donation: Donation,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct DonationPayload {
    pub donation: Donation,
}

#[async_graphql::ComplexObject]
impl DonationPayload {
    /// The campaign's totals after the change.
    async fn progress(&self, ctx: &Context<'_>) -> Result<CampaignProgress> {
        // Read only when asked for: a confirmation answered with its status reads nothing more.
        progress_of(state(ctx)?, self.donation.0.campaign_id).await
    }
}

#[derive(SimpleObject)]
pub struct RecordDonationPaymentPayload {
    pub donation: Donation,
    pub outcome: PaymentOutcome,
    /// The campaign's totals after the change.
    pub progress: CampaignProgress,
}

#[derive(SimpleObject)]
pub struct RefundDonationPayload {
    /// The refunded donation (its `refundedAt` set).
    pub donation: Donation,
    /// The reversing record.
    pub refund: Donation,
    pub progress: CampaignProgress,
}

/// The campaign behind `id`, after checking the viewer runs its organization's campaigns.
async fn progress_of(state: &AppState, campaign_id: i64) -> Result<CampaignProgress> {
    // The campaign row alone: progress needs no budget lines.
    let campaign = service::campaign_row(&state.db, campaign_id).await.extend()?;
    Ok(CampaignProgress::of(&CampaignRecord { campaign, budget: None }))
}

#[derive(Default)]
pub struct CrowdfundingMutation;

#[Object]
impl CrowdfundingMutation {
    /// Starts a DRAFT campaign for an organization (its members, or staff).
    async fn create_campaign(&self, ctx: &Context<'_>, input: CreateCampaignInput) -> Result<CampaignPayload> {
        let state = state(ctx)?;
        let org = ids::decode(&input.organization_id, super::organization::TYPE_NAME, "organizationId").extend()?;
        let new = NewCampaign {
            organization_id: org,
            title: input.title,
            story: input.story,
            cover_url: input.cover_url,
            goal_fen: input.goal_fen.0,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            beneficiaries: input.beneficiaries,
            fundraising_qualification: input.fundraising_qualification,
            filing_number: input.filing_number,
            budget: budget(input.budget),
            created_by_account_id: None,
        };
        let record = service::create_campaign(state.ctx(), viewer(ctx), new).await.extend()?;
        Ok(CampaignPayload { campaign: Campaign(record) })
    }

    async fn update_campaign(&self, ctx: &Context<'_>, input: UpdateCampaignInput) -> Result<CampaignPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, CAMPAIGN, "id").extend()?;
        let patch = CampaignPatch {
            title: input.title,
            story: input.story,
            cover_url: input.cover_url.into(),
            goal_fen: input.goal_fen.map(i64::from),
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            beneficiaries: input.beneficiaries,
            fundraising_qualification: input.fundraising_qualification.into(),
            filing_number: input.filing_number.into(),
            budget: input.budget.map(budget),
        };
        let record = service::update_campaign(state.ctx(), viewer(ctx), id, patch).await.extend()?;
        Ok(CampaignPayload { campaign: Campaign(record) })
    }

    /// DRAFT → PENDING_REVIEW; needs the qualification and the filing number.
    async fn submit_campaign(&self, ctx: &Context<'_>, input: CampaignIdInput) -> Result<CampaignPayload> {
        change_status(ctx, &input.id, CampaignAction::Submit, input.note).await
    }

    /// Staff: PENDING_REVIEW → ACTIVE (published) or back to DRAFT with a note.
    async fn review_campaign(&self, ctx: &Context<'_>, input: ReviewCampaignInput) -> Result<CampaignPayload> {
        let action = if input.approve { CampaignAction::Approve } else { CampaignAction::Reject };
        change_status(ctx, &input.id, action, input.note).await
    }

    /// Staff: ACTIVE → ENDED (collection closes; pledges made before may still be confirmed).
    async fn end_campaign(&self, ctx: &Context<'_>, input: CampaignIdInput) -> Result<CampaignPayload> {
        change_status(ctx, &input.id, CampaignAction::End, input.note).await
    }

    /// DRAFT, PENDING_REVIEW or ACTIVE → CANCELLED (its members, or staff).
    async fn cancel_campaign(&self, ctx: &Context<'_>, input: CampaignIdInput) -> Result<CampaignPayload> {
        change_status(ctx, &input.id, CampaignAction::Cancel, input.note).await
    }

    async fn post_campaign_update(
        &self,
        ctx: &Context<'_>,
        input: PostCampaignUpdateInput,
    ) -> Result<PostCampaignUpdatePayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.campaign_id, CAMPAIGN, "campaignId").extend()?;
        let update =
            service::post_campaign_update(state.ctx(), viewer(ctx), id, input.title, input.body, input.published_at)
                .await
                .extend()?;
        Ok(PostCampaignUpdatePayload { update: CampaignUpdate(update) })
    }

    /// Records a pledge: signed-in accounts give as themselves; partner keys with DONATE
    /// record guests. Idempotent per `clientKey`.
    async fn donate(&self, ctx: &Context<'_>, input: DonateInput) -> Result<DonatePayload> {
        let state = state(ctx)?;
        let campaign_id = ids::decode(&input.campaign_id, CAMPAIGN, "campaignId").extend()?;
        let new = NewDonation {
            campaign_id,
            amount_fen: input.amount_fen.0,
            channel: input.channel.into(),
            external_reference: input.external_reference,
            donor_name: input.donor_name,
            display_mode: input.display_mode.into(),
            message: input.message,
            client_key: input.client_key,
        };
        let contact = crate::service::receipts::GuestContact { phone: input.guest_phone, email: input.guest_email };
        let donation =
            service::donate_as(state.ctx(), viewer(ctx), input.record_for_guest, new, contact).await.extend()?;
        Ok(DonatePayload { donation: Donation(donation) })
    }

    /// Staff or a RECONCILE key: PLEDGED → CONFIRMED once the money arrived; assigns the
    /// receipt number and adds it to the campaign's totals. A pledge past its TTL takes the
    /// late-payment path (`RECEIVED`, `holdReason: PLEDGE_EXPIRED`, no receipt, not counted);
    /// a pledge of a cancelled campaign is `CONFLICT` with reason `CAMPAIGN_CANCELLED`.
    async fn confirm_donation(&self, ctx: &Context<'_>, input: ConfirmDonationInput) -> Result<DonationPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, DONATION, "id").extend()?;
        let donation =
            service::confirm_donation(state.ctx(), viewer(ctx), id, input.external_reference).await.extend()?;
        Ok(DonationPayload { donation: Donation(donation) })
    }

    /// Staff or a RECONCILE key: the money of a donation arrived. A live pledge is confirmed
    /// (as `confirmDonation`); money for an expired or cancelled pledge, or for a cancelled
    /// campaign, is recorded as `RECEIVED` with its `holdReason`, counts nowhere and waits in
    /// `refundQueue`; a repeat changes nothing (`ALREADY_RECORDED`).
    async fn record_donation_payment(
        &self,
        ctx: &Context<'_>,
        input: ConfirmDonationInput,
    ) -> Result<RecordDonationPaymentPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, DONATION, "id").extend()?;
        let (donation, outcome) =
            service::record_donation_payment(state.ctx(), viewer(ctx), id, input.external_reference).await.extend()?;
        let progress = progress_of(state, donation.campaign_id).await?;
        Ok(RecordDonationPaymentPayload { donation: Donation(donation), outcome: outcome.into(), progress })
    }

    /// Staff or a RECONCILE key: counts a late payment held as `PLEDGE_EXPIRED` or
    /// `PLEDGE_CANCELLED` after all (CONFIRMED, with a receipt number). Anything else is
    /// `BAD_USER_INPUT` / `NOT_A_LATE_PAYMENT`; a cancelled campaign's is `CONFLICT` /
    /// `CAMPAIGN_CANCELLED`.
    async fn accept_late_payment(&self, ctx: &Context<'_>, input: DonationIdInput) -> Result<DonationPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, DONATION, "id").extend()?;
        let donation = service::accept_late_payment(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(DonationPayload { donation: Donation(donation) })
    }

    /// PLEDGED → CANCELLED: staff, a RECONCILE key, or the donor who pledged.
    async fn cancel_donation(&self, ctx: &Context<'_>, input: DonationIdInput) -> Result<DonationPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, DONATION, "id").extend()?;
        let donation = service::cancel_donation(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(DonationPayload { donation: Donation(donation) })
    }

    /// Staff or a RECONCILE key: reverses a confirmed donation, in full or in part
    /// (`amountFen`, up to what is left), with a REFUNDED record; held money is sent back with
    /// a RETURNED record. More than is left is `BAD_USER_INPUT` / `REFUND_EXCEEDS_REMAINING`.
    async fn refund_donation(&self, ctx: &Context<'_>, input: RefundDonationInput) -> Result<RefundDonationPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, DONATION, "id").extend()?;
        let (original, reversal) =
            service::refund_donation(state.ctx(), viewer(ctx), id, input.amount_fen.map(i64::from), input.reason)
                .await
                .extend()?;
        let progress = progress_of(state, original.campaign_id).await?;
        Ok(RefundDonationPayload { donation: Donation(original), refund: Donation(reversal), progress })
    }
}

async fn change_status(
    ctx: &Context<'_>,
    id: &ID,
    action: CampaignAction,
    note: Option<String>,
) -> Result<CampaignPayload> {
    let state = state(ctx)?;
    let id = ids::decode(id, CAMPAIGN, "id").extend()?;
    let record = service::change_campaign_status(state.ctx(), viewer(ctx), id, action, note).await.extend()?;
    Ok(CampaignPayload { campaign: Campaign(record) })
}

// ---------------------------------------------------------------- subscriptions

#[derive(Default)]
pub struct CrowdfundingSubscription;

/// A campaign's progress after something changed it.
#[derive(SimpleObject)]
pub struct CampaignProgressChange {
    /// Pass as `after` when reconnecting to receive what came after this message.
    pub cursor: String,
    /// The event that changed the progress (`donation.confirmed`, `donation.refunded`, …);
    /// `null` on the first message, which shows the progress as it is.
    pub event_type: Option<String>,
    pub event_id: Option<ID>,
    /// The progress now (also when replaying missed changes: totals are read at delivery).
    pub progress: CampaignProgress,
}

#[async_graphql::Subscription]
impl CrowdfundingSubscription {
    /// The campaign's progress now, then again each time a donation to it is confirmed or
    /// refunded or the campaign changes (written by any server instance or the CLI).
    /// Published campaigns only. With `after` (a cursor of an earlier message), the changes
    /// since that message come first, in order, then live ones; a cursor older than the
    /// replay window answers `BAD_USER_INPUT` with reason `CURSOR_EXPIRED`.
    async fn campaign_progress(
        &self,
        ctx: &Context<'_>,
        id: ID,
        after: Option<String>,
    ) -> Result<impl futures::Stream<Item = CampaignProgressChange> + use<>> {
        let row = ids::decode(&id, CAMPAIGN, "id").extend()?;
        let state = state(ctx)?.clone();
        let after = match after {
            Some(cursor) => {
                Some(crate::events::log::resume_from(&state.db, &cursor, state.settings.replay_window).await.extend()?)
            }
            None => None,
        };
        let (start, changes) =
            crate::events::live::events(&state.log, state.db.clone(), after, move |e| changes_progress(e, row))
                .await
                .map_err(|e| e.extend())?;
        let record = service::find_by_id(&state.db, row).await.extend()?;
        let Some(record) = record.filter(|r| visible(viewer(ctx), r)) else {
            return Err(AppError::NotFound("campaign".into()).extend());
        };
        let state_for_changes = state.clone();
        let first = CampaignProgressChange {
            cursor: start.cursor(),
            event_type: None,
            event_id: None,
            progress: CampaignProgress::of(&record),
        };
        let first = if after.is_some() { None } else { Some(first) };
        let changes = futures::StreamExt::filter_map(changes, move |event| {
            let state = state_for_changes.clone();
            async move {
                // Through the cache: a thousand subscribers cost one load, not a thousand.
                match state.crowdfunding().campaign(row).await {
                    Ok(Some(record)) => Some(CampaignProgressChange {
                        cursor: crate::events::Position::of(&event).cursor(),
                        event_type: Some(event.event_type.clone()),
                        event_id: Some(ids::encode(super::audit::AUDIT_ENTRY, event.id)),
                        progress: CampaignProgress::of(&record),
                    }),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read campaign progress for a subscriber");
                        None
                    }
                }
            }
        });
        Ok(futures::StreamExt::chain(futures::stream::iter(first), changes))
    }
}

/// Whether `event` changes campaign `id`'s progress.
fn changes_progress(event: &entity::domain_event::Model, id: i64) -> bool {
    use crate::events::EventKind::*;
    match crate::events::log::kind_of(event) {
        Some(DonationConfirmed | DonationRefunded) => {
            event.payload.get("campaignId").and_then(serde_json::Value::as_i64) == Some(id)
        }
        Some(CampaignUpdated | CampaignApproved | CampaignEnded | CampaignCancelled) => event.aggregate_id == id,
        _ => false,
    }
}
