//! Venture philanthropy in the schema: rounds, proposals, reviews, the ranking and awards.
use super::common::{Count, Fen, convert_fields};
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, ResultExt, SimpleObject};
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

pub use super::ids::{PROPOSAL, REVIEW, ROUND};

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

convert_fields!(PeopleByGroup, PeopleByGroupFigures { women, children, families, elderly, others });

pub use super::common::BudgetLine as BudgetLineObject;

convert_fields!(BudgetLine, BudgetLineObject { item, amount_fen });

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

convert_fields!(Criterion, CriterionObject { key, name, weight });
convert_fields!(Rubric, RubricObject { min_score, max_score; criteria });

mod inputs;
mod mutations;
mod queries;
mod types;

pub use inputs::*;
pub use mutations::*;
pub use queries::*;
pub use types::*;
