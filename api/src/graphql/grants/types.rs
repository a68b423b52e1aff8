//! Rounds, proposals, reviews and ranked proposals as the API shows them.
#[allow(unused_imports)]
use super::*;

/// A venture-philanthropy call for proposals (e.g. 凤凰之约).
pub struct GrantRound(pub RoundRecord);

#[Object]
impl GrantRound {
    pub async fn id(&self) -> ID {
        ids::encode(ROUND, self.0.round.id)
    }

    async fn title(&self) -> &str {
        &self.0.round.title
    }

    async fn description(&self) -> &str {
        &self.0.round.description
    }

    async fn budget_fen(&self) -> Fen {
        Fen(self.0.round.budget_fen)
    }

    /// The most one proposal may request or be awarded.
    async fn per_proposal_cap_fen(&self) -> Fen {
        Fen(self.0.round.per_proposal_cap_fen)
    }

    async fn awarded_total_fen(&self) -> Fen {
        Fen(self.0.round.awarded_total_fen)
    }

    async fn remaining_fen(&self) -> Fen {
        Fen(self.0.remaining_fen())
    }

    async fn opens_at(&self) -> DateTime<Utc> {
        self.0.round.opens_at
    }

    async fn closes_at(&self) -> DateTime<Utc> {
        self.0.round.closes_at
    }

    async fn review_ends_at(&self) -> DateTime<Utc> {
        self.0.round.review_ends_at
    }

    async fn results_at(&self) -> DateTime<Utc> {
        self.0.round.results_at
    }

    /// Whether proposals can be submitted now.
    async fn is_open(&self) -> bool {
        self.0.is_open(crate::service::now())
    }

    /// Stages an organization must be in to apply; empty means any.
    async fn eligible_stages(&self) -> Vec<OrganizationStage> {
        self.0.eligible_stages.iter().map(|s| (*s).into()).collect()
    }

    async fn rubric(&self) -> RubricObject {
        self.0.rubric.clone().into()
    }

    /// Proposals the viewer may see: all for staff; otherwise their organizations' and those
    /// assigned to them for review.
    async fn proposals(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<GrantProposal>> {
        let viewer = viewer(ctx);
        let scope = if viewer.is_staff() {
            ProposalScope::All
        } else {
            let account = viewer.account.as_ref();
            ProposalScope::Limited {
                organization_ids: account
                    .map(|a| a.memberships.iter().map(|(id, _)| *id).collect())
                    .unwrap_or_default(),
                reviewer_id: account.map(|a| a.id),
            }
        };
        connection::list(ctx, connection::args(first, after, last, before), GrantProposal, async |db, page| {
            service::list_proposals(db, self.0.round.id, scope, page).await
        })
        .await
    }

    /// Proposals by weighted mean score, best first, with the spread between reviewers
    /// (staff only).
    async fn ranking(&self, ctx: &Context<'_>) -> Result<Vec<RankedGrantProposal>> {
        viewer(ctx).require_see_ranking().extend()?;
        let ranked = service::ranking(&state(ctx)?.db, self.0.round.id).await.extend()?;
        Ok(ranked.into_iter().map(RankedGrantProposal).collect())
    }
}

/// A proposal by an organization to a round.
pub struct GrantProposal(pub ProposalRecord);

#[Object]
impl GrantProposal {
    pub async fn id(&self) -> ID {
        ids::encode(PROPOSAL, self.0.proposal.id)
    }

    #[graphql(flatten)]
    async fn history(&self) -> History {
        History::of(Aggregate::GrantProposal, self.0.proposal.id)
    }

    async fn round(&self, ctx: &Context<'_>) -> Result<Option<GrantRound>> {
        let round = Loaders::of(ctx)?.grant_round.get(self.0.proposal.round_id).await?;
        Ok(round.map(GrantRound))
    }

    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let org = Loaders::of(ctx)?.organization.get(self.0.proposal.organization_id).await?;
        Ok(org.map(Organization))
    }

    async fn title(&self) -> &str {
        &self.0.proposal.title
    }

    async fn summary(&self) -> &str {
        &self.0.proposal.summary
    }

    async fn problem(&self) -> &str {
        &self.0.proposal.problem
    }

    async fn plan(&self) -> &str {
        &self.0.proposal.plan
    }

    /// Target beneficiaries by group.
    async fn beneficiaries(&self) -> PeopleByGroupFigures {
        self.0.beneficiaries.into()
    }

    async fn requested_fen(&self) -> Fen {
        Fen(self.0.proposal.requested_fen)
    }

    async fn budget_lines(&self) -> Vec<BudgetLineObject> {
        self.0.budget_lines.iter().cloned().map(Into::into).collect()
    }

    /// Attachment URLs.
    async fn attachments(&self) -> &[String] {
        &self.0.attachments
    }

    async fn status(&self) -> ProposalStatus {
        self.0.proposal.status.into()
    }

    async fn awarded_fen(&self) -> Option<Fen> {
        self.0.proposal.awarded_fen.map(Fen)
    }

    async fn decision_note(&self) -> &str {
        &self.0.proposal.decision_note
    }

    async fn submitted_at(&self) -> Option<DateTime<Utc>> {
        self.0.proposal.submitted_at
    }

    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.proposal.decided_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.proposal.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.proposal.updated_at
    }

    /// The reviews with who wrote them: staff only (`null` for everyone else, so an
    /// organization never learns who scored what).
    async fn reviews(&self, ctx: &Context<'_>) -> Result<Option<Vec<GrantReview>>> {
        if !viewer(ctx).can_see_reviews() {
            return Ok(None);
        }
        let reviews = Loaders::of(ctx)?.proposal_reviews.get_or_default(self.0.proposal.id).await?;
        Ok(Some(reviews.into_iter().map(GrantReview).collect()))
    }
}

#[derive(SimpleObject)]
pub struct CriterionScore {
    pub criterion: String,
    pub score: i32,
}

#[derive(InputObject)]
pub struct CriterionScoreInput {
    pub criterion: String,
    pub score: i32,
}

/// One reviewer's assignment to a proposal and their scores.
pub struct GrantReview(pub ReviewRecord);

#[Object]
impl GrantReview {
    async fn id(&self) -> ID {
        ids::encode(REVIEW, self.0.review.id)
    }

    async fn proposal(&self, ctx: &Context<'_>) -> Result<Option<GrantProposal>> {
        let p = Loaders::of(ctx)?.grant_proposal.get(self.0.review.proposal_id).await?;
        Ok(p.map(GrantProposal))
    }

    /// The reviewer's account ID.
    async fn reviewer_id(&self) -> ID {
        ids::encode(ids::ACCOUNT, self.0.review.reviewer_id)
    }

    async fn status(&self) -> ReviewStatus {
        self.0.review.status.into()
    }

    async fn scores(&self) -> Vec<CriterionScore> {
        self.0.scores.iter().map(|(k, v)| CriterionScore { criterion: k.clone(), score: *v }).collect()
    }

    async fn comment(&self) -> &str {
        &self.0.review.comment
    }

    async fn conflict_reason(&self) -> Option<&str> {
        self.0.review.conflict_reason.as_deref()
    }

    async fn assigned_at(&self) -> DateTime<Utc> {
        self.0.review.assigned_at
    }

    async fn submitted_at(&self) -> Option<DateTime<Utc>> {
        self.0.review.submitted_at
    }
}

#[derive(SimpleObject)]
pub struct CriterionMean {
    pub criterion: String,
    pub mean: f64,
}

/// A proposal's place in the ranking of its round.
pub struct RankedGrantProposal(pub RankedProposal);

#[Object]
impl RankedGrantProposal {
    async fn proposal(&self) -> GrantProposal {
        GrantProposal(self.0.proposal.clone())
    }

    async fn submitted_reviews(&self) -> i32 {
        i32::try_from(self.0.submitted_reviews).unwrap_or(i32::MAX)
    }

    /// Mean of the reviewers' weighted mean scores; `null` before any review is submitted.
    async fn weighted_mean(&self) -> Option<f64> {
        self.0.weighted_mean
    }

    async fn lowest_score(&self) -> Option<f64> {
        self.0.lowest
    }

    async fn highest_score(&self) -> Option<f64> {
        self.0.highest
    }

    /// Highest minus lowest reviewer score: a large spread means the reviewers disagree.
    async fn spread(&self) -> Option<f64> {
        self.0.spread
    }

    async fn criterion_means(&self) -> Vec<CriterionMean> {
        self.0.by_criterion.iter().map(|(k, m)| CriterionMean { criterion: k.clone(), mean: *m }).collect()
    }
}
