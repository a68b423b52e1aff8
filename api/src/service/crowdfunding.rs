//! Charity crowdfunding: campaigns (`DRAFT → PENDING_REVIEW → ACTIVE → ENDED/CANCELLED`),
//! recorded donations (`PLEDGED → CONFIRMED/CANCELLED`, refunds as reversing records), exact
//! totals, idempotent donating, receipts numbered per year, and the cached public views.
//!
//! Money never moves through this service: it records donations and their confirmation.
//! `campaigns.raised_fen` and `donation_count` change only by `col = col + delta` inside the
//! transaction that confirms or refunds, so concurrent writers never lose an update.
use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use entity::campaign::{self, CampaignStatus};
use entity::campaign_budget_line as budget_line;
use entity::campaign_update;
use entity::donation::{self, DisplayMode, DonationChannel, DonationStatus, HoldReason};
use entity::receipt_counter;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use serde_json::json;

use super::pagination::{self, Page, PageArgs, SortDirection, SortKey, SortValue};
use super::{Ctx, retry_transient};
use crate::auth::Viewer;
use crate::config::Limits;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};
use crate::service::validate::{optional_text, required_text};
use crate::tags;

/// One donation is at most 1,000,000 yuan: larger gifts are agreements, not web donations.
pub const MAX_DONATION_FEN: i64 = 100_000_000;
/// A campaign's goal is at most 100 million yuan.
pub const MAX_GOAL_FEN: i64 = 10_000_000_000;
pub const MAX_BUDGET_LINES: usize = 50;
pub const MAX_UPDATES_SHOWN: usize = 50;
pub const MAX_CAMPAIGN_DAYS: i64 = 3 * 366;
/// The longest date range a donor summary covers.
pub const MAX_SUMMARY_DAYS: i64 = 3 * 366;
/// Shown on the donor wall for anonymous donations.
pub const ANONYMOUS_NAME: &str = "爱心人士";

/// Cache tag of every public crowdfunding view (campaign pages, the list, donor walls).
const CACHE_TAG: &str = tags::CAMPAIGNS;

/// The calendar year at the base (Asia/Shanghai, UTC+8 all year).
pub(crate) fn year_at_base(t: DateTime<Utc>) -> i32 {
    (t + Duration::hours(8)).year()
}

/// A campaign with what it is always shown with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignRecord {
    pub campaign: campaign::Model,
    /// `None` when the read left the lines out (a list whose page does not show them).
    #[serde(default)]
    pub budget: Option<Vec<budget_line::Model>>,
}

/// What a donor sees, computed from the status, the dates and the totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DonorState {
    /// Approved, but collection has not started.
    Upcoming,
    Collecting,
    /// The goal is reached; donations are still welcome until the end.
    GoalReached,
    Ended,
}

impl CampaignRecord {
    pub fn is_published(&self) -> bool {
        self.campaign.published_at.is_some()
    }

    /// `None` while the campaign is not published.
    pub fn donor_state(&self, now: DateTime<Utc>) -> Option<DonorState> {
        let c = &self.campaign;
        if !self.is_published() {
            return None;
        }
        Some(match c.status {
            CampaignStatus::Ended | CampaignStatus::Cancelled => DonorState::Ended,
            _ if now >= c.ends_at => DonorState::Ended,
            _ if now < c.starts_at => DonorState::Upcoming,
            _ if c.raised_fen >= c.goal_fen => DonorState::GoalReached,
            _ => DonorState::Collecting,
        })
    }

    /// Whole days left until the end, rounded up; 0 once ended.
    pub fn days_left(&self, now: DateTime<Utc>) -> i64 {
        if matches!(self.campaign.status, CampaignStatus::Ended | CampaignStatus::Cancelled) {
            return 0;
        }
        let left = self.campaign.ends_at - now;
        if left <= Duration::zero() { 0 } else { (left.num_seconds() + 86_399) / 86_400 }
    }

    /// Percent of the goal raised, with two decimals (may exceed 100).
    pub fn percent_of_goal(&self) -> f64 {
        let c = &self.campaign;
        if c.goal_fen <= 0 {
            return 0.0;
        }
        ((Ord::max(c.raised_fen, 0) as f64) * 10_000.0 / c.goal_fen as f64).floor() / 100.0
    }
}

// ---------------------------------------------------------------- validation

fn long_text(field: &str, value: Option<String>, max: usize) -> AppResult<String> {
    let v = value.unwrap_or_default().trim().to_owned();
    if v.chars().count() > max {
        return Err(AppError::bad_input(field, format!("{field} is at most {max} characters")));
    }
    Ok(v)
}

fn optional_url(field: &str, value: Option<String>) -> AppResult<Option<String>> {
    let v = optional_text(field, value, 500)?;
    if let Some(url) = &v {
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
            return Err(AppError::bad_input(field, format!("{field} must be an http(s) URL")));
        }
    }
    Ok(v)
}

fn validate_goal(goal_fen: i64) -> AppResult<i64> {
    if goal_fen <= 0 || goal_fen > MAX_GOAL_FEN {
        return Err(AppError::bad_input("goalFen", format!("goalFen is between 1 and {MAX_GOAL_FEN} fen")));
    }
    Ok(goal_fen)
}

fn validate_period(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> AppResult<()> {
    if ends_at <= starts_at {
        return Err(AppError::bad_input("endsAt", "endsAt must be after startsAt"));
    }
    if ends_at - starts_at > Duration::days(MAX_CAMPAIGN_DAYS) {
        return Err(AppError::bad_input("endsAt", "a campaign runs for at most three years"));
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct BudgetLineInput {
    pub item: String,
    pub amount_fen: i64,
}

fn validate_budget(lines: Vec<BudgetLineInput>) -> AppResult<Vec<(String, i64)>> {
    if lines.len() > MAX_BUDGET_LINES {
        return Err(AppError::bad_input("budget", format!("at most {MAX_BUDGET_LINES} budget lines")));
    }
    lines
        .into_iter()
        .map(|l| {
            let item = required_text("budget.item", &l.item, 200)?;
            if l.amount_fen <= 0 || l.amount_fen > MAX_GOAL_FEN {
                return Err(AppError::bad_input("budget.amountFen", "a budget line's amount must be positive"));
            }
            Ok((item, l.amount_fen))
        })
        .collect()
}

/// Masks a name for display: 王小明 → 王*明, 欧阳小明 → 欧**明, 王明 → 王*.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.len() {
        0 => ANONYMOUS_NAME.to_owned(),
        1 => "*".to_owned(),
        2 => format!("{}*", chars[0]),
        n => {
            let mut s = String::new();
            s.push(chars[0]);
            s.extend(std::iter::repeat_n('*', n - 2));
            s.push(chars[n - 1]);
            s
        }
    }
}

// ---------------------------------------------------------------- campaign reads

async fn with_details(db: &impl ConnectionTrait, campaigns: Vec<campaign::Model>) -> AppResult<Vec<CampaignRecord>> {
    let ids: Vec<i64> = campaigns.iter().map(|c| c.id).collect();
    let mut budgets = budgets_of(db, &ids).await?;
    Ok(campaigns
        .into_iter()
        .map(|c| CampaignRecord { budget: Some(budgets.remove(&c.id).unwrap_or_default()), campaign: c })
        .collect())
}

/// Budget lines of many campaigns in one statement, in their order.
pub async fn budgets_of(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, Vec<budget_line::Model>>> {
    let mut budgets: HashMap<i64, Vec<budget_line::Model>> = HashMap::new();
    if !ids.is_empty() {
        let lines = budget_line::Entity::find()
            .filter(budget_line::Column::CampaignId.is_in(ids.iter().copied()))
            .order_by_asc(budget_line::Column::Position)
            .order_by_asc(budget_line::Column::Id)
            .all(db)
            .await?;
        for line in lines {
            budgets.entry(line.campaign_id).or_default().push(line);
        }
    }
    Ok(budgets)
}

pub async fn find_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<CampaignRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = campaign::Entity::find().filter(campaign::Column::Id.is_in(ids.iter().copied())).all(db).await?;
    with_details(db, rows).await
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: i64) -> AppResult<Option<CampaignRecord>> {
    Ok(find_by_ids(db, &[id]).await?.into_iter().next())
}

/// A campaign's row, without its budget lines (its totals, say).
pub async fn campaign_row(db: &impl ConnectionTrait, id: i64) -> AppResult<campaign::Model> {
    load(db, id).await
}

pub(crate) async fn load(db: &impl ConnectionTrait, id: i64) -> AppResult<campaign::Model> {
    campaign::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::NotFound("campaign".into()))
}

/// Updates of many campaigns, newest first, at most `MAX_UPDATES_SHOWN` each.
pub async fn updates_of(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> AppResult<HashMap<i64, Vec<campaign_update::Model>>> {
    let mut map: HashMap<i64, Vec<campaign_update::Model>> = HashMap::new();
    if ids.is_empty() {
        return Ok(map);
    }
    let rows = campaign_update::Entity::find()
        .filter(campaign_update::Column::CampaignId.is_in(ids.iter().copied()))
        .filter(campaign_update::Column::PublishedAt.lte(super::now()))
        .order_by_desc(campaign_update::Column::PublishedAt)
        .order_by_desc(campaign_update::Column::Id)
        .all(db)
        .await?;
    for row in rows {
        let list = map.entry(row.campaign_id).or_default();
        if list.len() < MAX_UPDATES_SHOWN {
            list.push(row);
        }
    }
    Ok(map)
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct CampaignFilter {
    pub organization_id: Option<i64>,
    /// Any of these statuses.
    pub statuses: Vec<CampaignStatus>,
    /// Substring of the title.
    pub search: Option<String>,
    /// Include campaigns never published (drafts, pending review). The caller checks the
    /// viewer may see them.
    pub include_unpublished: bool,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum CampaignSort {
    #[default]
    CreatedAt,
    EndsAt,
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: &CampaignFilter,
    sort: CampaignSort,
    direction: SortDirection,
    args: &PageArgs,
    limits: &Limits,
    with_total: bool,
) -> AppResult<Page<CampaignRecord>> {
    use campaign::Column as C;
    let mut select = campaign::Entity::find();
    if !filter.include_unpublished {
        select = select.filter(C::PublishedAt.is_not_null());
    }
    if let Some(org) = filter.organization_id {
        select = select.filter(C::OrganizationId.eq(org));
    }
    if !filter.statuses.is_empty() {
        select = select.filter(C::Status.is_in(filter.statuses.iter().copied()));
    }
    if let Some(search) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if search.chars().count() > 100 {
            return Err(AppError::bad_input("search", "search is at most 100 characters"));
        }
        let pattern = pagination::like_contains(&search.to_lowercase());
        select = select.filter(Expr::expr(Func::lower(Expr::col(C::Title))).like(LikeExpr::new(pattern).escape('\\')));
    }
    let key: SortKey<campaign::Entity> = match sort {
        CampaignSort::CreatedAt => SortKey {
            column: C::CreatedAt,
            id: C::Id,
            direction,
            value_of: |m| (SortValue::Time(m.created_at), m.id),
            sample: SortValue::Time(DateTime::UNIX_EPOCH),
        },
        CampaignSort::EndsAt => SortKey {
            column: C::EndsAt,
            id: C::Id,
            direction,
            value_of: |m| (SortValue::Time(m.ends_at), m.id),
            sample: SortValue::Time(DateTime::UNIX_EPOCH),
        },
    };
    let page = pagination::paginate(db, select, &key, args, limits, with_total).await?;
    let (cursors, rows): (Vec<String>, Vec<campaign::Model>) = page.items.into_iter().unzip();
    // The budget lines only when the page shows them (`Crowdfunding::budgets`).
    let records = rows.into_iter().map(|campaign| CampaignRecord { campaign, budget: None });
    Ok(Page {
        items: cursors.into_iter().zip(records).collect(),
        has_next_page: page.has_next_page,
        has_previous_page: page.has_previous_page,
        total_count: page.total_count,
    })
}

// ---------------------------------------------------------------- campaign writes

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
        [
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
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

async fn replace_budget(db: &impl ConnectionTrait, campaign_id: i64, lines: Vec<(String, i64)>) -> AppResult<()> {
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
async fn authorize_manage(db: &impl ConnectionTrait, viewer: &Viewer, id: i64) -> AppResult<campaign::Model> {
    let campaign =
        campaign::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::NotFound("campaign".into()))?;
    viewer.require_manage_campaigns_of(campaign.organization_id)?;
    Ok(campaign)
}

/// Command: starts a DRAFT campaign for an organization (its members, or staff).
pub async fn create_campaign(ctx: Ctx<'_>, viewer: &Viewer, input: NewCampaign) -> AppResult<CampaignRecord> {
    let account = viewer.require_account()?;
    viewer.require_manage_campaigns_of(input.organization_id)?;
    let input = NewCampaign { created_by_account_id: Some(account.id), ..input };
    let actor = Actor::of(viewer);
    retry_transient(|| create(ctx, &actor, input.clone())).await
}

/// Command: edits a campaign (its organization's members, or staff).
pub async fn update_campaign(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    patch: CampaignPatch,
) -> AppResult<CampaignRecord> {
    authorize_manage(ctx.db, viewer, id).await?;
    let actor = Actor::of(viewer);
    retry_transient(|| update(ctx, &actor, id, patch.clone())).await
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
    let actor = Actor::of(viewer);
    retry_transient(|| change_status(ctx, &actor, id, action, note.clone())).await
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
    let actor = Actor::of(viewer);
    retry_transient(|| post_update(ctx, &actor, campaign_id, &title, &body, published_at)).await
}

pub async fn create(ctx: Ctx<'_>, actor: &Actor, input: NewCampaign) -> AppResult<CampaignRecord> {
    let db = ctx.db;
    let now = super::now();
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
        published_at: Set(None),
        closed_at: Set(None),
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
    let now = super::now();
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

fn status_name(status: CampaignStatus) -> String {
    use sea_orm::ActiveEnum;
    status.to_value()
}

fn require_filing(c: &campaign::Model) -> AppResult<()> {
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
    let now = super::now();
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
    let updated = update
        .filter(campaign::Column::Id.eq(id))
        .filter(campaign::Column::Status.eq(current.status))
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(AppError::Conflict("the campaign's status changed meanwhile; reload and retry".into()));
    }
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
    let now = super::now();
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

// ---------------------------------------------------------------- donations

/// Who records a donation: an account giving as itself, a partner recording a guest, or
/// staff recording a guest's offline gift (bank transfer, cash).
#[derive(Clone, Debug)]
pub enum Donor {
    Account { id: i64, display_name: String },
    Partner { key_id: i64 },
    StaffForGuest { staff_account_id: i64 },
}

impl Donor {
    fn scope(&self) -> String {
        match self {
            Donor::Account { id, .. } => format!("account:{id}"),
            Donor::Partner { key_id } => format!("partner:{key_id}"),
            Donor::StaffForGuest { staff_account_id } => format!("staff:{staff_account_id}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewDonation {
    pub campaign_id: i64,
    pub amount_fen: i64,
    pub channel: DonationChannel,
    pub external_reference: Option<String>,
    /// For accounts: how to show them (default their display name). For guests: required
    /// unless anonymous.
    pub donor_name: Option<String>,
    pub display_mode: DisplayMode,
    pub message: Option<String>,
    pub client_key: String,
}

/// What a donation is about, hashed to tell a replay from a reuse of its client key.
fn content_digest(d: &NewDonation, donor_name: &str) -> String {
    use sea_orm::ActiveEnum;
    let content = serde_json::json!([
        d.campaign_id,
        d.amount_fen,
        d.channel.to_value(),
        d.external_reference,
        donor_name,
        d.display_mode.to_value(),
        d.message.as_deref().map(str::trim).unwrap_or_default(),
    ]);
    super::identity::sha256_hex(&content.to_string())
}

async fn find_by_client_key(db: &impl ConnectionTrait, scope: &str, key: &str) -> AppResult<Option<donation::Model>> {
    Ok(donation::Entity::find()
        .filter(donation::Column::ClientScope.eq(scope))
        .filter(donation::Column::ClientKey.eq(key))
        .one(db)
        .await?)
}

fn replay_or_conflict(existing: donation::Model, digest: &str) -> AppResult<donation::Model> {
    if existing.content_digest == digest {
        Ok(existing)
    } else {
        Err(AppError::Conflict(
            "this clientKey was already used for a different donation; use a new key for a new donation".into(),
        ))
    }
}

/// Command: records a pledge. Signed-in accounts give as themselves; staff with
/// `record_for_guest` record a guest's offline gift; partner keys with DONATE record guests.
pub async fn donate_as(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    record_for_guest: bool,
    input: NewDonation,
    contact: super::receipts::GuestContact,
) -> AppResult<donation::Model> {
    viewer.require_donate()?;
    let donor = match (&viewer.account, &viewer.partner) {
        (Some(a), _) if record_for_guest => {
            viewer.require_record_guest_donation()?;
            Donor::StaffForGuest { staff_account_id: a.id }
        }
        (Some(a), _) => Donor::Account { id: a.id, display_name: a.display_name.clone() },
        (None, Some(p)) => Donor::Partner { key_id: p.key_id },
        (None, None) => return Err(AppError::Unauthenticated),
    };
    let actor = Actor::of(viewer);
    retry_transient(|| donate_with_contact(ctx, &actor, &donor, input.clone(), &contact)).await
}

/// Command: confirms a pledge once its money arrived (staff or a RECONCILE key).
pub async fn confirm_donation(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    external_reference: Option<String>,
) -> AppResult<donation::Model> {
    viewer.require_reconcile_donations()?;
    let actor = Actor::of(viewer);
    retry_transient(|| confirm(ctx, &actor, id, external_reference.clone())).await
}

/// Command: cancels a pledge (whoever reconciles, or the donor who made it).
pub async fn cancel_donation(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<donation::Model> {
    let current = match find_donation(ctx.db, id).await {
        Ok(d) => d,
        // Do not tell callers who may cancel nothing whether a donation exists.
        Err(e) => {
            viewer.require_cancel_donation(None)?;
            return Err(e);
        }
    };
    viewer.require_cancel_donation(current.donor_account_id)?;
    let actor = Actor::of(viewer);
    retry_transient(|| cancel(ctx, &actor, id)).await
}

/// Command: refunds a confirmed or held donation, in full or in part (staff or a RECONCILE key).
pub async fn refund_donation(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    amount_fen: Option<i64>,
    reason: Option<String>,
) -> AppResult<(donation::Model, donation::Model)> {
    viewer.require_reconcile_donations()?;
    let actor = Actor::of(viewer);
    retry_transient(|| refund(ctx, &actor, id, amount_fen, reason.clone())).await
}

/// Command: records that money for donation `id` arrived (staff or a RECONCILE key): a live
/// pledge is confirmed; money for an expired or cancelled pledge or a cancelled campaign is
/// held for staff; a repeat changes nothing.
pub async fn record_donation_payment(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    external_reference: Option<String>,
) -> AppResult<(donation::Model, PaymentOutcome)> {
    viewer.require_reconcile_donations()?;
    let actor = Actor::of(viewer);
    retry_transient(|| receive(ctx, &actor, id, external_reference.clone(), Arrival::Payment)).await
}

/// Command: counts a held late payment after all (staff or a RECONCILE key).
pub async fn accept_late_payment(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<donation::Model> {
    viewer.require_reconcile_donations()?;
    let actor = Actor::of(viewer);
    retry_transient(|| accept_late(ctx, &actor, id)).await
}

pub(crate) fn donation_event(kind: EventKind, d: &donation::Model) -> NewEvent {
    NewEvent::new(kind, d.id)
        .account(d.donor_account_id)
        .payload(json!({ "campaignId": d.campaign_id, "amountFen": d.amount_fen }))
}

/// Records a pledge. The same client key with the same content returns the original
/// donation (a network retry, which writes nothing); with different content it is a CONFLICT.
pub async fn donate(ctx: Ctx<'_>, actor: &Actor, donor: &Donor, input: NewDonation) -> AppResult<donation::Model> {
    donate_with_contact(ctx, actor, donor, input, &Default::default()).await
}

/// Records a pledge, a guest's with the phone or email they are named by (kept only as
/// digests, see `service::receipts`): with it the guest finds their receipts later.
pub async fn donate_with_contact(
    ctx: Ctx<'_>,
    actor: &Actor,
    donor: &Donor,
    input: NewDonation,
    contact: &super::receipts::GuestContact,
) -> AppResult<donation::Model> {
    let db = ctx.db;
    if matches!(donor, Donor::Account { .. }) && !contact.is_empty() {
        return Err(AppError::bad_input(
            "guestPhone",
            "a guest's contact is for guests' donations; accounts find theirs under myDonations",
        ));
    }
    let (phone_digest, email_digest) = super::receipts::digests_of(ctx.settings, contact)?;
    let now = super::now();
    let client_key = input.client_key.trim().to_owned();
    if client_key.is_empty() || client_key.len() > 100 || client_key.chars().any(char::is_control) {
        return Err(AppError::bad_input("clientKey", "clientKey is 1 to 100 printable characters"));
    }
    if input.amount_fen <= 0 || input.amount_fen > MAX_DONATION_FEN {
        return Err(AppError::bad_input(
            "amountFen",
            format!("amountFen is between 1 and {MAX_DONATION_FEN} fen (1,000,000 yuan)"),
        ));
    }
    let external_reference = optional_text("externalReference", input.external_reference.clone(), 200)?;
    let message = long_text("message", input.message.clone(), 500)?;
    let named = optional_text("donorName", input.donor_name.clone(), 100)?;
    let donor_name = match (donor, named) {
        (_, Some(name)) => name,
        (Donor::Account { display_name, .. }, None) => display_name.clone(),
        (Donor::Partner { .. } | Donor::StaffForGuest { .. }, None) if input.display_mode == DisplayMode::Anonymous => {
            String::new()
        }
        (Donor::Partner { .. } | Donor::StaffForGuest { .. }, None) => {
            return Err(AppError::bad_input("donorName", "a guest's donation needs the donor's name unless anonymous"));
        }
    };
    let scope = donor.scope();
    let mut digest =
        content_digest(&NewDonation { external_reference: external_reference.clone(), ..input.clone() }, &donor_name);
    if phone_digest.is_some() || email_digest.is_some() {
        // A replay names the same guest; the digests are keyed, so this reveals nothing.
        digest = super::identity::sha256_hex(&format!("{digest}:{phone_digest:?}:{email_digest:?}"));
    }
    let txn = db.begin().await?;
    let c = campaign::Entity::find_by_id(input.campaign_id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::bad_input("campaignId", "no such campaign"))
        .and_then(|c| accepting_donations(&c, now).map(|()| c));
    // A replay answers with the original even after the campaign ended. Looked up only when
    // the gift is refused or its key is taken (below): a new gift costs no extra round trip.
    let c = match c {
        Ok(c) => c,
        Err(refused) => {
            txn.rollback().await.ok();
            return match find_by_client_key(db, &scope, &client_key).await? {
                Some(existing) => replay_or_conflict(existing, &digest),
                None => Err(refused),
            };
        }
    };
    let (account_id, partner_id) = match donor {
        Donor::Account { id, .. } => (Some(*id), None),
        Donor::Partner { key_id } => (None, Some(*key_id)),
        Donor::StaffForGuest { .. } => (None, None),
    };
    let inserted = donation::ActiveModel {
        campaign_id: Set(c.id),
        amount_fen: Set(input.amount_fen),
        channel: Set(input.channel),
        external_reference: Set(external_reference),
        donor_account_id: Set(account_id),
        partner_key_id: Set(partner_id),
        donor_name: Set(donor_name),
        display_mode: Set(input.display_mode),
        message: Set(message),
        status: Set(DonationStatus::Pledged),
        client_scope: Set(Some(scope.clone())),
        client_key: Set(Some(client_key.clone())),
        content_digest: Set(digest.clone()),
        refund_of_id: Set(None),
        refunded_at: Set(None),
        receipt_number: Set(None),
        confirmed_at: Set(None),
        cancelled_at: Set(None),
        created_at: Set(now),
        guest_phone_digest: Set(phone_digest.clone()),
        guest_email_digest: Set(email_digest.clone()),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    match inserted {
        Ok(model) => {
            let mut event = donation_event(EventKind::DonationPledged, &model);
            event.organization_id = Some(c.organization_id);
            ctx.commit(txn, actor, vec![event]).await?;
            Ok(model)
        }
        Err(err) if matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
            // A concurrent request with the same key won the race: answer as a replay.
            txn.rollback().await.ok();
            match find_by_client_key(db, &scope, &client_key).await? {
                Some(existing) => replay_or_conflict(existing, &digest),
                None => Err(err.into()),
            }
        }
        Err(err) => Err(err.into()),
    }
}

pub(crate) fn accepting_donations(c: &campaign::Model, now: DateTime<Utc>) -> AppResult<()> {
    let reason = match c.status {
        CampaignStatus::Active if now < c.starts_at => Some("has not started yet".to_owned()),
        CampaignStatus::Active if now >= c.ends_at => Some("has ended".to_owned()),
        CampaignStatus::Active => None,
        CampaignStatus::Ended => Some("has ended".to_owned()),
        CampaignStatus::Cancelled => Some("was cancelled".to_owned()),
        CampaignStatus::Draft | CampaignStatus::PendingReview => Some("is not published".to_owned()),
    };
    match reason {
        None => Ok(()),
        Some(r) => Err(AppError::bad_input("campaignId", format!("this campaign is not accepting donations: it {r}"))),
    }
}

pub async fn donations_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<donation::Model>> {
    Ok(donation::Entity::find().filter(donation::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}

pub async fn find_donation(db: &impl ConnectionTrait, id: i64) -> AppResult<donation::Model> {
    donation::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::NotFound("donation".into()))
}

/// Adds `delta_fen`, `delta_count` and `delta_donors` to a campaign's totals in place (never
/// read-modify-write). On PostgreSQL the update locks the campaign row until commit, which
/// serializes everything that changes one campaign's totals.
pub(crate) async fn add_to_totals(
    db: &impl ConnectionTrait,
    campaign_id: i64,
    delta_fen: i64,
    delta_count: i64,
    delta_donors: i64,
) -> AppResult<()> {
    use campaign::Column as C;
    let mut update = campaign::Entity::update_many()
        .col_expr(C::RaisedFen, Expr::col(C::RaisedFen).add(delta_fen))
        .col_expr(C::DonationCount, Expr::col(C::DonationCount).add(delta_count));
    if delta_donors != 0 {
        update = update.col_expr(C::DonorCount, Expr::col(C::DonorCount).add(delta_donors));
    }
    update.filter(C::Id.eq(campaign_id)).exec(db).await?;
    Ok(())
}

/// Whether `account` has a confirmed, unrefunded donation to `campaign_id` other than
/// `except`. Called after `add_to_totals` in the same transaction: the campaign row lock is
/// held then, and at READ COMMITTED this statement sees every change committed by the
/// transactions that held it before, so two confirmations by one donor count them once.
async fn gives_otherwise(db: &impl ConnectionTrait, campaign_id: i64, account: i64, except: i64) -> AppResult<bool> {
    let other = donation::Entity::find()
        .select_only()
        .column(donation::Column::Id)
        .filter(donation::Column::DonorAccountId.eq(account))
        .filter(donation::Column::CampaignId.eq(campaign_id))
        .filter(donation::Column::Status.eq(DonationStatus::Confirmed))
        .filter(donation::Column::RefundedAt.is_null())
        .filter(donation::Column::Id.ne(except))
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(other.is_some())
}

/// Keeps `donor_count` right when `d` starts (`sign` 1) or stops (`sign` -1) counting: a
/// guest donation is a donor of its own (already in `add_to_totals`), an account counts
/// while it has at least one counting donation.
async fn adjust_donor_count(db: &impl ConnectionTrait, d: &donation::Model, sign: i64) -> AppResult<()> {
    let Some(account) = d.donor_account_id else { return Ok(()) };
    if !gives_otherwise(db, d.campaign_id, account, d.id).await? {
        add_to_totals(db, d.campaign_id, 0, 0, sign).await?;
    }
    Ok(())
}

/// How `add_to_totals` changes the donor count for `d` directly (guests only).
pub(crate) fn guest_donor(d: &donation::Model) -> i64 {
    i64::from(d.donor_account_id.is_none())
}

/// The next receipt number of `year`, from a counter row incremented in place: numbers are
/// sequential and, since the increment commits or rolls back with its confirmation, gapless.
pub(crate) async fn ensure_receipt_counter(db: &impl ConnectionTrait, year: i32) -> AppResult<()> {
    receipt_counter::Entity::insert(receipt_counter::ActiveModel { year: Set(year), last_number: Set(0) })
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Why money is recorded: staff confirming a pledge (`confirmDonation`, refused for a
/// cancelled campaign) or a payment that arrived (a statement line, a platform notification,
/// `recordDonationPayment`), which is recorded whatever the campaign's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    Confirm,
    Payment,
}

/// What recording money for a donation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// It counts from now on, with a receipt number.
    Confirmed,
    /// The money is recorded but held for staff (see the donation's `hold_reason`).
    Held(HoldReason),
    /// The money was recorded before (a repeated statement line or notification): nothing changed.
    AlreadyRecorded,
}

/// Whether a pledge's time to be paid has run out. Exact whether or not the expiry sweep has
/// marked it yet: the status says PLEDGED until the sweep runs, the clock does not wait.
pub fn pledge_expired(d: &donation::Model, ttl: std::time::Duration, now: DateTime<Utc>) -> bool {
    match d.status {
        DonationStatus::Expired => true,
        DonationStatus::Pledged => Duration::from_std(ttl).is_ok_and(|ttl| d.created_at + ttl <= now),
        _ => false,
    }
}

/// The status a donation has now: a pledge past its TTL is EXPIRED even before the sweep.
pub fn effective_status(d: &donation::Model, ttl: std::time::Duration, now: DateTime<Utc>) -> DonationStatus {
    if pledge_expired(d, ttl, now) { DonationStatus::Expired } else { d.status }
}

pub(crate) async fn lock_donation(db: &impl ConnectionTrait, id: i64) -> AppResult<donation::Model> {
    donation::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound("donation".into()))
}

/// Confirms a pledge once its money arrived: it counts in the totals from now on and gets
/// a receipt number. A pledge past its TTL takes the late-payment path (recorded, held for
/// staff); a pledge of a cancelled campaign is refused with `CONFLICT` / `CAMPAIGN_CANCELLED`.
pub async fn confirm(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    external_reference: Option<String>,
) -> AppResult<donation::Model> {
    Ok(receive(ctx, actor, id, external_reference, Arrival::Confirm).await?.0)
}

/// Records that the money of donation `id` arrived, in one transaction: a live pledge is
/// confirmed; money for an expired or cancelled pledge, or for a cancelled campaign, is
/// recorded as `RECEIVED` with its hold reason and counts nowhere. A repeated payment changes
/// nothing. The donation row is locked first, so of concurrent arrivals one records.
pub async fn receive(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    external_reference: Option<String>,
    arrival: Arrival,
) -> AppResult<(donation::Model, PaymentOutcome)> {
    let external_reference = optional_text("externalReference", external_reference, 200)?;
    let txn = ctx.db.begin().await?;
    let (model, outcome, appended) = receive_in(&txn, ctx, actor, id, external_reference, arrival).await?;
    ctx.finish(txn, appended).await?;
    Ok((model, outcome))
}

/// `receive` inside a caller's transaction (statement imports apply many in one).
pub(crate) async fn receive_in(
    txn: &sea_orm::DatabaseTransaction,
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    external_reference: Option<String>,
    arrival: Arrival,
) -> AppResult<(donation::Model, PaymentOutcome, crate::events::Appended)> {
    let now = super::now();
    let current = lock_donation(txn, id).await?;
    let not_confirmable = |d: &donation::Model| {
        AppError::bad_input(
            "id",
            format!(
                "only a PLEDGED donation can be confirmed; this one is {}",
                donation_status_name(effective_status(d, ctx.settings.pledge_ttl, now))
            ),
        )
    };
    match (current.status, arrival) {
        (DonationStatus::Confirmed | DonationStatus::Received, Arrival::Payment) => {
            return Ok((current, PaymentOutcome::AlreadyRecorded, crate::events::Appended::default()));
        }
        (DonationStatus::Pledged | DonationStatus::Expired, _) | (DonationStatus::Cancelled, Arrival::Payment) => {}
        _ => return Err(not_confirmable(&current)),
    }
    let c = load(txn, current.campaign_id).await?;
    let expired = pledge_expired(&current, ctx.settings.pledge_ttl, now);
    let hold = if c.status == CampaignStatus::Cancelled {
        if arrival == Arrival::Confirm {
            return Err(AppError::conflict(
                "CAMPAIGN_CANCELLED",
                "the campaign was cancelled: its pledges cannot be confirmed; money that arrives for them is \
                 held for a refund",
            ));
        }
        Some(HoldReason::CampaignCancelled)
    } else if current.status == DonationStatus::Cancelled {
        Some(HoldReason::PledgeCancelled)
    } else if expired {
        Some(HoldReason::PledgeExpired)
    } else {
        None
    };
    let reference = external_reference.or(current.external_reference.clone());
    if let Some(reason) = hold {
        let expired_at = if expired { current.expired_at.or(Some(now)) } else { current.expired_at };
        donation::Entity::update_many()
            .col_expr(donation::Column::Status, Expr::val(DonationStatus::Received))
            .col_expr(donation::Column::HoldReason, Expr::val(Some(reason)))
            .col_expr(donation::Column::ReceivedAt, Expr::val(Some(now)))
            .col_expr(donation::Column::ExpiredAt, Expr::val(expired_at))
            .col_expr(donation::Column::ExternalReference, Expr::val(reference.clone()))
            .filter(donation::Column::Id.eq(id))
            .exec(txn)
            .await?;
        let model = donation::Model {
            status: DonationStatus::Received,
            hold_reason: Some(reason),
            received_at: Some(now),
            expired_at,
            external_reference: reference,
            ..current
        };
        let event = donation_event(EventKind::DonationReceived, &model).organization(Some(c.organization_id)).payload(
            json!({ "campaignId": model.campaign_id, "amountFen": model.amount_fen, "holdReason": hold_reason_name(reason) }),
        );
        let appended = crate::events::log::append(txn, actor, vec![event]).await?;
        return Ok((model, PaymentOutcome::Held(reason), appended));
    }
    let (model, appended) = count_in(txn, actor, current, now, reference, DonationStatus::Pledged).await?;
    Ok((model, PaymentOutcome::Confirmed, appended))
}

/// Makes `current` count: CONFIRMED, added to the campaign's totals, with the next receipt
/// number of the year. Conditional on the status being `from`.
async fn count_in(
    txn: &sea_orm::DatabaseTransaction,
    actor: &Actor,
    current: donation::Model,
    now: DateTime<Utc>,
    reference: Option<String>,
    from: DonationStatus,
) -> AppResult<(donation::Model, crate::events::Appended)> {
    let id = current.id;
    let year = year_at_base(now);
    // Conditional on the status: of two concurrent confirmations, one applies.
    let updated = donation::Entity::update_many()
        .col_expr(donation::Column::Status, Expr::val(DonationStatus::Confirmed))
        .col_expr(donation::Column::ConfirmedAt, Expr::val(Some(now)))
        .col_expr(donation::Column::ReceivedAt, Expr::val(Some(current.received_at.unwrap_or(now))))
        .col_expr(donation::Column::HoldReason, Expr::val(Option::<HoldReason>::None))
        .col_expr(donation::Column::ExternalReference, Expr::val(reference.clone()))
        .filter(donation::Column::Id.eq(id))
        .filter(donation::Column::Status.eq(from))
        .exec(txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(AppError::Conflict("the donation changed meanwhile; reload and retry".into()));
    }
    // The event before the shared rows, so it adds nothing to the time they are held.
    let appended =
        crate::events::log::append(txn, actor, vec![donation_event(EventKind::DonationConfirmed, &current)]).await?;
    // The shared rows last, so they are held for as short a time as possible: the campaign's
    // (every gift to it waits), then the year's receipt counter (every confirmation waits).
    // Always in this order, so confirmations never wait for each other in a cycle.
    add_to_totals(txn, current.campaign_id, current.amount_fen, 1, guest_donor(&current)).await?;
    let receipt = count_donor_and_number(txn, &current, year).await?;
    // What the row now holds, without reading it again.
    let model = donation::Model {
        status: DonationStatus::Confirmed,
        confirmed_at: Some(now),
        received_at: Some(current.received_at.unwrap_or(now)),
        hold_reason: None,
        external_reference: reference,
        receipt_number: Some(receipt),
        ..current
    };
    Ok((model, appended))
}

/// The rest of a confirmation once `add_to_totals` holds the campaign row: counts an account
/// as a donor unless it already has another counting donation to the campaign (the check runs
/// after the lock was taken, so at READ COMMITTED it sees every earlier holder's commit), takes
/// the year's next receipt number (creating the counter row if needed) and writes it on the
/// donation. On PostgreSQL this is one statement, so the campaign row is held for it and the
/// commit only (it was four round trips); SQLite has one writer anyway and runs three.
async fn count_donor_and_number(
    txn: &sea_orm::DatabaseTransaction,
    d: &donation::Model,
    year: i32,
) -> AppResult<String> {
    use sea_orm::{ActiveEnum, DatabaseBackend, Statement};
    let backend = txn.get_database_backend();
    let confirmed = DonationStatus::Confirmed.to_value();
    let no_number = || AppError::Internal("no receipt counter".into());
    let number = |n: i64| format!("{year}-{n:06}");
    if backend == DatabaseBackend::Postgres {
        let sql = "WITH donor AS (UPDATE campaigns SET donor_count = donor_count + 1 \
                WHERE id = $1 AND $2::bigint IS NOT NULL AND NOT EXISTS (SELECT 1 FROM donations o \
                  WHERE o.donor_account_id = $2 AND o.campaign_id = $1 AND o.status = $3 \
                    AND o.refunded_at IS NULL AND o.id <> $4)), \
              counter AS (INSERT INTO receipt_counters (year, last_number) VALUES ($5, 1) \
                ON CONFLICT (year) DO UPDATE SET last_number = receipt_counters.last_number + 1 \
                RETURNING last_number) \
            UPDATE donations SET receipt_number = $6 || CASE WHEN counter.last_number < 1000000 \
                THEN lpad(counter.last_number::text, 6, '0') ELSE counter.last_number::text END \
              FROM counter WHERE donations.id = $4 RETURNING counter.last_number";
        let values: Vec<sea_orm::Value> = vec![
            d.campaign_id.into(),
            d.donor_account_id.into(),
            confirmed.into(),
            d.id.into(),
            year.into(),
            format!("{year}-").into(),
        ];
        let row =
            txn.query_one_raw(Statement::from_sql_and_values(backend, sql, values)).await?.ok_or_else(no_number)?;
        return Ok(number(row.try_get("", "last_number")?));
    }
    if let Some(account) = d.donor_account_id {
        let sql = "UPDATE campaigns SET donor_count = donor_count + 1 WHERE id = ?1 AND NOT EXISTS \
            (SELECT 1 FROM donations o WHERE o.donor_account_id = ?2 AND o.campaign_id = ?1 AND o.status = ?3 \
              AND o.refunded_at IS NULL AND o.id <> ?4)";
        let values: Vec<sea_orm::Value> = vec![d.campaign_id.into(), account.into(), confirmed.into(), d.id.into()];
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    let sql = "INSERT INTO receipt_counters (year, last_number) VALUES (?1, 1) \
        ON CONFLICT (year) DO UPDATE SET last_number = last_number + 1 RETURNING last_number";
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(backend, sql, vec![year.into()]))
        .await?
        .ok_or_else(no_number)?;
    let receipt = number(row.try_get("", "last_number")?);
    donation::Entity::update_many()
        .col_expr(donation::Column::ReceiptNumber, Expr::val(Some(receipt.clone())))
        .filter(donation::Column::Id.eq(d.id))
        .exec(txn)
        .await?;
    Ok(receipt)
}

pub fn hold_reason_name(reason: HoldReason) -> String {
    use sea_orm::ActiveEnum;
    reason.to_value()
}

/// Counts a held late payment after all (its pledge expired or was cancelled, the money came
/// and the donor still wants to give): CONFIRMED with a receipt. Never for a cancelled campaign.
pub async fn accept_late(ctx: Ctx<'_>, actor: &Actor, id: i64) -> AppResult<donation::Model> {
    let now = super::now();
    let txn = ctx.db.begin().await?;
    let current = lock_donation(&txn, id).await?;
    let late = matches!(current.hold_reason, Some(HoldReason::PledgeExpired | HoldReason::PledgeCancelled));
    if current.status != DonationStatus::Received || !late || current.refunded_fen != 0 {
        return Err(AppError::refused(
            "NOT_A_LATE_PAYMENT",
            "only money held as a late payment (its pledge expired or was cancelled) and not refunded can be accepted",
        ));
    }
    let c = load(&txn, current.campaign_id).await?;
    if c.status == CampaignStatus::Cancelled {
        return Err(AppError::conflict("CAMPAIGN_CANCELLED", "the campaign was cancelled: refund this payment"));
    }
    let reference = current.external_reference.clone();
    let (model, appended) = count_in(&txn, actor, current, now, reference, DonationStatus::Received).await?;
    ctx.finish(txn, appended).await?;
    Ok(model)
}

/// Marks pledges past the TTL `EXPIRED`, in batches of `batch`, each batch one transaction
/// with its events; returns how many. Counts never include pledges, so nothing else changes;
/// rows a confirmation holds right now are skipped (PostgreSQL) and left to the next run.
pub async fn expire_pledges(ctx: Ctx<'_>, actor: &Actor, now: DateTime<Utc>, batch: u64) -> AppResult<u64> {
    use sea_orm::sea_query::{LockBehavior, LockType};
    let ttl = Duration::from_std(ctx.settings.pledge_ttl).map_err(|e| AppError::Internal(e.to_string()))?;
    let mut total = 0;
    loop {
        let txn = ctx.db.begin().await?;
        let due = donation::Entity::find()
            .filter(donation::Column::Status.eq(DonationStatus::Pledged))
            .filter(donation::Column::CreatedAt.lte(now - ttl))
            .order_by_asc(donation::Column::CreatedAt)
            .order_by_asc(donation::Column::Id)
            .limit(batch)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&txn)
            .await?;
        if due.is_empty() {
            txn.rollback().await.ok();
            return Ok(total);
        }
        let ids: Vec<i64> = due.iter().map(|d| d.id).collect();
        let updated = donation::Entity::update_many()
            .col_expr(donation::Column::Status, Expr::val(DonationStatus::Expired))
            .col_expr(donation::Column::ExpiredAt, Expr::val(Some(now)))
            .filter(donation::Column::Id.is_in(ids))
            .filter(donation::Column::Status.eq(DonationStatus::Pledged))
            .exec(&txn)
            .await?;
        let events = due.iter().map(|d| donation_event(EventKind::DonationExpired, d)).collect();
        ctx.commit(txn, actor, events).await?;
        total += updated.rows_affected;
        if (due.len() as u64) < batch {
            return Ok(total);
        }
    }
}

pub async fn cancel(ctx: Ctx<'_>, actor: &Actor, id: i64) -> AppResult<donation::Model> {
    let now = super::now();
    let txn = ctx.db.begin().await?;
    let current = lock_donation(&txn, id).await?;
    let status = effective_status(&current, ctx.settings.pledge_ttl, now);
    if status != DonationStatus::Pledged {
        return Err(AppError::bad_input(
            "id",
            format!("only a PLEDGED donation can be cancelled; this one is {}", donation_status_name(status)),
        ));
    }
    let updated = donation::Entity::update_many()
        .col_expr(donation::Column::Status, Expr::val(DonationStatus::Cancelled))
        .col_expr(donation::Column::CancelledAt, Expr::val(Some(now)))
        .filter(donation::Column::Id.eq(id))
        .filter(donation::Column::Status.eq(DonationStatus::Pledged))
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(AppError::Conflict("the donation changed meanwhile; reload and retry".into()));
    }
    let model = donation::Model { status: DonationStatus::Cancelled, cancelled_at: Some(now), ..current };
    ctx.commit(txn, actor, vec![donation_event(EventKind::DonationCancelled, &model)]).await?;
    Ok(model)
}

/// Refunds `amount_fen` of a donation (all that is left when `None`) with a reversing record
/// (negative amount, status REFUNDED; RETURNED for held money, which never counted). A
/// donation may be refunded in several parts up to its amount; once nothing is left it is
/// marked `refunded_at` and stops counting as a donation and a donor. The donation row is
/// locked first and its `refunded_fen` grows only by a conditional update the database also
/// checks, so concurrent refunds never return more than was given. Returns (original,
/// reversing record).
pub async fn refund(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: i64,
    amount_fen: Option<i64>,
    reason: Option<String>,
) -> AppResult<(donation::Model, donation::Model)> {
    use donation::Column as D;
    let db = ctx.db;
    let now = super::now();
    let reason = long_text("reason", reason, 500)?;
    let txn = db.begin().await?;
    let original = lock_donation(&txn, id).await?;
    let counted = match original.status {
        DonationStatus::Confirmed => true,
        DonationStatus::Received => false,
        _ => {
            return Err(AppError::bad_input("id", "only a confirmed or held donation can be refunded"));
        }
    };
    let left = original.amount_fen - original.refunded_fen;
    if left <= 0 || original.refunded_at.is_some() {
        return Err(AppError::rule("id", "NOTHING_LEFT_TO_REFUND", "this donation was refunded in full"));
    }
    let amount = amount_fen.unwrap_or(left);
    if amount <= 0 || amount > left {
        return Err(AppError::rule(
            "amountFen",
            "REFUND_EXCEEDS_REMAINING",
            format!("a refund of this donation is 1 to {left} fen (what is left of it)"),
        ));
    }
    let full = amount == left;
    let mut update = donation::Entity::update_many().col_expr(D::RefundedFen, Expr::col(D::RefundedFen).add(amount));
    if full {
        update = update.col_expr(D::RefundedAt, Expr::val(Some(now)));
    }
    let updated = update
        .filter(D::Id.eq(id))
        .filter(D::Status.eq(original.status))
        .filter(D::RefundedAt.is_null())
        .filter(Expr::col(D::RefundedFen).add(amount).lte(Expr::col(D::AmountFen)))
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(AppError::Conflict("the donation was refunded meanwhile; reload and retry".into()));
    }
    let reversal = donation::ActiveModel {
        campaign_id: Set(original.campaign_id),
        amount_fen: Set(-amount),
        channel: Set(original.channel),
        external_reference: Set(original.external_reference.clone()),
        donor_account_id: Set(original.donor_account_id),
        partner_key_id: Set(original.partner_key_id),
        donor_name: Set(original.donor_name.clone()),
        display_mode: Set(original.display_mode),
        message: Set(reason),
        status: Set(if counted { DonationStatus::Refunded } else { DonationStatus::Returned }),
        client_scope: Set(None),
        client_key: Set(None),
        content_digest: Set(String::new()),
        refund_of_id: Set(Some(original.id)),
        refunded_at: Set(None),
        refunded_fen: Set(0),
        receipt_number: Set(None),
        confirmed_at: Set(Some(now)),
        cancelled_at: Set(None),
        created_at: Set(now),
        expired_at: Set(None),
        received_at: Set(None),
        hold_reason: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let event = NewEvent::new(EventKind::DonationRefunded, original.id)
        .account(original.donor_account_id)
        .payload(json!({ "campaignId": original.campaign_id, "amountFen": amount, "refundId": reversal.id,
            "remainingFen": left - amount, "counted": counted }));
    let appended = crate::events::log::append(&txn, actor, vec![event]).await?;
    if counted {
        let (count, donors) = if full { (-1, -guest_donor(&original)) } else { (0, 0) };
        add_to_totals(&txn, original.campaign_id, -amount, count, donors).await?;
        if full {
            adjust_donor_count(&txn, &original, -1).await?;
        }
    }
    let original = donation::Model {
        refunded_fen: original.refunded_fen + amount,
        refunded_at: if full { Some(now) } else { None },
        ..original
    };
    ctx.finish(txn, appended).await?;
    Ok((original, reversal))
}

/// Held money staff must act on, oldest first: payments for cancelled campaigns (to refund)
/// and late payments (to accept or refund). Refunding one takes it off the queue.
pub async fn refund_queue(
    db: &impl ConnectionTrait,
    campaign_id: Option<i64>,
    reasons: &[HoldReason],
    args: &PageArgs,
    limits: &Limits,
    with_total: bool,
) -> AppResult<Page<donation::Model>> {
    let mut select = donation::Entity::find()
        .filter(donation::Column::Status.eq(DonationStatus::Received))
        .filter(donation::Column::RefundedAt.is_null());
    if let Some(id) = campaign_id {
        select = select.filter(donation::Column::CampaignId.eq(id));
    }
    if !reasons.is_empty() {
        select = select.filter(donation::Column::HoldReason.is_in(reasons.iter().copied()));
    }
    let key = SortKey {
        column: donation::Column::CreatedAt,
        id: donation::Column::Id,
        direction: SortDirection::Asc,
        value_of: |m: &donation::Model| (SortValue::Time(m.created_at), m.id),
        sample: SortValue::Time(DateTime::UNIX_EPOCH),
    };
    pagination::paginate(db, select, &key, args, limits, with_total).await
}

pub(crate) fn donation_status_name(status: DonationStatus) -> String {
    use sea_orm::ActiveEnum;
    status.to_value()
}

fn newest_first() -> SortKey<donation::Entity> {
    SortKey {
        column: donation::Column::CreatedAt,
        id: donation::Column::Id,
        direction: SortDirection::Desc,
        value_of: |m| (SortValue::Time(m.created_at), m.id),
        sample: SortValue::Time(DateTime::UNIX_EPOCH),
    }
}

/// One line of a campaign's public donor wall; the donor's identity is already masked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WallEntry {
    pub display_name: String,
    pub anonymous: bool,
    pub amount_fen: i64,
    pub message: String,
    pub donated_at: DateTime<Utc>,
}

impl WallEntry {
    pub fn of(d: &donation::Model) -> Self {
        let (display_name, anonymous) = match d.display_mode {
            DisplayMode::Public if !d.donor_name.is_empty() => (d.donor_name.clone(), false),
            DisplayMode::Public | DisplayMode::Masked => (mask_name(&d.donor_name), false),
            DisplayMode::Anonymous => (ANONYMOUS_NAME.to_owned(), true),
        };
        // What is left of it after partial refunds.
        let amount_fen = d.amount_fen - d.refunded_fen;
        Self { display_name, anonymous, amount_fen, message: d.message.clone(), donated_at: d.created_at }
    }
}

/// Confirmed, unrefunded donations of a campaign, newest first, as the public sees them.
pub async fn donor_wall(
    db: &impl ConnectionTrait,
    campaign_id: i64,
    args: &PageArgs,
    limits: &Limits,
    with_total: bool,
) -> AppResult<Page<WallEntry>> {
    let select = donation::Entity::find()
        .filter(donation::Column::CampaignId.eq(campaign_id))
        .filter(donation::Column::Status.eq(DonationStatus::Confirmed))
        .filter(donation::Column::RefundedAt.is_null());
    let page = pagination::paginate(db, select, &newest_first(), args, limits, with_total).await?;
    Ok(page.map(|d| WallEntry::of(&d)))
}

/// The first `first` lines of the donor walls of many campaigns in one statement: for each
/// campaign exactly the page `donor_wall` answers for `first` with no cursor and no total.
/// Each campaign's rows come from an index scan bounded by `first + 1` (a `UNION ALL` of
/// limited subqueries, which both backends run as such), so the cost does not grow with a
/// campaign's number of donations.
pub async fn recent_donors(
    db: &impl ConnectionTrait,
    campaign_ids: &[i64],
    first: u64,
) -> AppResult<HashMap<i64, Page<WallEntry>>> {
    use sea_orm::sea_query::{Alias, Asterisk, Query, UnionType};
    use sea_orm::{FromQueryResult, Iterable};
    let mut ids = campaign_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut pages: HashMap<i64, Vec<donation::Model>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    if first > 0 && !ids.is_empty() {
        let key = newest_first();
        let arm = |i: usize, campaign_id: i64| {
            let wall = Query::select()
                .columns(donation::Column::iter())
                .from(donation::Entity)
                .and_where(donation::Column::CampaignId.eq(campaign_id))
                .and_where(donation::Column::Status.eq(DonationStatus::Confirmed))
                .and_where(donation::Column::RefundedAt.is_null())
                .order_by(key.column, sea_orm::Order::Desc)
                .order_by(key.id, sea_orm::Order::Desc)
                .limit(first + 1)
                .to_owned();
            Query::select().column(Asterisk).from_subquery(wall, Alias::new(format!("w{i}"))).to_owned()
        };
        let mut query = arm(0, ids[0]);
        for (i, id) in ids.iter().enumerate().skip(1) {
            query.union(UnionType::All, arm(i, *id));
        }
        let statement = db.get_database_backend().build(&query);
        for row in donation::Model::find_by_statement(statement).all(db).await? {
            pages.entry(row.campaign_id).or_default().push(row);
        }
    }
    Ok(pages
        .into_iter()
        .map(|(campaign_id, mut rows)| {
            rows.sort_unstable_by_key(|d| std::cmp::Reverse((d.created_at, d.id)));
            let page = pagination::first_page(rows, &newest_first(), first);
            (campaign_id, page.map(|d| WallEntry::of(&d)))
        })
        .collect())
}

/// Every donation record of a campaign (staff and reconciling partners), newest first.
pub async fn campaign_donations(
    db: &impl ConnectionTrait,
    campaign_id: i64,
    statuses: &[DonationStatus],
    args: &PageArgs,
    limits: &Limits,
    with_total: bool,
) -> AppResult<Page<donation::Model>> {
    let mut select = donation::Entity::find().filter(donation::Column::CampaignId.eq(campaign_id));
    if !statuses.is_empty() {
        select = select.filter(donation::Column::Status.is_in(statuses.iter().copied()));
    }
    pagination::paginate(db, select, &newest_first(), args, limits, with_total).await
}

/// An account's own donation records (refunds included), newest first.
pub async fn donations_of_account(
    db: &impl ConnectionTrait,
    account_id: i64,
    args: &PageArgs,
    limits: &Limits,
    with_total: bool,
) -> AppResult<Page<donation::Model>> {
    let select = donation::Entity::find().filter(donation::Column::DonorAccountId.eq(account_id));
    pagination::paginate(db, select, &newest_first(), args, limits, with_total).await
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DonorSummary {
    /// Confirmed in the range, minus refunds made in the range.
    pub net_fen: i64,
    pub confirmed_fen: i64,
    pub refunded_fen: i64,
    pub confirmed_count: i64,
    pub campaign_count: i64,
}

/// An account's giving between `from` (inclusive) and `to` (exclusive), by confirmation
/// time (refunds by refund time).
pub async fn donor_summary(
    db: &impl ConnectionTrait,
    account_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<DonorSummary> {
    if to <= from {
        return Err(AppError::bad_input("to", "`to` must be after `from`"));
    }
    if to - from > Duration::days(MAX_SUMMARY_DAYS) {
        return Err(AppError::bad_input("to", "a summary covers at most three years"));
    }
    let rows = donation::Entity::find()
        .filter(donation::Column::DonorAccountId.eq(account_id))
        .filter(
            Condition::any()
                .add(donation::Column::Status.eq(DonationStatus::Confirmed))
                .add(donation::Column::Status.eq(DonationStatus::Refunded)),
        )
        .filter(donation::Column::ConfirmedAt.gte(from))
        .filter(donation::Column::ConfirmedAt.lt(to))
        .all(db)
        .await?;
    let mut summary = DonorSummary::default();
    let mut campaigns = std::collections::HashSet::new();
    for d in rows {
        if d.status == DonationStatus::Confirmed {
            summary.confirmed_fen += d.amount_fen;
            summary.confirmed_count += 1;
            campaigns.insert(d.campaign_id);
        } else {
            summary.refunded_fen += -d.amount_fen;
        }
    }
    summary.net_fen = summary.confirmed_fen - summary.refunded_fen;
    summary.campaign_count = campaigns.len() as i64;
    Ok(summary)
}

// ---------------------------------------------------------------- the cached views

/// Crowdfunding as its readers see it: public views read through the cache (the event log's
/// coherence consumer invalidates them after writes).
pub struct Crowdfunding<'a> {
    pub db: &'a DatabaseConnection,
    pub cache: &'a crate::cache::Cache,
    pub limits: &'a Limits,
}

impl Crowdfunding<'_> {
    pub async fn campaign(&self, id: i64) -> AppResult<Option<CampaignRecord>> {
        self.cache.get_or_load(CACHE_TAG, &format!("id:{id}"), find_by_id(self.db, id)).await
    }

    pub async fn list(
        &self,
        filter: &CampaignFilter,
        sort: CampaignSort,
        direction: SortDirection,
        args: &PageArgs,
        with_total: bool,
    ) -> AppResult<Page<CampaignRecord>> {
        pagination::validate(args, self.limits)?;
        let shape = serde_json::to_vec(&(filter, sort, direction, args, with_total)).unwrap_or_default();
        let key = format!("list:{}", crate::cache::digest(&shape));
        self.cache
            .get_or_load(CACHE_TAG, &key, list(self.db, filter, sort, direction, args, self.limits, with_total))
            .await
    }

    /// The budget lines of a page of campaigns (which `list` leaves out), cached as one entry.
    pub async fn budgets(&self, campaign_ids: &[i64]) -> AppResult<HashMap<i64, Vec<budget_line::Model>>> {
        let shape = serde_json::to_vec(campaign_ids).unwrap_or_default();
        let key = format!("budgets:{}", crate::cache::digest(&shape));
        self.cache.get_or_load(CACHE_TAG, &key, budgets_of(self.db, campaign_ids)).await
    }

    pub async fn donor_wall(&self, campaign_id: i64, args: &PageArgs, with_total: bool) -> AppResult<Page<WallEntry>> {
        pagination::validate(args, self.limits)?;
        let shape = serde_json::to_vec(&(campaign_id, args, with_total)).unwrap_or_default();
        let key = format!("wall:{}", crate::cache::digest(&shape));
        self.cache.get_or_load(CACHE_TAG, &key, donor_wall(self.db, campaign_id, args, self.limits, with_total)).await
    }

    /// The first `first` lines of many campaigns' donor walls (see `recent_donors`), cached
    /// as one entry per page of campaigns.
    pub async fn recent_donors(&self, campaign_ids: &[i64], first: u64) -> AppResult<HashMap<i64, Page<WallEntry>>> {
        let shape = serde_json::to_vec(&(campaign_ids, first)).unwrap_or_default();
        let key = format!("walls:{}", crate::cache::digest(&shape));
        self.cache.get_or_load(CACHE_TAG, &key, recent_donors(self.db, campaign_ids, first)).await
    }
}
