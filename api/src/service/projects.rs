//! Funded service projects: from an award, a government purchase or a campaign; their
//! disbursement ledger (never more than the funding), impact goals with progress updates,
//! and service records whose person-times feed the impact dashboard.
use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use entity::grant_proposal::{self as proposal, ProposalStatus};
use entity::project_disbursement as disbursement;
use entity::project_goal as goal;
use entity::project_goal_update as goal_update;
use entity::service_project::{self as project, FundingSource, PurchaserKind};
use entity::service_record as record;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::grants::{BudgetLine, PeopleByGroup, bounded_text, required_text, validate_budget_lines};
use super::pagination::{self, Page, PageRequest, SortDirection, SortKey};
use serde_json::json;

use super::common::{found, grouped, rows_by_ids};
use super::{Ctx, as_viewer};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};

/// Today's date in the base's zone.
pub fn today() -> NaiveDate {
    super::event::local_date(Utc::now())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProjectRecord {
    pub project: project::Model,
    pub budget_lines: Vec<BudgetLine>,
}

impl ProjectRecord {
    pub fn from_model(project: project::Model) -> Self {
        Self { budget_lines: serde_json::from_str(&project.budget_lines).unwrap_or_default(), project }
    }
}

/// Where a project's money comes from.
#[derive(Clone, Debug)]
pub enum Funding {
    /// The awarded proposal; the project is paid at most the award.
    Award {
        proposal_id: i64,
    },
    GovernmentPurchase {
        purchaser: String,
        purchaser_kind: PurchaserKind,
        contract_number: String,
        contract_fen: i64,
    },
    /// A crowdfunding campaign (another domain; not checked here) and the money it provides.
    Campaign {
        campaign_id: i64,
        funded_fen: i64,
    },
}

#[derive(Clone, Debug)]
pub struct NewProject {
    /// Required unless the project comes from an award (then it is the proposal's).
    pub organization_id: Option<i64>,
    pub title: String,
    pub description: String,
    pub funding: Funding,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub budget_lines: Vec<BudgetLine>,
}

pub async fn find_project(db: &impl ConnectionTrait, id: i64) -> AppResult<ProjectRecord> {
    Ok(ProjectRecord::from_model(found::<project::Entity>(db, id, "service project").await?))
}

pub async fn projects_by_ids(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<Vec<ProjectRecord>> {
    let rows = rows_by_ids(db, project::Column::Id, ids).await?;
    Ok(rows.into_iter().map(ProjectRecord::from_model).collect())
}

#[derive(Clone, Debug, Default)]
pub struct ProjectFilter {
    pub organization_id: Option<i64>,
    pub sources: Vec<FundingSource>,
}

/// Projects, the latest starting first.
pub async fn list_projects(
    db: &impl ConnectionTrait,
    filter: &ProjectFilter,
    page: PageRequest<'_>,
) -> AppResult<Page<ProjectRecord>> {
    let mut select = project::Entity::find();
    if let Some(org) = filter.organization_id {
        select = select.filter(project::Column::OrganizationId.eq(org));
    }
    if !filter.sources.is_empty() {
        select = select.filter(project::Column::Source.is_in(filter.sources.iter().copied()));
    }
    let key = SortKey::<project::Entity>::time(project::Column::CreatedAt, project::Column::Id, SortDirection::Desc);
    let page = pagination::paginate(db, select, &key, page).await?;
    Ok(page.map(ProjectRecord::from_model))
}

// ---------------------------------------------------------------- commands

async fn project_org(db: &impl ConnectionTrait, id: i64) -> AppResult<i64> {
    Ok(find_project(db, id).await?.project.organization_id)
}

fn project_event(kind: EventKind, project_id: i64, organization_id: i64, payload: serde_json::Value) -> NewEvent {
    NewEvent::new(kind, project_id).organization(Some(organization_id)).payload(payload)
}

/// Command: staff create a project from an award, a government purchase or a campaign.
pub async fn create_service_project(ctx: Ctx<'_>, viewer: &Viewer, input: NewProject) -> AppResult<ProjectRecord> {
    viewer.require_manage_projects()?;
    as_viewer!(viewer, |actor| create_project(ctx, actor, input.clone()))
}

/// Command: staff pay a tranche; the total paid never exceeds the funding.
pub async fn pay_tranche(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    project_id: i64,
    amount_fen: i64,
    paid_on: NaiveDate,
    note: Option<String>,
) -> AppResult<(ProjectRecord, disbursement::Model)> {
    viewer.require_manage_projects()?;
    as_viewer!(viewer, |actor| record_disbursement(ctx, actor, project_id, amount_fen, paid_on, note.clone()))
}

/// Command: the organization running a project (or staff) adds an impact goal.
pub async fn add_impact_goal(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    project_id: i64,
    goal_type: &str,
    unit: &str,
    target: i64,
) -> AppResult<goal::Model> {
    viewer.require_report_on_project(project_org(ctx.db, project_id).await?)?;
    as_viewer!(viewer, |actor| add_goal(ctx, actor, project_id, goal_type, unit, target))
}

/// Command: the organization running a project (or staff) reports a goal's progress.
pub async fn report_goal_progress(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    goal_id: i64,
    achieved: i64,
    note: Option<String>,
    reported_on: NaiveDate,
) -> AppResult<(goal::Model, goal_update::Model)> {
    let current = find_goal(ctx.db, goal_id).await?;
    viewer.require_report_on_project(project_org(ctx.db, current.project_id).await?)?;
    as_viewer!(viewer, |actor| record_goal_progress(ctx, actor, goal_id, achieved, note.clone(), reported_on))
}

/// Command: the organization running a project (or staff) records a service activity.
pub async fn record_service(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    project_id: i64,
    input: NewServiceRecord,
) -> AppResult<record::Model> {
    viewer.require_report_on_project(project_org(ctx.db, project_id).await?)?;
    as_viewer!(viewer, |actor| add_service_record(ctx, actor, project_id, input.clone()))
}

// ---------------------------------------------------------------- writes

pub async fn create_project(ctx: Ctx<'_>, actor: &Actor, input: NewProject) -> AppResult<ProjectRecord> {
    let txn = ctx.db.begin().await?;
    let db = &txn;
    let title = required_text("title", &input.title, 200)?;
    let description = bounded_text("description", &input.description, 10_000)?;
    if input.ends_on < input.starts_on {
        return Err(AppError::bad_input("endsOn", "endsOn is not before startsOn"));
    }
    if (input.ends_on - input.starts_on).num_days() > 366 * 5 {
        return Err(AppError::bad_input("endsOn", "a project runs at most five years"));
    }
    let lines_total = validate_budget_lines(&input.budget_lines)?;
    let mut model = project::ActiveModel {
        title: Set(title),
        description: Set(description),
        disbursed_fen: Set(0),
        starts_on: Set(input.starts_on),
        ends_on: Set(input.ends_on),
        budget_lines: Set(serde_json::to_string(&input.budget_lines).map_err(|e| AppError::Internal(e.to_string()))?),
        ..Default::default()
    };
    let (organization_id, funded) = match input.funding {
        Funding::Award { proposal_id } => {
            let p = found::<proposal::Entity>(db, proposal_id, "proposal").await?;
            let awarded = match (p.status, p.awarded_fen) {
                (ProposalStatus::Awarded, Some(fen)) => fen,
                _ => return Err(AppError::bad_input("proposalId", "a project comes from an AWARDED proposal")),
            };
            if input.organization_id.is_some_and(|o| o != p.organization_id) {
                return Err(AppError::bad_input("organizationId", "the project belongs to the proposing organization"));
            }
            model.source = Set(FundingSource::Award);
            model.proposal_id = Set(Some(proposal_id));
            (p.organization_id, awarded)
        }
        Funding::GovernmentPurchase { purchaser, purchaser_kind, contract_number, contract_fen } => {
            if contract_fen <= 0 {
                return Err(AppError::bad_input("contractFen", "contractFen must be positive"));
            }
            model.source = Set(FundingSource::GovernmentPurchase);
            model.purchaser = Set(Some(required_text("purchaser", &purchaser, 200)?));
            model.purchaser_kind = Set(Some(purchaser_kind));
            model.contract_number = Set(Some(required_text("contractNumber", &contract_number, 64)?));
            let org = input
                .organization_id
                .ok_or_else(|| AppError::bad_input("organizationId", "organizationId is required"))?;
            (org, contract_fen)
        }
        Funding::Campaign { campaign_id, funded_fen } => {
            if campaign_id <= 0 {
                return Err(AppError::bad_input("campaignId", "campaignId is required"));
            }
            if funded_fen < 0 {
                return Err(AppError::bad_input("fundedFen", "fundedFen must not be negative"));
            }
            model.source = Set(FundingSource::Campaign);
            model.campaign_id = Set(Some(campaign_id));
            let org = input
                .organization_id
                .ok_or_else(|| AppError::bad_input("organizationId", "organizationId is required"))?;
            (org, funded_fen)
        }
    };
    if lines_total > funded {
        return Err(AppError::bad_input(
            "budgetLines",
            format!("budget lines add up to {lines_total} fen, more than the {funded} fen of funding"),
        ));
    }
    found::<entity::organization::Entity>(db, organization_id, "organization").await?;
    let now = super::now();
    model.organization_id = Set(organization_id);
    model.funded_fen = Set(funded);
    model.created_at = Set(now);
    model.updated_at = Set(now);
    let saved = model.insert(db).await.map_err(AppError::on_unique("this award already has a project"))?;
    let event = project_event(
        EventKind::ServiceProjectCreated,
        saved.id,
        saved.organization_id,
        json!({ "title": saved.title, "fundedFen": saved.funded_fen, "source": sea_orm::ActiveEnum::to_value(&saved.source) }),
    );
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(ProjectRecord::from_model(saved))
}

fn not_in_future(field: &str, date: NaiveDate) -> AppResult<()> {
    if date > today() {
        return Err(AppError::bad_input(field, format!("{field} is in the future")));
    }
    Ok(())
}

/// Pays a tranche. The disbursed total grows only by a conditional update that keeps it
/// within the funding, so concurrent tranches cannot overpay either.
pub async fn record_disbursement(
    ctx: Ctx<'_>,
    actor: &Actor,
    project_id: i64,
    amount_fen: i64,
    paid_on: NaiveDate,
    note: Option<String>,
) -> AppResult<(ProjectRecord, disbursement::Model)> {
    let note = bounded_text("note", note.as_deref().unwrap_or_default(), 2_000)?;
    if amount_fen <= 0 {
        return Err(AppError::bad_input("amountFen", "amountFen must be positive"));
    }
    not_in_future("paidOn", paid_on)?;
    let current = find_project(ctx.db, project_id).await?;
    let txn = ctx.db.begin().await?;
    let grown = project::Entity::update_many()
        .col_expr(project::Column::DisbursedFen, Expr::col(project::Column::DisbursedFen).add(amount_fen))
        .col_expr(project::Column::UpdatedAt, Expr::val(super::now()))
        .filter(project::Column::Id.eq(project_id))
        .filter(Expr::col(project::Column::DisbursedFen).add(amount_fen).lte(Expr::col(project::Column::FundedFen)))
        .exec(&txn)
        .await?;
    if grown.rows_affected != 1 {
        let latest = find_project(&txn, project_id).await.unwrap_or(current);
        let p = &latest.project;
        return Err(AppError::Conflict(
            format!(
                "disbursing {amount_fen} fen would exceed the project's funding: {} of {} fen left to pay",
                p.funded_fen - p.disbursed_fen,
                p.funded_fen
            )
            .into(),
        ));
    }
    let entry = disbursement::ActiveModel {
        project_id: Set(project_id),
        amount_fen: Set(amount_fen),
        paid_on: Set(paid_on),
        note: Set(note),
        created_at: Set(super::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let record = find_project(&txn, project_id).await?;
    let event = project_event(
        EventKind::DisbursementRecorded,
        project_id,
        record.project.organization_id,
        json!({ "disbursementId": entry.id, "amountFen": amount_fen, "paidOn": paid_on }),
    );
    ctx.commit(txn, actor, vec![event]).await?;
    Ok((record, entry))
}

pub const MAX_LEDGER: u64 = 500;

/// Ledgers of many projects, oldest tranche first.
pub async fn disbursements_of(
    db: &impl ConnectionTrait,
    project_ids: &[i64],
) -> AppResult<HashMap<i64, Vec<disbursement::Model>>> {
    let query =
        disbursement::Entity::find().order_by_asc(disbursement::Column::PaidOn).order_by_asc(disbursement::Column::Id);
    let mut map = grouped(db, query, disbursement::Column::ProjectId, project_ids, |d| d.project_id).await?;
    map.values_mut().for_each(|list| list.truncate(MAX_LEDGER as usize));
    Ok(map)
}

pub async fn add_goal(
    ctx: Ctx<'_>,
    actor: &Actor,
    project_id: i64,
    goal_type: &str,
    unit: &str,
    target: i64,
) -> AppResult<goal::Model> {
    let goal_type = required_text("goalType", goal_type, 100)?;
    let unit = required_text("unit", unit, 32)?;
    if target <= 0 {
        return Err(AppError::bad_input("target", "target must be positive"));
    }
    let txn = ctx.db.begin().await?;
    let db = &txn;
    let project = find_project(db, project_id).await?;
    let count = goal::Entity::find().filter(goal::Column::ProjectId.eq(project_id)).count_rows(db).await?;
    if count >= 50 {
        return Err(AppError::bad_input("projectId", "a project has at most 50 goals"));
    }
    let now = super::now();
    let goal = goal::ActiveModel {
        project_id: Set(project_id),
        goal_type: Set(goal_type),
        unit: Set(unit),
        target: Set(target),
        achieved: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let event = project_event(
        EventKind::ImpactGoalAdded,
        project_id,
        project.project.organization_id,
        json!({ "goalId": goal.id, "goalType": goal.goal_type, "unit": goal.unit, "target": goal.target }),
    );
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(goal)
}

trait CountRows {
    async fn count_rows(self, db: &impl ConnectionTrait) -> AppResult<u64>;
}

impl<E: EntityTrait> CountRows for sea_orm::Select<E>
where
    E::Model: Sync,
{
    async fn count_rows(self, db: &impl ConnectionTrait) -> AppResult<u64> {
        use sea_orm::PaginatorTrait;
        Ok(self.count(db).await?)
    }
}

pub async fn find_goal(db: &impl ConnectionTrait, id: i64) -> AppResult<goal::Model> {
    found::<goal::Entity>(db, id, "impact goal").await
}

/// Records how far a goal has come (a cumulative value).
pub async fn record_goal_progress(
    ctx: Ctx<'_>,
    actor: &Actor,
    goal_id: i64,
    achieved: i64,
    note: Option<String>,
    reported_on: NaiveDate,
) -> AppResult<(goal::Model, goal_update::Model)> {
    let note = bounded_text("note", note.as_deref().unwrap_or_default(), 2_000)?;
    if !(0..=1_000_000_000).contains(&achieved) {
        return Err(AppError::bad_input("achieved", "achieved is between 0 and 1,000,000,000"));
    }
    not_in_future("reportedOn", reported_on)?;
    let txn = ctx.db.begin().await?;
    let current = find_goal(&txn, goal_id).await?;
    let organization_id = project_org(&txn, current.project_id).await?;
    let now = super::now();
    let update = goal_update::ActiveModel {
        goal_id: Set(goal_id),
        achieved: Set(achieved),
        note: Set(note),
        reported_on: Set(reported_on),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let mut model: goal::ActiveModel = current.into();
    model.achieved = Set(achieved);
    model.updated_at = Set(now);
    let goal = model.update(&txn).await?;
    let event = project_event(
        EventKind::GoalProgressRecorded,
        goal.project_id,
        organization_id,
        json!({ "goalId": goal.id, "achieved": achieved, "reportedOn": reported_on }),
    );
    ctx.commit(txn, actor, vec![event]).await?;
    Ok((goal, update))
}

pub async fn goals_of(db: &impl ConnectionTrait, project_ids: &[i64]) -> AppResult<HashMap<i64, Vec<goal::Model>>> {
    let query = goal::Entity::find().order_by_asc(goal::Column::Id);
    grouped(db, query, goal::Column::ProjectId, project_ids, |g| g.project_id).await
}

pub const MAX_GOAL_UPDATES: usize = 100;

/// Progress updates of many goals, oldest first, the latest 100 of each.
pub async fn goal_updates_of(
    db: &impl ConnectionTrait,
    goal_ids: &[i64],
) -> AppResult<HashMap<i64, Vec<goal_update::Model>>> {
    let query = goal_update::Entity::find().order_by_asc(goal_update::Column::Id);
    let mut map = grouped(db, query, goal_update::Column::GoalId, goal_ids, |u| u.goal_id).await?;
    for list in map.values_mut() {
        list.drain(..list.len().saturating_sub(MAX_GOAL_UPDATES));
    }
    Ok(map)
}

#[derive(Clone, Debug)]
pub struct NewServiceRecord {
    pub served_on: NaiveDate,
    pub activity: String,
    pub people: PeopleByGroup,
    pub location: String,
}

pub fn people_of(r: &record::Model) -> PeopleByGroup {
    PeopleByGroup {
        women: i64::from(r.women),
        children: i64::from(r.children),
        families: i64::from(r.families),
        elderly: i64::from(r.elderly),
        others: i64::from(r.others),
    }
}

pub async fn add_service_record(
    ctx: Ctx<'_>,
    actor: &Actor,
    project_id: i64,
    input: NewServiceRecord,
) -> AppResult<record::Model> {
    let activity = required_text("activity", &input.activity, 200)?;
    let location = bounded_text("location", &input.location, 200)?;
    input.people.validate("people", 100_000)?;
    if input.people.total() == 0 {
        return Err(AppError::bad_input("people", "a service record serves at least one person"));
    }
    not_in_future("servedOn", input.served_on)?;
    let txn = ctx.db.begin().await?;
    let db = &txn;
    let project = find_project(db, project_id).await?;
    if input.served_on < project.project.starts_on || input.served_on > project.project.ends_on {
        return Err(AppError::bad_input(
            "servedOn",
            format!(
                "servedOn is within the project's period {} to {}",
                project.project.starts_on, project.project.ends_on
            ),
        ));
    }
    let p = input.people;
    let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    let saved = record::ActiveModel {
        project_id: Set(project_id),
        served_on: Set(input.served_on),
        activity: Set(activity),
        women: Set(count(p.women)),
        children: Set(count(p.children)),
        families: Set(count(p.families)),
        elderly: Set(count(p.elderly)),
        others: Set(count(p.others)),
        location: Set(location),
        created_at: Set(super::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let event = project_event(
        EventKind::ServiceRecordAdded,
        project_id,
        project.project.organization_id,
        json!({ "recordId": saved.id, "servedOn": saved.served_on, "personTimes": p.total() }),
    );
    ctx.commit(txn, actor, vec![event]).await?;
    Ok(saved)
}

/// A project's service records, the latest first.
pub async fn list_service_records(
    db: &impl ConnectionTrait,
    project_id: i64,
    page: PageRequest<'_>,
) -> AppResult<Page<record::Model>> {
    let select = record::Entity::find().filter(record::Column::ProjectId.eq(project_id));
    let key = SortKey::<record::Entity>::time(record::Column::CreatedAt, record::Column::Id, SortDirection::Desc);
    pagination::paginate(db, select, &key, page).await
}

/// A project id and its sums of women, children, families, elderly, others.
type ProjectSums = (i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

/// Person-times served by each project, summed by group in one statement.
pub async fn service_totals_of(
    db: &impl ConnectionTrait,
    project_ids: &[i64],
) -> AppResult<HashMap<i64, PeopleByGroup>> {
    if project_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<ProjectSums> = person_times_by(record::Column::ProjectId)
        .filter(record::Column::ProjectId.is_in(project_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, w, c, f, e, o)| {
            let p = PeopleByGroup {
                women: w.unwrap_or(0),
                children: c.unwrap_or(0),
                families: f.unwrap_or(0),
                elderly: e.unwrap_or(0),
                others: o.unwrap_or(0),
            };
            (id, p)
        })
        .collect())
}

/// Service records' person-times per `by`: `by`, then the sums of women, children, families,
/// elderly and others.
pub fn person_times_by(by: record::Column) -> sea_orm::Select<record::Entity> {
    record::Entity::find()
        .select_only()
        .column(by)
        .column_as(sum_of(record::Column::Women), "women")
        .column_as(sum_of(record::Column::Children), "children")
        .column_as(sum_of(record::Column::Families), "families")
        .column_as(sum_of(record::Column::Elderly), "elderly")
        .column_as(sum_of(record::Column::Others), "others")
        .group_by(by)
}

/// `CAST(SUM(col) AS BIGINT)`: PostgreSQL sums integers as bigint already, but the cast
/// keeps both backends decoding one type.
pub fn sum_of(col: impl sea_orm::sea_query::IntoColumnRef) -> Expr {
    Expr::col(col).sum().cast_as(sea_orm::sea_query::Alias::new("BIGINT"))
}
