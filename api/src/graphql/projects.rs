//! Funded service projects and the impact dashboard in the schema.
use super::common::{Count, Fen};
use crate::graphql::common::payload;
use async_graphql::{Context, Enum, ErrorExtensions, ID, InputObject, Object, Result, ResultExt, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use entity::project_disbursement as disbursement;
use entity::project_goal as goal;
use entity::project_goal_update as goal_update;
use entity::service_record as record;

use super::audit::History;
use super::connection::{self, PagedConnection};
use super::grants::{BudgetLineObject, PeopleByGroupFigures};
use super::identity::viewer;
use super::ids;
use super::loaders::Loaders;
use super::organization::{Organization, OrganizationStage};
use super::state;
use crate::events::Aggregate;
use crate::service::grants::PeopleByGroup;
use crate::service::impact::{BaseStats, Bucket, Dashboard, Figures};
use crate::service::projects::{self as service, Funding, NewProject, NewServiceRecord, ProjectFilter, ProjectRecord};
use crate::state::AppState;

pub use super::ids::{GOAL, PROJECT};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::service_project::FundingSource")]
pub enum FundingSource {
    /// A venture-philanthropy award.
    Award,
    /// A government purchase of services.
    GovernmentPurchase,
    /// A crowdfunding campaign.
    Campaign,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::service_project::PurchaserKind")]
pub enum PurchaserKind {
    /// 街道办事处
    StreetOffice,
    /// 社区居委会
    Community,
    /// 区、市政府部门
    GovernmentDepartment,
    /// 妇联
    WomensFederation,
    Other,
}

/// Person-times by group, with their total.
#[derive(SimpleObject)]
pub struct PersonTimes {
    pub total: Count,
    pub women: Count,
    pub children: Count,
    pub families: Count,
    pub elderly: Count,
    pub others: Count,
}

impl From<PeopleByGroup> for PersonTimes {
    fn from(p: PeopleByGroup) -> Self {
        Self {
            total: p.total().into(),
            women: p.women.into(),
            children: p.children.into(),
            families: p.families.into(),
            elderly: p.elderly.into(),
            others: p.others.into(),
        }
    }
}

/// A funded service project run by an organization.
pub struct ServiceProject(pub ProjectRecord);

#[Object]
impl ServiceProject {
    pub async fn id(&self) -> ID {
        ids::encode(PROJECT, self.0.project.id)
    }

    #[graphql(flatten)]
    async fn history(&self) -> History {
        History::of(Aggregate::ServiceProject, self.0.project.id)
    }

    async fn title(&self) -> &str {
        &self.0.project.title
    }

    async fn description(&self) -> &str {
        &self.0.project.description
    }

    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let org = Loaders::of(ctx)?.organization.get(self.0.project.organization_id).await?;
        Ok(org.map(Organization))
    }

    async fn source(&self) -> FundingSource {
        self.0.project.source.into()
    }

    /// The awarded proposal, for AWARD projects.
    async fn proposal_id(&self) -> Option<ID> {
        self.0.project.proposal_id.map(|id| ids::encode(ids::PROPOSAL, id))
    }

    /// The campaign, for CAMPAIGN projects.
    async fn campaign_id(&self) -> Option<ID> {
        self.0.project.campaign_id.map(|id| ids::encode(ids::CAMPAIGN, id))
    }

    /// The purchasing office, for government purchases.
    async fn purchaser(&self) -> Option<&str> {
        self.0.project.purchaser.as_deref()
    }

    async fn purchaser_kind(&self) -> Option<PurchaserKind> {
        self.0.project.purchaser_kind.map(Into::into)
    }

    async fn contract_number(&self) -> Option<&str> {
        self.0.project.contract_number.as_deref()
    }

    /// The award, the contract amount or the campaign's money: the most it can be paid.
    async fn funded_fen(&self) -> Fen {
        Fen(self.0.project.funded_fen)
    }

    async fn disbursed_fen(&self) -> Fen {
        Fen(self.0.project.disbursed_fen)
    }

    async fn starts_on(&self) -> NaiveDate {
        self.0.project.starts_on
    }

    async fn ends_on(&self) -> NaiveDate {
        self.0.project.ends_on
    }

    async fn budget_lines(&self) -> Vec<BudgetLineObject> {
        self.0.budget_lines.iter().cloned().map(Into::into).collect()
    }

    /// Tranches paid, oldest first: staff and the organization's members; `null` otherwise.
    async fn disbursements(&self, ctx: &Context<'_>) -> Result<Option<Vec<Disbursement>>> {
        if !viewer(ctx).can_see_disbursements(self.0.project.organization_id) {
            return Ok(None);
        }
        let rows = Loaders::of(ctx)?.disbursements.get_or_default(self.0.project.id).await?;
        Ok(Some(rows.into_iter().map(Disbursement).collect()))
    }

    async fn goals(&self, ctx: &Context<'_>) -> Result<Vec<ImpactGoal>> {
        let rows = Loaders::of(ctx)?.project_goals.get_or_default(self.0.project.id).await?;
        Ok(rows.into_iter().map(ImpactGoal).collect())
    }

    /// Person-times served by the project's service records.
    async fn person_times(&self, ctx: &Context<'_>) -> Result<PersonTimes> {
        let totals = Loaders::of(ctx)?.service_totals.get_or_default(self.0.project.id).await?;
        Ok(totals.into())
    }

    /// Service records, the latest recorded first.
    async fn service_records(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<ServiceRecord>> {
        connection::list(ctx, connection::args(first, after, last, before), ServiceRecord, async |db, page| {
            service::list_service_records(db, self.0.project.id, page).await
        })
        .await
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.project.created_at
    }
}

/// One tranche paid.
pub struct Disbursement(pub disbursement::Model);

#[Object]
impl Disbursement {
    async fn amount_fen(&self) -> Fen {
        Fen(self.0.amount_fen)
    }

    async fn paid_on(&self) -> NaiveDate {
        self.0.paid_on
    }

    async fn note(&self) -> &str {
        &self.0.note
    }
}

/// An impact goal and its progress.
pub struct ImpactGoal(pub goal::Model);

#[Object]
impl ImpactGoal {
    async fn id(&self) -> ID {
        ids::encode(GOAL, self.0.id)
    }

    /// What is measured, e.g. 服务人次, 培训场次.
    async fn goal_type(&self) -> &str {
        &self.0.goal_type
    }

    async fn unit(&self) -> &str {
        &self.0.unit
    }

    async fn target(&self) -> i64 {
        self.0.target
    }

    /// The latest progress update's value.
    async fn achieved(&self) -> i64 {
        self.0.achieved
    }

    /// Progress updates, oldest first (the latest 100).
    async fn updates(&self, ctx: &Context<'_>) -> Result<Vec<GoalProgress>> {
        let rows = Loaders::of(ctx)?.goal_updates.get_or_default(self.0.id).await?;
        Ok(rows.into_iter().map(GoalProgress).collect())
    }
}

pub struct GoalProgress(pub goal_update::Model);

#[Object]
impl GoalProgress {
    async fn achieved(&self) -> i64 {
        self.0.achieved
    }

    async fn note(&self) -> &str {
        &self.0.note
    }

    async fn reported_on(&self) -> NaiveDate {
        self.0.reported_on
    }
}

/// One service activity and the person-times it served.
pub struct ServiceRecord(pub record::Model);

#[Object]
impl ServiceRecord {
    async fn served_on(&self) -> NaiveDate {
        self.0.served_on
    }

    async fn activity(&self) -> &str {
        &self.0.activity
    }

    async fn people(&self) -> PersonTimes {
        service::people_of(&self.0).into()
    }

    async fn location(&self) -> &str {
        &self.0.location
    }
}

// ---------------------------------------------------------------- the dashboard

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
#[graphql(remote = "crate::service::impact::GroupBy")]
pub enum ImpactGroupBy {
    #[default]
    Month,
    Quarter,
    Year,
}

#[derive(SimpleObject)]
pub struct StageCount {
    pub stage: OrganizationStage,
    pub count: i64,
}

#[derive(SimpleObject)]
pub struct EventKindCount {
    pub kind: String,
    pub count: i64,
}

/// Delegations at cross-strait exchanges from one origin, and the persons in them (leaders
/// and members).
#[derive(SimpleObject)]
pub struct OriginCount {
    pub origin: super::event::DelegationOrigin,
    pub delegations: Count,
    pub persons: Count,
}

fn stage_counts(list: &[(entity::organization::Stage, i64)]) -> Vec<StageCount> {
    list.iter().map(|(s, n)| StageCount { stage: (*s).into(), count: *n }).collect()
}

/// What happened in a period or one bucket of it.
pub struct ImpactFigures(Figures);

#[Object]
impl ImpactFigures {
    /// Person-times served: project service records plus event attendance.
    async fn person_times(&self) -> PersonTimes {
        self.0.person_times.into()
    }

    async fn person_times_from_projects(&self) -> Count {
        self.0.person_times_from_projects.into()
    }

    /// From event attendance: checked-in registrations of events held.
    async fn person_times_from_events(&self) -> Count {
        self.0.person_times_from_events.into()
    }

    /// Published or completed events that started in the period.
    async fn events_held(&self) -> i64 {
        self.0.events_held()
    }

    async fn events_by_kind(&self) -> Vec<EventKindCount> {
        self.0.events_by_kind.iter().map(|(k, n)| EventKindCount { kind: k.clone(), count: *n }).collect()
    }

    /// Delegations at exchanges held in the period and the persons in them, by origin (every
    /// origin, zeros included, in a fixed order: mainland, Taiwan, Hong Kong, Macao, overseas).
    async fn delegations_by_origin(&self) -> Vec<OriginCount> {
        crate::service::impact::ORIGINS
            .iter()
            .map(|origin| {
                let (delegations, persons) = self
                    .0
                    .delegations_by_origin
                    .iter()
                    .find(|(o, _, _)| o == origin)
                    .map_or((0, 0), |(_, d, p)| (*d, *p));
                OriginCount { origin: (*origin).into(), delegations: delegations.into(), persons: persons.into() }
            })
            .collect()
    }

    /// Stage transitions that took effect, by the stage entered (joining the base counts).
    async fn stage_changes(&self) -> Vec<StageCount> {
        stage_counts(&self.0.stage_changes)
    }

    async fn stage_changes_total(&self) -> i64 {
        self.0.stage_changes_total()
    }

    /// Venture-philanthropy awards decided.
    async fn awarded_fen(&self) -> Fen {
        Fen(self.0.awarded_fen)
    }

    /// Government purchases, by the date the project starts.
    async fn contracted_fen(&self) -> Fen {
        Fen(self.0.contracted_fen)
    }

    /// Raised by crowdfunding campaigns: confirmed donations minus refunds.
    async fn campaign_raised_fen(&self) -> Fen {
        Fen(self.0.campaign_raised_fen)
    }

    /// Projects whose period overlaps.
    async fn projects_active(&self) -> i64 {
        self.0.projects_active
    }

    async fn projects_started(&self) -> i64 {
        self.0.projects_started
    }
}

pub struct ImpactBucket(Bucket);

#[Object]
impl ImpactBucket {
    /// `2026-03`, `2026-Q1` or `2026`.
    async fn label(&self) -> &str {
        &self.0.label
    }

    /// First day (Asia/Shanghai), clipped to the period.
    async fn from(&self) -> NaiveDate {
        self.0.from
    }

    /// Last day, clipped to the period.
    async fn to(&self) -> NaiveDate {
        self.0.to
    }

    /// Organizations in each stage at the end of the bucket.
    async fn organizations_by_stage(&self) -> Vec<StageCount> {
        stage_counts(&self.0.organizations_by_stage)
    }

    async fn figures(&self) -> ImpactFigures {
        ImpactFigures(self.0.figures.clone())
    }
}

/// The base's impact in a period.
pub struct BaseStatsObject(BaseStats);

#[Object(name = "BaseStats")]
impl BaseStatsObject {
    async fn from(&self) -> NaiveDate {
        self.0.from
    }

    async fn to(&self) -> NaiveDate {
        self.0.to
    }

    async fn group_by(&self) -> ImpactGroupBy {
        self.0.group_by.into()
    }

    /// Organizations in each stage at the end of the period.
    async fn organizations_by_stage(&self) -> Vec<StageCount> {
        stage_counts(&self.0.organizations_by_stage)
    }

    async fn totals(&self) -> ImpactFigures {
        ImpactFigures(self.0.totals.clone())
    }

    /// One entry per month, quarter or year (Asia/Shanghai) of the period.
    async fn series(&self) -> Vec<ImpactBucket> {
        self.0.series.iter().cloned().map(ImpactBucket).collect()
    }
}

#[derive(InputObject, Default)]
pub struct ServiceProjectFilter {
    pub organization_id: Option<ID>,
    pub source: Option<Vec<FundingSource>>,
}

#[derive(Default)]
pub struct ProjectQuery;

#[Object]
impl ProjectQuery {
    /// The base's impact between two local dates (inclusive, Asia/Shanghai, at most ten
    /// years), as totals and a time series.
    async fn base_stats(
        &self,
        ctx: &Context<'_>,
        from: NaiveDate,
        to: NaiveDate,
        #[graphql(desc = "Bucket size of the series; default MONTH.")] group_by: Option<ImpactGroupBy>,
    ) -> Result<BaseStatsObject> {
        let state = state(ctx)?;
        let stats = dashboard(state).base_stats(from, to, group_by.unwrap_or_default().into()).await.extend()?;
        Ok(BaseStatsObject(stats))
    }

    async fn service_project(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ServiceProject>> {
        let id = ids::decode(&id, PROJECT, "id")?;
        Ok(Loaders::of(ctx)?.service_project.get(id).await?.map(ServiceProject))
    }

    /// Funded projects, the latest created first.
    async fn service_projects(
        &self,
        ctx: &Context<'_>,
        filter: Option<ServiceProjectFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PagedConnection<ServiceProject>> {
        let filter = filter.unwrap_or_default();
        let organization_id =
            ids::decode_optional(filter.organization_id.as_ref(), ids::ORGANIZATION, "organizationId")?;
        let service_filter = ProjectFilter {
            organization_id,
            sources: filter.source.unwrap_or_default().into_iter().map(Into::into).collect(),
        };
        connection::list(ctx, connection::args(first, after, last, before), ServiceProject, async |db, page| {
            service::list_projects(db, &service_filter, page).await
        })
        .await
    }
}

pub fn dashboard(state: &AppState) -> Dashboard<'_> {
    Dashboard { db: &state.db, cache: &state.cache }
}

#[derive(InputObject)]
pub struct CreateServiceProjectInput {
    pub title: String,
    #[graphql(default)]
    pub description: String,
    pub source: FundingSource,
    /// Required for GOVERNMENT_PURCHASE and CAMPAIGN; for AWARD it is the proposal's.
    pub organization_id: Option<ID>,
    /// AWARD: the awarded proposal.
    pub proposal_id: Option<ID>,
    /// GOVERNMENT_PURCHASE: the purchasing office, its kind, the contract.
    pub purchaser: Option<String>,
    pub purchaser_kind: Option<PurchaserKind>,
    pub contract_number: Option<String>,
    pub contract_fen: Option<Fen>,
    /// CAMPAIGN: the campaign and the money it provides.
    pub campaign_id: Option<ID>,
    pub funded_fen: Option<Fen>,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    /// At most the funding in total.
    #[graphql(default)]
    pub budget_lines: Vec<BudgetLineObject>,
}

#[derive(InputObject)]
pub struct RecordDisbursementInput {
    pub project_id: ID,
    pub amount_fen: Fen,
    pub paid_on: NaiveDate,
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct AddImpactGoalInput {
    pub project_id: ID,
    pub goal_type: String,
    pub unit: String,
    pub target: i64,
}

#[derive(InputObject)]
pub struct RecordGoalProgressInput {
    pub goal_id: ID,
    /// The cumulative value reached.
    pub achieved: i64,
    pub note: Option<String>,
    pub reported_on: NaiveDate,
}

#[derive(InputObject)]
pub struct AddServiceRecordInput {
    pub project_id: ID,
    /// Local date, within the project's period and not in the future.
    pub served_on: NaiveDate,
    pub activity: String,
    pub people: PeopleByGroupFigures,
    #[graphql(default)]
    pub location: String,
}

payload!(ServiceProjectPayload { project: ServiceProject });

#[derive(SimpleObject)]
pub struct RecordDisbursementPayload {
    pub project: ServiceProject,
    pub disbursement: Disbursement,
}

payload!(ImpactGoalPayload { goal: ImpactGoal });

#[derive(SimpleObject)]
pub struct RecordGoalProgressPayload {
    pub goal: ImpactGoal,
    pub progress: GoalProgress,
}

payload!(AddServiceRecordPayload { record: ServiceRecord });

impl From<AddServiceRecordInput> for NewServiceRecord {
    fn from(input: AddServiceRecordInput) -> Self {
        NewServiceRecord {
            served_on: input.served_on,
            activity: input.activity,
            people: input.people.into(),
            location: input.location,
        }
    }
}

impl CreateServiceProjectInput {
    /// The service's `NewProject`: its IDs decoded, and the fields its funding source needs
    /// required.
    fn into_new(self) -> Result<NewProject> {
        let organization_id = ids::decode_optional(self.organization_id.as_ref(), ids::ORGANIZATION, "organizationId")?;
        let funding = match self.source {
            FundingSource::Award => {
                let id = required(self.proposal_id, "proposalId", "AWARD")?;
                Funding::Award { proposal_id: ids::decode(&id, ids::PROPOSAL, "proposalId")? }
            }
            FundingSource::GovernmentPurchase => Funding::GovernmentPurchase {
                purchaser: required(self.purchaser, "purchaser", "GOVERNMENT_PURCHASE")?,
                purchaser_kind: required(self.purchaser_kind, "purchaserKind", "GOVERNMENT_PURCHASE")?.into(),
                contract_number: required(self.contract_number, "contractNumber", "GOVERNMENT_PURCHASE")?,
                contract_fen: required(self.contract_fen.map(i64::from), "contractFen", "GOVERNMENT_PURCHASE")?,
            },
            FundingSource::Campaign => {
                let id = required(self.campaign_id, "campaignId", "CAMPAIGN")?;
                Funding::Campaign {
                    campaign_id: ids::decode(&id, ids::CAMPAIGN, "campaignId")?,
                    funded_fen: required(self.funded_fen.map(i64::from), "fundedFen", "CAMPAIGN")?,
                }
            }
        };
        Ok(NewProject {
            organization_id,
            title: self.title,
            description: self.description,
            funding,
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            budget_lines: self.budget_lines.into_iter().map(Into::into).collect(),
        })
    }
}

fn required<T>(value: Option<T>, field: &str, when: &str) -> Result<T> {
    value.ok_or_else(|| crate::error::AppError::bad_input(field, format!("{field} is required for {when}")).extend())
}

#[derive(Default)]
pub struct ProjectMutation;

#[Object]
impl ProjectMutation {
    /// A project from an award, a government purchase or a campaign (staff).
    async fn create_service_project(
        &self,
        ctx: &Context<'_>,
        input: CreateServiceProjectInput,
    ) -> Result<ServiceProjectPayload> {
        let state = state(ctx)?;
        let record = service::create_service_project(state.ctx(), viewer(ctx), input.into_new()?).await.extend()?;
        Ok(ServiceProjectPayload { project: ServiceProject(record) })
    }

    /// Pays a tranche; the total paid never exceeds the award or contract (staff).
    async fn record_disbursement(
        &self,
        ctx: &Context<'_>,
        input: RecordDisbursementInput,
    ) -> Result<RecordDisbursementPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.project_id, PROJECT, "projectId")?;
        let (record, entry) =
            service::pay_tranche(state.ctx(), viewer(ctx), id, input.amount_fen.0, input.paid_on, input.note)
                .await
                .extend()?;
        Ok(RecordDisbursementPayload { project: ServiceProject(record), disbursement: Disbursement(entry) })
    }

    async fn add_impact_goal(&self, ctx: &Context<'_>, input: AddImpactGoalInput) -> Result<ImpactGoalPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.project_id, PROJECT, "projectId")?;
        let goal = service::add_impact_goal(state.ctx(), viewer(ctx), id, &input.goal_type, &input.unit, input.target)
            .await
            .extend()?;
        Ok(ImpactGoalPayload { goal: ImpactGoal(goal) })
    }

    async fn record_goal_progress(
        &self,
        ctx: &Context<'_>,
        input: RecordGoalProgressInput,
    ) -> Result<RecordGoalProgressPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.goal_id, GOAL, "goalId")?;
        let (goal, progress) =
            service::report_goal_progress(state.ctx(), viewer(ctx), id, input.achieved, input.note, input.reported_on)
                .await
                .extend()?;
        Ok(RecordGoalProgressPayload { goal: ImpactGoal(goal), progress: GoalProgress(progress) })
    }

    /// Records a service activity; its person-times count on the impact dashboard.
    async fn add_service_record(
        &self,
        ctx: &Context<'_>,
        input: AddServiceRecordInput,
    ) -> Result<AddServiceRecordPayload> {
        let state = state(ctx)?;
        let id = ids::decode(&input.project_id, PROJECT, "projectId")?;
        let record = service::record_service(state.ctx(), viewer(ctx), id, input.into()).await.extend()?;
        Ok(AddServiceRecordPayload { record: ServiceRecord(record) })
    }
}
