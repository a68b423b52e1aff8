//! Venture philanthropy in the schema: rounds, proposals, reviews, the ranking and awards.
use super::common::{Count, Fen};
use async_graphql::{Context, Enum, ErrorExtensions, ID, InputObject, Object, Result, ResultExt, SimpleObject};
use chrono::{DateTime, Utc};

use super::audit::History;
use super::connection::{self, PagedConnection};
use super::identity::viewer;
use super::ids;
use super::loaders::Loaders;
use super::organization::{Organization, OrganizationStage};
use super::state;

use crate::events::Aggregate;
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

impl From<Criterion> for CriterionObject {
    fn from(c: Criterion) -> Self {
        Self { key: c.key, name: c.name, weight: c.weight }
    }
}

impl From<CriterionObject> for Criterion {
    fn from(c: CriterionObject) -> Self {
        Self { key: c.key, name: c.name, weight: c.weight }
    }
}

impl From<Rubric> for RubricObject {
    fn from(r: Rubric) -> Self {
        Self {
            min_score: r.min_score,
            max_score: r.max_score,
            criteria: r.criteria.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<RubricObject> for Rubric {
    fn from(r: RubricObject) -> Self {
        Self {
            min_score: r.min_score,
            max_score: r.max_score,
            criteria: r.criteria.into_iter().map(Into::into).collect(),
        }
    }
}

mod inputs;
mod mutations;
mod queries;
mod types;

pub use inputs::*;
pub use mutations::*;
pub use queries::*;
pub use types::*;
