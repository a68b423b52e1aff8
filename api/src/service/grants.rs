//! Venture philanthropy: grant rounds with their rubric, proposals by organizations, reviews
//! by assigned reviewers, the ranking, and awards that never exceed a round's budget.
//!
//! Proposal lifecycle: `DRAFT → SUBMITTED → UNDER_REVIEW → AWARDED | DECLINED`, and
//! `WITHDRAWN` from any state before a decision. Every state change is a conditional update
//! on the state it was checked in, so two concurrent requests cannot both apply.
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::grant_proposal::{self as proposal, ProposalStatus};
use entity::grant_review::{self as review, ReviewStatus};
use entity::grant_round as round;
use entity::organization::{self, Stage};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::pagination::{self, Page, PageArgs, SortDirection, SortKey, SortValue};
use serde_json::json;

use super::{Ctx, retry_transient};
use crate::auth::Viewer;
use crate::config::Limits;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};
pub(crate) use crate::service::validate::required_text;

// ---------------------------------------------------------------- shared value types

/// People (or person-times) by the groups the base reports on.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeopleByGroup {
    pub women: i64,
    pub children: i64,
    pub families: i64,
    pub elderly: i64,
    pub others: i64,
}

impl PeopleByGroup {
    pub fn total(&self) -> i64 {
        self.women + self.children + self.families + self.elderly + self.others
    }

    pub fn add(&mut self, other: &PeopleByGroup) {
        self.women += other.women;
        self.children += other.children;
        self.families += other.families;
        self.elderly += other.elderly;
        self.others += other.others;
    }

    pub fn validate(&self, field: &str, max_each: i64) -> AppResult<()> {
        for n in [self.women, self.children, self.families, self.elderly, self.others] {
            if !(0..=max_each).contains(&n) {
                return Err(AppError::bad_input(field, format!("{field}: each count is between 0 and {max_each}")));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BudgetLine {
    pub item: String,
    pub amount_fen: i64,
}

pub fn validate_budget_lines(lines: &[BudgetLine]) -> AppResult<i64> {
    if lines.len() > 50 {
        return Err(AppError::bad_input("budgetLines", "at most 50 budget lines"));
    }
    let mut sum: i64 = 0;
    for line in lines {
        let item = line.item.trim();
        if item.is_empty() || item.chars().count() > 200 {
            return Err(AppError::bad_input("budgetLines", "each budget line has an item of 1 to 200 characters"));
        }
        if line.amount_fen <= 0 {
            return Err(AppError::bad_input("budgetLines", "each budget line has a positive amount"));
        }
        sum =
            sum.checked_add(line.amount_fen).ok_or_else(|| AppError::bad_input("budgetLines", "amounts too large"))?;
    }
    Ok(sum)
}

pub(crate) fn bounded_text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(AppError::bad_input(field, format!("{field} is at most {max} characters")));
    }
    Ok(v.to_owned())
}

fn to_json<T: Serialize>(value: &T) -> AppResult<String> {
    serde_json::to_string(value).map_err(|e| AppError::Internal(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned + Default>(raw: &str) -> T {
    serde_json::from_str(raw).unwrap_or_default()
}

// ---------------------------------------------------------------- rounds

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Criterion {
    pub key: String,
    pub name: String,
    pub weight: i32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Rubric {
    pub min_score: i32,
    pub max_score: i32,
    pub criteria: Vec<Criterion>,
}

impl Rubric {
    fn validate(&self) -> AppResult<()> {
        if self.min_score < 0 || self.max_score > 1000 || self.min_score >= self.max_score {
            return Err(AppError::bad_input("rubric", "the score range is 0 ≤ minScore < maxScore ≤ 1000"));
        }
        if self.criteria.is_empty() || self.criteria.len() > 20 {
            return Err(AppError::bad_input("rubric", "a rubric has 1 to 20 criteria"));
        }
        let mut keys = HashSet::new();
        for c in &self.criteria {
            let key_ok = (1..=32).contains(&c.key.len())
                && c.key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !key_ok {
                return Err(AppError::bad_input("rubric", "criterion keys are 1 to 32 characters of a-z, 0-9 and _"));
            }
            if !keys.insert(c.key.as_str()) {
                return Err(AppError::bad_input("rubric", format!("criterion key `{}` appears twice", c.key)));
            }
            required_text("rubric", &c.name, 100)?;
            if !(1..=100).contains(&c.weight) {
                return Err(AppError::bad_input("rubric", "criterion weights are 1 to 100"));
            }
        }
        Ok(())
    }

    /// Σ score·weight / Σ weight over the criteria scored.
    pub fn weighted_mean(&self, scores: &BTreeMap<String, i32>) -> Option<f64> {
        let (mut sum, mut weights) = (0f64, 0f64);
        for c in &self.criteria {
            if let Some(s) = scores.get(&c.key) {
                sum += f64::from(*s) * f64::from(c.weight);
                weights += f64::from(c.weight);
            }
        }
        (weights > 0.0).then(|| sum / weights)
    }
}

/// A round as readers see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoundRecord {
    pub round: round::Model,
    pub rubric: Rubric,
    pub eligible_stages: Vec<Stage>,
}

impl RoundRecord {
    pub fn from_model(round: round::Model) -> Self {
        let rubric = from_json(&round.rubric);
        let eligible_stages = parse_stages(&round.eligible_stages);
        Self { round, rubric, eligible_stages }
    }

    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.round.opens_at <= at && at < self.round.closes_at
    }

    pub fn remaining_fen(&self) -> i64 {
        self.round.budget_fen - self.round.awarded_total_fen
    }
}

fn parse_stages(raw: &str) -> Vec<Stage> {
    raw.split(',').filter_map(|s| Stage::try_from_value(&s.trim().to_owned()).ok()).collect()
}

fn stage_list(stages: &[Stage]) -> String {
    let mut names: Vec<String> = stages.iter().map(|s| s.to_value()).collect();
    names.sort();
    names.dedup();
    names.join(",")
}

#[derive(Clone, Debug)]
pub struct RoundInput {
    pub title: String,
    pub description: String,
    pub budget_fen: i64,
    pub per_proposal_cap_fen: i64,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub review_ends_at: DateTime<Utc>,
    pub results_at: DateTime<Utc>,
    pub eligible_stages: Vec<Stage>,
    pub rubric: Rubric,
}

#[derive(Clone, Debug, Default)]
pub struct RoundPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub budget_fen: Option<i64>,
    pub per_proposal_cap_fen: Option<i64>,
    pub opens_at: Option<DateTime<Utc>>,
    pub closes_at: Option<DateTime<Utc>>,
    pub review_ends_at: Option<DateTime<Utc>>,
    pub results_at: Option<DateTime<Utc>>,
    pub eligible_stages: Option<Vec<Stage>>,
    pub rubric: Option<Rubric>,
}

fn validate_round(input: &mut RoundInput) -> AppResult<()> {
    input.title = required_text("title", &input.title, 200)?;
    input.description = bounded_text("description", &input.description, 10_000)?;
    if input.budget_fen <= 0 {
        return Err(AppError::bad_input("budgetFen", "budgetFen must be positive"));
    }
    if input.per_proposal_cap_fen <= 0 || input.per_proposal_cap_fen > input.budget_fen {
        return Err(AppError::bad_input("perProposalCapFen", "perProposalCapFen is positive and at most the budget"));
    }
    if input.opens_at >= input.closes_at {
        return Err(AppError::bad_input("closesAt", "closesAt is after opensAt"));
    }
    if input.review_ends_at < input.closes_at {
        return Err(AppError::bad_input("reviewEndsAt", "reviewEndsAt is not before closesAt"));
    }
    if input.results_at < input.review_ends_at {
        return Err(AppError::bad_input("resultsAt", "resultsAt is not before reviewEndsAt"));
    }
    input.rubric.validate()
}

pub async fn find_round(db: &impl ConnectionTrait, id: i64) -> AppResult<RoundRecord> {
    round::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(RoundRecord::from_model)
        .ok_or_else(|| AppError::NotFound("grant round".into()))
}

pub async fn rounds_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<RoundRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = round::Entity::find().filter(round::Column::Id.is_in(ids.iter().copied())).all(db).await?;
    Ok(rows.into_iter().map(RoundRecord::from_model).collect())
}

/// Rounds, the latest opening first.
pub async fn list_rounds(
    db: &impl ConnectionTrait,
    args: &PageArgs,
    limits: &Limits,
    with_total: bool,
) -> AppResult<Page<RoundRecord>> {
    let key: SortKey<round::Entity> = SortKey {
        column: round::Column::OpensAt,
        id: round::Column::Id,
        direction: SortDirection::Desc,
        value_of: |m| (SortValue::Time(m.opens_at), m.id),
        sample: SortValue::Time(DateTime::UNIX_EPOCH),
    };
    let page = pagination::paginate(db, round::Entity::find(), &key, args, limits, with_total).await?;
    Ok(page.map(RoundRecord::from_model))
}

pub async fn create_round(ctx: Ctx<'_>, actor: &Actor, mut input: RoundInput) -> AppResult<RoundRecord> {
    validate_round(&mut input)?;
    let now = super::now();
    let txn = ctx.db.begin().await?;
    let model = round::ActiveModel {
        title: Set(input.title),
        description: Set(input.description),
        budget_fen: Set(input.budget_fen),
        per_proposal_cap_fen: Set(input.per_proposal_cap_fen),
        awarded_total_fen: Set(0),
        opens_at: Set(input.opens_at),
        closes_at: Set(input.closes_at),
        review_ends_at: Set(input.review_ends_at),
        results_at: Set(input.results_at),
        eligible_stages: Set(stage_list(&input.eligible_stages)),
        rubric: Set(to_json(&input.rubric)?),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let event = NewEvent::new(EventKind::GrantRoundCreated, model.id)
        .payload(json!({ "title": model.title, "budgetFen": model.budget_fen }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(RoundRecord::from_model(model))
}

pub async fn update_round(ctx: Ctx<'_>, actor: &Actor, id: i64, patch: RoundPatch) -> AppResult<RoundRecord> {
    let txn = ctx.db.begin().await?;
    let current = round::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .map(RoundRecord::from_model)
        .ok_or_else(|| AppError::NotFound("grant round".into()))?;
    let r = &current.round;
    let mut input = RoundInput {
        title: patch.title.unwrap_or_else(|| r.title.clone()),
        description: patch.description.unwrap_or_else(|| r.description.clone()),
        budget_fen: patch.budget_fen.unwrap_or(r.budget_fen),
        per_proposal_cap_fen: patch.per_proposal_cap_fen.unwrap_or(r.per_proposal_cap_fen),
        opens_at: patch.opens_at.unwrap_or(r.opens_at),
        closes_at: patch.closes_at.unwrap_or(r.closes_at),
        review_ends_at: patch.review_ends_at.unwrap_or(r.review_ends_at),
        results_at: patch.results_at.unwrap_or(r.results_at),
        eligible_stages: patch.eligible_stages.unwrap_or_else(|| current.eligible_stages.clone()),
        rubric: patch.rubric.clone().unwrap_or_else(|| current.rubric.clone()),
    };
    validate_round(&mut input)?;
    if input.rubric != current.rubric {
        let scored = review::Entity::find()
            .filter(
                review::Column::ProposalId.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(proposal::Column::Id)
                        .from(proposal::Entity)
                        .and_where(proposal::Column::RoundId.eq(id))
                        .to_owned(),
                ),
            )
            .filter(review::Column::Status.is_in([ReviewStatus::Draft, ReviewStatus::Submitted]))
            .one(&txn)
            .await?;
        if scored.is_some() {
            return Err(AppError::Conflict("the rubric cannot change once reviewers have scored".into()));
        }
    }
    // Conditional on the awarded total, so a concurrent award cannot slip under a lower budget.
    let updated = round::Entity::update_many()
        .col_expr(round::Column::Title, Expr::val(input.title))
        .col_expr(round::Column::Description, Expr::val(input.description))
        .col_expr(round::Column::BudgetFen, Expr::val(input.budget_fen))
        .col_expr(round::Column::PerProposalCapFen, Expr::val(input.per_proposal_cap_fen))
        .col_expr(round::Column::OpensAt, Expr::val(input.opens_at))
        .col_expr(round::Column::ClosesAt, Expr::val(input.closes_at))
        .col_expr(round::Column::ReviewEndsAt, Expr::val(input.review_ends_at))
        .col_expr(round::Column::ResultsAt, Expr::val(input.results_at))
        .col_expr(round::Column::EligibleStages, Expr::val(stage_list(&input.eligible_stages)))
        .col_expr(round::Column::Rubric, Expr::val(to_json(&input.rubric)?))
        .col_expr(round::Column::UpdatedAt, Expr::val(super::now()))
        .filter(round::Column::Id.eq(id))
        .filter(round::Column::AwardedTotalFen.lte(input.budget_fen))
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(AppError::Conflict(format!(
            "the budget cannot go below the {} fen already awarded",
            current.round.awarded_total_fen
        )));
    }
    let record = find_round(&txn, id).await?;
    let event = NewEvent::new(EventKind::GrantRoundUpdated, id)
        .payload(json!({ "budgetFen": record.round.budget_fen, "closesAt": record.round.closes_at }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(record)
}

// ---------------------------------------------------------------- proposals

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProposalRecord {
    pub proposal: proposal::Model,
    pub beneficiaries: PeopleByGroup,
    pub budget_lines: Vec<BudgetLine>,
    pub attachments: Vec<String>,
}

impl ProposalRecord {
    pub fn from_model(proposal: proposal::Model) -> Self {
        Self {
            beneficiaries: from_json(&proposal.beneficiaries),
            budget_lines: from_json(&proposal.budget_lines),
            attachments: from_json(&proposal.attachments),
            proposal,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ProposalInput {
    pub title: String,
    pub summary: String,
    pub problem: String,
    pub plan: String,
    pub beneficiaries: PeopleByGroup,
    pub requested_fen: i64,
    pub budget_lines: Vec<BudgetLine>,
    pub attachments: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ProposalPatch {
    pub title: Option<String>,
    pub summary: Option<String>,
    pub problem: Option<String>,
    pub plan: Option<String>,
    pub beneficiaries: Option<PeopleByGroup>,
    pub requested_fen: Option<i64>,
    pub budget_lines: Option<Vec<BudgetLine>>,
    pub attachments: Option<Vec<String>>,
}

fn validate_proposal(input: &mut ProposalInput, round: &RoundRecord) -> AppResult<()> {
    input.title = required_text("title", &input.title, 200)?;
    input.summary = bounded_text("summary", &input.summary, 2_000)?;
    input.problem = bounded_text("problem", &input.problem, 10_000)?;
    input.plan = bounded_text("plan", &input.plan, 20_000)?;
    input.beneficiaries.validate("beneficiaries", 10_000_000)?;
    if input.requested_fen <= 0 {
        return Err(AppError::bad_input("requestedFen", "requestedFen must be positive"));
    }
    if input.requested_fen > round.round.per_proposal_cap_fen {
        return Err(AppError::bad_input(
            "requestedFen",
            format!("requestedFen is at most the round's cap of {} fen", round.round.per_proposal_cap_fen),
        ));
    }
    let sum = validate_budget_lines(&input.budget_lines)?;
    if !input.budget_lines.is_empty() && sum != input.requested_fen {
        return Err(AppError::bad_input(
            "budgetLines",
            format!("budget lines add up to {sum} fen, not the requested {} fen", input.requested_fen),
        ));
    }
    if input.attachments.len() > 20 {
        return Err(AppError::bad_input("attachments", "at most 20 attachments"));
    }
    for url in &mut input.attachments {
        let u = url.trim();
        let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
        if u.len() > 500 || rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
            return Err(AppError::bad_input("attachments", "attachments are http(s) URLs of at most 500 characters"));
        }
        *url = u.to_owned();
    }
    Ok(())
}

async fn check_eligible(db: &impl ConnectionTrait, round: &RoundRecord, org_id: i64) -> AppResult<()> {
    let org = organization::Entity::find_by_id(org_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound("organization".into()))?;
    if !round.eligible_stages.is_empty() && !round.eligible_stages.contains(&org.stage) {
        let allowed: Vec<String> = round.eligible_stages.iter().map(|s| s.to_value()).collect();
        return Err(AppError::bad_input(
            "organizationId",
            format!(
                "this round is open to organizations in stage {}; the organization is {}",
                allowed.join(", "),
                org.stage.to_value()
            ),
        ));
    }
    Ok(())
}

pub async fn find_proposal(db: &impl ConnectionTrait, id: i64) -> AppResult<ProposalRecord> {
    proposal::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(ProposalRecord::from_model)
        .ok_or_else(|| AppError::NotFound("proposal".into()))
}

pub async fn proposals_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<ProposalRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = proposal::Entity::find().filter(proposal::Column::Id.is_in(ids.iter().copied())).all(db).await?;
    Ok(rows.into_iter().map(ProposalRecord::from_model).collect())
}

/// Which proposals of a round a caller may list.
pub enum ProposalScope {
    All,
    /// Proposals of these organizations, and those assigned to this reviewer.
    Limited {
        organization_ids: Vec<i64>,
        reviewer_id: Option<i64>,
    },
}

pub async fn list_proposals(
    db: &impl ConnectionTrait,
    round_id: i64,
    scope: ProposalScope,
    args: &PageArgs,
    limits: &Limits,
    with_total: bool,
) -> AppResult<Page<ProposalRecord>> {
    let mut select = proposal::Entity::find().filter(proposal::Column::RoundId.eq(round_id));
    if let ProposalScope::Limited { organization_ids, reviewer_id } = scope {
        let mut visible = sea_orm::Condition::any().add(proposal::Column::OrganizationId.is_in(organization_ids));
        if let Some(reviewer) = reviewer_id {
            let assigned = sea_orm::sea_query::Query::select()
                .column(review::Column::ProposalId)
                .from(review::Entity)
                .and_where(review::Column::ReviewerId.eq(reviewer))
                .to_owned();
            visible = visible.add(proposal::Column::Id.in_subquery(assigned));
        }
        select = select.filter(visible);
    }
    let key: SortKey<proposal::Entity> = SortKey {
        column: proposal::Column::CreatedAt,
        id: proposal::Column::Id,
        direction: SortDirection::Asc,
        value_of: |m| (SortValue::Time(m.created_at), m.id),
        sample: SortValue::Time(DateTime::UNIX_EPOCH),
    };
    let page = pagination::paginate(db, select, &key, args, limits, with_total).await?;
    Ok(page.map(ProposalRecord::from_model))
}

pub async fn create_proposal(
    ctx: Ctx<'_>,
    actor: &Actor,
    round_id: i64,
    organization_id: i64,
    created_by: Option<i64>,
    mut input: ProposalInput,
) -> AppResult<ProposalRecord> {
    let txn = ctx.db.begin().await?;
    let db = &txn;
    let round = find_round(db, round_id).await?;
    validate_proposal(&mut input, &round)?;
    let now = super::now();
    if now >= round.round.closes_at {
        return Err(AppError::Conflict("the round has closed; no new proposals".into()));
    }
    check_eligible(db, &round, organization_id).await?;
    let model = proposal::ActiveModel {
        round_id: Set(round_id),
        organization_id: Set(organization_id),
        title: Set(input.title),
        summary: Set(input.summary),
        problem: Set(input.problem),
        plan: Set(input.plan),
        beneficiaries: Set(to_json(&input.beneficiaries)?),
        requested_fen: Set(input.requested_fen),
        budget_lines: Set(to_json(&input.budget_lines)?),
        attachments: Set(to_json(&input.attachments)?),
        status: Set(ProposalStatus::Draft),
        awarded_fen: Set(None),
        decision_note: Set(String::new()),
        submitted_at: Set(None),
        decided_at: Set(None),
        created_by: Set(created_by),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let event = proposal_event(EventKind::GrantProposalCreated, &model, json!({ "requestedFen": model.requested_fen }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(ProposalRecord::from_model(model))
}

fn locked_after_submit() -> AppError {
    AppError::Conflict("only a DRAFT proposal can be edited; it is locked once submitted".into())
}

pub async fn update_proposal(ctx: Ctx<'_>, actor: &Actor, id: i64, patch: ProposalPatch) -> AppResult<ProposalRecord> {
    let txn = ctx.db.begin().await?;
    let db = &txn;
    let current = find_proposal(db, id).await?;
    if current.proposal.status != ProposalStatus::Draft {
        return Err(locked_after_submit());
    }
    let round = find_round(db, current.proposal.round_id).await?;
    let p = &current.proposal;
    let mut input = ProposalInput {
        title: patch.title.unwrap_or_else(|| p.title.clone()),
        summary: patch.summary.unwrap_or_else(|| p.summary.clone()),
        problem: patch.problem.unwrap_or_else(|| p.problem.clone()),
        plan: patch.plan.unwrap_or_else(|| p.plan.clone()),
        beneficiaries: patch.beneficiaries.unwrap_or(current.beneficiaries),
        requested_fen: patch.requested_fen.unwrap_or(p.requested_fen),
        budget_lines: patch.budget_lines.unwrap_or_else(|| current.budget_lines.clone()),
        attachments: patch.attachments.unwrap_or_else(|| current.attachments.clone()),
    };
    validate_proposal(&mut input, &round)?;
    let updated = proposal::Entity::update_many()
        .col_expr(proposal::Column::Title, Expr::val(input.title))
        .col_expr(proposal::Column::Summary, Expr::val(input.summary))
        .col_expr(proposal::Column::Problem, Expr::val(input.problem))
        .col_expr(proposal::Column::Plan, Expr::val(input.plan))
        .col_expr(proposal::Column::Beneficiaries, Expr::val(to_json(&input.beneficiaries)?))
        .col_expr(proposal::Column::RequestedFen, Expr::val(input.requested_fen))
        .col_expr(proposal::Column::BudgetLines, Expr::val(to_json(&input.budget_lines)?))
        .col_expr(proposal::Column::Attachments, Expr::val(to_json(&input.attachments)?))
        .col_expr(proposal::Column::UpdatedAt, Expr::val(super::now()))
        .filter(proposal::Column::Id.eq(id))
        .filter(proposal::Column::Status.eq(ProposalStatus::Draft))
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(locked_after_submit());
    }
    let record = find_proposal(db, id).await?;
    let event = proposal_event(EventKind::GrantProposalUpdated, &record.proposal, json!({}));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(record)
}

/// Moves a proposal from one of `from` to `to`, setting `extra` columns, or fails with
/// `conflict` when it is no longer in one of those states.
async fn move_proposal(
    db: &impl ConnectionTrait,
    id: i64,
    from: &[ProposalStatus],
    to: ProposalStatus,
    extra: Vec<(proposal::Column, sea_orm::sea_query::SimpleExpr)>,
    conflict: impl FnOnce() -> AppError,
) -> AppResult<()> {
    let mut update = proposal::Entity::update_many()
        .col_expr(proposal::Column::Status, Expr::val(to))
        .col_expr(proposal::Column::UpdatedAt, Expr::val(super::now()));
    for (col, value) in extra {
        update = update.col_expr(col, value);
    }
    let result = update
        .filter(proposal::Column::Id.eq(id))
        .filter(proposal::Column::Status.is_in(from.iter().copied()))
        .exec(db)
        .await?;
    if result.rows_affected != 1 { Err(conflict()) } else { Ok(()) }
}

pub async fn submit_proposal(ctx: Ctx<'_>, actor: &Actor, id: i64) -> AppResult<ProposalRecord> {
    let txn = ctx.db.begin().await?;
    let db = &txn;
    let current = find_proposal(db, id).await?;
    if current.proposal.status != ProposalStatus::Draft {
        return Err(AppError::Conflict(format!(
            "the proposal is {}; only a DRAFT can be submitted",
            current.proposal.status.to_value()
        )));
    }
    let round = find_round(db, current.proposal.round_id).await?;
    let now = super::now();
    if now < round.round.opens_at {
        return Err(AppError::Conflict(format!("the round opens at {}; submit then", round.round.opens_at)));
    }
    if now >= round.round.closes_at {
        return Err(AppError::Conflict(format!(
            "the round closed at {}; proposals can no longer be submitted",
            round.round.closes_at
        )));
    }
    check_eligible(db, &round, current.proposal.organization_id).await?;
    move_proposal(
        db,
        id,
        &[ProposalStatus::Draft],
        ProposalStatus::Submitted,
        vec![(proposal::Column::SubmittedAt, Expr::val(now))],
        || AppError::Conflict("the proposal changed meanwhile; reload and retry".into()),
    )
    .await?;
    let record = find_proposal(db, id).await?;
    let event = proposal_event(EventKind::GrantProposalSubmitted, &record.proposal, json!({}));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(record)
}

pub async fn withdraw_proposal(ctx: Ctx<'_>, actor: &Actor, id: i64) -> AppResult<ProposalRecord> {
    let txn = ctx.db.begin().await?;
    let db = &txn;
    let current = find_proposal(db, id).await?;
    move_proposal(
        db,
        id,
        &[ProposalStatus::Draft, ProposalStatus::Submitted, ProposalStatus::UnderReview],
        ProposalStatus::Withdrawn,
        vec![],
        || AppError::Conflict("only a proposal not yet decided can be withdrawn".into()),
    )
    .await?;
    let record = find_proposal(db, id).await?;
    let from = current.proposal.status.to_value();
    let event = proposal_event(EventKind::GrantProposalWithdrawn, &record.proposal, json!({ "from": from }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(record)
}

// ---------------------------------------------------------------- reviews

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub review: review::Model,
    pub scores: BTreeMap<String, i32>,
}

impl ReviewRecord {
    pub fn from_model(review: review::Model) -> Self {
        Self { scores: from_json(&review.scores), review }
    }
}

async fn is_member(db: &impl ConnectionTrait, org_id: i64, account_id: i64) -> AppResult<bool> {
    Ok(entity::membership::Entity::find_by_id((org_id, account_id)).one(db).await?.is_some())
}

pub async fn assign_reviewer(
    ctx: Ctx<'_>,
    actor: &Actor,
    proposal_id: i64,
    account_id: i64,
) -> AppResult<ReviewRecord> {
    let db = ctx.db;
    let current = find_proposal(db, proposal_id).await?;
    let account = entity::account::Entity::find_by_id(account_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound("account".into()))?;
    let roles = super::identity::Role::parse_list(&account.roles);
    if !roles.contains(&super::identity::Role::Reviewer) || account.disabled_at.is_some() {
        return Err(AppError::bad_input("reviewerId", "the account is not an active REVIEWER"));
    }
    if is_member(db, current.proposal.organization_id, account_id).await? {
        return Err(AppError::bad_input(
            "reviewerId",
            "a reviewer never reviews a proposal of an organization they belong to",
        ));
    }
    let now = super::now();
    let txn = db.begin().await?;
    move_proposal(
        &txn,
        proposal_id,
        &[ProposalStatus::Submitted, ProposalStatus::UnderReview],
        ProposalStatus::UnderReview,
        vec![],
        || AppError::Conflict("reviewers are assigned to SUBMITTED or UNDER_REVIEW proposals only".into()),
    )
    .await?;
    let model = review::ActiveModel {
        proposal_id: Set(proposal_id),
        reviewer_id: Set(account_id),
        status: Set(ReviewStatus::Assigned),
        scores: Set("{}".into()),
        comment: Set(String::new()),
        conflict_reason: Set(None),
        assigned_at: Set(now),
        submitted_at: Set(None),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| match AppError::from(e) {
        AppError::Conflict(_) => AppError::Conflict("this reviewer is already assigned to the proposal".into()),
        other => other,
    })?;
    let event = review_event(EventKind::GrantReviewerAssigned, &model, current.proposal.round_id);
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(ReviewRecord::from_model(model))
}

pub async fn unassign_reviewer(ctx: Ctx<'_>, actor: &Actor, proposal_id: i64, account_id: i64) -> AppResult<i64> {
    let txn = ctx.db.begin().await?;
    let db = &txn;
    let existing = review::Entity::find()
        .filter(review::Column::ProposalId.eq(proposal_id))
        .filter(review::Column::ReviewerId.eq(account_id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound("review assignment".into()))?;
    let deleted = review::Entity::delete_many()
        .filter(review::Column::Id.eq(existing.id))
        .filter(review::Column::Status.ne(ReviewStatus::Submitted))
        .exec(db)
        .await?;
    if deleted.rows_affected != 1 {
        return Err(AppError::Conflict("a submitted review cannot be unassigned".into()));
    }
    let round_id = find_proposal(db, proposal_id).await?.proposal.round_id;
    let event = review_event(EventKind::GrantReviewerUnassigned, &existing, round_id);
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(existing.id)
}

/// The caller's assignment on a proposal, checked for everything that lets them score it.
async fn own_assignment(
    db: &impl ConnectionTrait,
    reviewer_id: i64,
    proposal_id: i64,
) -> AppResult<(review::Model, ProposalRecord, RoundRecord)> {
    let assignment = review::Entity::find()
        .filter(review::Column::ProposalId.eq(proposal_id))
        .filter(review::Column::ReviewerId.eq(reviewer_id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::Forbidden("you are not assigned to review this proposal".into()))?;
    let proposal = find_proposal(db, proposal_id).await?;
    if is_member(db, proposal.proposal.organization_id, reviewer_id).await? {
        return Err(AppError::Forbidden(
            "you belong to the organization that wrote this proposal and cannot review it".into(),
        ));
    }
    match assignment.status {
        ReviewStatus::Submitted => return Err(AppError::Conflict("the review is already submitted".into())),
        ReviewStatus::Conflict => {
            return Err(AppError::Conflict("you declared a conflict of interest on this proposal".into()));
        }
        _ => {}
    }
    if proposal.proposal.status != ProposalStatus::UnderReview {
        return Err(AppError::Conflict(format!(
            "the proposal is {}; reviews are taken while it is UNDER_REVIEW",
            proposal.proposal.status.to_value()
        )));
    }
    let round = find_round(db, proposal.proposal.round_id).await?;
    if super::now() > round.round.review_ends_at {
        return Err(AppError::Conflict(format!("the review period ended at {}", round.round.review_ends_at)));
    }
    Ok((assignment, proposal, round))
}

#[derive(Clone, Debug)]
pub struct ReviewDraft {
    pub scores: Vec<(String, i32)>,
    pub comment: Option<String>,
}

/// Saves scores (merged into those saved before) and the comment; with `submit`, also
/// requires every criterion scored and submits.
pub async fn save_review(
    ctx: Ctx<'_>,
    actor: &Actor,
    reviewer_id: i64,
    proposal_id: i64,
    draft: ReviewDraft,
    submit: bool,
) -> AppResult<ReviewRecord> {
    let txn = ctx.db.begin().await?;
    let db = &txn;
    let (assignment, _, round) = own_assignment(db, reviewer_id, proposal_id).await?;
    let rubric = &round.rubric;
    let mut scores: BTreeMap<String, i32> = from_json(&assignment.scores);
    let mut seen = HashSet::new();
    for (key, score) in draft.scores {
        if !rubric.criteria.iter().any(|c| c.key == key) {
            return Err(AppError::bad_input("scores", format!("`{key}` is not a criterion of this round's rubric")));
        }
        if !seen.insert(key.clone()) {
            return Err(AppError::bad_input("scores", format!("`{key}` is scored twice")));
        }
        if score < rubric.min_score || score > rubric.max_score {
            return Err(AppError::bad_input(
                "scores",
                format!("the score for `{key}` is {score}, outside {}..={}", rubric.min_score, rubric.max_score),
            ));
        }
        scores.insert(key, score);
    }
    let comment = match draft.comment {
        Some(c) => bounded_text("comment", &c, 5_000)?,
        None => assignment.comment.clone(),
    };
    let now = super::now();
    let status = if submit {
        let missing: Vec<&str> =
            rubric.criteria.iter().filter(|c| !scores.contains_key(&c.key)).map(|c| c.key.as_str()).collect();
        if !missing.is_empty() {
            return Err(AppError::bad_input(
                "scores",
                format!("score every criterion first; missing: {}", missing.join(", ")),
            ));
        }
        ReviewStatus::Submitted
    } else {
        ReviewStatus::Draft
    };
    let mut update = review::Entity::update_many()
        .col_expr(review::Column::Scores, Expr::val(to_json(&scores)?))
        .col_expr(review::Column::Comment, Expr::val(comment))
        .col_expr(review::Column::Status, Expr::val(status))
        .col_expr(review::Column::UpdatedAt, Expr::val(now));
    if submit {
        update = update.col_expr(review::Column::SubmittedAt, Expr::val(now));
    }
    let result = update
        .filter(review::Column::Id.eq(assignment.id))
        .filter(review::Column::Status.is_in([ReviewStatus::Assigned, ReviewStatus::Draft]))
        .exec(db)
        .await?;
    if result.rows_affected != 1 {
        return Err(AppError::Conflict("the review changed meanwhile; reload and retry".into()));
    }
    let record = find_review(db, assignment.id).await?;
    let kind = if submit { EventKind::GrantReviewSubmitted } else { EventKind::GrantReviewSaved };
    let event = review_event(kind, &record.review, round.round.id);
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(record)
}

pub async fn declare_conflict(
    ctx: Ctx<'_>,
    actor: &Actor,
    reviewer_id: i64,
    proposal_id: i64,
    reason: &str,
) -> AppResult<ReviewRecord> {
    let txn = ctx.db.begin().await?;
    let db = &txn;
    let assignment = review::Entity::find()
        .filter(review::Column::ProposalId.eq(proposal_id))
        .filter(review::Column::ReviewerId.eq(reviewer_id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::Forbidden("you are not assigned to review this proposal".into()))?;
    let reason = required_text("reason", reason, 2_000)?;
    let result = review::Entity::update_many()
        .col_expr(review::Column::Status, Expr::val(ReviewStatus::Conflict))
        .col_expr(review::Column::ConflictReason, Expr::val(reason))
        .col_expr(review::Column::UpdatedAt, Expr::val(super::now()))
        .filter(review::Column::Id.eq(assignment.id))
        .filter(review::Column::Status.is_in([ReviewStatus::Assigned, ReviewStatus::Draft]))
        .exec(db)
        .await?;
    if result.rows_affected != 1 {
        return Err(AppError::Conflict("a conflict can be declared only before the review is submitted".into()));
    }
    let record = find_review(db, assignment.id).await?;
    let round_id = find_proposal(db, proposal_id).await?.proposal.round_id;
    let event = review_event(EventKind::GrantReviewConflictDeclared, &record.review, round_id);
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(record)
}

pub async fn find_review(db: &impl ConnectionTrait, id: i64) -> AppResult<ReviewRecord> {
    review::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(ReviewRecord::from_model)
        .ok_or_else(|| AppError::NotFound("review".into()))
}

pub const MAX_ASSIGNMENTS: u64 = 500;

/// A reviewer's own assignments, newest first (bounded).
pub async fn assignments_of(db: &impl ConnectionTrait, reviewer_id: i64) -> AppResult<Vec<ReviewRecord>> {
    let rows = review::Entity::find()
        .filter(review::Column::ReviewerId.eq(reviewer_id))
        .order_by_desc(review::Column::AssignedAt)
        .order_by_desc(review::Column::Id)
        .limit(MAX_ASSIGNMENTS)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(ReviewRecord::from_model).collect())
}

/// Reviews of many proposals in one statement.
pub async fn reviews_of(db: &impl ConnectionTrait, proposal_ids: &[i64]) -> AppResult<HashMap<i64, Vec<ReviewRecord>>> {
    let mut map: HashMap<i64, Vec<ReviewRecord>> = HashMap::new();
    if proposal_ids.is_empty() {
        return Ok(map);
    }
    let rows = review::Entity::find()
        .filter(review::Column::ProposalId.is_in(proposal_ids.iter().copied()))
        .order_by_asc(review::Column::Id)
        .all(db)
        .await?;
    for row in rows {
        map.entry(row.proposal_id).or_default().push(ReviewRecord::from_model(row));
    }
    Ok(map)
}

// ---------------------------------------------------------------- ranking

#[derive(Clone, Debug)]
pub struct RankedProposal {
    pub proposal: ProposalRecord,
    pub submitted_reviews: usize,
    /// Mean over the submitted reviews of each review's weighted mean.
    pub weighted_mean: Option<f64>,
    pub lowest: Option<f64>,
    pub highest: Option<f64>,
    /// Highest − lowest reviewer score: large values mean the reviewers disagree.
    pub spread: Option<f64>,
    /// Mean score per criterion key.
    pub by_criterion: Vec<(String, f64)>,
}

pub const MAX_RANKED: u64 = 1_000;

pub async fn ranking(db: &impl ConnectionTrait, round_id: i64) -> AppResult<Vec<RankedProposal>> {
    let round = find_round(db, round_id).await?;
    let proposals = proposal::Entity::find()
        .filter(proposal::Column::RoundId.eq(round_id))
        .filter(proposal::Column::Status.is_in([
            ProposalStatus::Submitted,
            ProposalStatus::UnderReview,
            ProposalStatus::Awarded,
            ProposalStatus::Declined,
        ]))
        .order_by_asc(proposal::Column::Id)
        .limit(MAX_RANKED)
        .all(db)
        .await?;
    let ids: Vec<i64> = proposals.iter().map(|p| p.id).collect();
    let mut reviews = reviews_of(db, &ids).await?;
    let mut ranked: Vec<RankedProposal> = proposals
        .into_iter()
        .map(|p| {
            let submitted: Vec<ReviewRecord> = reviews
                .remove(&p.id)
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r.review.status == ReviewStatus::Submitted)
                .collect();
            let means: Vec<f64> = submitted.iter().filter_map(|r| round.rubric.weighted_mean(&r.scores)).collect();
            let lowest = means.iter().copied().reduce(f64::min);
            let highest = means.iter().copied().reduce(f64::max);
            let weighted_mean = (!means.is_empty()).then(|| means.iter().sum::<f64>() / means.len() as f64);
            let by_criterion = round
                .rubric
                .criteria
                .iter()
                .filter_map(|c| {
                    let values: Vec<f64> =
                        submitted.iter().filter_map(|r| r.scores.get(&c.key)).map(|s| f64::from(*s)).collect();
                    (!values.is_empty()).then(|| (c.key.clone(), values.iter().sum::<f64>() / values.len() as f64))
                })
                .collect();
            RankedProposal {
                proposal: ProposalRecord::from_model(p),
                submitted_reviews: submitted.len(),
                weighted_mean,
                lowest,
                highest,
                spread: lowest.zip(highest).map(|(l, h)| h - l),
                by_criterion,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.weighted_mean
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.weighted_mean.unwrap_or(f64::NEG_INFINITY))
            .then(a.proposal.proposal.id.cmp(&b.proposal.proposal.id))
    });
    Ok(ranked)
}

// ---------------------------------------------------------------- decisions

/// Awards `amount_fen` to a proposal under review. The round's row is locked (`SELECT … FOR
/// UPDATE` on PostgreSQL; SQLite has one writer) and its awarded total only grows by a
/// conditional update that keeps it within the budget, so concurrent awards never overspend.
pub async fn award(
    ctx: Ctx<'_>,
    actor: &Actor,
    proposal_id: i64,
    amount_fen: i64,
    note: Option<String>,
) -> AppResult<ProposalRecord> {
    let db = ctx.db;
    let note = bounded_text("note", note.as_deref().unwrap_or_default(), 2_000)?;
    let current = find_proposal(db, proposal_id).await?;
    if amount_fen <= 0 {
        return Err(AppError::bad_input("amountFen", "amountFen must be positive"));
    }
    if amount_fen > current.proposal.requested_fen {
        return Err(AppError::bad_input(
            "amountFen",
            format!("amountFen is at most the {} fen requested", current.proposal.requested_fen),
        ));
    }
    let txn = db.begin().await?;
    let round = round::Entity::find_by_id(current.proposal.round_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .map(RoundRecord::from_model)
        .ok_or_else(|| AppError::NotFound("grant round".into()))?;
    if amount_fen > round.round.per_proposal_cap_fen {
        return Err(AppError::bad_input(
            "amountFen",
            format!("amountFen is at most the round's cap of {} fen", round.round.per_proposal_cap_fen),
        ));
    }
    let over_budget = |remaining: i64| {
        AppError::Conflict(format!(
            "awarding {amount_fen} fen would exceed the round's budget: {remaining} fen of {} fen remain",
            round.round.budget_fen
        ))
    };
    if amount_fen > round.remaining_fen() {
        return Err(over_budget(round.remaining_fen()));
    }
    let now = super::now();
    move_proposal(
        &txn,
        proposal_id,
        &[ProposalStatus::UnderReview],
        ProposalStatus::Awarded,
        vec![
            (proposal::Column::AwardedFen, Expr::val(amount_fen)),
            (proposal::Column::DecisionNote, Expr::val(note)),
            (proposal::Column::DecidedAt, Expr::val(now)),
        ],
        || AppError::Conflict("only a proposal UNDER_REVIEW can be awarded".into()),
    )
    .await?;
    let grown = round::Entity::update_many()
        .col_expr(round::Column::AwardedTotalFen, Expr::col(round::Column::AwardedTotalFen).add(amount_fen))
        .col_expr(round::Column::UpdatedAt, Expr::val(now))
        .filter(round::Column::Id.eq(round.round.id))
        .filter(Expr::col(round::Column::AwardedTotalFen).add(amount_fen).lte(Expr::col(round::Column::BudgetFen)))
        .exec(&txn)
        .await?;
    if grown.rows_affected != 1 {
        return Err(over_budget(round.remaining_fen()));
    }
    let record = find_proposal(&txn, proposal_id).await?;
    let event = proposal_event(EventKind::GrantProposalAwarded, &record.proposal, json!({ "amountFen": amount_fen }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(record)
}

pub async fn decline(ctx: Ctx<'_>, actor: &Actor, proposal_id: i64, note: Option<String>) -> AppResult<ProposalRecord> {
    let note = bounded_text("note", note.as_deref().unwrap_or_default(), 2_000)?;
    let txn = ctx.db.begin().await?;
    let db = &txn;
    find_proposal(db, proposal_id).await?;
    move_proposal(
        db,
        proposal_id,
        &[ProposalStatus::Submitted, ProposalStatus::UnderReview],
        ProposalStatus::Declined,
        vec![(proposal::Column::DecisionNote, Expr::val(note)), (proposal::Column::DecidedAt, Expr::val(super::now()))],
        || AppError::Conflict("only a SUBMITTED or UNDER_REVIEW proposal can be declined".into()),
    )
    .await?;
    let record = find_proposal(db, proposal_id).await?;
    let event = proposal_event(EventKind::GrantProposalDeclined, &record.proposal, json!({}));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(record)
}

fn proposal_event(kind: EventKind, p: &proposal::Model, mut payload: serde_json::Value) -> NewEvent {
    if let Some(map) = payload.as_object_mut() {
        map.insert("roundId".into(), p.round_id.into());
        map.insert("title".into(), p.title.clone().into());
    }
    NewEvent::new(kind, p.id).organization(Some(p.organization_id)).payload(payload)
}

/// Review events are about the proposal and concern the reviewer only: who reviews what is
/// never shown to the proposing organization.
fn review_event(kind: EventKind, r: &review::Model, round_id: i64) -> NewEvent {
    NewEvent::new(kind, r.proposal_id)
        .account(Some(r.reviewer_id))
        .payload(json!({ "reviewId": r.id, "reviewerId": r.reviewer_id, "roundId": round_id }))
}

// ---------------------------------------------------------------- commands

async fn proposal_org(db: &impl ConnectionTrait, id: i64) -> AppResult<i64> {
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
