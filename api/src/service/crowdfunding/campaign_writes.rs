//! Campaign writes: drafting, submitting, reviewing, publishing, updating and cancelling campaigns.
#[allow(unused_imports)]
use super::*;

#[derive(Clone, Debug)]
pub struct NewCampaign {
    pub organization_id: i64,
    pub title: String,
    pub story: Option<String>,
    pub cover_url: Option<String>,
    pub goal_fen: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub beneficiaries: Option<String>,
    pub fundraising_qualification: Option<String>,
    pub filing_number: Option<String>,
    pub budget: Vec<BudgetLineInput>,
    pub created_by_account_id: Option<i64>,
}

/// `None` leaves a field as it is; `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct CampaignPatch {
    pub title: Option<String>,
    pub story: Option<String>,
    pub cover_url: Option<Option<String>>,
    pub goal_fen: Option<i64>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub beneficiaries: Option<String>,
    pub fundraising_qualification: Option<Option<String>>,
    pub filing_number: Option<Option<String>>,
    pub budget: Option<Vec<BudgetLineInput>>,
}

impl CampaignPatch {
    /// Whether the patch touches what donors and the filing rely on once a campaign is live.
    fn changes_terms(&self) -> bool {
        self.goal_fen.is_some()
            || self.starts_at.is_some()
            || self.ends_at.is_some()
            || self.fundraising_qualification.is_some()
            || self.filing_number.is_some()
            || self.budget.is_some()
    }

    /// The names of the fields the patch sets, for the audit trail.
    fn changed_fields(&self) -> Vec<&'static str> {
        crate::service::common::names_set([
            ("title", self.title.is_some()),
            ("story", self.story.is_some()),
            ("coverUrl", self.cover_url.is_some()),
            ("goalFen", self.goal_fen.is_some()),
            ("startsAt", self.starts_at.is_some()),
            ("endsAt", self.ends_at.is_some()),
            ("beneficiaries", self.beneficiaries.is_some()),
            ("fundraisingQualification", self.fundraising_qualification.is_some()),
            ("filingNumber", self.filing_number.is_some()),
            ("budget", self.budget.is_some()),
        ])
    }
}

pub(super) async fn replace_budget(
    db: &impl ConnectionTrait,
    campaign_id: i64,
    lines: Vec<(String, i64)>,
) -> AppResult<()> {
    budget_line::Entity::delete_many().filter(budget_line::Column::CampaignId.eq(campaign_id)).exec(db).await?;
    if lines.is_empty() {
        return Ok(());
    }
    let models = lines.into_iter().enumerate().map(|(i, (item, amount))| budget_line::ActiveModel {
        campaign_id: Set(campaign_id),
        position: Set(i as i32),
        item: Set(item),
        amount_fen: Set(amount),
        ..Default::default()
    });
    budget_line::Entity::insert_many(models).exec_without_returning(db).await?;
    Ok(())
}

/// Loads a campaign and checks that `viewer` runs it (its organization's members, or staff).
pub(super) async fn authorize_manage(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: i64,
) -> AppResult<campaign::Model> {
    let campaign = found::<campaign::Entity>(db, id, "campaign").await?;
    viewer.require_manage_campaigns_of(campaign.organization_id)?;
    Ok(campaign)
}

/// Command: starts a DRAFT campaign for an organization (its members, or staff).
pub async fn create_campaign(ctx: Ctx<'_>, viewer: &Viewer, input: NewCampaign) -> AppResult<CampaignRecord> {
    let account = viewer.require_account()?;
    viewer.require_manage_campaigns_of(input.organization_id)?;
    let input = NewCampaign { created_by_account_id: Some(account.id), ..input };
    as_viewer!(viewer, |actor| create(ctx, actor, input.clone()))
}

/// Command: edits a campaign (its organization's members, or staff).
pub async fn update_campaign(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    patch: CampaignPatch,
) -> AppResult<CampaignRecord> {
    authorize_manage(ctx.db, viewer, id).await?;
    as_viewer!(viewer, |actor| update(ctx, actor, id, patch.clone()))
}

/// Command: moves a campaign along its lifecycle. Submitting and cancelling are for the
/// organization's members (and staff); approving, returning and ending are the base's.
pub async fn change_campaign_status(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    action: CampaignAction,
    note: Option<String>,
) -> AppResult<CampaignRecord> {
    match action {
        CampaignAction::Submit | CampaignAction::Cancel => {
            authorize_manage(ctx.db, viewer, id).await?;
        }
        CampaignAction::Approve | CampaignAction::Reject | CampaignAction::End => viewer.require_review_campaign()?,
    }
    as_viewer!(viewer, |actor| change_status(ctx, actor, id, action, note.clone()))
}

/// Command: posts an update on a campaign's page (its organization's members, or staff).
pub async fn post_campaign_update(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    campaign_id: i64,
    title: String,
    body: String,
    published_at: Option<DateTime<Utc>>,
) -> AppResult<campaign_update::Model> {
    authorize_manage(ctx.db, viewer, campaign_id).await?;
    as_viewer!(viewer, |actor| post_update(ctx, actor, campaign_id, &title, &body, published_at))
}

pub async fn create(ctx: Ctx<'_>, actor: &Actor, input: NewCampaign) -> AppResult<CampaignRecord> {
    let db = ctx.db;
    let now = crate::service::now();
    let title = required_text("title", &input.title, 200)?;
    let story = long_text("story", input.story, 20_000)?;
    let cover_url = optional_url("coverUrl", input.cover_url)?;
    let goal_fen = validate_goal(input.goal_fen)?;
    validate_period(input.starts_at, input.ends_at)?;
    let beneficiaries = long_text("beneficiaries", input.beneficiaries, 2000)?;
    let qualification = optional_text("fundraisingQualification", input.fundraising_qualification, 500)?;
    let filing = optional_text("filingNumber", input.filing_number, 100)?;
    let budget = validate_budget(input.budget)?;
    let txn = db.begin().await?;
    if entity::organization::Entity::find_by_id(input.organization_id).one(&txn).await?.is_none() {
        return Err(AppError::bad_input("organizationId", "no such organization"));
    }
    let model = campaign::ActiveModel {
        organization_id: Set(input.organization_id),
        title: Set(title),
        story: Set(story),
        cover_url: Set(cover_url),
        goal_fen: Set(goal_fen),
        starts_at: Set(input.starts_at),
        ends_at: Set(input.ends_at),
        beneficiaries: Set(beneficiaries),
        fundraising_qualification: Set(qualification),
        filing_number: Set(filing),
        status: Set(CampaignStatus::Draft),
        review_note: Set(String::new()),
        raised_fen: Set(0),
        donation_count: Set(0),
        donor_count: Set(0),
        created_by_account_id: Set(input.created_by_account_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    replace_budget(&txn, model.id, budget).await?;
    let event = NewEvent::new(EventKind::CampaignCreated, model.id)
        .organization(Some(model.organization_id))
        .payload(json!({ "title": model.title, "goalFen": model.goal_fen }));
    let record = with_details(&txn, vec![model]).await?.into_iter().next();
    ctx.commit(txn, actor, vec![event]).await?;
    record.ok_or_else(|| AppError::Internal("created campaign vanished".into()))
}

pub async fn update(ctx: Ctx<'_>, actor: &Actor, id: i64, patch: CampaignPatch) -> AppResult<CampaignRecord> {
    let db = ctx.db;
    let now = crate::service::now();
    let changed = patch.changed_fields();
    let txn = db.begin().await?;
    let current = load(&txn, id).await?;
    match current.status {
        CampaignStatus::Draft | CampaignStatus::PendingReview => {}
        CampaignStatus::Active if !patch.changes_terms() => {}
        CampaignStatus::Active => {
            return Err(AppError::bad_input(
                "id",
                "an active campaign's goal, dates, budget, qualification and filing number are fixed; \
                 only title, story, cover and beneficiaries may change",
            ));
        }
        CampaignStatus::Ended | CampaignStatus::Cancelled => {
            return Err(AppError::bad_input("id", "an ended or cancelled campaign cannot be edited"));
        }
    }
    let starts_at = patch.starts_at.unwrap_or(current.starts_at);
    let ends_at = patch.ends_at.unwrap_or(current.ends_at);
    validate_period(starts_at, ends_at)?;
    let mut model: campaign::ActiveModel = current.clone().into();
    if let Some(title) = patch.title {
        model.title = Set(required_text("title", &title, 200)?);
    }
    if let Some(story) = patch.story {
        model.story = Set(long_text("story", Some(story), 20_000)?);
    }
    if let Some(cover) = patch.cover_url {
        model.cover_url = Set(optional_url("coverUrl", cover)?);
    }
    if let Some(goal) = patch.goal_fen {
        model.goal_fen = Set(validate_goal(goal)?);
    }
    model.starts_at = Set(starts_at);
    model.ends_at = Set(ends_at);
    if let Some(b) = patch.beneficiaries {
        model.beneficiaries = Set(long_text("beneficiaries", Some(b), 2000)?);
    }
    if let Some(q) = patch.fundraising_qualification {
        model.fundraising_qualification = Set(optional_text("fundraisingQualification", q, 500)?);
    }
    if let Some(f) = patch.filing_number {
        model.filing_number = Set(optional_text("filingNumber", f, 100)?);
    }
    let budget = patch.budget.map(validate_budget).transpose()?;
    model.updated_at = Set(now);
    let model = model.update(&txn).await?;
    if let Some(lines) = budget {
        replace_budget(&txn, id, lines).await?;
    }
    let event = NewEvent::new(EventKind::CampaignUpdated, id)
        .organization(Some(model.organization_id))
        .payload(json!({ "fields": changed }));
    let record = with_details(&txn, vec![model]).await?.into_iter().next();
    ctx.commit(txn, actor, vec![event]).await?;
    record.ok_or_else(|| AppError::Internal("updated campaign vanished".into()))
}

pub(super) fn status_name(status: CampaignStatus) -> String {
    use sea_orm::ActiveEnum;
    status.to_value()
}

pub(super) fn require_filing(c: &campaign::Model) -> AppResult<()> {
    if c.fundraising_qualification.is_none() {
        return Err(AppError::bad_input(
            "fundraisingQualification",
            "public fundraising needs the organization's public-fundraising qualification",
        ));
    }
    if c.filing_number.is_none() {
        return Err(AppError::bad_input("filingNumber", "public fundraising needs the filed plan's number"));
    }
    Ok(())
}

/// What a status change is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CampaignAction {
    Submit,
    Approve,
    Reject,
    End,
    Cancel,
}

/// Moves a campaign along its lifecycle; the update is conditional on the status checked, so
/// two concurrent changes cannot both apply.
pub async fn change_status(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    action: CampaignAction,
    note: Option<String>,
) -> AppResult<CampaignRecord> {
    use CampaignStatus::*;
    let db = ctx.db;
    let now = crate::service::now();
    let note = long_text("note", note, 2000)?;
    let txn = db.begin().await?;
    let current = load(&txn, id).await?;
    let (allowed_from, to): (&[CampaignStatus], CampaignStatus) = match action {
        CampaignAction::Submit => (&[Draft], PendingReview),
        CampaignAction::Approve => (&[PendingReview], Active),
        CampaignAction::Reject => (&[PendingReview], Draft),
        CampaignAction::End => (&[Active], Ended),
        CampaignAction::Cancel => (&[Draft, PendingReview, Active], Cancelled),
    };
    if !allowed_from.contains(&current.status) {
        return Err(AppError::bad_input(
            "id",
            format!("a {} campaign cannot become {}", status_name(current.status), status_name(to)),
        ));
    }
    if matches!(action, CampaignAction::Submit | CampaignAction::Approve) {
        require_filing(&current)?;
    }
    if action == CampaignAction::Approve && current.ends_at <= now {
        return Err(AppError::bad_input("endsAt", "the campaign's end is in the past; change the dates first"));
    }
    let mut update = campaign::Entity::update_many()
        .col_expr(campaign::Column::Status, Expr::val(to))
        .col_expr(campaign::Column::UpdatedAt, Expr::val(now));
    if matches!(action, CampaignAction::Approve | CampaignAction::Reject) {
        update = update.col_expr(campaign::Column::ReviewNote, Expr::val(note.clone()));
    }
    if action == CampaignAction::Approve {
        update = update.col_expr(campaign::Column::PublishedAt, Expr::val(Some(now)));
    }
    let kind = match action {
        CampaignAction::Submit => EventKind::CampaignSubmitted,
        CampaignAction::Approve => EventKind::CampaignApproved,
        CampaignAction::Reject => EventKind::CampaignReturned,
        CampaignAction::End => EventKind::CampaignEnded,
        CampaignAction::Cancel => EventKind::CampaignCancelled,
    };
    let event = NewEvent::new(kind, id).organization(Some(current.organization_id)).payload(json!({
        "from": status_name(current.status),
        "to": status_name(to),
        "note": note,
    }));
    if matches!(action, CampaignAction::End | CampaignAction::Cancel) {
        update = update.col_expr(campaign::Column::ClosedAt, Expr::val(Some(now)));
    }
    update
        .filter(campaign::Column::Id.eq(id))
        .filter(campaign::Column::Status.eq(current.status))
        .exec_one(&txn, || changed_meanwhile("campaign's status"))
        .await?;
    let model = load(&txn, id).await?;
    let record = with_details(&txn, vec![model]).await?.into_iter().next();
    ctx.commit(txn, actor, vec![event]).await?;
    record.ok_or_else(|| AppError::Internal("campaign vanished".into()))
}

pub async fn post_update(
    ctx: Ctx<'_>,
    actor: &Actor,
    campaign_id: i64,
    title: &str,
    body: &str,
    published_at: Option<DateTime<Utc>>,
) -> AppResult<campaign_update::Model> {
    let now = crate::service::now();
    let title = required_text("title", title, 200)?;
    let body = required_text("body", body, 20_000)?;
    let published_at = published_at.unwrap_or(now);
    let txn = ctx.db.begin().await?;
    let c = load(&txn, campaign_id).await?;
    if c.status == CampaignStatus::Cancelled {
        return Err(AppError::bad_input("campaignId", "a cancelled campaign takes no updates"));
    }
    let update = campaign_update::ActiveModel {
        campaign_id: Set(campaign_id),
        title: Set(title),
        body: Set(body),
        published_at: Set(published_at),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let event = NewEvent::new(EventKind::CampaignUpdatePosted, campaign_id)
        .organization(Some(c.organization_id))
        .payload(json!({ "updateId": update.id, "title": update.title }));
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(update)
}
