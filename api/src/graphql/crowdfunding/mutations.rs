//! Crowdfunding mutations: resolvers decode, call the service command and map.
#[allow(unused_imports)]
use super::*;
use crate::graphql::common::payload;

pub type BudgetLineInput = crate::graphql::common::BudgetLine;

pub(super) fn budget(lines: Vec<BudgetLineInput>) -> Vec<ServiceBudgetLine> {
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

impl From<UpdateCampaignInput> for CampaignPatch {
    fn from(input: UpdateCampaignInput) -> Self {
        CampaignPatch {
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
        }
    }
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

payload!(CampaignPayload { campaign: Campaign });
payload!(PostCampaignUpdatePayload { update: CampaignUpdate });
payload!(DonatePayload { donation: Donation });

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
pub(super) async fn progress_of(state: &AppState, campaign_id: i64) -> Result<CampaignProgress> {
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
        let org = ids::decode(&input.organization_id, ids::ORGANIZATION, "organizationId")?;
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
        let id = ids::decode(&input.id, CAMPAIGN, "id")?;
        let record = service::update_campaign(state.ctx(), viewer(ctx), id, input.into()).await.extend()?;
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
        let id = ids::decode(&input.campaign_id, CAMPAIGN, "campaignId")?;
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
        let campaign_id = ids::decode(&input.campaign_id, CAMPAIGN, "campaignId")?;
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
        let id = ids::decode(&input.id, DONATION, "id")?;
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
        let id = ids::decode(&input.id, DONATION, "id")?;
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
        let id = ids::decode(&input.id, DONATION, "id")?;
        let donation = service::accept_late_payment(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(DonationPayload { donation: Donation(donation) })
    }

    /// PLEDGED → CANCELLED: staff, a RECONCILE key, or the donor who pledged.
    async fn cancel_donation(&self, ctx: &Context<'_>, input: DonationIdInput) -> Result<DonationPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, DONATION, "id")?;
        let donation = service::cancel_donation(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(DonationPayload { donation: Donation(donation) })
    }

    /// Staff or a RECONCILE key: reverses a confirmed donation, in full or in part
    /// (`amountFen`, up to what is left), with a REFUNDED record; held money is sent back with
    /// a RETURNED record. More than is left is `BAD_USER_INPUT` / `REFUND_EXCEEDS_REMAINING`.
    async fn refund_donation(&self, ctx: &Context<'_>, input: RefundDonationInput) -> Result<RefundDonationPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, DONATION, "id")?;
        let (original, reversal) =
            service::refund_donation(state.ctx(), viewer(ctx), id, input.amount_fen.map(i64::from), input.reason)
                .await
                .extend()?;
        let progress = progress_of(state, original.campaign_id).await?;
        Ok(RefundDonationPayload { donation: Donation(original), refund: Donation(reversal), progress })
    }
}

pub(super) async fn change_status(
    ctx: &Context<'_>,
    id: &ID,
    action: CampaignAction,
    note: Option<String>,
) -> Result<CampaignPayload> {
    let state = state(ctx)?;
    let id = ids::decode(id, CAMPAIGN, "id")?;
    let record = service::change_campaign_status(state.ctx(), viewer(ctx), id, action, note).await.extend()?;
    Ok(CampaignPayload { campaign: Campaign(record) })
}
