//! The inputs and payloads of the grant mutations.
#[allow(unused_imports)]
use super::*;
use crate::graphql::common::payload;

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

payload!(GrantRoundPayload { round: GrantRound });
payload!(GrantProposalPayload { proposal: GrantProposal });
payload!(GrantReviewPayload { review: GrantReview });
payload!(UnassignGrantReviewerPayload { removed_review_id: ID });

#[derive(SimpleObject)]
pub struct AwardGrantProposalPayload {
    pub proposal: GrantProposal,
    /// The round with its new awarded total.
    pub round: GrantRound,
}

fn stages(list: Vec<OrganizationStage>) -> Vec<entity::organization::Stage> {
    list.into_iter().map(Into::into).collect()
}

fn lines(list: Vec<BudgetLineObject>) -> Vec<BudgetLine> {
    list.into_iter().map(Into::into).collect()
}

impl From<CreateGrantRoundInput> for RoundInput {
    fn from(input: CreateGrantRoundInput) -> Self {
        Self {
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
        }
    }
}

impl From<UpdateGrantRoundInput> for RoundPatch {
    fn from(input: UpdateGrantRoundInput) -> Self {
        Self {
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
        }
    }
}

impl From<CreateGrantProposalInput> for ProposalInput {
    fn from(input: CreateGrantProposalInput) -> Self {
        Self {
            title: input.title,
            summary: input.summary,
            problem: input.problem,
            plan: input.plan,
            beneficiaries: input.beneficiaries.into(),
            requested_fen: input.requested_fen.0,
            budget_lines: lines(input.budget_lines),
            attachments: input.attachments,
        }
    }
}

impl From<UpdateGrantProposalInput> for ProposalPatch {
    fn from(input: UpdateGrantProposalInput) -> Self {
        Self {
            title: input.title,
            summary: input.summary,
            problem: input.problem,
            plan: input.plan,
            beneficiaries: input.beneficiaries.map(Into::into),
            requested_fen: input.requested_fen.map(i64::from),
            budget_lines: input.budget_lines.map(lines),
            attachments: input.attachments,
        }
    }
}
