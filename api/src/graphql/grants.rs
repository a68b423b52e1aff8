//! Venture philanthropy in the schema: rounds, proposals, reviews, the ranking and awards.
use super::common::{Count, Fen};
use async_graphql::{Context, Enum, ErrorExtensions, ID, InputObject, Object, Result, ResultExt, SimpleObject};
use chrono::{DateTime, Utc};

use super::connection::{self, PagedConnection};
use super::identity::viewer;
use super::ids;
use super::loaders::Loaders;
use super::organization::{Organization, OrganizationStage};
use super::state;

use crate::service::grants::{
    self as service, BudgetLine, Criterion, PeopleByGroup, ProposalInput, ProposalPatch, ProposalRecord, ProposalScope,
    RankedProposal, ReviewDraft, ReviewRecord, RoundInput, RoundPatch, RoundRecord, Rubric,
};

pub const ROUND: &str = "GrantRound";
pub const PROPOSAL: &str = "GrantProposal";
pub const REVIEW: &str = "GrantReview";

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::grant_proposal::ProposalStatus")]
pub enum ProposalStatus {
    Draft,
    /// Submitted while the round was open; no longer editable.
    Submitted,
    /// Reviewers are assigned.
    UnderReview,
    Awarded,
    Declined,
    Withdrawn,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::grant_review::ReviewStatus")]
pub enum ReviewStatus {
    /// Assigned; nothing saved yet.
    Assigned,
    /// Scores saved, not submitted.
    Draft,
    Submitted,
    /// The reviewer declared a conflict of interest; the review does not count.
    Conflict,
}

/// People or person-times by the groups the base reports on.
#[derive(SimpleObject, InputObject, Clone, Copy, Default)]
#[graphql(input_name = "PeopleByGroupInput")]
pub struct PeopleByGroupFigures {
    #[graphql(default)]
    pub women: Count,
    #[graphql(default)]
    pub children: Count,
    #[graphql(default)]
    pub families: Count,
    #[graphql(default)]
    pub elderly: Count,
    #[graphql(default)]
    pub others: Count,
}

impl From<PeopleByGroup> for PeopleByGroupFigures {
    fn from(p: PeopleByGroup) -> Self {
        Self {
            women: p.women.into(),
            children: p.children.into(),
            families: p.families.into(),
            elderly: p.elderly.into(),
            others: p.others.into(),
        }
    }
}

impl From<PeopleByGroupFigures> for PeopleByGroup {
    fn from(p: PeopleByGroupFigures) -> Self {
        Self {
            women: p.women.0,
            children: p.children.0,
            families: p.families.0,
            elderly: p.elderly.0,
            others: p.others.0,
        }
    }
}

pub use super::common::BudgetLine as BudgetLineObject;

impl From<BudgetLine> for BudgetLineObject {
    fn from(b: BudgetLine) -> Self {
        Self { item: b.item, amount_fen: b.amount_fen.into() }
    }
}

impl From<BudgetLineObject> for BudgetLine {
    fn from(b: BudgetLineObject) -> Self {
        Self { item: b.item, amount_fen: b.amount_fen.0 }
    }
}

/// One criterion of a scoring rubric.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "RubricCriterionInput", name = "RubricCriterion")]
pub struct CriterionObject {
    /// Stable key, a-z 0-9 and _.
    pub key: String,
    pub name: String,
    /// Relative weight, 1 to 100.
    pub weight: i32,
}

/// How reviewers score: every criterion gets a whole score in `minScore..=maxScore`.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "RubricInput", name = "Rubric")]
pub struct RubricObject {
    pub min_score: i32,
    pub max_score: i32,
    pub criteria: Vec<CriterionObject>,
}

impl From<Rubric> for RubricObject {
    fn from(r: Rubric) -> Self {
        Self {
            min_score: r.min_score,
            max_score: r.max_score,
            criteria: r
                .criteria
                .into_iter()
                .map(|c| CriterionObject { key: c.key, name: c.name, weight: c.weight })
                .collect(),
        }
    }
}

impl From<RubricObject> for Rubric {
    fn from(r: RubricObject) -> Self {
        Self {
            min_score: r.min_score,
            max_score: r.max_score,
            criteria: r
                .criteria
                .into_iter()
                .map(|c| Criterion { key: c.key, name: c.name, weight: c.weight })
                .collect(),
        }
    }
}

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
        let state = state(ctx)?;
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
        let page = service::list_proposals(
            &state.db,
            self.0.round.id,
            scope,
            &connection::args(first, after, last, before),
            &state.settings.limits,
            connection::wants_total(ctx),
        )
        .await
        .extend()?;
        Ok(connection::from_page(page, GrantProposal))
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
        super::audit::history_of(
            ctx,
            crate::events::Aggregate::GrantProposal,
            self.0.proposal.id,
            allowed,
            first,
            after,
        )
        .await
    }

    async fn round(&self, ctx: &Context<'_>) -> Result<Option<GrantRound>> {
        let loaders = ctx.data::<Loaders>()?;
        let round = loaders.grant_round.load_one(self.0.proposal.round_id).await.map_err(|e| e.extend())?;
        Ok(round.map(GrantRound))
    }

    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let loaders = ctx.data::<Loaders>()?;
        let org = loaders.organization.load_one(self.0.proposal.organization_id).await.map_err(|e| e.extend())?;
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
        let loaders = ctx.data::<Loaders>()?;
        let reviews = loaders.proposal_reviews.load_one(self.0.proposal.id).await.map_err(|e| e.extend())?;
        Ok(Some(reviews.unwrap_or_default().into_iter().map(GrantReview).collect()))
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
        let loaders = ctx.data::<Loaders>()?;
        let p = loaders.grant_proposal.load_one(self.0.review.proposal_id).await.map_err(|e| e.extend())?;
        Ok(p.map(GrantProposal))
    }

    /// The reviewer's account ID.
    async fn reviewer_id(&self) -> ID {
        ids::encode("Account", self.0.review.reviewer_id)
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
        let state = state(ctx)?;
        let page = service::list_rounds(
            &state.db,
            &connection::args(first, after, last, before),
            &state.settings.limits,
            connection::wants_total(ctx),
        )
        .await
        .extend()?;
        Ok(connection::from_page(page, GrantRound))
    }

    async fn grant_round(&self, ctx: &Context<'_>, id: ID) -> Result<Option<GrantRound>> {
        let id = ids::decode(&id, ROUND, "id").extend()?;
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders.grant_round.load_one(id).await.map_err(|e| e.extend())?.map(GrantRound))
    }

    /// A proposal, for staff, its organization's members and its assigned reviewers;
    /// `null` for everyone else.
    async fn grant_proposal(&self, ctx: &Context<'_>, id: ID) -> Result<Option<GrantProposal>> {
        let id = ids::decode(&id, PROPOSAL, "id").extend()?;
        let Some(record) = ctx.data::<Loaders>()?.grant_proposal.load_one(id).await.map_err(|e| e.extend())? else {
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

#[derive(InputObject)]
pub struct CreateGrantRoundInput {
    pub title: String,
    #[graphql(default)]
    pub description: String,
    pub budget_fen: Fen,
    pub per_proposal_cap_fen: Fen,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub review_ends_at: DateTime<Utc>,
    pub results_at: DateTime<Utc>,
    /// Only organizations in these stages may apply; empty or omitted: any.
    #[graphql(default)]
    pub eligible_stages: Vec<OrganizationStage>,
    pub rubric: RubricObject,
}

/// Fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateGrantRoundInput {
    pub id: ID,
    pub title: Option<String>,
    pub description: Option<String>,
    /// Not below what is already awarded.
    pub budget_fen: Option<Fen>,
    pub per_proposal_cap_fen: Option<Fen>,
    pub opens_at: Option<DateTime<Utc>>,
    pub closes_at: Option<DateTime<Utc>>,
    pub review_ends_at: Option<DateTime<Utc>>,
    pub results_at: Option<DateTime<Utc>>,
    pub eligible_stages: Option<Vec<OrganizationStage>>,
    /// Cannot change once reviewers have scored.
    pub rubric: Option<RubricObject>,
}

#[derive(InputObject)]
pub struct CreateGrantProposalInput {
    pub round_id: ID,
    pub organization_id: ID,
    pub title: String,
    #[graphql(default)]
    pub summary: String,
    #[graphql(default)]
    pub problem: String,
    #[graphql(default)]
    pub plan: String,
    #[graphql(default)]
    pub beneficiaries: PeopleByGroupFigures,
    /// At most the round's per-proposal cap.
    pub requested_fen: Fen,
    /// When given, they add up to `requestedFen`.
    #[graphql(default)]
    pub budget_lines: Vec<BudgetLineObject>,
    #[graphql(default)]
    pub attachments: Vec<String>,
}

/// Only a DRAFT can be edited; fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateGrantProposalInput {
    pub id: ID,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub problem: Option<String>,
    pub plan: Option<String>,
    pub beneficiaries: Option<PeopleByGroupFigures>,
    pub requested_fen: Option<Fen>,
    pub budget_lines: Option<Vec<BudgetLineObject>>,
    pub attachments: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct GrantProposalIdInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct GrantReviewerInput {
    pub proposal_id: ID,
    /// The reviewer's account ID.
    pub reviewer_id: ID,
}

#[derive(InputObject)]
pub struct SaveGrantReviewInput {
    pub proposal_id: ID,
    /// Scores to set; criteria not listed keep what was saved before.
    #[graphql(default)]
    pub scores: Vec<CriterionScoreInput>,
    pub comment: Option<String>,
}

#[derive(InputObject)]
pub struct DeclareReviewConflictInput {
    pub proposal_id: ID,
    pub reason: String,
}

#[derive(InputObject)]
pub struct AwardGrantProposalInput {
    pub id: ID,
    /// At most the amount requested and the round's cap; the round's awards never exceed
    /// its budget.
    pub amount_fen: Fen,
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct DeclineGrantProposalInput {
    pub id: ID,
    pub note: Option<String>,
}

#[derive(SimpleObject)]
pub struct GrantRoundPayload {
    pub round: GrantRound,
}

#[derive(SimpleObject)]
pub struct GrantProposalPayload {
    pub proposal: GrantProposal,
}

#[derive(SimpleObject)]
pub struct GrantReviewPayload {
    pub review: GrantReview,
}

#[derive(SimpleObject)]
pub struct UnassignGrantReviewerPayload {
    pub removed_review_id: ID,
}

#[derive(SimpleObject)]
pub struct AwardGrantProposalPayload {
    pub proposal: GrantProposal,
    /// The round with its new awarded total.
    pub round: GrantRound,
}

fn stages(list: Vec<OrganizationStage>) -> Vec<entity::organization::Stage> {
    list.into_iter().map(Into::into).collect()
}

fn people(p: PeopleByGroupFigures) -> PeopleByGroup {
    p.into()
}

fn lines(list: Vec<BudgetLineObject>) -> Vec<BudgetLine> {
    list.into_iter().map(Into::into).collect()
}

#[derive(Default)]
pub struct GrantMutation;

#[Object]
impl GrantMutation {
    async fn create_grant_round(&self, ctx: &Context<'_>, input: CreateGrantRoundInput) -> Result<GrantRoundPayload> {
        let state = state(ctx)?;
        let record = service::create_grant_round(
            state.ctx(),
            viewer(ctx),
            RoundInput {
                title: input.title,
                description: input.description,
                budget_fen: input.budget_fen.0,
                per_proposal_cap_fen: input.per_proposal_cap_fen.0,
                opens_at: input.opens_at,
                closes_at: input.closes_at,
                review_ends_at: input.review_ends_at,
                results_at: input.results_at,
                eligible_stages: stages(input.eligible_stages),
                rubric: input.rubric.into(),
            },
        )
        .await
        .extend()?;
        Ok(GrantRoundPayload { round: GrantRound(record) })
    }

    async fn update_grant_round(&self, ctx: &Context<'_>, input: UpdateGrantRoundInput) -> Result<GrantRoundPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, ROUND, "id").extend()?;
        let record = service::update_grant_round(
            state.ctx(),
            viewer(ctx),
            id,
            RoundPatch {
                title: input.title,
                description: input.description,
                budget_fen: input.budget_fen.map(i64::from),
                per_proposal_cap_fen: input.per_proposal_cap_fen.map(i64::from),
                opens_at: input.opens_at,
                closes_at: input.closes_at,
                review_ends_at: input.review_ends_at,
                results_at: input.results_at,
                eligible_stages: input.eligible_stages.map(stages),
                rubric: input.rubric.map(Into::into),
            },
        )
        .await
        .extend()?;
        Ok(GrantRoundPayload { round: GrantRound(record) })
    }

    async fn create_grant_proposal(
        &self,
        ctx: &Context<'_>,
        input: CreateGrantProposalInput,
    ) -> Result<GrantProposalPayload> {
        let state = state(ctx)?;
        let org_id = ids::decode(&input.organization_id, super::organization::TYPE_NAME, "organizationId").extend()?;
        let round_id = ids::decode(&input.round_id, ROUND, "roundId").extend()?;
        let record = service::create_grant_proposal(
            state.ctx(),
            viewer(ctx),
            round_id,
            org_id,
            ProposalInput {
                title: input.title,
                summary: input.summary,
                problem: input.problem,
                plan: input.plan,
                beneficiaries: people(input.beneficiaries),
                requested_fen: input.requested_fen.0,
                budget_lines: lines(input.budget_lines),
                attachments: input.attachments,
            },
        )
        .await
        .extend()?;
        Ok(GrantProposalPayload { proposal: GrantProposal(record) })
    }

    async fn update_grant_proposal(
        &self,
        ctx: &Context<'_>,
        input: UpdateGrantProposalInput,
    ) -> Result<GrantProposalPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, PROPOSAL, "id").extend()?;
        let record = service::update_grant_proposal(
            state.ctx(),
            viewer(ctx),
            id,
            ProposalPatch {
                title: input.title,
                summary: input.summary,
                problem: input.problem,
                plan: input.plan,
                beneficiaries: input.beneficiaries.map(people),
                requested_fen: input.requested_fen.map(i64::from),
                budget_lines: input.budget_lines.map(lines),
                attachments: input.attachments,
            },
        )
        .await
        .extend()?;
        Ok(GrantProposalPayload { proposal: GrantProposal(record) })
    }

    /// DRAFT → SUBMITTED, only while the round is open.
    async fn submit_grant_proposal(
        &self,
        ctx: &Context<'_>,
        input: GrantProposalIdInput,
    ) -> Result<GrantProposalPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, PROPOSAL, "id").extend()?;
        let record = service::submit_grant_proposal(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(GrantProposalPayload { proposal: GrantProposal(record) })
    }

    async fn withdraw_grant_proposal(
        &self,
        ctx: &Context<'_>,
        input: GrantProposalIdInput,
    ) -> Result<GrantProposalPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.id, PROPOSAL, "id").extend()?;
        let record = service::withdraw_grant_proposal(state.ctx(), viewer(ctx), id).await.extend()?;
        Ok(GrantProposalPayload { proposal: GrantProposal(record) })
    }

    /// Assigns a REVIEWER to a SUBMITTED or UNDER_REVIEW proposal (which becomes
    /// UNDER_REVIEW). Never a member of the proposing organization.
    async fn assign_grant_reviewer(&self, ctx: &Context<'_>, input: GrantReviewerInput) -> Result<GrantReviewPayload> {
        let state = state(ctx)?;
        let proposal_id = ids::decode(&input.proposal_id, PROPOSAL, "proposalId").extend()?;
        let reviewer_id = ids::decode(&input.reviewer_id, "Account", "reviewerId").extend()?;
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
        let proposal_id = ids::decode(&input.proposal_id, PROPOSAL, "proposalId").extend()?;
        let reviewer_id = ids::decode(&input.reviewer_id, "Account", "reviewerId").extend()?;
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
        let proposal_id = ids::decode(&input.proposal_id, PROPOSAL, "proposalId").extend()?;
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
        let id = ids::decode(&input.id, PROPOSAL, "id").extend()?;
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
        let id = ids::decode(&input.id, PROPOSAL, "id").extend()?;
        let record = service::decline_grant_proposal(state.ctx(), viewer(ctx), id, input.note).await.extend()?;
        Ok(GrantProposalPayload { proposal: GrantProposal(record) })
    }
}

async fn review_mutation(ctx: &Context<'_>, input: SaveGrantReviewInput, submit: bool) -> Result<GrantReviewPayload> {
    let state = state(ctx)?;
    let proposal_id = ids::decode(&input.proposal_id, PROPOSAL, "proposalId").extend()?;
    let draft = ReviewDraft {
        scores: input.scores.into_iter().map(|s| (s.criterion, s.score)).collect(),
        comment: input.comment,
    };
    let record = service::save_grant_review(state.ctx(), viewer(ctx), proposal_id, draft, submit).await.extend()?;
    Ok(GrantReviewPayload { review: GrantReview(record) })
}
