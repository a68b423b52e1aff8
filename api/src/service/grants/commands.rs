//! The grant commands as the API calls them: authorization, then the write.
#[allow(unused_imports)]
use super::*;

pub(super) async fn proposal_org(db: &impl ConnectionTrait, id: i64) -> AppResult<i64> {
    Ok(find_proposal(db, id).await?.proposal.organization_id)
}

/// Command: staff open a grant round.
pub async fn create_grant_round(ctx: Ctx<'_>, viewer: &Viewer, input: RoundInput) -> AppResult<RoundRecord> {
    viewer.require_manage_grants()?;
    let actor = Actor::of(viewer);
    retry_transient(|| create_round(ctx, &actor, input.clone())).await
}

/// Command: staff change a grant round.
pub async fn update_grant_round(ctx: Ctx<'_>, viewer: &Viewer, id: i64, patch: RoundPatch) -> AppResult<RoundRecord> {
    viewer.require_manage_grants()?;
    let actor = Actor::of(viewer);
    retry_transient(|| update_round(ctx, &actor, id, patch.clone())).await
}

/// Command: an organization's members (or staff) start a DRAFT proposal.
pub async fn create_grant_proposal(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    round_id: i64,
    organization_id: i64,
    input: ProposalInput,
) -> AppResult<ProposalRecord> {
    viewer.require_write_proposal(organization_id)?;
    let created_by = viewer.account.as_ref().map(|a| a.id);
    let actor = Actor::of(viewer);
    retry_transient(|| create_proposal(ctx, &actor, round_id, organization_id, created_by, input.clone())).await
}

/// Command: the organization edits its DRAFT proposal.
pub async fn update_grant_proposal(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    patch: ProposalPatch,
) -> AppResult<ProposalRecord> {
    viewer.require_write_proposal(proposal_org(ctx.db, id).await?)?;
    let actor = Actor::of(viewer);
    retry_transient(|| update_proposal(ctx, &actor, id, patch.clone())).await
}

/// Command: the organization submits its proposal while the round is open.
pub async fn submit_grant_proposal(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<ProposalRecord> {
    viewer.require_write_proposal(proposal_org(ctx.db, id).await?)?;
    let actor = Actor::of(viewer);
    retry_transient(|| submit_proposal(ctx, &actor, id)).await
}

/// Command: the organization withdraws a proposal not yet decided.
pub async fn withdraw_grant_proposal(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<ProposalRecord> {
    viewer.require_write_proposal(proposal_org(ctx.db, id).await?)?;
    let actor = Actor::of(viewer);
    retry_transient(|| withdraw_proposal(ctx, &actor, id)).await
}

/// Command: staff assign a reviewer.
pub async fn assign_grant_reviewer(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    proposal_id: i64,
    reviewer_id: i64,
) -> AppResult<ReviewRecord> {
    viewer.require_manage_grants()?;
    let actor = Actor::of(viewer);
    retry_transient(|| assign_reviewer(ctx, &actor, proposal_id, reviewer_id)).await
}

/// Command: staff take an assignment back (not once the review is submitted).
pub async fn unassign_grant_reviewer(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    proposal_id: i64,
    reviewer_id: i64,
) -> AppResult<i64> {
    viewer.require_manage_grants()?;
    let actor = Actor::of(viewer);
    retry_transient(|| unassign_reviewer(ctx, &actor, proposal_id, reviewer_id)).await
}

/// Command: the assigned reviewer saves (or with `submit`, submits) scores.
pub async fn save_grant_review(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    proposal_id: i64,
    draft: ReviewDraft,
    submit: bool,
) -> AppResult<ReviewRecord> {
    let account = viewer.require_reviewer()?;
    let actor = Actor::of(viewer);
    retry_transient(|| save_review(ctx, &actor, account.id, proposal_id, draft.clone(), submit)).await
}

/// Command: the assigned reviewer declares a conflict of interest.
pub async fn declare_review_conflict(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    proposal_id: i64,
    reason: &str,
) -> AppResult<ReviewRecord> {
    let account = viewer.require_reviewer()?;
    let actor = Actor::of(viewer);
    retry_transient(|| declare_conflict(ctx, &actor, account.id, proposal_id, reason)).await
}

/// Command: staff award an amount; the round's budget is never exceeded.
pub async fn award_grant_proposal(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    amount_fen: i64,
    note: Option<String>,
) -> AppResult<ProposalRecord> {
    viewer.require_manage_grants()?;
    let actor = Actor::of(viewer);
    retry_transient(|| award(ctx, &actor, id, amount_fen, note.clone())).await
}

/// Command: staff decline a proposal.
pub async fn decline_grant_proposal(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    note: Option<String>,
) -> AppResult<ProposalRecord> {
    viewer.require_manage_grants()?;
    let actor = Actor::of(viewer);
    retry_transient(|| decline(ctx, &actor, id, note.clone())).await
}
