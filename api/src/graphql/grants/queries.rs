//! The grant reads: rounds, a proposal for those who may read it, a reviewer's assignments.
#[allow(unused_imports)]
use super::*;

#[derive(Default)]
pub struct GrantQuery;

#[Object]
impl GrantQuery {
    /// Grant rounds, the latest opening first.
    async fn grant_rounds(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<GrantRound>> {
        connection::list(ctx, connection::args(first, after, last, before), GrantRound, async |db, page| {
            service::list_rounds(db, page).await
        })
        .await
    }

    async fn grant_round(&self, ctx: &Context<'_>, id: ID) -> Result<Option<GrantRound>> {
        let id = ids::decode(&id, ROUND, "id")?;
        Ok(Loaders::of(ctx)?.grant_round.get(id).await?.map(GrantRound))
    }

    /// A proposal, for staff, its organization's members and its assigned reviewers;
    /// `null` for everyone else.
    async fn grant_proposal(&self, ctx: &Context<'_>, id: ID) -> Result<Option<GrantProposal>> {
        let id = ids::decode(&id, PROPOSAL, "id")?;
        let Some(record) = Loaders::of(ctx)?.grant_proposal.get(id).await? else {
            return Ok(None);
        };
        readable_proposal(ctx, record).await
    }

    /// The viewer's own review assignments, newest first (at most 500).
    async fn my_review_assignments(&self, ctx: &Context<'_>) -> Result<Vec<GrantReview>> {
        let account = viewer(ctx).require_reviewer().extend()?;
        let reviews = service::assignments_of(&state(ctx)?.db, account.id).await.extend()?;
        Ok(reviews.into_iter().map(GrantReview).collect())
    }
}

/// The proposal when the viewer may read it: staff, its organization's members and its
/// assigned reviewers (`grantProposal(id:)` and `node(id:)` alike).
pub(crate) async fn readable_proposal(ctx: &Context<'_>, record: ProposalRecord) -> Result<Option<GrantProposal>> {
    let viewer = viewer(ctx);
    let id = record.proposal.id;
    let assigned = match &viewer.account {
        Some(a) if !viewer.can_edit_organization(record.proposal.organization_id) => {
            service::assignments_of(&state(ctx)?.db, a.id).await.extend()?.iter().any(|r| r.review.proposal_id == id)
        }
        _ => false,
    };
    Ok(viewer.can_read_proposal(record.proposal.organization_id, assigned).then_some(GrantProposal(record)))
}
