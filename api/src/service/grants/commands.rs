//! The grant commands as the API calls them: authorization, then the write.
#[allow(unused_imports)]
use super::*;

pub(super) async fn proposal_org(db: &impl ConnectionTrait, id: i64) -> AppResult<i64> {
    Ok(find_proposal(db, id).await?.proposal.organization_id)
}

/// Command: staff open a grant round.
pub async fn create_grant_round(ctx: Ctx<'_>, viewer: &Viewer, input: RoundInput) -> AppResult<RoundRecord> {
    viewer.require_manage_grants()?;
    as_viewer!(viewer, |actor| create_round(ctx, actor, input.clone()))
}

/// Command: staff change a grant round.
pub async fn update_grant_round(ctx: Ctx<'_>, viewer: &Viewer, id: i64, patch: RoundPatch) -> AppResult<RoundRecord> {
    viewer.require_manage_grants()?;
    as_viewer!(viewer, |actor| update_round(ctx, actor, id, patch.clone()))
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
    as_viewer!(viewer, |actor| create_proposal(ctx, actor, round_id, organization_id, created_by, input.clone()))
}

/// Command: the organization edits its DRAFT proposal.
pub async fn update_grant_proposal(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    patch: ProposalPatch,
) -> AppResult<ProposalRecord> {
    viewer.require_write_proposal(proposal_org(ctx.db, id).await?)?;
    as_viewer!(viewer, |actor| update_proposal(ctx, actor, id, patch.clone()))
}

/// Command: the organization submits its proposal while the round is open.
pub async fn submit_grant_proposal(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<ProposalRecord> {
    viewer.require_write_proposal(proposal_org(ctx.db, id).await?)?;
    as_viewer!(viewer, |actor| submit_proposal(ctx, actor, id))
}

/// Command: the organization withdraws a proposal not yet decided.
pub async fn withdraw_grant_proposal(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<ProposalRecord> {
    viewer.require_write_proposal(proposal_org(ctx.db, id).await?)?;
    as_viewer!(viewer, |actor| withdraw_proposal(ctx, actor, id))
}

/// Command: staff assign a reviewer.
pub async fn assign_grant_reviewer(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    proposal_id: i64,
    reviewer_id: i64,
) -> AppResult<ReviewRecord> {
    viewer.require_manage_grants()?;
    as_viewer!(viewer, |actor| assign_reviewer(ctx, actor, proposal_id, reviewer_id))
}

/// Command: staff take an assignment back (not once the review is submitted).
pub async fn unassign_grant_reviewer(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    proposal_id: i64,
    reviewer_id: i64,
) -> AppResult<i64> {
    viewer.require_manage_grants()?;
    as_viewer!(viewer, |actor| unassign_reviewer(ctx, actor, proposal_id, reviewer_id))
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
    as_viewer!(viewer, |actor| save_review(ctx, actor, account.id, proposal_id, draft.clone(), submit))
}

/// Command: the assigned reviewer declares a conflict of interest.
pub async fn declare_review_conflict(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    proposal_id: i64,
    reason: &str,
) -> AppResult<ReviewRecord> {
    let account = viewer.require_reviewer()?;
    as_viewer!(viewer, |actor| declare_conflict(ctx, actor, account.id, proposal_id, reason))
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
    as_viewer!(viewer, |actor| award(ctx, actor, id, amount_fen, note.clone()))
}

/// Command: staff decline a proposal.
pub async fn decline_grant_proposal(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    note: Option<String>,
) -> AppResult<ProposalRecord> {
    viewer.require_manage_grants()?;
    as_viewer!(viewer, |actor| decline(ctx, actor, id, note.clone()))
}
