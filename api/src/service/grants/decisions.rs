//! Award and decline decisions.
#[allow(unused_imports)]
use super::*;

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
        AppError::Conflict(
            format!(
                "awarding {amount_fen} fen would exceed the round's budget: {remaining} fen of {} fen remain",
                round.round.budget_fen
            )
            .into(),
        )
    };
    if amount_fen > round.remaining_fen() {
        return Err(over_budget(round.remaining_fen()));
    }
    let now = crate::service::now();
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
    round::Entity::update_many()
        .col_expr(round::Column::AwardedTotalFen, Expr::col(round::Column::AwardedTotalFen).add(amount_fen))
        .col_expr(round::Column::UpdatedAt, Expr::val(now))
        .filter(round::Column::Id.eq(round.round.id))
        .filter(Expr::col(round::Column::AwardedTotalFen).add(amount_fen).lte(Expr::col(round::Column::BudgetFen)))
        .exec_one(&txn, || over_budget(round.remaining_fen()))
        .await?;
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
        vec![
            (proposal::Column::DecisionNote, Expr::val(note)),
            (proposal::Column::DecidedAt, Expr::val(crate::service::now())),
        ],
        || AppError::Conflict("only a SUBMITTED or UNDER_REVIEW proposal can be declined".into()),
    )
    .await?;
    let record = find_proposal(db, proposal_id).await?;
    let event = proposal_event(EventKind::GrantProposalDeclined, &record.proposal, json!({}));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(record)
}

pub(super) fn proposal_event(kind: EventKind, p: &proposal::Model, mut payload: serde_json::Value) -> NewEvent {
    if let Some(map) = payload.as_object_mut() {
        map.insert("roundId".into(), p.round_id.into());
        map.insert("title".into(), p.title.clone().into());
    }
    NewEvent::new(kind, p.id).organization(Some(p.organization_id)).payload(payload)
}

/// Review events are about the proposal and concern the reviewer only: who reviews what is
/// never shown to the proposing organization.
pub(super) fn review_event(kind: EventKind, r: &review::Model, round_id: i64) -> NewEvent {
    NewEvent::new(kind, r.proposal_id)
        .account(Some(r.reviewer_id))
        .payload(json!({ "reviewId": r.id, "reviewerId": r.reviewer_id, "roundId": round_id }))
}
