//! Grant proposals: drafting, submitting and withdrawing them, and their reads.
#[allow(unused_imports)]
use super::*;

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

pub(super) fn validate_proposal(input: &mut ProposalInput, round: &RoundRecord) -> AppResult<()> {
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

pub(super) async fn check_eligible(db: &impl ConnectionTrait, round: &RoundRecord, org_id: i64) -> AppResult<()> {
    let org = found::<organization::Entity>(db, org_id, "organization").await?;
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
    Ok(ProposalRecord::from_model(found::<proposal::Entity>(db, id, "proposal").await?))
}

pub async fn proposals_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<ProposalRecord>> {
    let rows = rows_by_ids(db, proposal::Column::Id, ids).await?;
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
    page: PageRequest<'_>,
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
    let key = SortKey::<proposal::Entity>::time(proposal::Column::CreatedAt, proposal::Column::Id, SortDirection::Asc);
    let page = pagination::paginate(db, select, &key, page).await?;
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
    let now = crate::service::now();
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
        decision_note: Set(String::new()),
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

pub(super) fn locked_after_submit() -> AppError {
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
    proposal::Entity::update_many()
        .col_expr(proposal::Column::Title, Expr::val(input.title))
        .col_expr(proposal::Column::Summary, Expr::val(input.summary))
        .col_expr(proposal::Column::Problem, Expr::val(input.problem))
        .col_expr(proposal::Column::Plan, Expr::val(input.plan))
        .col_expr(proposal::Column::Beneficiaries, Expr::val(to_json(&input.beneficiaries)?))
        .col_expr(proposal::Column::RequestedFen, Expr::val(input.requested_fen))
        .col_expr(proposal::Column::BudgetLines, Expr::val(to_json(&input.budget_lines)?))
        .col_expr(proposal::Column::Attachments, Expr::val(to_json(&input.attachments)?))
        .col_expr(proposal::Column::UpdatedAt, Expr::val(crate::service::now()))
        .filter(proposal::Column::Id.eq(id))
        .filter(proposal::Column::Status.eq(ProposalStatus::Draft))
        .exec_one(db, locked_after_submit)
        .await?;
    let record = find_proposal(db, id).await?;
    let event = proposal_event(EventKind::GrantProposalUpdated, &record.proposal, json!({}));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(record)
}

/// Moves a proposal from one of `from` to `to`, setting `extra` columns, or fails with
/// `conflict` when it is no longer in one of those states.
pub(super) async fn move_proposal(
    db: &impl ConnectionTrait,
    id: i64,
    from: &[ProposalStatus],
    to: ProposalStatus,
    extra: Vec<(proposal::Column, sea_orm::sea_query::SimpleExpr)>,
    conflict: impl FnOnce() -> AppError,
) -> AppResult<()> {
    let mut update = proposal::Entity::update_many()
        .col_expr(proposal::Column::Status, Expr::val(to))
        .col_expr(proposal::Column::UpdatedAt, Expr::val(crate::service::now()));
    for (col, value) in extra {
        update = update.col_expr(col, value);
    }
    update
        .filter(proposal::Column::Id.eq(id))
        .filter(proposal::Column::Status.is_in(from.iter().copied()))
        .exec_one(db, conflict)
        .await
}

pub async fn submit_proposal(ctx: Ctx<'_>, actor: &Actor, id: i64) -> AppResult<ProposalRecord> {
    let txn = ctx.db.begin().await?;
    let db = &txn;
    let current = find_proposal(db, id).await?;
    if current.proposal.status != ProposalStatus::Draft {
        return Err(AppError::Conflict(
            format!("the proposal is {}; only a DRAFT can be submitted", current.proposal.status.to_value()).into(),
        ));
    }
    let round = find_round(db, current.proposal.round_id).await?;
    let now = crate::service::now();
    if now < round.round.opens_at {
        return Err(AppError::Conflict(format!("the round opens at {}; submit then", round.round.opens_at).into()));
    }
    if now >= round.round.closes_at {
        return Err(AppError::Conflict(
            format!("the round closed at {}; proposals can no longer be submitted", round.round.closes_at).into(),
        ));
    }
    check_eligible(db, &round, current.proposal.organization_id).await?;
    move_proposal(
        db,
        id,
        &[ProposalStatus::Draft],
        ProposalStatus::Submitted,
        vec![(proposal::Column::SubmittedAt, Expr::val(now))],
        || changed_meanwhile("proposal"),
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
