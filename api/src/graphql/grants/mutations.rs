//! The grant mutations: each decodes its input, calls one service command and maps the result.
#[allow(unused_imports)]
use super::*;

#[derive(Default)]
pub struct GrantMutation;

#[Object]
impl GrantMutation {
    async fn create_grant_round(&self, ctx: &Context<'_>, input: CreateGrantRoundInput) -> Result<GrantRoundPayload> {
        let state = state(ctx)?;
        let record = service::create_grant_round(state.ctx(), viewer(ctx), input.into()).await.extend()?;
        Ok(GrantRoundPayload { round: GrantRound(record) })
    }

    async fn update_grant_round(&self, ctx: &Context<'_>, input: UpdateGrantRoundInput) -> Result<GrantRoundPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, ROUND, "id")?;
        let record = service::update_grant_round(state.ctx(), viewer(ctx), id, input.into()).await.extend()?;
        Ok(GrantRoundPayload { round: GrantRound(record) })
    }

    async fn create_grant_proposal(
        &self,
        ctx: &Context<'_>,
        input: CreateGrantProposalInput,
    ) -> Result<GrantProposalPayload> {
        let state = state(ctx)?;
        let org_id = ids::decode(&input.organization_id, ids::ORGANIZATION, "organizationId")?;
        let round_id = ids::decode(&input.round_id, ROUND, "roundId")?;
        let record =
            service::create_grant_proposal(state.ctx(), viewer(ctx), round_id, org_id, input.into()).await.extend()?;
        Ok(GrantProposalPayload { proposal: GrantProposal(record) })
    }

    async fn update_grant_proposal(
        &self,
        ctx: &Context<'_>,
        input: UpdateGrantProposalInput,
    ) -> Result<GrantProposalPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, PROPOSAL, "id")?;
        let record = service::update_grant_proposal(state.ctx(), viewer(ctx), id, input.into()).await.extend()?;
        Ok(GrantProposalPayload { proposal: GrantProposal(record) })
    }

    /// DRAFT → SUBMITTED, only while the round is open.
    async fn submit_grant_proposal(
        &self,
        ctx: &Context<'_>,
        input: GrantProposalIdInput,
    ) -> Result<GrantProposalPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, PROPOSAL, "id")?;
        let record = service::submit_grant_proposal(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(GrantProposalPayload { proposal: GrantProposal(record) })
    }

    async fn withdraw_grant_proposal(
        &self,
        ctx: &Context<'_>,
        input: GrantProposalIdInput,
    ) -> Result<GrantProposalPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, PROPOSAL, "id")?;
        let record = service::withdraw_grant_proposal(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(GrantProposalPayload { proposal: GrantProposal(record) })
    }

    /// Assigns a REVIEWER to a SUBMITTED or UNDER_REVIEW proposal (which becomes
    /// UNDER_REVIEW). Never a member of the proposing organization.
    async fn assign_grant_reviewer(&self, ctx: &Context<'_>, input: GrantReviewerInput) -> Result<GrantReviewPayload> {
        let state = state(ctx)?;
        let proposal_id = ids::decode(&input.proposal_id, PROPOSAL, "proposalId")?;
        let reviewer_id = ids::decode(&input.reviewer_id, ids::ACCOUNT, "reviewerId")?;
        let record =
            service::assign_grant_reviewer(state.ctx(), viewer(ctx), proposal_id, reviewer_id).await.extend()?;
        Ok(GrantReviewPayload { review: GrantReview(record) })
    }

    async fn unassign_grant_reviewer(
        &self,
        ctx: &Context<'_>,
        input: GrantReviewerInput,
    ) -> Result<UnassignGrantReviewerPayload> {
        let state = state(ctx)?;
        let proposal_id = ids::decode(&input.proposal_id, PROPOSAL, "proposalId")?;
        let reviewer_id = ids::decode(&input.reviewer_id, ids::ACCOUNT, "reviewerId")?;
        let removed =
            service::unassign_grant_reviewer(state.ctx(), viewer(ctx), proposal_id, reviewer_id).await.extend()?;
        Ok(UnassignGrantReviewerPayload { removed_review_id: ids::encode(REVIEW, removed) })
    }

    /// Saves scores and comment as a draft (the assigned reviewer only).
    async fn save_grant_review(&self, ctx: &Context<'_>, input: SaveGrantReviewInput) -> Result<GrantReviewPayload> {
        review_mutation(ctx, input, false).await
    }

    /// Saves and submits; every criterion must be scored. Submitted reviews are final.
    async fn submit_grant_review(&self, ctx: &Context<'_>, input: SaveGrantReviewInput) -> Result<GrantReviewPayload> {
        review_mutation(ctx, input, true).await
    }

    /// The assigned reviewer declares a conflict of interest; the review then does not count.
    async fn declare_review_conflict(
        &self,
        ctx: &Context<'_>,
        input: DeclareReviewConflictInput,
    ) -> Result<GrantReviewPayload> {
        let state = state(ctx)?;
        let proposal_id = ids::decode(&input.proposal_id, PROPOSAL, "proposalId")?;
        let record =
            service::declare_review_conflict(state.ctx(), viewer(ctx), proposal_id, &input.reason).await.extend()?;
        Ok(GrantReviewPayload { review: GrantReview(record) })
    }

    /// Awards an amount to a proposal UNDER_REVIEW. The round's awards never exceed its
    /// budget, also under concurrent decisions: the loser gets CONFLICT.
    async fn award_grant_proposal(
        &self,
        ctx: &Context<'_>,
        input: AwardGrantProposalInput,
    ) -> Result<AwardGrantProposalPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, PROPOSAL, "id")?;
        let record = service::award_grant_proposal(state.ctx(), viewer(ctx), id, input.amount_fen.0, input.note)
            .await
            .extend()?;
        let round = service::find_round(&state.db, record.proposal.round_id).await.extend()?;
        Ok(AwardGrantProposalPayload { proposal: GrantProposal(record), round: GrantRound(round) })
    }

    async fn decline_grant_proposal(
        &self,
        ctx: &Context<'_>,
        input: DeclineGrantProposalInput,
    ) -> Result<GrantProposalPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, PROPOSAL, "id")?;
        let record = service::decline_grant_proposal(state.ctx(), viewer(ctx), id, input.note).await.extend()?;
        Ok(GrantProposalPayload { proposal: GrantProposal(record) })
    }
}

async fn review_mutation(ctx: &Context<'_>, input: SaveGrantReviewInput, submit: bool) -> Result<GrantReviewPayload> {
    let state = state(ctx)?;
    let proposal_id = ids::decode(&input.proposal_id, PROPOSAL, "proposalId")?;
    let draft = ReviewDraft {
        scores: input.scores.into_iter().map(|s| (s.criterion, s.score)).collect(),
        comment: input.comment,
    };
    let record = service::save_grant_review(state.ctx(), viewer(ctx), proposal_id, draft, submit).await.extend()?;
    Ok(GrantReviewPayload { review: GrantReview(record) })
}
