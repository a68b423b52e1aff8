//! Reviews: assigning reviewers, scoring and their reads.
#[allow(unused_imports)]
use super::*;

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

pub(super) async fn is_member(db: &impl ConnectionTrait, org_id: i64, account_id: i64) -> AppResult<bool> {
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
    let account = found::<entity::account::Entity>(db, account_id, "account").await?;
    let roles = crate::service::identity::Role::parse_list(&account.roles);
    if !roles.contains(&crate::service::identity::Role::Reviewer) || account.disabled_at.is_some() {
        return Err(AppError::bad_input("reviewerId", "the account is not an active REVIEWER"));
    }
    if is_member(db, current.proposal.organization_id, account_id).await? {
        return Err(AppError::bad_input(
            "reviewerId",
            "a reviewer never reviews a proposal of an organization they belong to",
        ));
    }
    let now = crate::service::now();
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
        assigned_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(AppError::on_unique("this reviewer is already assigned to the proposal"))?;
    let event = review_event(EventKind::GrantReviewerAssigned, &model, current.proposal.round_id);
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(ReviewRecord::from_model(model))
}

/// The assignment of `reviewer_id` to a proposal.
async fn assignment_of(
    db: &impl ConnectionTrait,
    proposal_id: i64,
    reviewer_id: i64,
) -> AppResult<Option<review::Model>> {
    Ok(review::Entity::find()
        .filter(review::Column::ProposalId.eq(proposal_id))
        .filter(review::Column::ReviewerId.eq(reviewer_id))
        .one(db)
        .await?)
}

fn not_assigned() -> AppError {
    AppError::Forbidden("you are not assigned to review this proposal".into())
}

pub async fn unassign_reviewer(ctx: Ctx<'_>, actor: &Actor, proposal_id: i64, account_id: i64) -> AppResult<i64> {
    let txn = ctx.db.begin().await?;
    let db = &txn;
    let existing = assignment_of(db, proposal_id, account_id)
        .await?
        .ok_or_else(|| AppError::NotFound("review assignment".into()))?;
    review::Entity::delete_many()
        .filter(review::Column::Id.eq(existing.id))
        .filter(review::Column::Status.ne(ReviewStatus::Submitted))
        .exec_one(db, || AppError::Conflict("a submitted review cannot be unassigned".into()))
        .await?;
    let round_id = find_proposal(db, proposal_id).await?.proposal.round_id;
    let event = review_event(EventKind::GrantReviewerUnassigned, &existing, round_id);
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(existing.id)
}

/// The caller's assignment on a proposal, checked for everything that lets them score it.
pub(super) async fn own_assignment(
    db: &impl ConnectionTrait,
    reviewer_id: i64,
    proposal_id: i64,
) -> AppResult<(review::Model, ProposalRecord, RoundRecord)> {
    let assignment = assignment_of(db, proposal_id, reviewer_id).await?.ok_or_else(not_assigned)?;
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
        return Err(AppError::Conflict(
            format!(
                "the proposal is {}; reviews are taken while it is UNDER_REVIEW",
                proposal.proposal.status.to_value()
            )
            .into(),
        ));
    }
    let round = find_round(db, proposal.proposal.round_id).await?;
    if crate::service::now() > round.round.review_ends_at {
        return Err(AppError::Conflict(format!("the review period ended at {}", round.round.review_ends_at).into()));
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
    let now = crate::service::now();
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
    update
        .filter(review::Column::Id.eq(assignment.id))
        .filter(review::Column::Status.is_in([ReviewStatus::Assigned, ReviewStatus::Draft]))
        .exec_one(db, || changed_meanwhile("review"))
        .await?;
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
    let assignment = assignment_of(db, proposal_id, reviewer_id).await?.ok_or_else(not_assigned)?;
    let reason = required_text("reason", reason, 2_000)?;
    review::Entity::update_many()
        .col_expr(review::Column::Status, Expr::val(ReviewStatus::Conflict))
        .col_expr(review::Column::ConflictReason, Expr::val(reason))
        .col_expr(review::Column::UpdatedAt, Expr::val(crate::service::now()))
        .filter(review::Column::Id.eq(assignment.id))
        .filter(review::Column::Status.is_in([ReviewStatus::Assigned, ReviewStatus::Draft]))
        .exec_one(db, || AppError::Conflict("a conflict can be declared only before the review is submitted".into()))
        .await?;
    let record = find_review(db, assignment.id).await?;
    let round_id = find_proposal(db, proposal_id).await?.proposal.round_id;
    let event = review_event(EventKind::GrantReviewConflictDeclared, &record.review, round_id);
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(record)
}

pub async fn find_review(db: &impl ConnectionTrait, id: i64) -> AppResult<ReviewRecord> {
    Ok(ReviewRecord::from_model(found::<review::Entity>(db, id, "review").await?))
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
    let query = review::Entity::find().order_by_asc(review::Column::Id);
    let rows = grouped(db, query, review::Column::ProposalId, proposal_ids, |r| r.proposal_id).await?;
    Ok(rows.into_iter().map(|(id, rows)| (id, rows.into_iter().map(ReviewRecord::from_model).collect())).collect())
}
