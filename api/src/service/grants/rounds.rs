//! Grant rounds: creating, opening and closing them, and their reads.
#[allow(unused_imports)]
use super::*;

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

pub(super) fn parse_stages(raw: &str) -> Vec<Stage> {
    raw.split(',').filter_map(|s| Stage::try_from_value(&s.trim().to_owned()).ok()).collect()
}

pub(super) fn stage_list(stages: &[Stage]) -> String {
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

pub(super) fn validate_round(input: &mut RoundInput) -> AppResult<()> {
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
    Ok(RoundRecord::from_model(found::<round::Entity>(db, id, "grant round").await?))
}

pub async fn rounds_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<RoundRecord>> {
    let rows = rows_by_ids(db, round::Column::Id, ids).await?;
    Ok(rows.into_iter().map(RoundRecord::from_model).collect())
}

/// Rounds, the latest opening first.
pub async fn list_rounds(db: &impl ConnectionTrait, page: PageRequest<'_>) -> AppResult<Page<RoundRecord>> {
    let key = SortKey::<round::Entity>::time(round::Column::OpensAt, round::Column::Id, SortDirection::Desc);
    let page = pagination::paginate(db, round::Entity::find(), &key, page).await?;
    Ok(page.map(RoundRecord::from_model))
}

pub async fn create_round(ctx: Ctx<'_>, actor: &Actor, mut input: RoundInput) -> AppResult<RoundRecord> {
    validate_round(&mut input)?;
    let now = crate::service::now();
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
    let awarded = current.round.awarded_total_fen;
    round::Entity::update_many()
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
        .col_expr(round::Column::UpdatedAt, Expr::val(crate::service::now()))
        .filter(round::Column::Id.eq(id))
        .filter(round::Column::AwardedTotalFen.lte(input.budget_fen))
        .exec_one(&txn, || {
            AppError::Conflict(format!("the budget cannot go below the {awarded} fen already awarded").into())
        })
        .await?;
    let record = find_round(&txn, id).await?;
    let event = NewEvent::new(EventKind::GrantRoundUpdated, id)
        .payload(json!({ "budgetFen": record.round.budget_fen, "closesAt": record.round.closes_at }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(record)
}
