//! Crowdfunding queries: campaigns, donations, the refund queue, receipts.
#[allow(unused_imports)]
use super::*;

#[derive(Default)]
pub struct CrowdfundingQuery;

#[Object]
impl CrowdfundingQuery {
    /// A campaign by ID; `null` when there is none or the viewer may not see it.
    async fn campaign(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Campaign>> {
        let row = ids::decode(&id, CAMPAIGN, "id")?;
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
        let organization_id =
            ids::decode_optional(filter.organization_id.as_ref(), ids::ORGANIZATION, "organizationId")?;
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
        let args = connection::args(first, after, last, before);
        let page = state(ctx)?
            .crowdfunding()
            .list(&service_filter, sort, direction.into(), connection::page_request(ctx, &args)?)
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
        connection::list(ctx, connection::args(first, after, last, before), Donation, async |db, page| {
            service::donations_of_account(db, account.id, page).await
        })
        .await
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
        let campaign = ids::decode_optional(campaign_id.as_ref(), CAMPAIGN, "campaignId")?;
        let reasons: Vec<donation::HoldReason> = reason.unwrap_or_default().into_iter().map(Into::into).collect();
        connection::list(ctx, connection::args(first, after, last, before), Donation, async |db, page| {
            service::refund_queue(db, campaign, &reasons, page).await
        })
        .await
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
