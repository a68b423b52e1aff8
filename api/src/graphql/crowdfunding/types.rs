//! Campaigns, their progress and updates, donations and receipts as the API shows them, with the page look-ahead.
#[allow(unused_imports)]
use super::*;

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

pub use crate::graphql::common::BudgetLine;

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

    #[graphql(flatten)]
    async fn history(&self) -> History {
        History::of(Aggregate::Campaign, self.0.campaign.id)
    }

    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let org = Loaders::of(ctx)?.organization.get(self.0.campaign.organization_id).await?;
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
        let lines = Loaders::of(ctx)?.campaign_budget.get_or_default(self.0.campaign.id).await?;
        Ok(lines.iter().map(line).collect())
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
        let rows = Loaders::of(ctx)?.campaign_updates.get_or_default(self.0.campaign.id).await?;
        Ok(rows.into_iter().map(CampaignUpdate).collect())
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
            if let Some(page) = Loaders::of(ctx)?.donor_walls.get(&(self.0.campaign.id, size)) {
                return Ok(connection::from_page(page, DonorWallEntry));
            }
        }
        let args = connection::args(first, after, last, before);
        let page = state
            .crowdfunding()
            .donor_wall(self.0.campaign.id, connection::page_request(ctx, &args)?)
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
        let statuses: Vec<donation::DonationStatus> = status.unwrap_or_default().into_iter().map(Into::into).collect();
        connection::list(ctx, connection::args(first, after, last, before), Donation, async |db, page| {
            service::campaign_donations(db, self.0.campaign.id, &statuses, page).await
        })
        .await
        .map(Some)
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

    #[graphql(flatten)]
    async fn history(&self) -> History {
        History::visible_to(Aggregate::Donation, self.0.id, Viewer::can_reconcile_donations)
    }

    async fn campaign(&self, ctx: &Context<'_>) -> Result<Option<Campaign>> {
        let record = Loaders::of(ctx)?.campaign.get(self.0.campaign_id).await?;
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
    async fn receipt(&self, ctx: &Context<'_>) -> Result<Option<crate::graphql::receipts::Receipt>> {
        crate::graphql::receipts::receipt_of_donation(ctx, &self.0).await
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
pub(super) async fn load_ahead(ctx: &Context<'_>, page: &[(String, CampaignRecord)]) -> Result<()> {
    if page.is_empty() {
        return Ok(());
    }
    let state = state(ctx)?;
    let loaders = Loaders::of(ctx)?;
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
